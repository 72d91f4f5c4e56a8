//go:build ignore

// gen writes the rack config's JSON Schema (go generate ./rack/schema).
package main

import (
	"log"
	"os"

	"github.com/racklet/racklet-boot/rack/schema"
)

func main() {
	b, err := schema.Generate("..")
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(schema.File, b, 0o644); err != nil {
		log.Fatal(err)
	}
}
