//go:build linux

package udp

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestGROSegmentSize(t *testing.T) {
	cmsg := func(level, typ int32, data []byte) []byte {
		b := make([]byte, unix.CmsgSpace(len(data)))
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		h.Level, h.Type = level, typ
		h.SetLen(unix.CmsgLen(len(data)))
		copy(b[unix.CmsgLen(0):], data)
		return b
	}
	i32 := func(v int32) []byte { return binary.NativeEndian.AppendUint32(nil, uint32(v)) }
	for _, c := range []struct {
		name    string
		control []byte
		want    int
	}{
		{"none", nil, 0},
		{"int", cmsg(unix.SOL_UDP, unix.UDP_GRO, i32(1452)), 1452},
		{"uint16", cmsg(unix.SOL_UDP, unix.UDP_GRO, binary.NativeEndian.AppendUint16(nil, 1452)), 1452},
		{"after another", append(cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMP, make([]byte, 16)), cmsg(unix.SOL_UDP, unix.UDP_GRO, i32(700))...), 700},
		{"another only", cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMP, make([]byte, 16)), 0},
		{"too short", cmsg(unix.SOL_UDP, unix.UDP_GRO, []byte{1}), 0},
		{"length past the end", cmsg(unix.SOL_UDP, unix.UDP_GRO, i32(1452))[:unix.CmsgLen(2)], 0},
		{"header only", make([]byte, unix.SizeofCmsghdr), 0},
	} {
		if got := groSegmentSize(c.control); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}
