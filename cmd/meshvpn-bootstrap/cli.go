package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
)

const checkUsage = `meshvpn-bootstrap check GENESIS-FILE reads a network's genesis file (what init wrote, or one you
were given) and checks it as every node does, without starting anything: "configuration OK" (exit
0), or the errors (exit 2).
`

// parseFlags parses a command's flags as every MeshVPN program does: --help writes usage and the
// flags to stdout (exit 0), a bad flag is one line on stderr (exit 2), not followed by the usage. When
// ok is false the command is done, with code.
func parseFlags(fs *flag.FlagSet, args []string, usage string, stdout, stderr io.Writer) (code int, ok bool) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return daemon.ExitOK, false
	case err != nil:
		fmt.Fprintf(stderr, "meshvpn-bootstrap %s: %v (see %s --help)\n", fs.Name(), err, fs.Name())
		return daemon.ExitUsage, false
	}
	return daemon.ExitOK, true
}

// printUsage answers --help: the usage and the testnet's flags, on stdout.
func printUsage(w io.Writer) {
	fmt.Fprint(w, usage)
	fs := testnetFlags(flag.NewFlagSet("testnet", flag.ContinueOnError))
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// runCheck checks a genesis file as the nodes read it.
func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	if code, ok := parseFlags(fs, args, checkUsage, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "meshvpn-bootstrap check: name the genesis file: meshvpn-bootstrap check GENESIS-FILE")
		return daemon.ExitUsage
	}
	if _, err := daemon.LoadGenesis(fs.Arg(0)); err != nil {
		fmt.Fprintln(stderr, "meshvpn-bootstrap check:", err)
		return daemon.ExitCode(err)
	}
	fmt.Fprintln(stdout, "configuration OK")
	return daemon.ExitOK
}

// runVersion answers version and --version.
func runVersion() int {
	fmt.Fprintln(os.Stdout, "meshvpn-bootstrap", daemon.Version())
	return daemon.ExitOK
}
