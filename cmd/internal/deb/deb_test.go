package deb

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/cmd/internal/testnet"
)

// repo is the repository's root, from this package's folder.
const repo = "../../.."

// pkg is what each package must hold: its program, its units and its conffile.
type pkg struct {
	name   string
	units  []string
	config string // under /etc/meshvpn; "" for none
}

var pkgs = []pkg{
	{"meshvpn-client", []string{"meshvpn-client.service"}, "client.toml"},
	{"meshvpn-exit-node", []string{"meshvpn-exit-node.service", "meshvpn-relay.service"}, "exit-node.toml"},
	{"meshvpn-dht-bootstrap", []string{"meshvpn-dht-bootstrap.service"}, "dht-bootstrap.toml"},
	{"meshvpn-discovery", []string{"meshvpn-discovery.service"}, "discovery.toml"},
	{"meshvpn-bootstrap", nil, ""},
}

// need fails the test (in CI, which must run it) or skips it (elsewhere) when a program it uses is
// missing; `make deps` installs them.
func need(t *testing.T, programs ...string) {
	t.Helper()
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is missing (make deps installs it), and CI must run this test", p)
			}
			t.Skipf("%s is missing (make deps installs it)", p)
		}
	}
}

var (
	buildOnce sync.Once
	built     struct {
		dist, root string // the packages, and a scratch root they are all unpacked into
		debs       map[string]string
		err        error
	}
	builtDir string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if builtDir != "" {
		os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

// packages builds the packages with `make package` once for every test of the run, and unpacks them
// all into one scratch root (dpkg-deb -x, as dpkg would install their files).
func packages(t *testing.T) (dist, root string, debs map[string]string) {
	t.Helper()
	need(t, "make", "dpkg-deb")
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "meshvpn-deb-")
		if err != nil {
			built.err = err
			return
		}
		builtDir = dir
		built.dist, built.root = filepath.Join(dir, "dist"), filepath.Join(dir, "root")
		start := time.Now()
		cmd := exec.Command("make", "-s", "-C", repo, "package", "DIST="+built.dist, "VERSION=0.1.0")
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = &buildError{err, out}
			return
		}
		t.Logf("make package: %v", time.Since(start).Round(time.Millisecond))
		built.debs = map[string]string{}
		for _, p := range pkgs {
			matches, _ := filepath.Glob(filepath.Join(built.dist, p.name+"_*.deb"))
			if len(matches) != 1 {
				built.err = &buildError{os.ErrNotExist, []byte("no package " + p.name)}
				return
			}
			built.debs[p.name] = matches[0]
			if out, err := exec.Command("dpkg-deb", "-x", matches[0], built.root).CombinedOutput(); err != nil {
				built.err = &buildError{err, out}
				return
			}
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.dist, built.root, built.debs
}

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + string(e.out) }

// TestLintian: every package passes lintian, warnings included; the tags the packages override are
// listed with their reasons in packaging/*.lintian-overrides, which the packages carry.
func TestLintian(t *testing.T) {
	need(t, "lintian")
	_, _, debs := packages(t)
	args := []string{"--fail-on", "error,warning", "--display-info"}
	for _, p := range pkgs {
		args = append(args, debs[p.name])
	}
	start := time.Now()
	out, err := exec.Command("lintian", args...).CombinedOutput()
	t.Logf("lintian: %v", time.Since(start).Round(time.Millisecond))
	var tags []string
	for _, line := range strings.Split(string(out), "\n") {
		if line != "" && !strings.Contains(line, "running with root privileges") {
			tags = append(tags, line)
		}
	}
	if err != nil || len(tags) > 0 {
		t.Fatalf("lintian (%v):\n%s", err, strings.Join(tags, "\n"))
	}
}

// unit is a unit file's key=value lines, by key.
type unit map[string][]string

func readUnit(t *testing.T, path string) unit {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		u[k] = append(u[k], v)
	}
	return u
}

func (u unit) get(k string) string {
	if len(u[k]) == 0 {
		return "(unset)"
	}
	return strings.Join(u[k], " | ")
}

