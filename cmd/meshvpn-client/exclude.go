package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"slices"
	"strconv"
	"syscall"

	"github.com/meshvpn/meshvpn/cmd/internal/clientd"
	"github.com/meshvpn/meshvpn/network/appsplit"
)

// exclude runs a program around the tunnel: it moves itself into the daemon's split group, gives up
// root for the user who ran sudo, and becomes the program (which, and whatever it starts, stays in the
// group).
func exclude(args []string) error {
	i := slices.Index(args, "--")
	if i < 0 || i == len(args)-1 {
		return errors.New("exclude: want -- PROGRAM [ARGS] (meshvpn-client exclude -- firefox)")
	}
	cfg, _, err := parse(args[:i])
	if err != nil {
		return err
	}
	prog := args[i+1:]
	dir, err := clientd.ExcludeGroup(cfg)
	if err != nil {
		return err
	}
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("exclude: no split group at %s: is meshvpn-client up (with exclude_cgroup set)?", dir)
	}
	path, err := exec.LookPath(prog[0])
	if err != nil {
		return err
	}
	if err := appsplit.Join(dir, os.Getpid()); err != nil {
		return err
	}
	if err := dropSudo(); err != nil {
		return err
	}
	return syscall.Exec(path, prog, os.Environ())
}

// dropSudo makes a process that sudo started as root the user who ran sudo again.
func dropSudo() error {
	uid, gid := os.Getenv("SUDO_UID"), os.Getenv("SUDO_GID")
	if os.Geteuid() != 0 || uid == "" || gid == "" {
		return nil
	}
	u, err1 := strconv.Atoi(uid)
	g, err2 := strconv.Atoi(gid)
	if err1 != nil || err2 != nil || u == 0 {
		return nil
	}
	groups := []int{g}
	if who, err := user.LookupId(uid); err == nil {
		if ids, err := who.GroupIds(); err == nil {
			groups = groups[:0]
			for _, id := range ids {
				if n, err := strconv.Atoi(id); err == nil {
					groups = append(groups, n)
				}
			}
		}
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("exclude: give up root: %w", err)
	}
	if err := syscall.Setgid(g); err != nil {
		return fmt.Errorf("exclude: give up root: %w", err)
	}
	if err := syscall.Setuid(u); err != nil {
		return fmt.Errorf("exclude: give up root: %w", err)
	}
	return nil
}
