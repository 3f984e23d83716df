package appsplit

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"github.com/meshvpn/meshvpn/network/firewall"
	"github.com/meshvpn/meshvpn/network/internal/netnstest"
	"github.com/meshvpn/meshvpn/network/route"
	"github.com/meshvpn/meshvpn/network/tun"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testMark  = 0x6d760001
	testTable = 0x6d76
)

func TestCgroupRoot(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"36 25 0:32 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n", "/sys/fs/cgroup"},
		{"30 25 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n41 25 0:35 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n", "/sys/fs/cgroup/unified"},
		{"41 25 0:35 / /mnt/cg\\040v2 rw - cgroup2 none rw\n", "/mnt/cg v2"},
		{"30 25 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n", ""},
		{"garbage\n - \n", ""},
	} {
		got, err := cgroupRoot(strings.NewReader(tc.in))
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("%q: %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestProgramsInTheGroupGoAround: a host whose whole internet goes into a TUN device (which nothing
// reads: what enters it is lost), with its own way out beside it. A program started in the group
// reaches a server on that way out, which sees the host's own address (masqueraded: its socket was
// bound by the tunnel's route); a program outside the group does not get there. With the kill switch
// armed, marked packets get out only when it is told the mark.
func TestProgramsInTheGroupGoAround(t *testing.T) {
	netnstest.Need(t)
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("needs curl") // netnstest.Need fails in CI; curl is in make deps
	}
	if _, err := CgroupRoot(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	p := fmt.Sprintf("mvas%d", os.Getpid()%100000)
	host, world := p+"-host", p+"-world"
	for _, ns := range []string{host, world} {
		netnstest.Run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		netnstest.Run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	netnstest.Run(t, "ip", "link", "add", "out0", "netns", host, "type", "veth", "peer", "name", "out1", "netns", world)
	for _, c := range [][]string{
		{host, "addr", "add", "192.0.2.2/24", "dev", "out0"}, {host, "link", "set", "out0", "up"},
		{host, "route", "add", "default", "via", "192.0.2.1"},
		{world, "addr", "add", "192.0.2.1/24", "dev", "out1"}, {world, "addr", "add", "203.0.113.1/32", "dev", "out1"},
		{world, "link", "set", "out1", "up"},
	} {
		netnstest.Run(t, append([]string{"ip", "-n", c[0]}, c[1:]...)...)
	}
	var ln net.Listener
	netnstest.In(t, world, func() {
		var err error
		if ln, err = net.Listen("tcp", "203.0.113.1:8080"); err != nil {
			t.Error(err)
		}
	})
	if ln == nil {
		t.FailNow()
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.RemoteAddr) })}
	go srv.Serve(ln)
	defer srv.Close()

	var (
		dev    tun.Device
		routes *route.Table
		split  *Split
		fd     int
	)
	group := fmt.Sprintf("meshvpn-test-%d", os.Getpid())
	netnstest.In(t, host, func() {
		var err error
		if dev, err = tun.Open(tun.Config{Name: "mvas0", Addr: netip.MustParsePrefix("10.99.0.2/32"), Up: true}); err != nil {
			t.Error(err)
			return
		}
		if routes, err = route.New("mvas0"); err != nil {
			t.Error(err)
			return
		}
		if err = routes.TunnelAll(); err == nil {
			err = routes.MarkOutside(testMark, testTable)
		}
		if err == nil {
			split, err = Start(Config{Cgroup: group, TUN: "mvas0", Mark: testMark})
		}
		if err != nil {
			t.Error(err)
		}
	})
	if dev != nil {
		defer dev.Close()
	}
	if routes != nil {
		defer routes.Close()
	}
	if split == nil {
		t.FailNow()
	}
	defer func() {
		if err := split.Close(); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(split.Dir()); err == nil {
			t.Errorf("the group %s outlived Close", split.Dir())
		}
	}()
	f, err := os.Open("/var/run/netns/" + host)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd = int(f.Fd())

	// fetch runs curl in the host's namespace, in the group or not, and returns what the server saw.
	fetch := func(inGroup bool) string {
		cmd := exec.Command("ip", "netns", "exec", host, "curl", "-sS", "--max-time", "2", "http://203.0.113.1:8080/")
		if inGroup {
			g, err := os.Open(split.Dir())
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(g.Fd())}
		}
		out, err := cmd.Output()
		if err != nil {
			return ""
		}
		host, _, _ := strings.Cut(string(out), ":")
		return host
	}
	if got := fetch(true); got != "192.0.2.2" {
		t.Errorf("a program in the group: the server saw %q, want the host's own 192.0.2.2", got)
	}
	if got := fetch(false); got != "" {
		t.Errorf("a program outside the group got around the tunnel, from %s", got)
	}

	if _, err := firewall.Arm(firewall.Config{TUN: "mvas0", NetNSFd: fd, OutsideMark: testMark}); err != nil {
		t.Fatal(err)
	}
	defer firewall.Disarm(firewall.Options{NetNSFd: fd})
	if got := fetch(true); got != "192.0.2.2" {
		t.Errorf("with the kill switch, a program in the group: the server saw %q", got)
	}
	if got := fetch(false); got != "" {
		t.Errorf("with the kill switch, a program outside the group got around the tunnel, from %s", got)
	}

	// The client dies: its TUN device and routes go, the tables stay. The group's programs still go
	// around (the kill switch lets their mark out), the others are blocked.
	routes.Close()
	dev.Close()
	if got := fetch(true); got != "192.0.2.2" {
		t.Errorf("after the client died, a program in the group: the server saw %q", got)
	}
	if got := fetch(false); got != "" {
		t.Errorf("after the client died, a program outside the group got out, from %s", got)
	}
	if _, err := firewall.Arm(firewall.Config{TUN: "mvas0", NetNSFd: fd}); err != nil {
		t.Fatal(err)
	}
	if got := fetch(true); got != "" {
		t.Errorf("the kill switch, not told the mark, let a program of the group out (the server saw %s)", got)
	}
}
