package clientd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	exitdns "github.com/meshvpn/meshvpn/exit/dns"
	"github.com/meshvpn/meshvpn/network/sysdns"
)

func TestDNSConfigValidated(t *testing.T) {
	c := DefaultConfig()
	c.DNS.Mode, c.DNS.ResolvConf, c.StateDir = "dnsmasq", "resolv.conf", "state"
	err := c.Validate()
	for _, want := range []string{"dns.mode", "dns.resolv_conf", "state_dir"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not mention %s: %v", want, err)
		}
	}
	c.DNS.Mode = "off"
	if err := c.Validate(); err != nil {
		t.Fatalf("dns off needs no file and no state_dir: %v", err)
	}
}

// TestRestoreDNSAfterCrash: what `down` does after a daemon died with the host's DNS pointed at the
// tunnel (on files of the test's own).
func TestRestoreDNSAfterCrash(t *testing.T) {
	dir := t.TempDir()
	c := DefaultConfig()
	c.DNS.Mode, c.DNS.ResolvConf, c.StateDir = "file", filepath.Join(dir, "resolv.conf"), filepath.Join(dir, "state")
	os.WriteFile(c.DNS.ResolvConf, []byte("nameserver 192.168.1.1\n"), 0o644)
	if _, err := sysdns.Apply(sysdns.Config{Mode: sysdns.File, Server: exitdns.Addr, ResolvConf: c.DNS.ResolvConf, Backup: c.dnsBackup()}); err != nil {
		t.Fatal(err)
	} // and the daemon dies
	if ok, err := RestoreDNS(c, nil); !ok || err != nil {
		t.Fatalf("RestoreDNS: %v %v", ok, err)
	}
	if b, _ := os.ReadFile(c.DNS.ResolvConf); string(b) != "nameserver 192.168.1.1\n" {
		t.Fatalf("after down:\n%s", b)
	}
	if ok, err := RestoreDNS(c, nil); ok || err != nil {
		t.Fatalf("RestoreDNS again: %v %v", ok, err)
	}
}
