// Command ferretdb runs FerretDB 1.x on its SQLite backend for local mode and CI.
//
// `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.x` builds a binary
// that panics on a missing version.txt, so we embed the library package instead.
package main

import (
	"context"
	"flag"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	sqlite := flag.String("sqlite-url", "file:data/", "SQLite directory URI (must end with /)")
	flag.Parse()

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Handler:   "sqlite",
		SQLiteURL: *sqlite,
	})
	if err != nil {
		log.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	log.Printf("ferretdb listening on %s (%s)", f.MongoDBURI(), *sqlite)
	f.Run(ctx)
}
