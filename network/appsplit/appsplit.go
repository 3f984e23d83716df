// Package appsplit sends the traffic of chosen programs around the tunnel: per-application split
// tunnelling, as Mullvad's. The programs run in one cgroup v2 group of the client's (Join puts a process
// there; its children follow). An nftables table of its own (inet meshvpn_split) marks the packets of
// sockets made in that group, in a chain of type route, so the kernel routes them again by the mark
// (network/route's MarkOutside sends marked packets by the host's own routes), and masquerades them
// on their way out: their source was chosen by the first route, the tunnel's. The kill switch lets
// marked packets through (network/firewall Config.OutsideMark).
package appsplit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// TableName is the name of the nftables table (family inet).
const TableName = "meshvpn_split"

// Config describes per-application split tunnelling.
type Config struct {
	// Cgroup is the group's path: absolute inside the cgroup v2 hierarchy (/sys/fs/cgroup/NAME), or
	// relative to its root. Start makes it.
	Cgroup string
	// TUN is the tunnel's device: marked packets that still go there are not masqueraded.
	TUN string
	// Mark is the firewall mark the group's packets get.
	Mark uint32
	// NetNSFd, if nonzero, is a file descriptor of the network namespace to act in; zero means the
	// calling thread's.
	NetNSFd int
}

// Split is per-application split tunnelling in place.
type Split struct {
	cfg  Config
	path string // the group's directory
}

// CgroupRoot returns where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or
// /sys/fs/cgroup/unified on a hybrid host).
func CgroupRoot() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	return cgroupRoot(f)
}

func cgroupRoot(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		// 36 25 0:32 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if ok && len(f) >= 5 && len(g) >= 1 && g[0] == "cgroup2" {
			return unescape(f[4]), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("no cgroup v2 hierarchy is mounted (mount -t cgroup2 none /sys/fs/cgroup)")
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// GroupPath returns the directory of the group named by path (see Config.Cgroup) and its level in the
// cgroup v2 hierarchy (the root's children are level 1), counted by its ancestors on the cgroup v2 file
// system: an absolute path works also where the hierarchy is mounted elsewhere than this process
// sees it (`ip netns exec` mounts a /sys of its own, without it: /proc/1/root/sys/fs/cgroup/… reaches
// it there).
func GroupPath(path string) (dir string, level int, err error) {
	dir = path
	if !filepath.IsAbs(dir) {
		root, err := CgroupRoot()
		if err != nil {
			return "", 0, err
		}
		dir = filepath.Join(root, dir)
	}
	dir = filepath.Clean(dir)
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		var st unix.Statfs_t
		if err := unix.Statfs(p, &st); err != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
			break
		}
		level++
		if p == "/" {
			break
		}
	}
	if level == 0 {
		return "", 0, fmt.Errorf("split tunnelling: cgroup %q is not inside a cgroup v2 hierarchy", path)
	}
	return dir, level, nil
}

// Start makes the group and installs the table, replacing in one batch a table a dead client left.
func Start(cfg Config) (*Split, error) {
	if cfg.Mark == 0 || cfg.TUN == "" || len(cfg.TUN) >= 16 {
		return nil, fmt.Errorf("split tunnelling: want a mark and a TUN name (mark %#x, TUN %q)", cfg.Mark, cfg.TUN)
	}
	dir, level, err := GroupPath(cfg.Cgroup)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("split tunnelling: make the cgroup: %w", err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return nil, fmt.Errorf("split tunnelling: the cgroup: %w", err)
	}
	c, err := conn(cfg.NetNSFd)
	if err != nil {
		return nil, err
	}
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	mark := binaryutil.NativeEndian.PutUint32(cfg.Mark)
	// A cgroup's id is its directory's inode number.
	route := c.AddChain(&nftables.Chain{Name: "mark", Table: t, Type: nftables.ChainTypeRoute,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityMangle})
	// socket cgroupv2 level L "meshvpn-exclude" meta mark set M
	c.AddRule(&nftables.Rule{Table: t, Chain: route, Exprs: []expr.Any{
		&expr.Socket{Key: expr.SocketKeyCgroupv2, Level: uint32(level), Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint64(st.Ino)},
		&expr.Immediate{Register: 1, Data: mark},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
	}})
	nat := c.AddChain(&nftables.Chain{Name: "masquerade", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource})
	tun := make([]byte, 16)
	copy(tun, cfg.TUN)
	// meta mark M oifname != TUN masquerade
	c.AddRule(&nftables.Rule{Table: t, Chain: nat, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: mark},
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: tun},
		&expr.Masq{},
	}})
	if err := c.Flush(); err != nil {
		return nil, fmt.Errorf("split tunnelling: install the table: %w", err)
	}
	return &Split{cfg: cfg, path: dir}, nil
}

// Dir returns the group's directory.
func (s *Split) Dir() string { return s.path }

// Close removes the table, and the group if no process is left in it (one that is keeps it, and goes
// through the tunnel from now on).
func (s *Split) Close() error {
	err := Remove(s.cfg.NetNSFd)
	os.Remove(s.path) // EBUSY while processes are in it
	return err
}

// Remove takes the table out of the namespace (after a dead client, by `down`), if it is there.
func Remove(netnsFd int) error {
	c, err := conn(netnsFd)
	if err != nil {
		return err
	}
	ts, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return fmt.Errorf("split tunnelling: list tables: %w", err)
	}
	for _, t := range ts {
		if t.Name == TableName {
			c.DelTable(t)
			if err := c.Flush(); err != nil {
				return fmt.Errorf("split tunnelling: remove the table: %w", err)
			}
		}
	}
	return nil
}

// Join moves the process pid into the group at dir (its threads and later children with it).
func Join(dir string, pid int) error {
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		return fmt.Errorf("split tunnelling: join the cgroup: %w", err)
	}
	return nil
}

func conn(fd int) (*nftables.Conn, error) {
	var opts []nftables.ConnOption
	if fd != 0 {
		opts = append(opts, nftables.WithNetNSFd(fd))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("split tunnelling: netlink: %w", err)
	}
	return c, nil
}
