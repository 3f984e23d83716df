package wgbaseline

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"
)

const (
	tunName = "wg0"
	mtu     = 1420
	wgPort  = 51820
)

// keyPair is a WireGuard static key pair in the hex form that IpcSet takes.
type keyPair struct{ private, public string }

func newKeyPair() (keyPair, error) {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return keyPair{}, err
	}
	return keyPair{hex.EncodeToString(k.Bytes()), hex.EncodeToString(k.PublicKey().Bytes())}, nil
}

// end is one side of the tunnel: its keys, its address on the veth and its address in the tunnel.
type end struct {
	keys          keyPair
	veth, tunAddr string
}

// ipcConfig is the device configuration of own with peer as its only peer.
func ipcConfig(own, peer end) string {
	return fmt.Sprintf("private_key=%s\nlisten_port=%d\npublic_key=%s\nendpoint=%s:%d\nallowed_ip=%s/32\n",
		own.keys.private, wgPort, peer.keys.public, peer.veth, wgPort, peer.tunAddr)
}

// startDevice runs a wireguard-go device with its TUN and UDP sockets in ns and gives the TUN its
// tunnel address. The device is up and configured when it returns.
func startDevice(ctx context.Context, ns *namespace, own, peer end) (*device.Device, error) {
	var dev *device.Device
	err := ns.do(func() error {
		t, err := tun.CreateTUN(tunName, mtu)
		if err != nil {
			return fmt.Errorf("create TUN in %s: %w", ns.name, err)
		}
		logger := device.NewLogger(device.LogLevelError, fmt.Sprintf("wireguard-go %s: ", ns.name))
		dev = device.NewDevice(withoutLinkEvents(t), conn.NewDefaultBind(), logger)
		if err := dev.IpcSet(ipcConfig(own, peer)); err != nil {
			return fmt.Errorf("configure the device in %s: %w", ns.name, err)
		}
		// Up opens the bind's sockets: this thread is the one in the namespace.
		if err := dev.Up(); err != nil {
			return fmt.Errorf("bring the device in %s up: %w", ns.name, err)
		}
		return nil
	})
	if err != nil {
		if dev != nil {
			dev.Close()
		}
		return nil, err
	}
	if err := ns.ip(ctx, "addr", "add", own.tunAddr+"/24", "dev", tunName); err != nil {
		dev.Close()
		return nil, err
	}
	if err := ns.ip(ctx, "link", "set", tunName, "up"); err != nil {
		dev.Close()
		return nil, err
	}
	return dev, nil
}

// linkEventless is a TUN whose link events the device never sees.
//
// The device reacts to them on its own goroutine, on whatever thread that runs on: an up event after
// a down one would reopen the bind's sockets in the root namespace, and an MTU event would look the
// TUN's name up there. This package brings the device up itself, on the namespace's thread, and sets
// the MTU at creation, so the events are drained and dropped.
type linkEventless struct {
	tun.Device
	events chan tun.Event
}

func withoutLinkEvents(t tun.Device) tun.Device {
	l := linkEventless{Device: t, events: make(chan tun.Event)}
	go func() {
		// The TUN closes its event channel when it is closed; draining it until then keeps its
		// listeners from blocking on a full channel, and closing ours ends the device's reader.
		for range t.Events() {
		}
		close(l.events)
	}()
	return l
}

func (l linkEventless) Events() <-chan tun.Event { return l.events }
