package main

// A MongoDB wire-protocol proxy that runs one write command at a time (see main.go for why).
// Reads pass through concurrently; requests and responses are forwarded byte for byte.

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

var writeLock sync.Mutex

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
	if isWrite(req) {
		writeLock.Lock()
		defer writeLock.Unlock()
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

// isWrite reads the command name: the first key of the OP_MSG body (kind 0) section.
func isWrite(msg []byte) bool {
	if opCode(msg) != opMsg {
		return false
	}
	pos := 20
	for pos < len(msg) {
		kind := msg[pos]
		pos++
		if pos+4 > len(msg) {
			return false
		}
		size := int(binary.LittleEndian.Uint32(msg[pos : pos+4]))
		if kind == 0 {
			// document: int32 size, then the first element: type byte, key cstring
			if pos+5 >= len(msg) {
				return false
			}
			key := msg[pos+5:]
			if end := bytes.IndexByte(key, 0); end >= 0 {
				return writeCommands[strings.ToLower(string(key[:end]))]
			}
			return false
		}
		pos += size // kind 1: a document sequence, its size includes itself
	}
	return false
}
