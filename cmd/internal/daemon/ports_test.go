package daemon

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// taken binds a UDP and a TCP port on loopback and returns their addresses.
func taken(t *testing.T) (udp, tcp string) {
	t.Helper()
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uc.Close() })
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return uc.LocalAddr().String(), ln.Addr().String()
}

func TestExplainPortTaken(t *testing.T) {
	udp, tcp := taken(t)
	sockets := []Socket{{"dht.listen", "udp", udp}, {"metrics", "tcp", tcp}, {"stun.listen", "udp", "0.0.0.0:3478"}}
	_, uerr := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(mustAddrPort(t, udp)))
	_, terr := net.Listen("tcp", tcp)
	for _, tc := range []struct {
		err  error
		want []string
	}{
		{uerr, []string{"dht.listen " + udp, "UDP port " + port(udp) + " is taken", "--dht-listen", "docs/operators.md"}},
		{terr, []string{"metrics " + tcp, "TCP port " + port(tcp) + " is taken", "--metrics"}},
	} {
		err := ExplainPortTaken(tc.err, sockets...)
		var pt *PortTakenError
		if !errors.As(err, &pt) {
			t.Fatalf("%v: not a PortTakenError: %v", tc.err, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q does not say %q", err, w)
			}
		}
	}
	// A port no socket names still gets the advice; other errors pass as they are.
	if err := ExplainPortTaken(uerr); err == nil || !strings.Contains(err.Error(), "taken by another program") {
		t.Errorf("no socket named: %v", err)
	}
	other := errors.New("something else")
	if ExplainPortTaken(other, sockets...) != other || ExplainPortTaken(nil, sockets...) != nil {
		t.Error("an error that is no taken port changed")
	}
}

// portConfig is a configuration that names its sockets.
type portConfig struct{ addr string }

func (c portConfig) Sockets() []Socket { return []Socket{{"listen", "udp", c.addr}} }

// TestCommandNamesTheTakenPort: a daemon whose port is taken says which setting and flag set it.
func TestCommandNamesTheTakenPort(t *testing.T) {
	udp, _ := taken(t)
	c := Command[portConfig]{
		Name: "meshvpn-test",
		Load: func([]string, io.Writer) (portConfig, error) { return portConfig{udp}, nil },
		Run: func(c portConfig) error {
			conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(mustAddrPort(t, c.addr)))
			if err == nil {
				conn.Close()
			}
			return err
		},
	}
	var out, errOut bytes.Buffer
	if code := c.Main(nil, &out, &errOut); code != 1 {
		t.Fatalf("exit %d", code)
	}
	if msg := errOut.String(); !strings.Contains(msg, "listen "+udp) || !strings.Contains(msg, "--listen") {
		t.Fatalf("the error does not name the setting and its flag: %s", msg)
	}
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func mustAddrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}
