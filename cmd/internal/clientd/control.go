package clientd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The control protocol is HTTP over the daemon's Unix socket: GET /v1/status answers a Status in
// JSON, POST /v1/down asks the daemon to stop, GET /v1/exits answers an ExitList, POST /v1/exit
// takes a SetExitRequest and answers the ExitMove (400 with the reason for a request that cannot be
// followed, 502 when no circuit to the new exit could be built). The socket is the daemon owner's
// alone (0600).
const (
	pathStatus = "/v1/status"
	pathDown   = "/v1/down"
	pathExits  = "/v1/exits"
	pathExit   = "/v1/exit"
)

// maxSetExitRequest bounds a set-exit request's body.
const maxSetExitRequest = 4 << 10

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
	mux.HandleFunc("GET "+pathExits, func(w http.ResponseWriter, _ *http.Request) {
		if !d.ready.Load() {
			http.Error(w, "starting: building the first circuit", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(d.Exits())
	})
	mux.HandleFunc("GET "+pathDirectory, func(w http.ResponseWriter, _ *http.Request) { serveDirectory(d, w) })
	mux.HandleFunc("POST "+pathExit, func(w http.ResponseWriter, r *http.Request) {
		var req SetExitRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSetExitRequest))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			http.Error(w, fmt.Sprintf("set-exit: bad request: %v", err), http.StatusBadRequest)
			return
		}
		mv, err := d.SetExit(r.Context(), req)
		var in *InputError
		switch {
		case errors.Is(err, ErrStarting):
			http.Error(w, "starting: building the first circuit", http.StatusServiceUnavailable)
		case errors.As(err, &in):
			http.Error(w, err.Error(), http.StatusBadRequest)
		case err != nil:
			http.Error(w, err.Error(), http.StatusBadGateway)
		default:
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(mv)
		}
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
var ErrNotRunning = errors.New("the daemon is not running")

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
		return s, c.unreachable(err)
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
		return c.unreachable(err)
	}
	resp.Body.Close()
	for {
		if _, err := os.Stat(c.path); os.IsNotExist(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return &plainError{fmt.Sprintf("the daemon has not stopped yet (its control socket %s is still there): its log may say why", c.path), ctx.Err()}
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Exits asks the daemon for the exits it knows.
func (c *Control) Exits(ctx context.Context) (ExitList, error) {
	var l ExitList
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://meshvpn"+pathExits, nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		return l, c.unreachable(err)
	}
	defer resp.Body.Close()
	if err := answerError(resp); err != nil {
		return l, err
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 16<<20)).Decode(&l); err != nil {
		return l, fmt.Errorf("control socket: %w", err)
	}
	return l, nil
}

// SetExit asks the daemon to move to another exit, and waits (up to ctx) until it has or has given up.
// An error the daemon gives is returned as its text; one for a request it cannot follow is an
// *InputError.
func (c *Control) SetExit(ctx context.Context, r SetExitRequest) (ExitMove, error) {
	var mv ExitMove
	body, err := json.Marshal(r)
	if err != nil {
		return mv, err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://meshvpn"+pathExit, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	hc := *c.hc
	hc.Timeout = 0 // a set-exit builds circuits: ctx bounds it
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return mv, &plainError{"set-exit: the daemon did not answer in time (the move may still finish: see status)", ctx.Err()}
		}
		return mv, c.unreachable(err)
	}
	defer resp.Body.Close()
	if err := answerError(resp); err != nil {
		return mv, err
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 1<<20)).Decode(&mv); err != nil {
		return mv, fmt.Errorf("control socket: %w", err)
	}
	return mv, nil
}

// answerError turns a control answer other than 200 into an error carrying the daemon's text.
func answerError(resp *http.Response) error {
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	if resp.StatusCode == http.StatusServiceUnavailable {
		return ErrStarting
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	msg := strings.TrimSpace(string(b))
	if msg == "" {
		msg = resp.Status
	}
	if resp.StatusCode == http.StatusBadRequest {
		return &InputError{errors.New(msg)}
	}
	return errors.New(msg)
}

// Close releases the client's idle connections.
func (c *Control) Close() { c.hc.CloseIdleConnections() }
