package main

import (
	"errors"
	"fmt"
	"io"
	"os/exec"
	"syscall"

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

// howItEnded says how a background daemon process ended, for the person who ran up: its exit code or
// the signal that killed it, never a formatted nil error ("<nil>") when it exited 0.
func howItEnded(err error) string {
	var exit *exec.ExitError
	switch {
	case err == nil:
		return "with exit code 0: was it told to stop?"
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		return fmt.Sprintf("with exit code %d", exit.ExitCode())
	case errors.As(err, &exit):
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Sprintf("killed by signal %d (%v)", int(ws.Signal()), ws.Signal())
		}
	}
	return err.Error()
}
