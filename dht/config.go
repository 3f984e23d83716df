package dht

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// Defaults for the zero fields of Config.
const (
	// DefaultItemLifetime is how long a BEP 44 item stays stored without being put again (BEP 44's
	// two hours). Publishers re-put well before it runs out.
	DefaultItemLifetime = 2 * time.Hour
	// DefaultMaxItems bounds the BEP 44 items a node stores for others (each at most ~1.2 KB).
	DefaultMaxItems = 10000
	// DefaultSendRate is each node's own packet budget per second. Generous, so that many nodes in one
	// process (tests, a testnet) never starve; a public node still cannot be turned into a flood.
	DefaultSendRate rate.Limit = 1000
	// DefaultSendBurst is the burst each node's send limiter allows.
	DefaultSendBurst = 100
	// DefaultQueryTimeout is how long a query waits for its answer (the library's resend delay).
	DefaultQueryTimeout = 2 * time.Second
	// DefaultSaveInterval is how often the routing table is written to Config.NodesFile.
	DefaultSaveInterval = 5 * time.Minute
)

// Config configures a Node. Conn is required; Bootstrap must name starting nodes unless First is set
// or NodesFile holds some. Zero numeric fields take the defaults above.
type Config struct {
	// Conn is the socket the node reads and writes, bound by the caller where the node is meant to be
	// reachable. Once New succeeds the node owns it and closes it on Close. Required: left alone, the
	// library would listen on every interface.
	Conn net.PacketConn
	// Bootstrap lists the nodes to start from. Nothing else is ever contacted to join: the library's
	// default, public BitTorrent routers resolved by DNS, is never used.
	Bootstrap []netip.AddrPort
	// First marks the first node of a network, which has nobody to start from. Without it an empty
	// Bootstrap (and no nodes in NodesFile) is an error, so that a missing list is never silent.
	First bool
	// PublicIP is the address others see us at (from STUN). On a public address it makes our node id
	// valid under BEP 42, without which other nodes drop us. When unset and Conn is bound to a public
	// address, that address is used. Loopback and private addresses are exempt from BEP 42.
	PublicIP netip.Addr
	// NodesFile, if set, keeps the routing table across restarts: loaded by New, written every
	// SaveInterval and on Close.
	NodesFile string
	// SaveInterval is how often the routing table is written to NodesFile.
	SaveInterval time.Duration
	// ItemLifetime is how long BEP 44 items are kept without a fresh put. The library's zero value
	// expires items at once; zero here means DefaultItemLifetime.
	ItemLifetime time.Duration
	// MaxItems bounds the BEP 44 items stored for others; the oldest go first.
	MaxItems int
	// Peers bounds the peers stored for others' announces.
	Peers PeerStoreConfig
	// SendRate and SendBurst set this node's own send limiter (packets per second). The library's
	// default is one 25 packets/s limiter shared by every node in the process.
	SendRate  rate.Limit
	SendBurst int
	// QueryTimeout is how long one query waits for an answer.
	QueryTimeout time.Duration
	// Logger receives the node's and the library's logs. Nil discards them.
	Logger *zap.Logger
}

// validate returns every problem with c at once.
func (c *Config) validate() error {
	var errs []error
	if c.Conn == nil {
		errs = append(errs, errors.New("Conn is required (a socket bound by the caller)"))
	}
	for i, ap := range c.Bootstrap {
		if err := checkNodeAddr(ap); err != nil {
			errs = append(errs, fmt.Errorf("Bootstrap[%d] %v: %w", i, ap, err))
		}
	}
	if len(c.Bootstrap) == 0 && !c.First && c.NodesFile == "" {
		errs = append(errs, errors.New("Bootstrap is empty: name starting nodes, or set First for a network's first node"))
	}
	if c.PublicIP.IsValid() && c.PublicIP.Unmap().IsUnspecified() {
		errs = append(errs, fmt.Errorf("PublicIP %v is unspecified", c.PublicIP))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"SaveInterval", c.SaveInterval}, {"ItemLifetime", c.ItemLifetime}, {"QueryTimeout", c.QueryTimeout}, {"Peers.TTL", c.Peers.TTL}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %v is negative", d.name, d.v))
		}
	}
	for _, v := range []struct {
		name string
		v    int
	}{{"MaxItems", c.MaxItems}, {"SendBurst", c.SendBurst}, {"Peers.MaxPerInfohash", c.Peers.MaxPerInfohash}, {"Peers.MaxTotal", c.Peers.MaxTotal}, {"Peers.MaxReply", c.Peers.MaxReply}} {
		if v.v < 0 {
			errs = append(errs, fmt.Errorf("%s %d is negative", v.name, v.v))
		}
	}
	if c.SendRate < 0 {
		errs = append(errs, fmt.Errorf("SendRate %v is negative", c.SendRate))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("dht config: %w", err)
	}
	return nil
}

// withDefaults returns c with its zero fields set to the defaults.
func (c Config) withDefaults() Config {
	if c.SaveInterval == 0 {
		c.SaveInterval = DefaultSaveInterval
	}
	if c.ItemLifetime == 0 {
		c.ItemLifetime = DefaultItemLifetime
	}
	if c.MaxItems == 0 {
		c.MaxItems = DefaultMaxItems
	}
	if c.SendRate == 0 {
		c.SendRate = DefaultSendRate
	}
	if c.SendBurst == 0 {
		c.SendBurst = DefaultSendBurst
	}
	if c.QueryTimeout == 0 {
		c.QueryTimeout = DefaultQueryTimeout
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	c.Peers = c.Peers.withDefaults()
	return c
}

// checkNodeAddr reports why ap cannot be a DHT node's address.
func checkNodeAddr(ap netip.AddrPort) error {
	switch {
	case !ap.IsValid():
		return errors.New("invalid address")
	case ap.Port() == 0:
		return errors.New("port 0")
	case ap.Addr().Unmap().IsUnspecified():
		return errors.New("unspecified address")
	case ap.Addr().Zone() != "":
		return errors.New("zoned address (DHT addresses carry no zone)")
	}
	return nil
}
