package dht

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/anacrolix/dht/v2/krpc"
)

// The nodes file keeps the routing table across restarts, as text an operator can read:
//
//	# meshvpn dht nodes v1
//	self <our node id, 40 hex digits>
//	node <node id, 40 hex digits> <ip:port>
//	...
//
// Blank lines and lines starting with '#' are ignored after the header.
const (
	nodesFileHeader = "# meshvpn dht nodes v1"
	// maxNodesFileSize and maxSavedNodes bound what a restart reads and writes.
	maxNodesFileSize = 1 << 20
	maxSavedNodes    = 1024
)

// nodesFile is the content of a nodes file.
type nodesFile struct {
	Self  krpc.ID // zero if not recorded
	Nodes []krpc.NodeInfo
}

// encodeNodesFile returns f in the nodes file format; it keeps at most maxSavedNodes nodes.
func encodeNodesFile(f nodesFile) []byte {
	var b bytes.Buffer
	b.WriteString(nodesFileHeader + "\n")
	if !f.Self.IsZero() {
		fmt.Fprintf(&b, "self %x\n", f.Self[:])
	}
	for i, n := range f.Nodes {
		if i == maxSavedNodes {
			break
		}
		ap, ok := nodeInfoAddr(n)
		if !ok {
			continue
		}
		fmt.Fprintf(&b, "node %x %s\n", n.ID[:], ap)
	}
	return b.Bytes()
}

// decodeNodesFile parses a nodes file, rejecting anything it would not write.
func decodeNodesFile(b []byte) (nodesFile, error) {
	var f nodesFile
	if len(b) > maxNodesFileSize {
		return f, fmt.Errorf("nodes file: %d bytes exceeds %d", len(b), maxNodesFileSize)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 256), maxNodesFileSize)
	if !sc.Scan() || sc.Text() != nodesFileHeader {
		return f, fmt.Errorf("nodes file: first line is not %q", nodesFileHeader)
	}
	seen := make(map[netip.AddrPort]bool)
	for line := 2; sc.Scan(); line++ {
		text := sc.Text()
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Split(text, " ")
		var err error
		switch {
		case fields[0] == "self" && len(fields) == 2:
			if !f.Self.IsZero() {
				err = errors.New("second self line")
				break
			}
			f.Self, err = parseNodeID(fields[1])
		case fields[0] == "node" && len(fields) == 3:
			if len(f.Nodes) == maxSavedNodes {
				err = fmt.Errorf("more than %d nodes", maxSavedNodes)
				break
			}
			var n krpc.NodeInfo
			var ap netip.AddrPort
			if n.ID, err = parseNodeID(fields[1]); err != nil {
				break
			}
			if ap, err = netip.ParseAddrPort(fields[2]); err != nil {
				break
			}
			ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
			if err = checkNodeAddr(ap); err != nil {
				err = fmt.Errorf("address %s: %w", fields[2], err)
				break
			}
			if seen[ap] {
				err = fmt.Errorf("address %s listed twice", ap)
				break
			}
			seen[ap] = true
			n.Addr.FromAddrPort(ap)
			f.Nodes = append(f.Nodes, n)
		default:
			err = fmt.Errorf("unknown line %q", text)
		}
		if err != nil {
			return nodesFile{}, fmt.Errorf("nodes file line %d: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nodesFile{}, fmt.Errorf("nodes file: %w", err)
	}
	return f, nil
}

func parseNodeID(s string) (krpc.ID, error) {
	var id krpc.ID
	if len(s) != 2*len(id) {
		return id, fmt.Errorf("node id %q is not %d hex digits", s, 2*len(id))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("node id %q: %w", s, err)
	}
	if id.IsZero() {
		return id, errors.New("zero node id")
	}
	return id, nil
}

// nodeInfoAddr returns n's address if a node could be there.
func nodeInfoAddr(n krpc.NodeInfo) (netip.AddrPort, bool) {
	ip, ok := netip.AddrFromSlice(n.Addr.IP)
	if !ok || n.Addr.Port <= 0 || n.Addr.Port > 0xffff {
		return netip.AddrPort{}, false
	}
	ap := netip.AddrPortFrom(ip.Unmap(), uint16(n.Addr.Port))
	return ap, checkNodeAddr(ap) == nil
}

// readNodesFile loads path; a missing file is an empty one.
func readNodesFile(path string) (nodesFile, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nodesFile{}, nil
	}
	if err != nil {
		return nodesFile{}, err
	}
	return decodeNodesFile(b)
}

// writeNodesFile replaces path atomically, readable by its owner only.
func writeNodesFile(path string, f nodesFile) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.Write(encodeNodesFile(f)); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
