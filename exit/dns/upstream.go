package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Upstream answers the questions the tunnel resolver asks on its clients' behalf.
type Upstream interface {
	Exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error)
}

// DefaultResolvConf is where the exit host's resolver is configured.
const DefaultResolvConf = "/etc/resolv.conf"

// HostResolver asks the exit host's own resolvers: Servers when set, else the nameservers of the
// resolv.conf file at Path, read again when it changes. Each server is tried in turn over UDP; a
// truncated answer is asked again over TCP.
type HostResolver struct {
	Path    string           // default DefaultResolvConf
	Servers []netip.AddrPort // fixed servers instead of Path's

	mu      sync.Mutex
	checked time.Time
	mtime   time.Time
	size    int64
	conf    resolvConf
	err     error
}

type resolvConf struct {
	servers []string // host:port
	search  []string // lower case, fully qualified
}

// reread is how often the resolv.conf file is looked at for changes.
const reread = 5 * time.Second

// config returns the servers and search domains in force.
func (h *HostResolver) config() (resolvConf, error) {
	if len(h.Servers) > 0 {
		var c resolvConf
		for _, s := range h.Servers {
			c.servers = append(c.servers, s.String())
		}
		return c, nil
	}
	path := h.Path
	if path == "" {
		path = DefaultResolvConf
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	if !h.checked.IsZero() && now.Sub(h.checked) < reread {
		return h.conf, h.err
	}
	h.checked = now
	fi, err := os.Stat(path)
	if err != nil {
		h.conf, h.err = resolvConf{}, fmt.Errorf("exit resolver: %w", err)
		return h.conf, h.err
	}
	if h.err == nil && fi.ModTime().Equal(h.mtime) && fi.Size() == h.size && len(h.conf.servers) > 0 {
		return h.conf, nil
	}
	h.mtime, h.size = fi.ModTime(), fi.Size()
	h.conf, h.err = readResolvConf(path)
	return h.conf, h.err
}

func readResolvConf(path string) (resolvConf, error) {
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return resolvConf{}, fmt.Errorf("exit resolver: %w", err)
	}
	var c resolvConf
	for _, s := range cc.Servers {
		c.servers = append(c.servers, net.JoinHostPort(s, cc.Port))
	}
	for _, s := range cc.Search {
		if s = strings.ToLower(dns.Fqdn(s)); s != "." {
			c.search = append(c.search, s)
		}
	}
	if len(c.servers) == 0 {
		return c, fmt.Errorf("exit resolver: no nameserver in %s", path)
	}
	return c, nil
}

// Search returns the exit host's search domains (lower case, fully qualified).
func (h *HostResolver) Search() []string {
	c, _ := h.config()
	return c.search
}

// Exchange asks q of the exit host's resolvers, in turn, until one answers.
func (h *HostResolver) Exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	c, err := h.config()
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, s := range c.servers {
		r, err := exchange(ctx, q, s)
		if err == nil {
			return r, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// exchange asks one server, over TCP again when the UDP answer is truncated.
func exchange(ctx context.Context, q *dns.Msg, server string) (*dns.Msg, error) {
	udp := dns.Client{Net: "udp", UDPSize: dns.DefaultMsgSize, Timeout: 2 * time.Second}
	r, _, err := udp.ExchangeContext(ctx, q, server)
	if err == nil && r.Truncated {
		tcp := dns.Client{Net: "tcp", Timeout: 2 * time.Second}
		r, _, err = tcp.ExchangeContext(ctx, q, server)
	}
	return r, err
}
