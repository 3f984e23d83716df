package clientd

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestControlErrorsSpeakPlainly: when the daemon cannot be asked, the error names the control socket
// and what is wrong in words, not the HTTP client's and dialer's (`Get "http://meshvpn/v1/status":
// dial unix …`); no socket, or a dead daemon's, is still ErrNotRunning.
func TestControlErrorsSpeakPlainly(t *testing.T) {
	dir := socketDir(t)
	check := func(what string, err error, want string, notRunning bool) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error", what)
		}
		msg := err.Error()
		for _, internal := range []string{"http://", "dial unix", "Get ", "Post ", "context deadline", "%!"} {
			if strings.Contains(msg, internal) {
				t.Errorf("%s: %q shows Go internals (%q)", what, msg, internal)
			}
		}
		if !strings.Contains(msg, want) {
			t.Errorf("%s: %q does not say %q", what, msg, want)
		}
		if errors.Is(err, ErrNotRunning) != notRunning {
			t.Errorf("%s: %q: ErrNotRunning %v, want %v", what, msg, !notRunning, notRunning)
		}
	}

	none := filepath.Join(dir, "none.sock")
	ctl := dial(t, none)
	_, err := ctl.Status(t.Context())
	check("status, no socket", err, "the daemon is not running (no control socket at "+none+")", true)
	check("down, no socket", ctl.Down(t.Context()), "no control socket at "+none, true)
	_, err = ctl.Exits(t.Context())
	check("exits, no socket", err, "no control socket at "+none, true)
	_, err = ctl.SetExit(t.Context(), SetExitRequest{Exit: "auto"})
	check("set-exit, no socket", err, "no control socket at "+none, true)

	// A socket file a daemon that died left: nothing listens at it.
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	_, err = dial(t, stale).Status(t.Context())
	check("status, stale socket", err, "nothing answers at its control socket "+stale, true)

	// A daemon that hangs up without answering, and one that does not answer at all.
	for _, tc := range []struct {
		name, want string
		serve      func(net.Conn)
	}{
		{"hangs up", "hung up without an answer", func(c net.Conn) { c.Close() }},
		{"silent", "does not answer", func(c net.Conn) { io.Copy(io.Discard, c); c.Close() }},
	} {
		path := filepath.Join(dir, tc.name+".sock")
		ln, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go tc.serve(c)
			}
		}()
		ctl := dial(t, path)
		ctl.hc.Timeout = 200 * time.Millisecond
		_, err = ctl.Status(t.Context())
		check("status, daemon "+tc.name, err, tc.want, false)
	}
	if os.Geteuid() != 0 {
		t.Log("as root, a socket's permissions are not checked: the not-root case is not tested")
	}
}
