package testnet

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/meshvpn/meshvpn/core/netdir"
)

// What a long-running check (meshvpn-bootstrap soak-long) reads from a testnet besides its status.

// Proc is one running MeshVPN process of the testnet.
type Proc struct {
	Name string // client, r1…, x1…, a1…, boot1…
	PID  int
}

// Processes lists the testnet's running processes by name: the client, the relays and exits, the
// authorities and the bootstrap nodes. A restarted node has a new PID. It must not run concurrently
// with Kill or Restart, which replace a node's process.
func (n *Net) Processes() []Proc {
	var ps []Proc
	add := func(p *process) {
		if p != nil && !p.exited() {
			ps = append(ps, Proc{Name: p.name, PID: p.cmd.Process.Pid})
		}
	}
	add(n.client)
	for _, node := range n.Relays {
		add(node.proc)
	}
	for _, a := range n.Authorities {
		add(a.proc)
	}
	for _, p := range n.boot {
		add(p)
	}
	return ps
}

// RSS returns a process's resident memory in bytes (VmRSS of /proc/PID/status).
func RSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			fs := strings.Fields(v)
			if len(fs) != 2 || fs[1] != "kB" {
				return 0, fmt.Errorf("pid %d: VmRSS %q", pid, v)
			}
			kb, err := strconv.ParseInt(fs[0], 10, 64)
			return kb << 10, err
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("pid %d: no VmRSS (a zombie?)", pid)
}

var refreshRe = regexp.MustCompile(`(?m)^directory_refresh\s*=\s*"([^"]+)"`)

// DirectoryRefresh returns the client's directory_refresh, as its config file says.
func (n *Net) DirectoryRefresh() (time.Duration, error) {
	b, err := os.ReadFile(filepath.Join(n.dir, "client", "client.toml"))
	if err != nil {
		return 0, err
	}
	m := refreshRe.FindSubmatch(b)
	if m == nil {
		return 0, fmt.Errorf("the client's config has no directory_refresh")
	}
	return time.ParseDuration(string(m[1]))
}

// ClientHTTP returns an HTTP client whose connections are made in the client's namespace (so through
// the tunnel), a new connection for every request.
func (n *Net) ClientHTTP(timeout time.Duration) *http.Client {
	ns := n.cl
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
			err = ns.do(func() (err error) {
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}}
}

// IperfOnce is one iperf3 run of the given seconds from the client's namespace to an iperf3 server
// started for it in the web namespace (ended by its PID afterwards), bounded in time: the server must
// listen within 5 s, the connection is given up after 3 s, the whole run after seconds+30 s. It
// returns the bits per second the server received. The client tries once, after the server listens:
// a failure is the tunnel's, not a race with the server's start.
func (n *Net) IperfOnce(ctx context.Context, seconds int) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(seconds+30)*time.Second)
	defer cancel()
	stop, err := n.iperfServer(ctx)
	if err != nil {
		return 0, err
	}
	defer stop()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", n.cl.name, "iperf3", "-c", WebAddr,
		"-t", strconv.Itoa(seconds), "--connect-timeout", "3000", "-J")
	out, err := cmd.Output()
	var res struct {
		Error string `json:"error"`
		End   struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if jerr := json.Unmarshal(out, &res); jerr != nil {
		if err != nil {
			return 0, fmt.Errorf("iperf3: %w", err)
		}
		return 0, fmt.Errorf("iperf3 output: %w", jerr)
	}
	if res.Error != "" {
		return 0, fmt.Errorf("iperf3: %s", res.Error)
	}
	if err != nil {
		return 0, fmt.Errorf("iperf3: %w", err)
	}
	return res.End.SumReceived.BitsPerSecond, nil
}

// Flags fetches the directory once as a client does (from every authority, a threshold agreeing),
// from the first authority's namespace, and returns each listed relay's flags ("Running|Guard|…") by
// testnet name.
func (n *Net) Flags(ctx context.Context) (map[string]string, error) {
	if n.Genesis == nil || len(n.Authorities) == 0 {
		return nil, fmt.Errorf("no authorities: the testnet runs from a relay list")
	}
	f, err := netdir.NewFetcher(n.Genesis, "", nil)
	if err != nil {
		return nil, err
	}
	hc := nsHTTPClient(n.Authorities[0].ns, 5*time.Second)
	defer hc.CloseIdleConnections()
	f.SetHTTPClient(hc)
	net, err := f.Fetch(ctx, time.Now())
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, net.Len())
	for _, r := range net.Relays() {
		out[n.NameOf(r.Identity.String())] = r.Flags.String()
	}
	return out, nil
}
