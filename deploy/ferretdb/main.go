// Command ferretdb runs FerretDB 1.x on its PostgreSQL backend for local mode and CI
// (deploy/infra.sh runs the PostgreSQL server under .local/).
//
// `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.x` builds a binary that
// panics on a missing version.txt, so we embed the library package instead.
//
// FerretDB 1.x runs an update as "query, then write" without holding anything in between
// (its handler does not run updates in one transaction), so two concurrent updates of one
// document can lose each other's changes: measured here, 4 clients x 50 `$inc` ended at 51.
// MongoDB guarantees single-document atomicity and the services rely on it, so clients
// reach FerretDB through writeproxy.go, which lets one write command per collection run at a time.
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen-addr", "127.0.0.1:27017", "TCP address clients connect to")
	postgresql := flag.String("postgresql-url", "postgres://postgres@127.0.0.1:5432/ferretdb", "PostgreSQL URL")
	flag.Parse()

	backend, err := freeAddr()
	if err != nil {
		log.Fatal(err)
	}

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:      ferretdb.ListenerConfig{TCP: backend},
		Handler:       "postgresql",
		PostgreSQLURL: *postgresql,
	})
	if err != nil {
		log.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	go f.Run(ctx)
	if err := waitListening(backend, 30*time.Second); err != nil {
		log.Fatal(err)
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("ferretdb listening on mongodb://%s/, writes serialised per collection", *listen)
	go func() { <-ctx.Done(); ln.Close() }()
	serveProxy(ln, backend)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitListening(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}
