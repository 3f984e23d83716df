package main

import (
	"io"
	"testing"
)

// TestARelayIsOneCommandLine: a relay of a network needs no configuration file, as the client and the
// authority do not: its genesis file, its addresses and its data directory are flags.
func TestARelayIsOneCommandLine(t *testing.T) {
	cfg, err := loadConfig([]string{
		"--relay-only", "--genesis", "/etc/meshvpn/genesis", "--data-dir", "/var/lib/meshvpn-r2",
		"--listen", "0.0.0.0:7020", "--public-address", "198.51.100.7:7020", "--dht-listen", "0.0.0.0:7021",
		"--metrics", "127.0.0.1:9312",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Genesis != "/etc/meshvpn/genesis" || cfg.DHTListen != "0.0.0.0:7021" || cfg.Listen != "0.0.0.0:7020" ||
		cfg.PublicAddress != "198.51.100.7:7020" || cfg.Metrics != "127.0.0.1:9312" || !cfg.RelayOnly {
		t.Fatalf("flags not applied: %+v", cfg)
	}
}
