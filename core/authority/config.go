package authority

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/meshvpn/meshvpn/core/directory"
	"github.com/meshvpn/meshvpn/core/genesis"
	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/dht"
)

// Limits on the probe burst: Circuit.Probe sends at most 256 probes, and a 1200-byte probe fits the
// largest cell of a one-hop circuit.
const (
	MaxBurst     = 256
	MaxBurstSize = 1200
	MinBurstSize = 12
)

// Config is an authority's configuration, in its types. Validate names each setting as the
// meshvpn-discovery configuration file does (crawl.whois_timeout for Crawl.WhoisTimeout).
type Config struct {
	// Genesis is the network's; Identity, which signs the documents, must be one of its authorities.
	Genesis  *genesis.Genesis
	Identity *keys.Identity
	// DataDir holds the database (DBFile) and the DHT node's routing table (NodesFile).
	DataDir  string
	Period   time.Duration
	Validity time.Duration // 0: three periods; at least two
	// DHTListen is the DHT node's address; PublicIP, when valid, the address others reach it at.
	DHTListen  netip.AddrPort
	PublicIP   netip.Addr
	HTTPListen netip.AddrPort // where the directory is served
	// Ports, if set, are the DHT node's socket and the directory's listener at DHTListen and
	// HTTPListen, bound by the caller — which binds them before it makes any key or file, so that a
	// port another program holds stops the start at once. Start owns them from then on.
	Ports *Ports
	Crawl CrawlConfig
	Probe ProbeConfig
	Rules Rules

	// dhtTuning, if set, adjusts the DHT node's configuration (tests: short item lifetimes).
	dhtTuning func(*dht.Config)
}

// Ports are an authority's sockets bound ahead of Start (Bind).
type Ports struct {
	DHT  *net.UDPConn
	HTTP net.Listener
}

// Bind binds the DHT node's socket at dht (of its address family only) and the directory's listener at
// http.
func Bind(dht, http netip.AddrPort) (*Ports, error) {
	conn, err := listenUDP(dht)
	if err != nil {
		return nil, fmt.Errorf("dht.listen: %w", err)
	}
	ln, err := net.Listen("tcp", http.String())
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("http.listen: %w", err)
	}
	return &Ports{DHT: conn, HTTP: ln}, nil
}

// Close closes what Start has not taken.
func (p *Ports) Close() {
	if p.DHT != nil {
		p.DHT.Close()
	}
	if p.HTTP != nil {
		p.HTTP.Close()
	}
}

// CrawlConfig bounds the whois questions and descriptor fetches of a crawl.
type CrawlConfig struct {
	Concurrency  int
	WhoisTimeout time.Duration
	FetchTimeout time.Duration
}

// ProbeConfig is how relays are measured.
type ProbeConfig struct {
	// Source is the address whois questions and probe circuits leave from (unspecified: any).
	Source      netip.Addr
	Timeout     time.Duration
	Concurrency int
	Burst       int // probe cells in a burst, 1 to MaxBurst
	BurstSize   int // bytes of each, MinBurstSize to MaxBurstSize
	History     int // probes kept per relay, 1 to MaxHistory
	// KeepaliveInterval and DeadAfter are the probe links' timers: they should match the relays'
	// (a relay that declares a quiet link dead sooner than this side keepalives it forgets it while
	// this side still sends on it).
	KeepaliveInterval time.Duration
	DeadAfter         time.Duration
}

// validity is how long a document is valid for at least.
func (c *Config) validity() time.Duration {
	if c.Validity == 0 {
		return 3 * c.Period
	}
	return c.Validity
}

// Validate reports every problem with the timings, limits and rules at once. It does not look at
// Genesis and Identity (Start does).
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Period <= 0 {
		bad("period %v: want a positive duration", c.Period)
	}
	// A document must outlive its successor's round: that is served up to a period and half a
	// period (the round's budget) after it, plus the time signing and storing take.
	if v := c.validity(); v < 2*c.Period || v < time.Second || v > directory.MaxValidity {
		bad("validity %v: want at least two periods (2 × %v) and one second, at most %v", v, c.Period, directory.MaxValidity)
	}
	if c.Crawl.Concurrency < 1 || c.Probe.Concurrency < 1 {
		bad("crawl.concurrency %d, probe.concurrency %d: want at least 1", c.Crawl.Concurrency, c.Probe.Concurrency)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"crawl.whois_timeout", c.Crawl.WhoisTimeout}, {"crawl.fetch_timeout", c.Crawl.FetchTimeout}, {"probe.timeout", c.Probe.Timeout}} {
		if d.v <= 0 {
			bad("%s %v: want a positive duration", d.name, d.v)
		}
	}
	if c.Probe.KeepaliveInterval <= 0 || c.Probe.DeadAfter <= c.Probe.KeepaliveInterval {
		bad("probe: want 0 < keepalive_interval (%v) < dead_after (%v)", c.Probe.KeepaliveInterval, c.Probe.DeadAfter)
	}
	if c.Probe.Burst < 1 || c.Probe.Burst > MaxBurst {
		bad("probe.burst %d: want 1 to %d", c.Probe.Burst, MaxBurst)
	}
	if c.Probe.BurstSize < MinBurstSize || c.Probe.BurstSize > MaxBurstSize {
		bad("probe.burst_size %d: want %d to %d bytes", c.Probe.BurstSize, MinBurstSize, MaxBurstSize)
	}
	if c.Probe.History < 1 || c.Probe.History > MaxHistory {
		bad("probe.history %d: want 1 to %d", c.Probe.History, MaxHistory)
	}
	if err := c.Rules.validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Rules.DropFailures > c.Probe.History {
		bad("flags.drop_after_failures %d: more than the probe.history %d kept", c.Rules.DropFailures, c.Probe.History)
	}
	return errors.Join(errs...)
}
