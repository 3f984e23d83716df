package dht

import (
	"errors"
	"fmt"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"
)

// Reasons a datagram is dropped before the library sees it.
var (
	errNotKRPC     = errors.New("not a bencoded dictionary")
	errKRPCPanic   = errors.New("decoder panicked")
	errNoArguments = errors.New("query without arguments")
	errNoReturn    = errors.New("response without return values")
	errUnknownType = errors.New("unknown message type")
)

// checkPacket decides whether a datagram is safe to hand to the library. anacrolix/dht v2.23.0
// crashes the process on some one-datagram inputs: a query without its "a" dictionary (announce_peer
// and put dereference it), and compact values shorter than a port (krpc.NodeAddr.UnmarshalBinary makes
// a slice of negative length, a runtime error the bencode decoder re-panics). The library decodes
// every datagram on its serve goroutine, where no one can recover, so the check decodes it the same
// way first, under recover, and rejects what the library would trip on. Malformed datagrams the
// library would merely drop (and log to stderr) are rejected too. It returns the message type
// ("q", "r" or "e").
func checkPacket(b []byte) (y string, err error) {
	if len(b) < 2 || b[0] != 'd' {
		return "", errNotKRPC
	}
	defer func() {
		if r := recover(); r != nil {
			y, err = "", fmt.Errorf("%w: %v", errKRPCPanic, r)
		}
	}()
	var m krpc.Msg
	if err := bencode.Unmarshal(b, &m); err != nil {
		// The library accepts trailing bytes after the dictionary, and so do we.
		var trailing bencode.ErrUnusedTrailingBytes
		if !errors.As(err, &trailing) {
			return "", err
		}
	}
	switch m.Y {
	case krpc.YQuery:
		if m.A == nil {
			return "", errNoArguments
		}
	case krpc.YResponse:
		if m.R == nil {
			return "", errNoReturn
		}
	case krpc.YError:
	default:
		return "", errUnknownType
	}
	return m.Y, nil
}