// TestUnitsVerify runs systemd-analyze verify on every unit the packages install, with ExecStart
// pointing at the program unpacked from its package. Any word it says about a unit (an unknown key,
// a bad value, a program not found) fails the test: it exits 0 for those.
func TestUnitsVerify(t *testing.T) {
	need(t, "systemd-analyze")
	_, root, _ := packages(t)
	dir := t.TempDir()
	var paths []string
	for _, p := range pkgs {
		for _, u := range p.units {
			b, err := os.ReadFile(filepath.Join(root, "lib/systemd/system", u))
			if err != nil {
				t.Fatalf("package %s: %v", p.name, err)
			}
			path := filepath.Join(dir, u)
			if err := os.WriteFile(path, bytes.ReplaceAll(b, []byte("=/usr/bin/"), []byte("="+root+"/usr/bin/")), 0o644); err != nil {
				t.Fatal(err)
			}
			paths = append(paths, path)
		}
	}
	out, err := exec.Command("systemd-analyze", append([]string{"verify", "--man=no"}, paths...)...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify (%v):\n%s", err, out)
	}
}

// sysusers returns the users the packages' sysusers.d files create, by package.
func sysusers(t *testing.T, root string) map[string]string {
	t.Helper()
	users := map[string]string{}
	files, _ := filepath.Glob(filepath.Join(root, "usr/lib/sysusers.d/*.conf"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if fields := strings.Fields(line); len(fields) >= 2 && fields[0] == "u" {
				users[fields[1]] = strings.TrimSuffix(filepath.Base(f), ".conf")
			}
		}
	}
	// systemd-sysusers reads them as it would on the host the packages are installed on.
	if _, err := exec.LookPath("systemd-sysusers"); err == nil {
		out, err := exec.Command("systemd-sysusers", "--root="+root, "--dry-run").CombinedOutput()
		if err != nil {
			t.Fatalf("systemd-sysusers --dry-run: %v\n%s", err, out)
		}
		for user := range users {
			if !strings.Contains(string(out), "Creating user '"+user+"'") {
				t.Errorf("systemd-sysusers would not create %s:\n%s", user, out)
			}
		}
	}
	return users
}

// dataDir returns the data_dir (or state_dir) a conffile sets.
func dataDir(t *testing.T, conffile string) string {
	t.Helper()
	b, err := os.ReadFile(conffile)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^(?:data_dir|state_dir) = "([^"]+)"`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s sets no data_dir", conffile)
	}
	return string(m[1])
}

