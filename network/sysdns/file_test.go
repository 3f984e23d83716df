package sysdns

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

var tunnelResolver = netip.MustParseAddr("10.99.0.1")

const lanConf = "# the LAN's\nnameserver 192.168.1.1\nsearch lan\n"

// fileConfig is a File-mode configuration on files in a temporary directory: tests never touch the
// host's /etc/resolv.conf.
func fileConfig(t *testing.T) Config {
	dir := t.TempDir()
	return Config{Mode: File, Server: tunnelResolver, ResolvConf: filepath.Join(dir, "resolv.conf"), Backup: filepath.Join(dir, "state", "resolv.conf.backup")}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func checkOurs(t *testing.T, cfg Config) {
	t.Helper()
	got := read(t, cfg.ResolvConf)
	if !strings.Contains(got, "\nnameserver 10.99.0.1\n") || strings.Count(got, "nameserver") != 1 || !ours([]byte(got)) {
		t.Fatalf("resolv.conf while up:\n%s", got)
	}
	if _, err := os.Stat(cfg.Backup); err != nil {
		t.Fatalf("no backup: %v", err)
	}
}

func checkNoBackup(t *testing.T, cfg Config) {
	t.Helper()
	if _, err := os.Stat(cfg.Backup); !os.IsNotExist(err) {
		t.Fatalf("the backup is still there: %v", err)
	}
}

func TestFileReplacedAndRestoredInPlace(t *testing.T) {
	cfg := fileConfig(t)
	if err := os.WriteFile(cfg.ResolvConf, []byte(lanConf), 0o640); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(cfg.ResolvConf)
	s, err := Apply(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.Mode() != File {
		t.Fatalf("mode %s", s.Mode())
	}
	checkOurs(t, cfg)
	// Rewritten, not replaced: under `ip netns exec` the file is a bind mount, which a rename fails on.
	during, _ := os.Stat(cfg.ResolvConf)
	if during.Sys().(*syscall.Stat_t).Ino != before.Sys().(*syscall.Stat_t).Ino {
		t.Fatal("resolv.conf was replaced by another file, not rewritten in place")
	}
	if err := s.Restore(); err != nil {
		t.Fatal(err)
	}
	if got := read(t, cfg.ResolvConf); got != lanConf {
		t.Fatalf("restored:\n%s", got)
	}
	if fi, _ := os.Stat(cfg.ResolvConf); fi.Mode().Perm() != 0o640 {
		t.Fatalf("restored with mode %v", fi.Mode())
	}
	checkNoBackup(t, cfg)
}

func TestSymlinkAndMissingFileRestored(t *testing.T) {
	cfg := fileConfig(t)
	target := filepath.Join(filepath.Dir(cfg.ResolvConf), "managed-elsewhere.conf")
	os.WriteFile(target, []byte(lanConf), 0o644)
	if err := os.Symlink(target, cfg.ResolvConf); err != nil {
		t.Fatal(err)
	}
	s, err := Apply(cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkOurs(t, cfg)
	if read(t, target) != lanConf {
		t.Fatal("the link's target was written through the link")
	}
	if err := s.Restore(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.Readlink(cfg.ResolvConf); err != nil || got != target {
		t.Fatalf("restored as %q, %v; want a link to %s", got, err, target)
	}

	cfg = fileConfig(t)
	s, err = Apply(cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkOurs(t, cfg)
	if err := s.Restore(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(cfg.ResolvConf); !os.IsNotExist(err) {
		t.Fatalf("a file that was not there is there after restore: %v", err)
	}
	checkNoBackup(t, cfg)
}

// TestRestoredAfterCrash: a client that dies leaves its file and the backup; the next `down`
// (Recover) or `up` (Apply) puts the original back first, so the backup never holds our own file.
func TestRestoredAfterCrash(t *testing.T) {
	cfg := fileConfig(t)
	os.WriteFile(cfg.ResolvConf, []byte(lanConf), 0o644)
	if _, err := Apply(cfg); err != nil { // and the daemon dies
		t.Fatal(err)
	}
	if ok, err := Recover(cfg.Backup, nil); err != nil || !ok {
		t.Fatalf("Recover: %v %v", ok, err)
	}
	if got := read(t, cfg.ResolvConf); got != lanConf {
		t.Fatalf("recovered:\n%s", got)
	}
	checkNoBackup(t, cfg)
	if ok, err := Recover(cfg.Backup, nil); err != nil || ok {
		t.Fatalf("Recover without a backup: %v %v", ok, err)
	}

	if _, err := Apply(cfg); err != nil { // dies again
		t.Fatal(err)
	}
	s, err := Apply(cfg) // the next up
	if err != nil {
		t.Fatal(err)
	}
	checkOurs(t, cfg)
	if err := s.Restore(); err != nil {
		t.Fatal(err)
	}
	if got := read(t, cfg.ResolvConf); got != lanConf {
		t.Fatalf("after a crash and a second up:\n%s", got)
	}
}

func TestFileRewrittenByOthersIsLeft(t *testing.T) {
	cfg := fileConfig(t)
	os.WriteFile(cfg.ResolvConf, []byte(lanConf), 0o644)
	s, err := Apply(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dhcp := "nameserver 192.0.2.53\n"
	os.WriteFile(cfg.ResolvConf, []byte(dhcp), 0o644)
	if err := s.Restore(); err != nil {
		t.Fatal(err)
	}
	if got := read(t, cfg.ResolvConf); got != dhcp {
		t.Fatalf("a file someone else wrote was replaced:\n%s", got)
	}
	checkNoBackup(t, cfg)
}

func TestBadBackupRefused(t *testing.T) {
	cfg := fileConfig(t)
	os.WriteFile(cfg.ResolvConf, []byte(lanConf), 0o644)
	os.MkdirAll(filepath.Dir(cfg.Backup), 0o700)
	os.WriteFile(cfg.Backup, []byte("{garbage"), 0o600)
	if _, err := Apply(cfg); err == nil {
		t.Fatal("Apply over an unreadable backup")
	}
	if got := read(t, cfg.ResolvConf); got != lanConf {
		t.Fatal("resolv.conf changed")
	}
	if _, err := Apply(Config{Mode: "dnsmasq", Server: tunnelResolver}); err == nil {
		t.Fatal("an unknown mode accepted")
	}
	if s, err := Apply(Config{Mode: Off, Server: tunnelResolver, ResolvConf: cfg.ResolvConf}); err != nil || s.Mode() != Off || s.Restore() != nil {
		t.Fatalf("off: %v", err)
	}
}

func TestAutoReplacesAFileResolvedDoesNotServe(t *testing.T) {
	cfg := fileConfig(t)
	cfg.Mode = Auto
	os.WriteFile(cfg.ResolvConf, []byte(lanConf), 0o644)
	s, err := Apply(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Restore()
	if s.Mode() != File {
		t.Fatalf("mode %s", s.Mode())
	}
	if !bytes.Contains([]byte(read(t, cfg.ResolvConf)), []byte("10.99.0.1")) {
		t.Fatal("not pointed at the tunnel")
	}
}

func TestResolvedManages(t *testing.T) {
	dir := t.TempDir()
	stub := filepath.Join(dir, "stub")
	os.WriteFile(stub, []byte("# systemd-resolved\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n"), 0o644)
	lan := filepath.Join(dir, "lan")
	os.WriteFile(lan, []byte(lanConf), 0o644)
	if !resolvedManages(stub) || resolvedManages(lan) || resolvedManages(filepath.Join(dir, "none")) {
		t.Fatal("resolvedManages")
	}
}
