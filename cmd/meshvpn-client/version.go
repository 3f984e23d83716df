package main

import (
	"fmt"
	"io"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
)

// printVersion answers `version` and `--version`: the commit and the Go version this program was
// built from, as every MeshVPN program does.
func printVersion(w io.Writer) {
	fmt.Fprintln(w, "meshvpn-client", daemon.Version())
}

// exitCode is the program's exit code for the error a command ended with: 0, 2 for a bad command
// line or configuration (daemon.ConfigError, as every MeshVPN program), 1 for any other failure.
func exitCode(err error) int { return daemon.ExitCode(err) }

// unknownCommand is the error for a first argument that is no command.
func unknownCommand(cmd string) error {
	return daemon.Misconfigured(fmt.Errorf("unknown command %q (try --help)", cmd))
}
