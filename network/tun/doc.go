// Package tun moves batches of IP packets between MeshVPN and the kernel through a TUN device.
//
// Every backend sits behind Device, whose Read and Write take a batch of buffers, so that the hot
// path costs one call per batch whatever the backend does underneath:
//
//   - BackendWireGuard (the default) is golang.zx2c4.com/wireguard/tun with the virtio-net header
//     and TCP/UDP offloads: one read of a kernel GSO train comes back as up to BatchSize packets, and
//     Write coalesces a batch into GRO trains. Measured here it reads UDP GSO trains ~4.7× faster
//     and writes ~2.4× faster than water.
//   - BackendWater is github.com/songgao/water, which the product's design names: one packet per
//     system call, BatchSize 1.
//
// Open creates the device in the calling thread's network namespace and configures it with
// netlink; Configure is the same configuration step for daemons that receive a device from
// elsewhere. Channel is an in-memory Device for the unit tests of packages above this one.
//
// # Buffers
//
// Callers leave Offset bytes of headroom before each packet and size every buffer to at least
// Offset+MTU. BackendWireGuard writes its virtio-net header into the headroom, and Write may grow
// bufs[i] into its spare capacity to coalesce later packets of the same flow onto it, so a buffer
// with capacity Offset+65535 writes fastest; Write also rewrites the headers of the packets it is
// given. Read may return n > 0 together with ErrTooManySegments: handle the n packets, and keep
// reading.
//
// The package is Linux-only; elsewhere Open and Configure return errors.ErrUnsupported.
package tun
