package authority

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/core/directory"
)

// HTTP server limits: everything served is public and small, and a slow client must not hold a
// connection for long.
const (
	httpReadHeaderTimeout = 10 * time.Second
	httpWriteTimeout      = 60 * time.Second
	httpIdleTimeout       = 2 * time.Minute
	httpMaxHeaderBytes    = 8 << 10
	httpShutdownTimeout   = 5 * time.Second
)

// urlPrefix returns the path under which the authority with this genesis URL serves: the URL's path
// without its trailing slash, so that clients get directory.PathDirectory at URL + directory.PathDirectory.
func urlPrefix(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("this authority's URL in the genesis file: %w", err)
	}
	prefix := strings.TrimSuffix(u.Path, "/")
	if strings.ContainsAny(prefix, "{}") {
		// Braces would be read as wildcards of the HTTP server's patterns.
		return "", fmt.Errorf("this authority's URL in the genesis file: path %q has a brace", u.Path)
	}
	return prefix, nil
}

type httpServer struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// serveHTTP serves a's directory on ln, or at listen when ln is nil, until close.
func serveHTTP(listen netip.AddrPort, ln net.Listener, a *Authority, log *zap.Logger) (*httpServer, error) {
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", listen.String()); err != nil {
			return nil, fmt.Errorf("http.listen: %w", err)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+a.prefix+directory.PathDirectory, a.serveLatest(func(p *published) []byte { return p.raw }))
	mux.HandleFunc("GET "+a.prefix+directory.PathDirectory+"/{serial}", a.serveSerial)
	mux.HandleFunc("GET "+a.prefix+directory.PathDescriptors, a.serveLatest(func(p *published) []byte { return p.bundle }))
	s := &httpServer{ln: ln, done: make(chan struct{}), srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: httpReadHeaderTimeout,
		WriteTimeout:      httpWriteTimeout,
		IdleTimeout:       httpIdleTimeout,
		MaxHeaderBytes:    httpMaxHeaderBytes,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", zap.Error(err))
		}
	}()
	return s, nil
}

func (s *httpServer) addr() net.Addr { return s.ln.Addr() }

func (s *httpServer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), httpShutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = s.srv.Close()
	}
	<-s.done
	return err
}

// serveLatest serves part of the latest document: its encoding or its bundle. They change once a
// period, so clients revalidate.
func (a *Authority) serveLatest(part func(*published) []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := a.latest.Load()
		if p == nil {
			http.Error(w, "no directory yet", http.StatusNotFound)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		write(w, part(p))
	}
}

func (a *Authority) serveSerial(w http.ResponseWriter, r *http.Request) {
	serial, err := strconv.ParseUint(r.PathValue("serial"), 10, 64)
	if err != nil || serial == 0 {
		http.Error(w, "want a serial: a decimal number from 1", http.StatusBadRequest)
		return
	}
	b, err := a.db.directory(serial)
	switch {
	case err != nil:
		a.log.Warn("reading a directory from the database", zap.Uint64("serial", serial), zap.Error(err))
		http.Error(w, "database error", http.StatusInternalServerError)
	case b == nil:
		http.Error(w, "no such directory (not yet, or no longer kept)", http.StatusNotFound)
	default:
		// A serial names one document for ever.
		w.Header().Set("Cache-Control", "public, max-age=86400, immutable")
		write(w, b)
	}
}

func write(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}
