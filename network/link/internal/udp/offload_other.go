//go:build !linux

package udp

import "syscall"

// enableOffload reports that neither UDP GSO nor UDP GRO is available: they are Linux's.
func enableOffload(syscall.RawConn, Offload) (gso, gro bool) {
	return false, false
}
