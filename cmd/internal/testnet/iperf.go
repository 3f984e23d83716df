package testnet

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
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

// Flow is one iperf3 run, interval by interval.
type Flow struct {
	Began       time.Time // when the client was started: interval offsets count from about here
	Intervals   []FlowInterval
	Bytes       int64 // received
	Retransmits int64 // by the sender (the client's kernel when not Reverse)
	Reverse     bool
}

// FlowInterval is one of iperf3's reporting intervals.
type FlowInterval struct {
	Start, End  time.Duration
	Bytes       int64
	Retransmits int64
}

// Gap returns the longest run of consecutive intervals that carried nothing between from and to
// (offsets into the flow), as a duration: how long the flow stood still there.
func (f Flow) Gap(from, to time.Duration) time.Duration {
	var longest, run time.Duration
	for _, iv := range f.Intervals {
		if iv.End < from || iv.Start > to {
			run = 0
			continue
		}
		if iv.Bytes == 0 {
			run += iv.End - iv.Start
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return longest
}

// RetransmitsIn returns the retransmissions reported in intervals between from and to.
func (f Flow) RetransmitsIn(from, to time.Duration) int64 {
	var n int64
	for _, iv := range f.Intervals {
		if iv.End >= from && iv.Start <= to {
			n += iv.Retransmits
		}
	}
	return n
}

// IperfFlow runs iperf3 for seconds from the client's namespace to a server started for it in the web
// namespace, reporting every interval; reverse makes the server send (a download through the exit).
// Like IperfOnce it tries once, after the server listens, so an error is the tunnel's: a connection
// reset ends iperf3 with one.
func (n *Net) IperfFlow(ctx context.Context, seconds int, interval time.Duration, reverse bool) (Flow, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(seconds+30)*time.Second)
	defer cancel()
	stop, err := n.iperfServer(ctx)
	if err != nil {
		return Flow{}, err
	}
	defer stop()
	args := []string{"netns", "exec", n.cl.name, "iperf3", "-c", WebAddr, "-t", strconv.Itoa(seconds),
		"-i", strconv.FormatFloat(interval.Seconds(), 'f', 3, 64), "--connect-timeout", "3000", "-J"}
	if reverse {
		args = append(args, "-R")
	}
	f := Flow{Reverse: reverse, Began: time.Now()}
	out, err := exec.CommandContext(ctx, "ip", args...).Output()
	var res struct {
		Intervals []struct {
			Sum struct {
				Start       float64 `json:"start"`
				End         float64 `json:"end"`
				Bytes       int64   `json:"bytes"`
				Retransmits int64   `json:"retransmits"`
			} `json:"sum"`
		} `json:"intervals"`
		End struct {
			SumSent struct {
				Retransmits int64 `json:"retransmits"`
			} `json:"sum_sent"`
			SumReceived struct {
				Bytes int64 `json:"bytes"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if jerr := json.Unmarshal(out, &res); jerr != nil {
		if err != nil {
			return f, fmt.Errorf("iperf3: %w", err)
		}
		return f, fmt.Errorf("iperf3 output: %w", jerr)
	}
	if res.Error != "" {
		return f, fmt.Errorf("iperf3: %s", res.Error)
	}
	if err != nil {
		return f, fmt.Errorf("iperf3: %w", err)
	}
	secs := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	for _, iv := range res.Intervals {
		f.Intervals = append(f.Intervals, FlowInterval{Start: secs(iv.Sum.Start), End: secs(iv.Sum.End), Bytes: iv.Sum.Bytes, Retransmits: iv.Sum.Retransmits})
	}
	f.Bytes, f.Retransmits = res.End.SumReceived.Bytes, res.End.SumSent.Retransmits
	return f, nil
}

// iperfServer starts a one-shot iperf3 server on WebAddr in the web namespace and waits (up to 5 s)
// until it listens. stop ends it by its PID.
func (n *Net) iperfServer(ctx context.Context) (stop func(), err error) {
	srv := exec.Command("ip", "netns", "exec", n.wb.name, "iperf3", "-s", "-1", "-B", WebAddr)
	if err := srv.Start(); err != nil {
		return nil, err
	}
	stop = func() {
		srv.Process.Kill()
		srv.Wait()
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		out, _ := n.wb.exec("ss", "-Hltn", "sport = :5201")
		if strings.TrimSpace(out) != "" {
			return stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("iperf3: the server does not listen after 5 s")
		}
		select {
		case <-ctx.Done():
			stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
