//go:build !linux

package link

import "syscall"

// enableOffload reports that neither UDP GSO nor UDP GRO is available: they are Linux's.
func enableOffload(syscall.RawConn, offload) (gso, gro bool) {
	return false, false
}
