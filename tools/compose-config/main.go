// compose-config loads a Compose file the way `docker compose config` does (the Compose
// specification's reference library: interpolation, required variables, defaults, merges),
// with variables from this process's environment, and prints the resolved project as JSON.
// It exits 1 with the library's error when the file does not load (a required variable unset).
// Used by the tests; this machine has a Docker client without the compose plugin.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: compose-config <compose file>")
		os.Exit(2)
	}
	options, err := cli.NewProjectOptions([]string{os.Args[1]}, cli.WithOsEnv, cli.WithName("clusterxchange"))
	if err == nil {
		var project any
		project, err = options.LoadProject(context.Background())
		if err == nil {
			err = json.NewEncoder(os.Stdout).Encode(project)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
