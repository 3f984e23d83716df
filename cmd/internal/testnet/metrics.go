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
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
			err = node.ns.do(func() (err error) {
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		return 0, fmt.Errorf("metrics of %s: %w", node.Name, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 4<<20))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("metrics of %s: no %s", node.Name, series)
}

// MustMetric is Metric for reports, where a missing figure reads as -1.
func (n *Net) MustMetric(node *Node, series string) float64 {
	v, err := n.Metric(node, series)
	if err != nil {
		return -1
	}
	return v
}
