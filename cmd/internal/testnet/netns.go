package testnet

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// sh runs a command and returns its combined output, or an error that carries it.
func sh(args ...string) (string, error) {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// shStdin is sh with stdin.
func shStdin(stdin string, args ...string) (string, error) {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// namespace is one network namespace the testnet made.
type namespace struct {
	name string
	fd   *os.File
}

func newNamespace(name string) (*namespace, error) {
	if _, err := sh("ip", "netns", "add", name); err != nil {
		return nil, err
	}
	f, err := os.Open("/var/run/netns/" + name)
	if err != nil {
		sh("ip", "netns", "del", name)
		return nil, err
	}
	ns := &namespace{name: name, fd: f}
	if _, err := ns.exec("ip", "link", "set", "lo", "up"); err != nil {
		ns.remove()
		return nil, err
	}
	return ns, nil
}

// exec runs a command inside the namespace.
func (ns *namespace) exec(args ...string) (string, error) {
	return sh(append([]string{"ip", "netns", "exec", ns.name}, args...)...)
}

// do runs f on an OS thread that is inside the namespace: sockets and TUN devices f makes belong to it.
func (ns *namespace) do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is never unlocked: it dies with this goroutine rather than go back to the pool
		// in the wrong namespace.
		if err := unix.Setns(int(ns.fd.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns.name, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

func (ns *namespace) remove() {
	ns.fd.Close()
	sh("ip", "netns", "del", ns.name)
	os.RemoveAll(filepath.Join(etcNetns, ns.name)) // its resolv.conf, if it had one (resolver.go)
}
