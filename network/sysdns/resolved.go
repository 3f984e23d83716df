package sysdns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"github.com/godbus/dbus/v5"
)

// systemd-resolved's D-Bus interface (org.freedesktop.resolve1(5)).
const (
	resolvedName   = "org.freedesktop.resolve1"
	resolvedPath   = "/org/freedesktop/resolve1"
	resolvedManage = "org.freedesktop.resolve1.Manager"
)

type resolvedSetting struct {
	ifindex int32
}

// resolvedHere reports why systemd-resolved cannot be used from here, or nil: it must own its name on
// the system bus and run in this network namespace (a daemon in a namespace of its own sees the
// host's bus, and must not give the host's resolver a link index of its namespace).
func resolvedHere() error {
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		return fmt.Errorf("system bus: %w", err)
	}
	defer conn.Close()
	bus := conn.BusObject()
	var pid uint32
	if err := bus.Call("org.freedesktop.DBus.GetConnectionUnixProcessID", 0, resolvedName).Store(&pid); err != nil {
		return fmt.Errorf("systemd-resolved on the system bus: %w", err)
	}
	theirs, err1 := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
	mine, err2 := os.Readlink("/proc/self/ns/net")
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if theirs != mine {
		return errors.New("systemd-resolved runs in another network namespace")
	}
	return nil
}

// applyResolved gives the link server as its DNS server and "~." as its routing domain, so that every
// name is asked there, and makes it a default route for DNS.
func applyResolved(link string, server netip.Addr) (*resolvedSetting, error) {
	if err := resolvedHere(); err != nil {
		return nil, err
	}
	ifi, err := net.InterfaceByName(link)
	if err != nil {
		return nil, fmt.Errorf("systemd-resolved: %w", err)
	}
	s := &resolvedSetting{ifindex: int32(ifi.Index)}
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	m := conn.Object(resolvedName, resolvedPath)
	family := int32(syscall.AF_INET)
	if server.Is6() {
		family = syscall.AF_INET6
	}
	type addr struct {
		Family  int32
		Address []byte
	}
	type domain struct {
		Name    string
		Routing bool
	}
	calls := []struct {
		method string
		args   []any
	}{
		{"SetLinkDNS", []any{s.ifindex, []addr{{family, server.AsSlice()}}}},
		{"SetLinkDomains", []any{s.ifindex, []domain{{".", true}}}},
		{"SetLinkDefaultRoute", []any{s.ifindex, true}},
	}
	for _, c := range calls {
		if err := m.Call(resolvedManage+"."+c.method, 0, c.args...).Err; err != nil {
			m.Call(resolvedManage+".RevertLink", 0, s.ifindex)
			return nil, fmt.Errorf("systemd-resolved %s: %w", c.method, err)
		}
	}
	// Answers cached from the resolver before the tunnel must not outlive it.
	m.Call(resolvedManage+".FlushCaches", 0)
	return s, nil
}

// revert drops the link's DNS settings (systemd-resolved drops them by itself when the link goes).
func (s *resolvedSetting) revert() error {
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		return err
	}
	defer conn.Close()
	err = conn.Object(resolvedName, resolvedPath).Call(resolvedManage+".RevertLink", 0, s.ifindex).Err
	var derr dbus.Error
	if errors.As(err, &derr) && derr.Name == "org.freedesktop.resolve1.NoSuchLink" {
		return nil // the link is gone already, and its settings with it
	}
	return err
}
