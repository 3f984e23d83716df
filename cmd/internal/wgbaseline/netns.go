package wgbaseline

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// run runs a command and returns its combined output, or an error that carries it.
func run(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// namespace is one network namespace that Measure made and removes.
type namespace struct {
	name string
	fd   *os.File
}

func addNamespace(ctx context.Context, name string) (*namespace, error) {
	if _, err := run(ctx, "ip", "netns", "add", name); err != nil {
		return nil, err
	}
	fd, err := os.Open("/var/run/netns/" + name)
	if err != nil {
		run(context.Background(), "ip", "netns", "del", name)
		return nil, err
	}
	ns := &namespace{name: name, fd: fd}
	if err := ns.ip(ctx, "link", "set", "lo", "up"); err != nil {
		ns.remove()
		return nil, err
	}
	return ns, nil
}

// ip runs iproute2's ip inside the namespace.
func (ns *namespace) ip(ctx context.Context, args ...string) error {
	_, err := run(ctx, append([]string{"ip", "-n", ns.name}, args...)...)
	return err
}

// command is a command to be run inside the namespace.
func (ns *namespace) command(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.name}, args...)...)
}

// do runs f on an OS thread inside the namespace, so that the sockets and TUN devices f makes belong
// to it. A panic in f is raised again in the caller, where its deferred teardown runs.
func (ns *namespace) do(f func() error) error {
	type outcome struct {
		err   error
		panic any
	}
	done := make(chan outcome, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is never unlocked: it dies with this goroutine rather than go back to the
		// scheduler's pool inside the wrong namespace.
		defer func() {
			if p := recover(); p != nil {
				done <- outcome{panic: p}
			}
		}()
		if err := unix.Setns(int(ns.fd.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- outcome{err: fmt.Errorf("setns %s: %w", ns.name, err)}
			return
		}
		done <- outcome{err: f()}
	}()
	o := <-done
	if o.panic != nil {
		panic(o.panic)
	}
	return o.err
}

// remove deletes the namespace, and with it the veth end inside it. Devices that hold sockets or
// TUNs in it must be closed first, or the namespace outlives its name.
func (ns *namespace) remove() error {
	ns.fd.Close()
	_, err := run(context.Background(), "ip", "netns", "del", ns.name)
	return err
}
