package clientd

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
)

// A daemon notes its control socket for status and down; the note goes when it stops, and a note
// whose process is gone is not believed.
func TestRunningFile(t *testing.T) {
	old := RunningFile
	RunningFile = filepath.Join(t.TempDir(), "run", "client.running")
	defer func() { RunningFile = old }()

	if _, ok := FindRunning(); ok {
		t.Fatal("found a daemon with no running file")
	}
	d := &Daemon{cfg: Config{ControlSocket: "/tmp/elsewhere.sock"}, stack: daemon.NewStack(context.Background())}
	d.noteRunning()
	if sock, ok := FindRunning(); !ok || sock != "/tmp/elsewhere.sock" {
		t.Fatalf("FindRunning: %q %v", sock, ok)
	}
	d.stack.Close()
	if _, err := os.Stat(RunningFile); !os.IsNotExist(err) {
		t.Fatalf("the running file outlived the daemon: %v", err)
	}

	// A file left by a daemon that died: its PID is not a live process.
	os.WriteFile(RunningFile, []byte(`{"pid": 2147483646, "control_socket": "/tmp/dead.sock"}`), 0o644)
	if sock, ok := FindRunning(); ok {
		t.Fatalf("believed a dead daemon's note: %q", sock)
	}
	os.WriteFile(RunningFile, []byte(`garbage`), 0o644)
	if _, ok := FindRunning(); ok {
		t.Fatal("believed garbage")
	}
}