// TestUnitsLeastPrivilege: each daemon's unit gives it what it needs and no more. CAP_NET_ADMIN only
// where a TUN device or nftables are used (the client and an exit); the others no capability at
// all; every daemon but the client (which rewrites /etc/resolv.conf and asks systemd-resolved, as
// root with every other capability dropped) runs as a user of its own, which its package creates
// (sysusers.d); a read-only system but for its state directory, which is where its configuration
// keeps its data; no privilege gained by exec.
func TestUnitsLeastPrivilege(t *testing.T) {
	_, root, _ := packages(t)
	users := sysusers(t, root)
	want := map[string]struct{ user, caps, pkg string }{
		"meshvpn-client.service":        {"", "CAP_NET_ADMIN CAP_NET_RAW", "meshvpn-client"},
		"meshvpn-exit-node.service":     {"meshvpn-exit", "CAP_NET_ADMIN", "meshvpn-exit-node"},
		"meshvpn-relay.service":         {"meshvpn-exit", "", "meshvpn-exit-node"},
		"meshvpn-dht-bootstrap.service": {"meshvpn-dht", "", "meshvpn-dht-bootstrap"},
		"meshvpn-discovery.service":     {"meshvpn-discovery", "", "meshvpn-discovery"},
	}
	for _, p := range pkgs {
		for _, name := range p.units {
			w, ok := want[name]
			if !ok || w.pkg != p.name {
				t.Errorf("unit %s of %s: not expected here", name, p.name)
				continue
			}
			u := readUnit(t, filepath.Join(root, "lib/systemd/system", name))
			if got := strings.Join(u["User"], " "); got != w.user {
				t.Errorf("%s: User=%s, want %q", name, u.get("User"), w.user)
			}
			if w.user != "" && users[w.user] != p.name {
				t.Errorf("%s: its user %s is not created by %s's sysusers.d file", name, w.user, p.name)
			}
			if got := strings.Join(u["CapabilityBoundingSet"], " "); len(u["CapabilityBoundingSet"]) != 1 || got != w.caps {
				t.Errorf("%s: CapabilityBoundingSet=%s, want %q", name, u.get("CapabilityBoundingSet"), w.caps)
			}
			if got := strings.Join(u["AmbientCapabilities"], " "); got != w.caps {
				t.Errorf("%s: AmbientCapabilities=%s, want %q", name, u.get("AmbientCapabilities"), w.caps)
			}
			if w.caps == "" && u.get("DeviceAllow") != "(unset)" {
				t.Errorf("%s: DeviceAllow=%s without CAP_NET_ADMIN", name, u.get("DeviceAllow"))
			}
			for k, v := range map[string]string{"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes", "Restart": "on-failure"} {
				if u.get(k) != v {
					t.Errorf("%s: %s=%s, want %s", name, k, u.get(k), v)
				}
			}
			// The client's configuration is its default file; the others name theirs.
			cmdline := strings.Fields(u.get("ExecStart"))
			if len(cmdline) < 2 || cmdline[0] != "/usr/bin/"+p.name ||
				(p.name != "meshvpn-client" && !slices.Contains(cmdline, "/etc/meshvpn/"+p.config)) {
				t.Errorf("%s: ExecStart=%s, want /usr/bin/%s with --config /etc/meshvpn/%s", name, u.get("ExecStart"), p.name, p.config)
			}
			if dir := dataDir(t, filepath.Join(root, "etc/meshvpn", p.config)); u.get("StateDirectory") != strings.TrimPrefix(dir, "/var/lib/") || !strings.HasPrefix(dir, "/var/lib/") {
				t.Errorf("%s: StateDirectory=%s, but the configuration keeps its data in %s", name, u.get("StateDirectory"), dir)
			}
		}
	}
}

// TestConffiles: each daemon's package installs its example configuration (what `PROGRAM
// example-config` prints: every key at its default) as a conffile under /etc/meshvpn, which dpkg
// keeps when the operator has edited it.
func TestConffiles(t *testing.T) {
	dist, root, debs := packages(t)
	for _, p := range pkgs {
		ctrl := filepath.Join(dist, "control-"+p.name)
		if out, err := exec.Command("dpkg-deb", "-e", debs[p.name], ctrl).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", p.name, err, out)
		}
		conffiles, _ := os.ReadFile(filepath.Join(ctrl, "conffiles"))
		if p.config == "" {
			if len(conffiles) > 0 {
				t.Errorf("%s has conffiles: %s", p.name, conffiles)
			}
			continue
		}
		path := "/etc/meshvpn/" + p.config
		if got := strings.Fields(string(conffiles)); !slices.Equal(got, []string{path}) {
			t.Errorf("%s: conffiles %q, want %s", p.name, got, path)
		}
		want, err := exec.Command(filepath.Join(root, "usr/bin", p.name), "example-config").Output()
		if err != nil {
			t.Fatalf("%s example-config: %v", p.name, err)
		}
		if got, err := os.ReadFile(filepath.Join(root, path)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %s is not what example-config prints (%v)", p.name, path, err)
		}
	}
}

// TestProgramsRunFromThePackages: every program unpacked from its package runs, and --help prints
// its usage. (meshvpn-bootstrap's --help exits 2, the others' 0: issue 17 §2 makes them alike.)
func TestProgramsRunFromThePackages(t *testing.T) {
	_, root, _ := packages(t)
	for _, p := range pkgs {
		out, err := exec.Command(filepath.Join(root, "usr/bin", p.name), "--help").CombinedOutput()
		code := 0
		if e, ok := err.(*exec.ExitError); ok {
			code = e.ExitCode()
		} else if err != nil {
			t.Fatalf("%s --help: %v", p.name, err)
		}
		if (code != 0 && code != 2) || !strings.Contains(string(out), "Usage") || !strings.Contains(string(out), p.name) {
			t.Errorf("%s --help: exit %d\n%s", p.name, code, out)
		}
		if _, err := os.Stat(filepath.Join(root, "usr/share/man/man1", p.name+".1.gz")); err != nil {
			t.Errorf("%s has no man page: %v", p.name, err)
		}
	}
}

