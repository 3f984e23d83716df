package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"
)

// Command is the shape every MeshVPN daemon binary shares: `run` (the default), `info` and
// `example-config` subcommands, over a configuration file with flags on top.
type Command[C any] struct {
	Name    string                                           // the binary's name, for errors
	Example string                                           // what example-config prints
	Load    func(args []string, stderr io.Writer) (C, error) // the config file and flags; flag.ErrHelp after --help
	Run     func(C) error
	Info    func(C, io.Writer) error
}

// Main runs the command for the arguments after the program name and returns the exit code: 0, 1 when
// the daemon failed, 2 for a bad command line or configuration.
func (c Command[C]) Main(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && (args[0] == "run" || args[0] == "info" || args[0] == "example-config") {
		cmd, args = args[0], args[1:]
	}
	if cmd == "example-config" {
		fmt.Fprint(stdout, c.Example)
		return 0
	}
	cfg, err := c.Load(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", c.Name, err)
		return 2
	}
	if cmd == "info" {
		err = c.Info(cfg, stdout)
	} else {
		err = c.Run(cfg)
	}
	if s, ok := any(cfg).(interface{ Sockets() []Socket }); ok {
		err = ExplainPortTaken(err, s.Sockets()...)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", c.Name, err)
		return 1
	}
	return 0
}

// RunUntilSignal starts a daemon with a logger at level and keeps it until SIGINT or SIGTERM, then
// closes it (a graceful shutdown).
func RunUntilSignal(level string, start func(*zap.Logger) (io.Closer, error)) error {
	log, err := NewLogger(level)
	if err != nil {
		return err
	}
	defer log.Sync()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d, err := start(log)
	if err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("shutting down")
	return d.Close()
}
