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
	"go.uber.org/zap/zapcore"
)

// Command is the shape every MeshVPN daemon binary shares: `run` (the default), `check`, `info`,
// `example-config` and `version` subcommands, over a configuration file with flags on top.
type Command[C any] struct {
	Name    string                                         // the binary's name, for errors
	Example string                                         // what example-config prints
	Load    func(args []string, help io.Writer) (C, error) // the config file and flags; flag.ErrHelp after --help, the usage written to help
	Run     func(C) error
	Info    func(C, io.Writer) error
	// Check checks, for `check`, what Load does not and Run would find at its start: the files the
	// configuration names (the genesis file, the keys in the data directory), without starting
	// anything or making any file. Nil: Load's checks are all there are.
	Check func(C) error
}

// Exit codes, the same for every MeshVPN program.
const (
	ExitOK     = 0
	ExitFailed = 1 // the daemon failed (a port taken, a device it could not make)
	ExitUsage  = 2 // a bad command line or configuration (or a file it names): no retry mends it
)

// ConfigError is a problem with the command line, the configuration or a file it names (the genesis
// file, the data directory's keys), which no retry mends: a program exits with ExitUsage for it, also
// when its daemon finds it at start.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Misconfigured marks err as a ConfigError; nil stays nil.
func Misconfigured(err error) error {
	if err == nil {
		return nil
	}
	return &ConfigError{err}
}

// ExitCode is the exit code for a command's error: ExitOK for none (and for --help), ExitUsage for a
// ConfigError, ExitFailed for any other.
func ExitCode(err error) int {
	var ce *ConfigError
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &ce):
		return ExitUsage
	}
	return ExitFailed
}

// Main runs the command for the arguments after the program name and returns the exit code: 0, 1 when
// the daemon failed, 2 for a bad command line or configuration. Errors are one line each on stderr
// (an unknown flag is not followed by the whole usage); --help writes the usage to stdout.
func (c Command[C]) Main(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 {
		switch args[0] {
		case "run", "check", "info", "example-config":
			cmd, args = args[0], args[1:]
		case "version", "--version", "-version":
			fmt.Fprintln(stdout, c.Name, Version())
			return ExitOK
		}
	}
	if cmd == "example-config" {
		fmt.Fprint(stdout, c.Example)
		return ExitOK
	}
	cfg, err := c.Load(args, stdout)
	if IsHelp(err) {
		return ExitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", c.Name, err)
		return ExitUsage
	}
	switch cmd {
	case "check":
		if c.Check != nil {
			err = Misconfigured(c.Check(cfg))
		}
		if err == nil {
			fmt.Fprintln(stdout, "configuration OK")
		}
	case "info":
		err = c.Info(cfg, stdout)
	default:
		err = c.Run(cfg)
	}
	if s, ok := any(cfg).(interface{ Sockets() []Socket }); ok {
		err = ExplainPortTaken(err, s.Sockets()...)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", c.Name, err)
	}
	return ExitCode(err)
}

// RunUntilSignal starts a daemon with a logger at level and keeps it until SIGINT or SIGTERM, then
// closes it (a graceful shutdown). That it serves and that it stopped are notices: lines printed
// whatever the log level (see newNotices).
func RunUntilSignal(level string, start func(*zap.Logger) (io.Closer, error)) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	w := zapcore.Lock(os.Stderr)
	return runUntil(ctx, level, w, start)
}

// runUntil is RunUntilSignal until ctx ends, its log and notices written to w.
func runUntil(ctx context.Context, level string, w zapcore.WriteSyncer, start func(*zap.Logger) (io.Closer, error)) error {
	log, err := newLogger(level, w)
	if err != nil {
		return Misconfigured(err)
	}
	defer log.Sync()
	notice := newNotices(w)
	d, err := start(log)
	if err != nil {
		return err
	}
	notice.Info("serving", zap.String("commit", Revision()), zap.Int("pid", os.Getpid()))
	<-ctx.Done()
	log.Info("shutting down")
	if err := d.Close(); err != nil {
		notice.Info("stopped", zap.Error(err))
		return err
	}
	notice.Info("stopped")
	return nil
}