// TestTestnetFromThePackages runs the testnet (namespaces: DHT bootstrap, discovery authorities,
// relays, exits with NAT, a client with its kill switch) from the programs unpacked from the
// packages, and fetches a page through the circuit.
func TestTestnetFromThePackages(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root, and CI must run it")
		}
		t.Skip("needs root")
	}
	need(t, "ip", "curl", "nft")
	_, root, _ := packages(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	start := time.Now()
	n, err := testnet.Start(ctx, testnet.Options{Bin: filepath.Join(root, "usr/bin")})
	if err != nil {
		t.Fatal(err)
	}
	pids := n.PIDs()
	defer func() {
		if t.Failed() {
			for _, name := range []string{"client", "x1", "a1"} {
				t.Logf("log of %s:\n%s", name, n.Log(name))
			}
		}
		n.Close()
		if left := n.Leftovers(); len(left) > 0 {
			t.Errorf("namespaces left behind: %v", left)
		}
		for _, pid := range pids {
			if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
				t.Errorf("process %d left behind", pid)
			}
		}
		t.Logf("testnet from the packages: %v", time.Since(start).Round(time.Millisecond))
	}()
	if n.Bin("meshvpn-client") != filepath.Join(root, "usr/bin/meshvpn-client") {
		t.Fatalf("the testnet runs %s", n.Bin("meshvpn-client"))
	}
	path, err := n.Path(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(path) != 3 {
		t.Fatalf("path of %d hops", len(path))
	}
	out, err := n.InClient("curl", "-sS", "--max-time", "10", "http://"+testnet.WebAddr+"/")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "You came from ") {
		t.Fatalf("through the circuit: %q", out)
	}
}

