package main

import (
	"fmt"
	"io"

	"github.com/meshvpn/meshvpn/cmd/internal/clientd"
	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
)

// check answers `check`: the configuration and the flags as up would take them, and the genesis file
// (or relay list) they name, read and parsed without starting anything, touching the host or making
// any file; "configuration OK", or the errors as a daemon.ConfigError (exit 2).
func check(args []string, out io.Writer) error {
	cfg, _, err := parse(args)
	if err != nil {
		return err
	}
	if err := checkConfig(cfg); err != nil {
		return daemon.Misconfigured(err)
	}
	_, err = fmt.Fprintln(out, "configuration OK")
	return err
}

func checkConfig(cfg clientd.Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.Genesis != "" {
		_, err := daemon.LoadGenesis(cfg.Genesis)
		return err
	}
	_, err := clientd.LoadRelays(cfg.Relays)
	return err
}
