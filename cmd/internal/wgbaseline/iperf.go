package wgbaseline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

const iperfPort = "5201"

// iperfServer is a one-test iperf3 server that this package started and ends by its PID.
type iperfServer struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// startIperfServer starts an iperf3 server in ns, bound to addr, and returns once it listens.
func startIperfServer(ctx context.Context, ns *namespace, addr string) (*iperfServer, error) {
	// Not ctx: the server is ended by stop, which also waits for it.
	cmd := ns.command(context.Background(), "iperf3", "-s", "-1", "-B", addr, "-p", iperfPort)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start iperf3 server in %s: %w", ns.name, err)
	}
	srv := &iperfServer{cmd: cmd, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(srv.exited)
	}()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		out, err := run(ctx, "ip", "netns", "exec", ns.name, "ss", "-Hltn", "sport = :"+iperfPort)
		if err == nil && strings.TrimSpace(out) != "" {
			return srv, nil
		}
		select {
		case <-srv.exited:
			return nil, fmt.Errorf("iperf3 server in %s exited before it listened", ns.name)
		case <-ctx.Done():
			srv.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	srv.stop()
	return nil, fmt.Errorf("iperf3 server in %s did not listen on %s:%s within 5 s", ns.name, addr, iperfPort)
}

// stop kills the server, if it has not ended by itself after its one test, and waits for it.
func (srv *iperfServer) stop() {
	// ip netns exec execs iperf3 in its own place, so this PID is iperf3's.
	srv.cmd.Process.Kill()
	<-srv.exited
}

// flow is what the receiving end of one iperf3 test counted.
type flow struct {
	bitsPerSecond float64
	bytes         float64
}

// runIperfClient sends one TCP flow for seconds from ns to the iperf3 server at addr.
func runIperfClient(ctx context.Context, ns *namespace, addr string, seconds int) (flow, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(seconds)*time.Second+15*time.Second)
	defer cancel()
	out, err := ns.command(ctx, "iperf3", "-c", addr, "-p", iperfPort, "-t", strconv.Itoa(seconds), "-J").Output()
	// On failure iperf3 -J still prints JSON, with the reason in its error field.
	f, perr := parseIperf(out)
	if err != nil || perr != nil {
		return flow{}, fmt.Errorf("iperf3 client in %s to %s: %w", ns.name, addr, errors.Join(err, perr))
	}
	return f, nil
}

// parseIperf reads the receiver's totals from iperf3's -J output.
func parseIperf(out []byte) (flow, error) {
	var res struct {
		Error string `json:"error"`
		End   struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
				Bytes         float64 `json:"bytes"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return flow{}, fmt.Errorf("iperf3 output: %w", err)
	}
	if res.Error != "" {
		return flow{}, fmt.Errorf("iperf3: %s", res.Error)
	}
	r := res.End.SumReceived
	if r.Bytes <= 0 {
		return flow{}, errors.New("iperf3 received nothing")
	}
	return flow{bitsPerSecond: r.BitsPerSecond, bytes: r.Bytes}, nil
}
