package clientd

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// socketDir returns a fresh directory whose paths fit a Unix socket address (108 bytes).
func socketDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if len(dir) > 70 {
		var err error
		if dir, err = os.MkdirTemp("", "mv"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	return dir
}

// newTestDaemon is a Daemon as Start makes it before anything is opened: enough to serve control.
func newTestDaemon() *Daemon {
	return &Daemon{cfg: DefaultConfig(), down: make(chan struct{}), started: time.Now()}
}

func serveControl(t *testing.T, path string, d *Daemon) *controlServer {
	t.Helper()
	srv, err := listenControl(path, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func dial(t *testing.T, path string) *Control {
	c := Dial(path)
	t.Cleanup(c.Close)
	return c
}

func TestControlStatus(t *testing.T) {
	path := filepath.Join(socketDir(t), "run", "c.sock") // listenControl makes the directory
	d := newTestDaemon()
	serveControl(t, path, d)
	ctl := dial(t, path)

	if _, err := ctl.Status(t.Context()); !errors.Is(err, ErrStarting) {
		t.Fatalf("status before ready: %v, want ErrStarting", err)
	}
	d.ready.Store(true)
	s, err := ctl.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if s.State != "starting" || s.PID != os.Getpid() || s.TUN != d.cfg.TUN.Name || s.MTU != DefaultMTU {
		t.Fatalf("status %+v", s)
	}
	if !s.Started.Equal(d.started) || s.UptimeSec < 0 {
		t.Fatalf("started %v uptime %v, want %v", s.Started, s.UptimeSec, d.started)
	}
}

func TestControlSocketMode(t *testing.T) {
	path := filepath.Join(socketDir(t), "c.sock")
	serveControl(t, path, newTestDaemon())
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o600 {
		t.Fatalf("control socket mode %v, want a socket with 0600", st.Mode())
	}
}

func TestControlSecondDaemonRefused(t *testing.T) {
	path := filepath.Join(socketDir(t), "c.sock")
	d := newTestDaemon()
	d.ready.Store(true)
	serveControl(t, path, d)
	second, err := listenControl(path, newTestDaemon())
	if err == nil {
		second.Close()
		t.Fatal("a second daemon took the control socket")
	}
	if !strings.Contains(err.Error(), "already running") {
		t.Fatalf("error %v, want already running", err)
	}
	// The refused daemon must leave the first one's socket alone.
	if _, err := dial(t, path).Status(t.Context()); err != nil {
		t.Fatalf("the first daemon no longer answers: %v", err)
	}
}

func TestControlStaleSocketReplaced(t *testing.T) {
	dir := socketDir(t)
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false) // as when the daemon was killed
	ln.Close()
	d := newTestDaemon()
	d.ready.Store(true)
	serveControl(t, stale, d)
	if _, err := dial(t, stale).Status(t.Context()); err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	// A file that is not a socket is never deleted: a wrong control_socket must not cost a file.
	plain := filepath.Join(dir, "plain.sock")
	if err := os.WriteFile(plain, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if srv, err := listenControl(plain, newTestDaemon()); err == nil {
		srv.Close()
		t.Fatal("a regular file at the socket path was replaced")
	}
	if b, err := os.ReadFile(plain); err != nil || string(b) != "keep me" {
		t.Fatalf("the file in the way was changed: %q, %v", b, err)
	}
}

func TestControlDown(t *testing.T) {
	path := filepath.Join(socketDir(t), "c.sock")
	d := newTestDaemon()
	srv, err := listenControl(path, d)
	if err != nil {
		t.Fatal(err)
	}
	var closed atomic.Bool
	stopped := make(chan struct{})
	go func() { // the daemon's main loop: stop some time after down is asked for
		defer close(stopped)
		<-d.Down()
		time.Sleep(100 * time.Millisecond)
		closed.Store(true)
		srv.Close()
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := dial(t, path).Down(ctx); err != nil {
		t.Fatal(err)
	}
	if !closed.Load() {
		t.Fatal("Down returned before the daemon stopped")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the control socket is still there: %v", err)
	}
	<-stopped
}

func TestControlDownWaitsForContext(t *testing.T) {
	path := filepath.Join(socketDir(t), "c.sock")
	d := newTestDaemon()
	serveControl(t, path, d)
	ctl := dial(t, path)
	for range 2 { // asking twice is harmless
		ctx, cancel := context.WithTimeout(t.Context(), 150*time.Millisecond)
		err := ctl.Down(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Down with a daemon that does not stop: %v", err)
		}
	}
	select {
	case <-d.Down():
	default:
		t.Fatal("POST /v1/down did not close Down()")
	}
}

func TestControlDownNeedsPOST(t *testing.T) {
	path := filepath.Join(socketDir(t), "c.sock")
	d := newTestDaemon()
	serveControl(t, path, d)
	ctl := dial(t, path)
	resp, err := ctl.hc.Get("http://meshvpn" + pathDown)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET %s: %s", pathDown, resp.Status)
	}
	select {
	case <-d.Down():
		t.Fatal("a GET stopped the daemon")
	default:
	}
}

func TestControlNotRunning(t *testing.T) {
	path := filepath.Join(socketDir(t), "none.sock")
	ctl := dial(t, path)
	if _, err := ctl.Status(t.Context()); !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), path) {
		t.Fatalf("status: %v, want ErrNotRunning naming %s", err, path)
	}
	if err := ctl.Down(t.Context()); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("down: %v, want ErrNotRunning", err)
	}
}
