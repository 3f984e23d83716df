package descriptor

// Salt returns the BEP 44 salt a relay publishes its descriptor under, in the item keyed by its
// identity: the network id.
func Salt(networkID [32]byte) []byte { return networkID[:] }
