package testnet

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"time"
)

// Iperf runs an iperf3 server in namespace srvNS bound to addr (ended by its PID afterwards) and an
// iperf3 client in the client's namespace for the given seconds, and returns the bits per second the
// server received.
func (n *Net) Iperf(srvNS, addr string, seconds int) (float64, error) {
	srv := exec.Command("ip", "netns", "exec", srvNS, "iperf3", "-s", "-1", "-B", addr)
	if err := srv.Start(); err != nil {
		return 0, err
	}
	defer func() {
		srv.Process.Kill()
		srv.Wait()
	}()
	var out string
	var err error
	for range 20 { // the server needs a moment to listen
		time.Sleep(100 * time.Millisecond)
		if out, err = n.InClient("iperf3", "-c", addr, "-t", strconv.Itoa(seconds), "-J"); err == nil {
			break
		}
	}
	if err != nil {
		return 0, err
	}
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		return 0, fmt.Errorf("iperf3 output: %w", err)
	}
	return res.End.SumReceived.BitsPerSecond, nil
}

// WebNamespace is the name of the web server's namespace.
func (n *Net) WebNamespace() string { return n.wb.name }
