package testnet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/meshvpn/meshvpn/network/appsplit"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/meshvpn/meshvpn/cmd/internal/clientd"
)

// KillClient ends the client daemon at once with SIGKILL, as a crash or the OOM killer would: it
// removes nothing (its TUN device goes with the process; its kill switch stays).
func (n *Net) KillClient() error { return n.client.kill() }

// RestartClient runs `meshvpn-client up --foreground` again from the same config file, after the
// daemon died or went down, and returns once it has a circuit.
func (n *Net) RestartClient(ctx context.Context) error {
	if !n.client.exited() {
		return errors.New("restart client: it is running")
	}
	p, err := n.run(n.cl, "client", filepath.Join(n.bin, "meshvpn-client"), "up", "--foreground", "--timeout", clientStartLimit.String(), "--config", n.clientConfig())
	if err != nil {
		return err
	}
	n.client = p
	ctl := clientd.Dial(n.Socket)
	defer ctl.Close()
	return p.waitFor(ctx, clientStartLimit, func() bool {
		s, err := ctl.Status(ctx)
		return err == nil && s.State == "connected"
	})
}

func (n *Net) clientConfig() string { return filepath.Join(n.dir, "client", "client.toml") }

// ClientCommand runs `meshvpn-client ARGS --config CLIENT.TOML` in the client's namespace (status,
// down, …) and returns its output, with its error if it failed.
func (n *Net) ClientCommand(args ...string) (string, error) {
	return n.cl.exec(append(append([]string{n.Bin("meshvpn-client")}, args...), "--config", n.clientConfig())...)
}

// ClientDown runs `meshvpn-client down` (with --keep-blocking if keep) in the client's namespace and,
// if the daemon ran, waits until it has exited.
func (n *Net) ClientDown(keep bool) (string, error) {
	args := []string{"down"}
	if keep {
		args = append(args, "--keep-blocking")
	}
	out, err := n.ClientCommand(args...)
	if err != nil {
		return out, err
	}
	select {
	case <-n.client.done:
	case <-time.After(10 * time.Second):
		return out, errors.New("the client daemon has not exited 10 s after down")
	}
	return out, nil
}

// ClientRuleset returns `nft list ruleset` in the client's namespace.
func (n *Net) ClientRuleset() (string, error) { return n.cl.exec("nft", "list", "ruleset") }

// ClientOuterInterface is the client's way out to the world: its veth on the hub, or to its NAT
// router's LAN.
func (n *Net) ClientOuterInterface() (string, error) {
	out, err := n.cl.exec("ip", "-o", "link", "show", "type", "veth")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			return name, nil
		}
	}
	return "", errors.New("the client's namespace has no veth")
}

// Capture records the packets that leave the client's namespace by its outer interface (tcpdump).
type Capture struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

// CaptureOutgoing starts tcpdump on the client's outer interface for what leaves it (IPv4 and IPv6),
// and returns once it listens.
func (n *Net) CaptureOutgoing(ctx context.Context) (*Capture, error) {
	iface, err := n.ClientOuterInterface()
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("tcpdump"); err != nil {
		return nil, errors.New("tcpdump is not installed (make deps installs it)")
	}
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", n.cl.name, "tcpdump", "-i", iface, "-Q", "out", "-nn", "-q", "-l", "ip or ip6")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &Capture{cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.mu.Lock()
			c.lines = append(c.lines, sc.Text())
			c.mu.Unlock()
		}
	}()
	listening := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on") {
				listening <- nil
			}
		}
		listening <- errors.New("tcpdump ended before it listened")
	}()
	select {
	case err = <-listening:
	case <-time.After(10 * time.Second):
		err = errors.New("tcpdump does not listen after 10 s")
	}
	if err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// Stop ends the capture (tcpdump is this process's child: killed by its PID) and returns what left,
// one line per packet.
func (c *Capture) Stop() []string {
	time.Sleep(200 * time.Millisecond) // tcpdump prints a packet a moment after it saw it
	c.cmd.Process.Kill()
	<-c.done
	c.cmd.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lines
}

// Leaks returns the captured packets that are not the client's encrypted links: anything but UDP to
// a relay or STUN server of the testnet, and IPv6 neighbour discovery on the link (which the kill
// switch lets through, as it does DHCP: without them the host loses its addresses and router; they
// carry no user data and name no destination).
func (n *Net) Leaks(lines []string) []string {
	links := map[netip.Addr]bool{}
	for _, r := range n.Relays {
		links[r.Addr] = true
	}
	if n.Genesis != nil {
		for _, s := range n.Genesis.STUN {
			links[s.Addr()] = true
		}
	}
	var leaks []string
	for _, line := range lines {
		// "12:00:00.000000 IP 192.168.101.2.41641 > 10.240.0.14.7000: UDP, length 92"
		if isNeighbourDiscovery(line) {
			continue
		}
		f := strings.Fields(line)
		if len(f) >= 5 && (f[1] == "IP" || f[1] == "IP6") && f[3] == ">" {
			dst := strings.TrimSuffix(f[4], ":")
			if i := strings.LastIndexByte(dst, '.'); i > 0 {
				if a, err := netip.ParseAddr(dst[:i]); err == nil && links[a] && strings.Contains(line, ": UDP,") {
					continue
				}
			}
		}
		leaks = append(leaks, line)
	}
	return leaks
}

