// Package daemontest is test support for the daemons: the checks every daemon's tests make the same
// way. No binary imports it.
package daemontest

import (
	"net"
	"strings"
	"testing"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
)

// TakenPorts holds a loopback UDP port and a loopback TCP port for the rest of the test, as another
// program on the host would, and returns their addresses.
func TakenPorts(t testing.TB) (udp, tcp string) {
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

// PortNamed checks that start, run with a configuration whose setting key (flag flag) is addr, a
// port another program holds, fails with an error that names the setting and its flag, as the
// daemon's command prints it (daemon.ExplainPortTaken over sockets). start returns the daemon's Close
// when it starts after all.
func PortNamed(t testing.TB, key, flag, addr string, sockets []daemon.Socket, start func() (func() error, error)) {
	t.Helper()
	stop, err := start()
	if err == nil {
		stop()
		t.Fatalf("%s %s: started on a taken port", key, addr)
	}
	msg := daemon.ExplainPortTaken(err, sockets...).Error()
	if !strings.Contains(msg, key+" "+addr+":") || !strings.Contains(msg, flag) {
		t.Errorf("%s taken: %q names neither the setting nor its flag", key, msg)
	}
}
