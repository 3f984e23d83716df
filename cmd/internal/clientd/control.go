package clientd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// The control protocol is HTTP over the daemon's Unix socket: GET /v1/status answers a Status in
// JSON, POST /v1/down asks the daemon to stop. The socket is the daemon owner's alone (0600).
const (
	pathStatus = "/v1/status"
	pathDown   = "/v1/down"
)

type controlServer struct {
	path string
	srv  *http.Server
	done chan struct{}
}

// listenControl serves the control socket at path. A live daemon already answering there is an
// error; a stale socket file (its daemon died) is replaced.
func listenControl(path string, d *Daemon) (*controlServer, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("a meshvpn-client daemon is already running (control socket %s)", path)
	}
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("control socket %s: a file that is not a socket is in the way", path)
		}
		os.Remove(path) // a dead daemon's socket
	}
	// The socket is made with the mode the umask leaves; a umask of 0177 makes it 0600 from the
	// start, with no moment in which others may connect.
	old := unix.Umask(0o177)
	ln, err := net.Listen("unix", path)
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+pathStatus, func(w http.ResponseWriter, _ *http.Request) {
		if !d.ready.Load() {
			http.Error(w, "starting: building the first circuit", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(d.Status())
	})
	mux.HandleFunc("POST "+pathDown, func(w http.ResponseWriter, _ *http.Request) {
		d.requestDown()
		w.WriteHeader(http.StatusAccepted)
	})
	c := &controlServer{path: path, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		c.srv.Serve(ln)
	}()
	return c, nil
}

func (c *controlServer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c.srv.Shutdown(ctx)
	<-c.done
	os.Remove(c.path)
}

// Control talks to a running daemon over its control socket.
type Control struct {
	path string
	hc   *http.Client
}

// ErrNotRunning is returned (wrapped) when no daemon answers on the control socket.
var ErrNotRunning = errors.New("meshvpn-client is not running")

// ErrStarting is returned while the daemon builds its first circuit.
var ErrStarting = errors.New("meshvpn-client is starting")

// Dial returns a Control for the daemon at the socket path.
func Dial(path string) *Control {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &Control{path: path, hc: &http.Client{Transport: tr, Timeout: 5 * time.Second}}
}

// Status asks the daemon for its status.
func (c *Control) Status(ctx context.Context) (Status, error) {
	var s Status
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://meshvpn"+pathStatus, nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		return s, fmt.Errorf("%w (%s: %v)", ErrNotRunning, c.path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		return s, ErrStarting
	}
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("control socket: %s", resp.Status)
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 1<<20)).Decode(&s); err != nil {
		return s, fmt.Errorf("control socket: %w", err)
	}
	return s, nil
}

// Down asks the daemon to stop and waits until it has (its socket is gone), or ctx ends.
func (c *Control) Down(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://meshvpn"+pathDown, nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%w (%s: %v)", ErrNotRunning, c.path, err)
	}
	resp.Body.Close()
	for {
		if _, err := os.Stat(c.path); os.IsNotExist(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the daemon has not stopped: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Close releases the client's idle connections.
func (c *Control) Close() { c.hc.CloseIdleConnections() }