// isNeighbourDiscovery reports whether a captured line is an ICMPv6 router or neighbour solicitation or
// advertisement.
func isNeighbourDiscovery(line string) bool {
	for _, k := range []string{"ICMP6, router solicitation", "ICMP6, neighbor solicitation", "ICMP6, neighbor advertisement"} {
		if strings.Contains(line, k) {
			return true
		}
	}
	return false
}

// LeakAttempts tries to reach the world from the client's namespace around the tunnel: an HTTP GET
// and pings to the web server, DNS over UDP and over TCP (53 and 853) to resolver addresses on the
// internet. It returns what got an answer (nothing should, without a tunnel).
func (n *Net) LeakAttempts(ctx context.Context) []string {
	var got []string
	if out, err := n.InClient("curl", "-sS", "--max-time", "3", "http://"+WebAddr+"/"); err == nil {
		got = append(got, "curl: "+strings.TrimSpace(out))
	}
	if _, err := n.InClient("ping", "-c", "2", "-i", "0.2", "-W", "1", WebAddr); err == nil {
		got = append(got, "ping answered")
	}
	// Resolver addresses on the testnet's internet (whether or not one answers there, no query may
	// leave). The sockets are made on a thread inside the client's namespace (a net.Resolver would
	// dial from goroutines on other threads, outside it).
	q, err := dnsQuery("web.meshvpn.test.")
	if err != nil {
		return append(got, "DNS query: "+err.Error())
	}
	for _, resolver := range []string{WebAddr, "10.240.0.2"} {
		n.cl.do(func() error {
			c, err := net.Dial("udp", net.JoinHostPort(resolver, "53"))
			if err != nil {
				return nil // refused at once by the block
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(time.Second))
			if _, err := c.Write(q); err == nil {
				if _, err := c.Read(make([]byte, 512)); err == nil {
					got = append(got, "DNS answered by "+resolver)
				}
			}
			return nil
		})
		n.cl.do(func() error {
			c, err := net.DialTimeout("tcp", net.JoinHostPort(resolver, "853"), time.Second)
			if err == nil {
				c.Close()
				got = append(got, "DNS over TLS connected to "+resolver)
			}
			return nil
		})
	}
	return got
}

// dnsQuery builds a DNS query for name's A record.
func dnsQuery(name string) ([]byte, error) {
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 0x6d76, RecursionDesired: true})
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}); err != nil {
		return nil, err
	}
	return b.Finish()
}

// KillSwitchRun is what LeakWhenKilled saw.
type KillSwitchRun struct {
	Captured []string // every packet that left by the outer interface after the kill
	Leaks    []string // those that were not the client's links
	Answered []string // leak attempts that got an answer
	Download *Download
}

// LeakWhenKilled kills the client daemon (SIGKILL) during a download and then, with the daemon dead,
// tries every way out (LeakAttempts) while tcpdump watches the client's outer interface.
func (n *Net) LeakWhenKilled(ctx context.Context) (*KillSwitchRun, error) {
	r := &KillSwitchRun{}
	dl := make(chan *Download, 1)
	go func() {
		d, _ := n.DownloadBig(ctx, 1_000_000, 5*time.Second)
		dl <- d
	}()
	time.Sleep(1500 * time.Millisecond)
	if err := n.KillClient(); err != nil {
		return r, fmt.Errorf("kill the client: %w", err)
	}
	c, err := n.CaptureOutgoing(ctx)
	if err != nil {
		return r, err
	}
	r.Answered = n.LeakAttempts(ctx)
	r.Download = <-dl // curl retransmits into the block until its time is up
	r.Captured = c.Stop()
	r.Leaks = n.Leaks(r.Captured)
	return r, nil
}

// excludeGroup is the client's split group (exclude_cgroup): this run's own. The client runs under `ip
// netns exec`, which mounts a /sys of its own without the cgroup hierarchy: the path reaches it
// through this process's root, which outlives the client.
func (n *Net) excludeGroup() string {
	root, err := appsplit.CgroupRoot()
	if err != nil {
		return n.Prefix + "-exclude" // no cgroup v2 here: the client goes without
	}
	return filepath.Join(fmt.Sprintf("/proc/%d/root", os.Getpid()), root, n.Prefix+"-exclude")
}
