package dht

import "testing"

func TestNetworkInfohash(t *testing.T) {
	var id [32]byte
	for i := range id {
		id[i] = byte(i)
	}
	// HMAC-SHA256 keyed with "meshvpn-dht-v1:relays" over bytes 0..31, first 20 bytes (computed with
	// Python's hmac module).
	const want = "8af15d8de1675c2cf53194621639314abdebe3c9"
	if got := NetworkInfohash(id).String(); got != want {
		t.Errorf("NetworkInfohash = %s, want %s", got, want)
	}
	other := id
	other[31] ^= 1
	if NetworkInfohash(other) == NetworkInfohash(id) {
		t.Error("two networks share an infohash")
	}
}
