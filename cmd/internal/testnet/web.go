package testnet

import (
	"crypto/sha256"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// WebAltPort is a second port the web server answers on at WebAddr, for exit policies that tell ports
// apart.
const WebAltPort = "8080"

// BigSize is the size of the web server's /big file.
const BigSize = 10 << 20

// WebServer is the testnet's stand-in for the internet: an HTTP server that remembers who it saw.
type WebServer struct {
	srv      *http.Server
	big      []byte
	mu       sync.Mutex
	lastSeen string
	seen     map[string]bool // every source host
}

// BigSum is the SHA-256 of /big, to compare a download against.
func (w *WebServer) BigSum() [32]byte { return sha256.Sum256(w.big) }

// Seen returns every source address (without port) the server saw.
func (w *WebServer) Seen() map[string]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]bool, len(w.seen))
	for k := range w.seen {
		out[k] = true
	}
	return out
}

func (w *WebServer) saw(r *http.Request) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lastSeen = r.RemoteAddr
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		w.seen[host] = true
	}
}

// LastSeen is the source address of the last request, as the server saw it.
func (w *WebServer) LastSeen() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastSeen
}

func startWeb(ns *namespace) (*WebServer, error) {
	w := &WebServer{big: make([]byte, BigSize), seen: map[string]bool{}}
	for i := range w.big {
		w.big[i] = byte(i*7 + i>>10)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(rw http.ResponseWriter, r *http.Request) {
		w.saw(r)
		fmt.Fprintf(rw, "Hello from the internet. You came from %s.\n", r.RemoteAddr)
	})
	mux.HandleFunc("/big", func(rw http.ResponseWriter, r *http.Request) {
		w.saw(r)
		rw.Header().Set("Content-Length", fmt.Sprint(len(w.big)))
		// ?rate=BYTES_PER_SECOND paces the sender itself, so that the bytes really are still to cross
		// the tunnel later (a client-side limit lets TCP buffers swallow the file in the first second).
		rate, _ := strconv.Atoi(r.URL.Query().Get("rate"))
		if rate <= 0 {
			rw.Write(w.big)
			return
		}
		const chunk = 32 << 10
		start := time.Now()
		for off := 0; off < len(w.big); off += chunk {
			if _, err := rw.Write(w.big[off:min(off+chunk, len(w.big))]); err != nil {
				return
			}
			if f, ok := rw.(http.Flusher); ok {
				f.Flush()
			}
			due := start.Add(time.Duration(float64(off+chunk) / float64(rate) * float64(time.Second)))
			time.Sleep(time.Until(due))
		}
	})
	mux.HandleFunc("/stream", func(rw http.ResponseWriter, r *http.Request) {
		w.saw(r)
		serveStream(rw, r) // stream.go
	})
	var lns []net.Listener
	if err := ns.do(func() error {
		for _, a := range []string{WebAddr + ":80", WebAddr + ":" + WebAltPort, WebAddr2 + ":80", "[" + WebAddr6 + "]:80"} {
			ln, err := net.Listen("tcp", a)
			if err != nil {
				for _, l := range lns {
					l.Close()
				}
				return err
			}
			lns = append(lns, ln)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	w.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	for _, ln := range lns {
		go w.srv.Serve(ln)
	}
	return w, nil
}

// Close stops the server.
func (w *WebServer) Close() { w.srv.Close() }
