package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// capNetAdmin is CAP_NET_ADMIN's bit in the capability sets (linux/capability.h).
const capNetAdmin = 12

// NeedNetAdmin returns an error that says what to do when the process may not change the host's
// networking (TUN devices, routes, nftables): it is not root and lacks CAP_NET_ADMIN. why says what
// needs it; hint, if set, is another way out ("or use --relay-only"). It is checked before anything is
// made, so that a program started by the wrong user stops at once and leaves nothing behind.
func NeedNetAdmin(why, hint string) error {
	if os.Geteuid() == 0 {
		return nil
	}
	status, err := os.ReadFile("/proc/self/status")
	if err == nil && hasCapability(string(status), capNetAdmin) {
		return nil
	}
	msg := fmt.Sprintf("must run as root or with CAP_NET_ADMIN (%s)", why)
	if hint != "" {
		msg += "; " + hint
	}
	return errors.New(msg)
}

// hasCapability reports whether the effective set (CapEff) in a /proc/PID/status text holds bit.
func hasCapability(status string, bit uint) bool {
	sc := bufio.NewScanner(strings.NewReader(status))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			set, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && set&(1<<bit) != 0
		}
	}
	return false
}
