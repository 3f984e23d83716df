package discovery

import (
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
	"github.com/meshvpn/meshvpn/core/authority"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// TestALostIdentityIsRefused: an authority whose data directory holds its database but no identity
// key (a restore that lost it) does not start with a new key unless --new-identity; a first start,
// with nothing in the directory, makes one.
func TestALostIdentityIsRefused(t *testing.T) {
	cfg := lonelyConfig(t, nil) // made the key
	idPath := filepath.Join(cfg.DataDir, IdentityFile)
	if err := os.WriteFile(filepath.Join(cfg.DataDir, authority.DBFile), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Check(cfg); err != nil {
		t.Fatalf("check of a good authority: %v", err)
	}
	if err := os.Remove(idPath); err != nil {
		t.Fatal(err)
	}
	for _, try := range []func() error{
		func() error { _, err := Start(cfg, zap.NewNop()); return err },
		func() error { _, err := LoadIdentity(cfg.DataDir, false, zap.NewNop()); return err },
		func() error { return Check(cfg) },
	} {
		err := try()
		if daemon.ExitCode(err) != daemon.ExitUsage || !strings.Contains(err.Error(), "--new-identity") || !strings.Contains(err.Error(), authority.DBFile) {
			t.Fatalf("no identity beside the database: %v", err)
		}
		if _, err := os.Stat(idPath); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("a new identity key was made")
		}
	}
	cfg.NewIdentity = true
	if _, err := Start(cfg, zap.NewNop()); !errors.Is(err, authority.ErrNotAuthority) || daemon.ExitCode(err) != daemon.ExitUsage {
		t.Fatalf("with --new-identity, the new key is not the genesis's: %v", err)
	}
	if _, err := os.Stat(idPath); err != nil {
		t.Fatal("--new-identity made no key")
	}
	fresh := t.TempDir()
	if _, err := LoadIdentity(fresh, false, zap.NewNop()); err != nil {
		t.Fatalf("a first start: %v", err)
	}
}

// TestCheckFindsWhatStartWould: check reads the genesis file and the identity key, which the genesis
// must list, and makes no file.
func TestCheckFindsWhatStartWould(t *testing.T) {
	other, err := keys.GenerateIdentity(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub := other.Public()
	cfg := lonelyConfig(t, &pub)
	if err := Check(cfg); err == nil || !strings.Contains(err.Error(), "meshvpn-discovery info") {
		t.Fatalf("no key yet: %v", err)
	}
	if _, err := os.Stat(cfg.DataDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("check made the data directory: %v", err)
	}
	if _, err := LoadIdentity(cfg.DataDir, false, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	if err := Check(cfg); !errors.Is(err, authority.ErrNotAuthority) || !strings.Contains(err.Error(), "meshvpn-bootstrap init") {
		t.Fatalf("a key the genesis does not list: %v", err)
	}
	if err := os.WriteFile(cfg.Genesis, []byte("network nonsense\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Check(cfg); err == nil || !strings.Contains(err.Error(), cfg.Genesis) || daemon.ExitCode(err) != daemon.ExitUsage {
		t.Fatalf("a bad genesis: %v", err)
	}
}