// TestExitRunsWithOnlyNetAdmin runs the exit node unpacked from its package as its unit does, in a
// network namespace of the test's own: as an unprivileged user with CAP_NET_ADMIN its only
// capability, it makes its TUN device and its nftables table, turns on forwarding and serves, and
// removes them on SIGTERM; without that capability it cannot start. A relay-only node serves with no
// capability at all (meshvpn-relay.service).
func TestExitRunsWithOnlyNetAdmin(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root, and CI must run it")
		}
		t.Skip("needs root")
	}
	need(t, "ip", "nft", "setpriv", "unshare")
	_, root, _ := packages(t)
	ns := "mvpk" + strconv.Itoa(os.Getpid()%100000)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	inNS := func(args ...string) (string, error) {
		out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := inNS("ip", "link", "set", "lo", "up"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	const nobody = "65534"
	run := func(t *testing.T, caps string, relayOnly bool) (served bool, log string) {
		// A folder the user can reach, holding a data directory it owns, as StateDirectory= makes.
		dir, err := os.MkdirTemp("", "meshvpn-deb-exit-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		data := filepath.Join(dir, "data")
		if err := errors.Join(os.Chmod(dir, 0o755), os.Mkdir(data, 0o700), os.Chown(data, 65534, 65534)); err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(dir, "exit-node.toml")
		text := "data_dir = \"" + data + "\"\nlisten = \"127.0.0.1:7000\"\nmetrics = \"\"\nlog_level = \"info\"\n[exit]\ntun = \"mvpkx0\"\n"
		if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		// /dev/net/tun is 0666 on a host with udev (its default rules), which the unit relies on; a
		// container may make it 0600, so the node gets a node of udev's mode in a mount namespace of
		// its own, leaving the host's alone.
		args := []string{"--mount", "--propagation", "private", "--", "sh", "-c",
			`mount -t tmpfs -o mode=0755 tmpfs /dev/net && mknod -m 0666 /dev/net/tun c 10 200 && exec "$@"`, "sh",
			"ip", "netns", "exec", ns, "setpriv", "--reuid=" + nobody, "--regid=" + nobody, "--clear-groups",
			"--inh-caps=-all" + caps, "--ambient-caps=-all" + caps, "--bounding-set=-all" + caps, "--",
			filepath.Join(root, "usr/bin/meshvpn-exit-node"), "run", "--config", cfg}
		if relayOnly {
			args = append(args, "--relay-only")
		}
		var stderr bytes.Buffer
		cmd := exec.Command("unshare", args...)
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		// Serving: its relay list entry is written once everything is up.
		deadline := time.After(20 * time.Second)
		for {
			if _, err := os.Stat(filepath.Join(data, "relay.toml")); err == nil {
				break
			}
			select {
			case <-exited:
				return false, stderr.String()
			case <-deadline:
				cmd.Process.Kill()
				<-exited
				t.Fatalf("the node did not serve within 20 s:\n%s", stderr.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
		_, tableErr := inNS("nft", "list", "table", "ip", "meshvpn")
		_, tunErr := inNS("ip", "link", "show", "mvpkx0")
		if relayOnly != (tableErr != nil) || relayOnly != (tunErr != nil) {
			t.Errorf("relay-only %v: nftables table (%v) and TUN device (%v)", relayOnly, tableErr, tunErr)
		}
		if out, _ := inNS("cat", "/proc/sys/net/ipv4/ip_forward"); !relayOnly && strings.TrimSpace(out) != "1" {
			t.Errorf("ip_forward %q after the exit started", out)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("the node exited with %v after SIGTERM:\n%s", err, stderr.String())
			}
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Fatalf("the node did not stop within 20 s of SIGTERM:\n%s", stderr.String())
		}
		if _, err := inNS("nft", "list", "table", "ip", "meshvpn"); err == nil {
			t.Error("the nftables table is left after SIGTERM")
		}
		if _, err := inNS("ip", "link", "show", "mvpkx0"); err == nil {
			t.Error("the TUN device is left after SIGTERM")
		}
		return true, stderr.String()
	}
	if served, log := run(t, ",+net_admin", false); !served {
		t.Fatalf("the exit, with CAP_NET_ADMIN, did not start:\n%s", log)
	}
	if served, log := run(t, ",+net_admin", true); !served {
		t.Fatalf("the relay, with CAP_NET_ADMIN, did not start:\n%s", log)
	}
	if served, log := run(t, "", true); !served {
		t.Fatalf("the relay, with no capability, did not start:\n%s", log)
	}
	if served, _ := run(t, "", false); served {
		t.Fatal("the exit started without CAP_NET_ADMIN: the test does not drop privileges")
	}
}

// TestNoBuiltBinariesInTheRepository: the repository tracks no built program (one, 15 MB, was once
// committed), and .gitignore keeps build outputs out.
func TestNoBuiltBinariesInTheRepository(t *testing.T) {
	need(t, "git")
	out, err := exec.Command("git", "-C", repo, "ls-files", "-z").Output()
	if err != nil {
		t.Skipf("not a git work tree: %v", err)
	}
	for _, f := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		fh, err := os.Open(filepath.Join(repo, f))
		if err != nil {
			continue // deleted in the work tree
		}
		head := make([]byte, 4)
		n, _ := bufio.NewReader(fh).Read(head)
		fh.Close()
		if n == 4 && string(head) == "\x7fELF" {
			t.Errorf("%s is a built program, tracked in git", f)
		}
	}
	for _, f := range []string{"bin/meshvpn-client", "dist/meshvpn-client_0.1.0_amd64.deb", "cmd/meshvpn-bootstrap/meshvpn-bootstrap", "cmd/internal/deb/deb.test"} {
		if err := exec.Command("git", "-C", repo, "check-ignore", "-q", "--no-index", f).Run(); err != nil {
			t.Errorf("%s, a build output, is not ignored by .gitignore", f)
		}
	}
}
