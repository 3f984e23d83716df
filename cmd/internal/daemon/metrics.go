package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// MetricsServer serves /metrics for one registry.
type MetricsServer struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// ServeMetrics listens on addr and serves the collectors at /metrics, with the Go runtime's and the
// process's own metrics beside them. addr must be a loopback address unless public is set: metrics
// tell how busy a node is, which is nobody else's business.
func ServeMetrics(addr string, public bool, log *zap.Logger, cs ...prometheus.Collector) (*MetricsServer, error) {
	ln, err := ListenMetrics(addr, public)
	if err != nil {
		return nil, err
	}
	m, err := ServeMetricsOn(ln, log, cs...)
	if err != nil {
		ln.Close()
	}
	return m, err
}

// ListenMetrics checks and binds a metrics address (see ServeMetrics), for a daemon that takes its
// ports before it makes any file and serves on them later (ServeMetricsOn).
func ListenMetrics(addr string, public bool) (net.Listener, error) {
	if err := CheckMetricsAddr(addr, public); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return ln, nil
}

// ServeMetricsOn serves the collectors at /metrics on ln (see ServeMetrics); the server owns ln
// once this returns without error.
func ServeMetricsOn(ln net.Listener, log *zap.Logger, cs ...prometheus.Collector) (*MetricsServer, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: zap.NewStdLog(log)}))
	m := &MetricsServer{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(m.done)
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics server stopped", zap.Error(err))
		}
	}()
	return m, nil
}

// Addr returns the address the server listens on.
func (m *MetricsServer) Addr() net.Addr { return m.ln.Addr() }

// Close stops the server and waits for it.
func (m *MetricsServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := m.srv.Shutdown(ctx)
	<-m.done
	return err
}

// CheckMetricsAddr reports whether addr is a place metrics may be served: host:port, and a loopback
// host unless public is set.
func CheckMetricsAddr(addr string, public bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("metrics address %q: %w", addr, err)
	}
	if public {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("metrics address %q is not a loopback address (set metrics_public to serve it elsewhere)", addr)
	}
	return nil
}

// Counter and Gauge build one constant metric for a collector's Collect.
func Counter(d *prometheus.Desc, v uint64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

// Gauge builds one constant gauge metric for a collector's Collect.
func Gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}
