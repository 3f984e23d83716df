package testnet

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/meshvpn/meshvpn/cmd/internal/clientd"
)

// Download is one fetch of the web server's /big from the client's namespace by curl, hashed as it
// arrives, with a record of when its bytes came: enough to tell a stall from a slow transfer.
type Download struct {
	Sum      [32]byte
	Bytes    int64
	Started  time.Time
	Took     time.Duration
	LastByte time.Time // when the last byte so far arrived
	// LongestStall is the longest time between two reads that brought bytes, and StallFrom when it
	// began.
	LongestStall time.Duration
	StallFrom    time.Time
	// ExitCode and Stderr are curl's (0 and "" when it succeeded).
	ExitCode int
	Stderr   string
}

// progress hashes what curl writes and times it.
type progress struct {
	mu   sync.Mutex
	d    *Download
	hash interface{ Write([]byte) (int, error) }
}

func (p *progress) Write(b []byte) (int, error) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	last := p.d.LastByte
	if last.IsZero() {
		last = p.d.Started
	}
	if gap := now.Sub(last); gap > p.d.LongestStall {
		p.d.LongestStall, p.d.StallFrom = gap, last
	}
	if len(b) == 0 {
		return 0, nil
	}
	p.d.LastByte = now
	p.d.Bytes += int64(len(b))
	return p.hash.Write(b)
}

// DownloadBig fetches /big through the tunnel, the server sending at rate bytes per second (0: as
// fast as it can), within limit.
func (n *Net) DownloadBig(ctx context.Context, rate int, limit time.Duration) (*Download, error) {
	url := "http://" + WebAddr + "/big"
	if rate > 0 {
		url += fmt.Sprintf("?rate=%d", rate)
	}
	d := &Download{Started: time.Now()}
	h := sha256.New()
	var stderr strings.Builder
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", n.cl.name, "curl", "-sS", "--max-time", fmt.Sprint(int(limit.Seconds())), url)
	cmd.Stdout, cmd.Stderr = &progress{d: d, hash: h}, &stderr
	err := cmd.Run()
	d.Took = time.Since(d.Started)
	// A download that timed out stalled from its last byte to its end.
	(&progress{d: d, hash: io.Discard}).Write(nil)
	copy(d.Sum[:], h.Sum(nil))
	d.Stderr = strings.TrimSpace(stderr.String())
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		d.ExitCode = ee.ExitCode()
	}
	if err != nil {
		return d, fmt.Errorf("curl exited %d after %v, %d of %d bytes (longest stall %v from +%v): %s",
			d.ExitCode, d.Took.Round(time.Millisecond), d.Bytes, BigSize, d.LongestStall.Round(time.Millisecond),
			d.StallFrom.Sub(d.Started).Round(time.Millisecond), d.Stderr)
	}
	if d.Sum != n.Web.BigSum() {
		return d, fmt.Errorf("checksum %x…, the server's is %x…", d.Sum[:8], n.Web.BigSum())
	}
	return d, nil
}

// Reroute is what one kill of the circuit's middle during a download did.
type Reroute struct {
	Killed *Node // the middle
	// AlsoKilled are the other nodes killed with it (KillDuringDownload).
	AlsoKilled []*Node
	KilledAt   time.Time
	Download   *Download
	// Record is the client's record of the rebuild (nil if it never rebuilt).
	Record *clientd.Reroute
	// Status is the client's status after the download.
	Status clientd.Status
}

// KillMiddleDuringDownload downloads /big at rate bytes per second and kills the circuit's middle
// (SIGKILL, as a crash) after killAfter; the same TCP connection must finish the download over a
// rebuilt circuit with the checksum intact. The error says what went wrong; the Reroute holds what
// was seen either way.
func (n *Net) KillMiddleDuringDownload(ctx context.Context, rate int, killAfter, limit time.Duration) (*Reroute, error) {
	return n.KillDuringDownload(ctx, rate, killAfter, limit, nil)
}

