//go:build !linux

package tun

import (
	"errors"
	"net/netip"
)

// Open is Linux-only; elsewhere it returns errors.ErrUnsupported.
func Open(cfg Config) (Device, error) {
	return nil, errors.ErrUnsupported
}

// Configure is Linux-only; elsewhere it returns errors.ErrUnsupported.
func Configure(name string, addr netip.Prefix, mtu int) error {
	return errors.ErrUnsupported
}
