package testnet

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Metric reads one series from a node's Prometheus endpoint, e.g.
// `meshvpn_relay_cells_total{direction="in"}`. The endpoint is on the node's own loopback, so the
// connection is made from inside its namespace.
func (n *Net) Metric(node *Node, series string) (float64, error) {
	var v float64
	found := false
	err := n.scrape(node, func(line string) bool {
		if s, ok := strings.CutPrefix(line, series+" "); ok {
			var err error
			v, err = strconv.ParseFloat(s, 64)
			found = err == nil
			return false
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	if !found {
		return 0, fmt.Errorf("metrics of %s: no %s", node.Name, series)
	}
	return v, nil
}

// Series returns a node's series whose names begin with one of the prefixes and whose value is not
// zero, as "name{labels}=value" (for failure reports; nil if the node does not answer).
func (n *Net) Series(node *Node, prefixes ...string) []string {
	var out []string
	n.scrape(node, func(line string) bool {
		for _, p := range prefixes {
			if strings.HasPrefix(line, p) {
				if i := strings.LastIndexByte(line, ' '); i > 0 && line[i+1:] != "0" {
					out = append(out, strings.TrimPrefix(line[:i], "meshvpn_")+"="+line[i+1:])
				}
			}
		}
		return true
	})
	return out
}

// scrape reads a node's metrics line by line until line returns false.
func (n *Net) scrape(node *Node, line func(string) bool) error {
	return scrapeAt(node.ns, metricsAddr, node.Name, line)
}

// ClientMetric reads one series from the client daemon's Prometheus endpoint, as Metric does a
// node's.
func (n *Net) ClientMetric(series string) (float64, error) {
	var v float64
	found := false
	err := scrapeAt(n.cl, clientMetricsAddr, "client", func(line string) bool {
		if s, ok := strings.CutPrefix(line, series+" "); ok {
			var err error
			v, err = strconv.ParseFloat(s, 64)
			found = err == nil
			return false
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	if !found {
		return 0, fmt.Errorf("metrics of the client: no %s", series)
	}
	return v, nil
}

// scrapeAt reads the metrics served at addr inside ns line by line until line returns false.
func scrapeAt(ns *namespace, addr, name string, line func(string) bool) error {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
			err = ns.do(func() (err error) {
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("http://" + addr + "/metrics")
	if err != nil {
		return fmt.Errorf("metrics of %s: %w", name, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 4<<20))
	for sc.Scan() && line(sc.Text()) {
	}
	return sc.Err()
}

// MustMetric is Metric for reports, where a missing figure reads as -1.
func (n *Net) MustMetric(node *Node, series string) float64 {
	v, err := n.Metric(node, series)
	if err != nil {
		return -1
	}
	return v
}
