package dht

import (
	"encoding/hex"

	"github.com/meshvpn/meshvpn/crypto/kdf"
)

// Infohash is a 20-byte DHT key under which peers announce themselves (BEP 5).
type Infohash [20]byte

// String returns ih in hex.
func (ih Infohash) String() string { return hex.EncodeToString(ih[:]) }

// RelaysLabel keys the derivation of a network's relay infohash. Changing it is a protocol version
// change; it belongs with the labels in crypto/kdf.
const RelaysLabel = "meshvpn-dht-v1:relays"

// NetworkInfohash returns the infohash under which a network's relays announce themselves: the first
// 20 bytes of HMAC-SHA256 keyed with RelaysLabel over the network id. Other uses of the network id
// cannot produce it, and other networks' relays land elsewhere in the DHT.
func NetworkInfohash(networkID [32]byte) Infohash {
	mac := kdf.MAC(RelaysLabel, networkID[:])
	var ih Infohash
	copy(ih[:], mac[:])
	return ih
}
