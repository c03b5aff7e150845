package main

// A MongoDB wire-protocol proxy that runs one write command per collection at a time (see
// main.go for why): writes to different collections, and all reads, pass concurrently.
// Requests and responses are forwarded byte for byte.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"log"
	"net"
	"strings"
	"sync"
)

const (
	opMsg       = 2013
	moreToCome  = 1 << 1
	maxMsgBytes = 48 * 1024 * 1024
)

var (
	locksMu    sync.Mutex
	writeLocks = map[string]*sync.Mutex{}
)

// lockFor is the write lock of one collection (by name: equal names in two databases share one).
func lockFor(collection string) *sync.Mutex {
	locksMu.Lock()
	defer locksMu.Unlock()
	l, ok := writeLocks[collection]
	if !ok {
		l = &sync.Mutex{}
		writeLocks[collection] = l
	}
	return l
}

var writeCommands = map[string]bool{"insert": true, "update": true, "delete": true, "findandmodify": true}

func serveProxy(ln net.Listener, backend string) {
	for {
		client, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			log.Printf("accept: %v", err)
			continue
		}
		go proxyConn(client, backend)
	}
}

func proxyConn(client net.Conn, backend string) {
	defer client.Close()
	server, err := net.Dial("tcp", backend)
	if err != nil {
		log.Printf("backend: %v", err)
		return
	}
	defer server.Close()
	for {
		req, err := readMessage(client)
		if err != nil {
			return
		}
		if err := roundTrip(req, client, server); err != nil {
			return
		}
	}
}

// roundTrip forwards one request and every response it causes, holding the write lock
// for the whole exchange when the request is a write command.
func roundTrip(req []byte, client, server net.Conn) error {
	if collection, ok := writeTarget(req); ok {
		l := lockFor(collection)
		l.Lock()
		defer l.Unlock()
	}
	if _, err := server.Write(req); err != nil {
		return err
	}
	if flags(req)&moreToCome != 0 {
		return nil // fire-and-forget: the server sends no response
	}
	for {
		resp, err := readMessage(server)
		if err != nil {
			return err
		}
		if _, err := client.Write(resp); err != nil {
			return err
		}
		if flags(resp)&moreToCome == 0 {
			return nil
		}
	}
}

func readMessage(r io.Reader) ([]byte, error) {
	var header [4]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return nil, err
	}
	size := int(binary.LittleEndian.Uint32(header[:]))
	if size < 16 || size > maxMsgBytes {
		return nil, errors.New("bad message length")
	}
	msg := make([]byte, size)
	copy(msg, header[:])
	_, err := io.ReadFull(r, msg[4:])
	return msg, err
}

func opCode(msg []byte) uint32 { return binary.LittleEndian.Uint32(msg[12:16]) }

func flags(msg []byte) uint32 {
	if opCode(msg) != opMsg || len(msg) < 20 {
		return 0
	}
	return binary.LittleEndian.Uint32(msg[16:20])
}

// writeTarget reads the command name and its collection: the first element of the OP_MSG
// body (kind 0) section, e.g. {update: "applications", ...}.
func writeTarget(msg []byte) (string, bool) {
	if opCode(msg) != opMsg {
		return "", false
	}
	pos := 20
	for pos < len(msg) {
		kind := msg[pos]
		pos++
		if pos+4 > len(msg) {
			return "", false
		}
		size := int(binary.LittleEndian.Uint32(msg[pos : pos+4]))
		if kind == 0 {
			return firstElement(msg[pos+4:])
		}
		pos += size // kind 1: a document sequence, its size includes itself
	}
	return "", false
}

// firstElement: type byte, key cstring, and for a write command a string value (int32 length,
// bytes, NUL) naming the collection.
func firstElement(doc []byte) (string, bool) {
	if len(doc) < 2 {
		return "", false
	}
	typ, rest := doc[0], doc[1:]
	end := bytes.IndexByte(rest, 0)
	if end < 0 || !writeCommands[strings.ToLower(string(rest[:end]))] {
		return "", false
	}
	rest = rest[end+1:]
	if typ != 0x02 || len(rest) < 4 {
		return "", true // a write with an unexpected shape: lock it with all such writes
	}
	n := int(binary.LittleEndian.Uint32(rest[:4]))
	if n < 1 || 4+n > len(rest) {
		return "", true
	}
	return string(rest[4 : 4+n-1]), true
}
