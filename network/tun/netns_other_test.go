//go:build !linux

package tun

// sweepStaleNetns has nothing to sweep where there are no network namespaces.
func sweepStaleNetns() {}