// KillDuringDownload is KillMiddleDuringDownload that also kills, at the same moment, the nodes
// also returns for the circuit's path (guard first; nil kills the middle alone).
func (n *Net) KillDuringDownload(ctx context.Context, rate int, killAfter, limit time.Duration, also func(path []*Node) []*Node) (*Reroute, error) {
	path, err := n.Path(ctx)
	if err != nil {
		return nil, err
	}
	if len(path) != 3 {
		return nil, fmt.Errorf("a circuit of %d hops", len(path))
	}
	before, err := n.Status(ctx)
	if err != nil {
		return nil, err
	}
	r := &Reroute{Killed: path[1]}
	if also != nil {
		for _, node := range also(path) {
			if node != r.Killed {
				r.AlsoKilled = append(r.AlsoKilled, node)
			}
		}
	}
	type result struct {
		d   *Download
		err error
	}
	done := make(chan result, 1)
	go func() {
		d, err := n.DownloadBig(ctx, rate, limit)
		done <- result{d, err}
	}()
	select {
	case res := <-done:
		r.Download = res.d
		return r, fmt.Errorf("the download ended before the kill: %v", res.err)
	case <-time.After(killAfter):
	}
	r.KilledAt = time.Now()
	for _, node := range append([]*Node{r.Killed}, r.AlsoKilled...) {
		if err := n.Kill(node); err != nil {
			return r, err
		}
	}
	res := <-done
	r.Download = res.d
	// The status is read however the download went: on failure it is the evidence.
	s, serr := n.Status(ctx)
	r.Status = s
	if serr == nil && len(s.Reroutes) > len(before.Reroutes) {
		rec := s.Reroutes[len(s.Reroutes)-1]
		r.Record = &rec
	}
	switch {
	case res.err != nil:
		return r, fmt.Errorf("download across the reroute: %w", res.err)
	case serr != nil:
		return r, fmt.Errorf("client status: %w", serr)
	case r.Record == nil:
		return r, errors.New("the circuit was never rebuilt")
	case !r.Record.SameSession:
		return r, errors.New("the exit did not keep the session")
	}
	return r, nil
}

// Explain describes a reroute for a person: when the client learned of the kill, what it did since,
// and how the download went.
func (n *Net) Explain(r *Reroute) string {
	var b strings.Builder
	if r.Killed != nil {
		fmt.Fprintf(&b, "killed %s (the middle) at %s", r.Killed.Name, r.KilledAt.Format("15:04:05.000"))
		for _, node := range r.AlsoKilled {
			fmt.Fprintf(&b, ", and %s", node.Name)
		}
		b.WriteString("\n")
	}
	if d := r.Download; d != nil {
		fmt.Fprintf(&b, "download: %d of %d bytes in %v, curl exit %d %s; longest stall %v from +%v; last byte at %s\n",
			d.Bytes, BigSize, d.Took.Round(time.Millisecond), d.ExitCode, d.Stderr, d.LongestStall.Round(time.Millisecond),
			d.StallFrom.Sub(d.Started).Round(time.Millisecond), d.LastByte.Format("15:04:05.000"))
	}
	s := r.Status
	fmt.Fprintf(&b, "client: %s, %d circuits built, %d build failures", s.State, s.Builds, s.BuildFailures)
	if s.Directory != nil {
		fmt.Fprintf(&b, ", directory fetched %s (%v before now)", s.Directory.Fetched.Format("15:04:05"), time.Since(s.Directory.Fetched).Round(time.Second))
	}
	b.WriteString("\n")
	for _, h := range s.Circuit.Hops {
		fmt.Fprintf(&b, "  %-6s %s\n", h.Role, n.NameOf(h.Identity))
	}
	for _, rr := range s.Reroutes {
		names := make([]string, len(rr.Path))
		for i, p := range rr.Path {
			names[i] = n.NameOf(p)
		}
		fmt.Fprintf(&b, "  rerouted: died %s (%s), %.0f ms without a circuit, now %s, same session %v\n",
			rr.Died.Format("15:04:05.000"), rr.Why, rr.GapMillis, strings.Join(names, " → "), rr.SameSession)
	}
	for k, v := range s.Drops {
		if v > 0 {
			fmt.Fprintf(&b, "  client dropped %d (%s)\n", v, k)
		}
	}
	for _, node := range n.Relays {
		if node.proc == nil || node.proc.exited() {
			fmt.Fprintf(&b, "  %-3s down\n", node.Name)
			continue
		}
		drops := n.Series(node, "meshvpn_relay_drops_total", "meshvpn_exit_drops_total", "meshvpn_exit_session_events_total")
		rv, _ := n.Rendezvous(node)
		if rv != "" {
			rv = " (registered with " + rv + ")"
		}
		fmt.Fprintf(&b, "  %-3s%s %s\n", node.Name, rv, strings.Join(drops, " "))
	}
	return b.String()
}
