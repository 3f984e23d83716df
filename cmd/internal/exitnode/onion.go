package exitnode

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/meshvpn/meshvpn/crypto/keys"
	"go.uber.org/zap"
)

// Onion keys rotate (design property 1): every onion_rotation (a week by default) the node makes a
// new one, keeps the old as onion-prev.key and answers circuit handshakes under both for another
// onion_rotation, so that a client whose descriptor was signed before the rotation still builds; then
// the old one goes. A key's age is its file's modification time, which the rename to onion-prev.key
// keeps. The descriptor gives each key the window [made, made + 2 × onion_rotation).
const (
	onionFile     = "onion.key"
	prevOnionFile = "onion-prev.key"
	// MaxOnionRotation keeps a key's whole window (two rotations) within descriptor.MaxOnionKeyLifetime.
	MaxOnionRotation = 14 * 24 * time.Hour
)

// onionState is the node's onion keys at one time.
type onionState struct {
	current  *keys.Static
	made     time.Time    // when current was made
	previous *keys.Static // nil once its grace is over
}

// keys lists the keys handshakes are answered with, current first.
func (s *onionState) keys() []*keys.Static {
	if s.previous != nil {
		return []*keys.Static{s.current, s.previous}
	}
	return []*keys.Static{s.current}
}

// window is the current key's validity window, as the descriptor states it.
func (s *onionState) window(rotation time.Duration) (from, until time.Time) {
	return s.made.Add(-time.Minute), s.made.Add(2 * rotation)
}

// loadOnion reads the onion keys in dir as of now: the current one (LoadKeys made it if it was
// missing), and the previous one if it is still within its grace; a previous key past it is removed.
func loadOnion(dir string, current *keys.Static, rotation time.Duration, now time.Time) (*onionState, error) {
	fi, err := os.Stat(filepath.Join(dir, onionFile))
	if err != nil {
		return nil, err
	}
	s := &onionState{current: current, made: fi.ModTime().UTC().Truncate(time.Second)}
	prev := filepath.Join(dir, prevOnionFile)
	switch k, err := keys.LoadStatic(prev); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	case now.Before(s.made.Add(rotation)):
		s.previous = k
	default:
		if err := os.Remove(prev); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// rotateOnion rotates the onion key if it is due (the previous one, whose grace ends now, is replaced
// by the current one), and tells the relay and the publisher. It reports whether it rotated.
func (n *Node) rotateOnion(now time.Time) (bool, error) {
	s := n.onion.Load()
	if now.Before(s.made.Add(n.cfg.OnionRotation)) {
		return false, nil
	}
	{
		dir := n.cfg.DataDir
		if err := os.Rename(filepath.Join(dir, onionFile), filepath.Join(dir, prevOnionFile)); err != nil {
			return false, fmt.Errorf("onion key rotation: %w", err)
		}
		k, _, err := keys.LoadOrCreateStatic(filepath.Join(dir, onionFile), rand.Reader)
		if err != nil {
			return false, fmt.Errorf("onion key rotation: %w", err)
		}
		fi, err := os.Stat(filepath.Join(dir, onionFile))
		if err != nil {
			return false, err
		}
		s = &onionState{current: k, made: fi.ModTime().UTC().Truncate(time.Second), previous: s.current}
		n.log.Info("onion key rotated; the previous one is answered until the next rotation")
	}
	if err := n.relay.SetOnionKeys(s.keys()); err != nil {
		return false, err
	}
	n.onion.Store(s)
	if err := n.writeEntry(); err != nil {
		n.log.Warn("writing the relay list entry", zap.Error(err))
	}
	if n.pub != nil {
		n.pub.Kick()
	}
	return true, nil
}

// keepRotating checks the onion key every tenth of onion_rotation (at most hourly).
func (n *Node) keepRotating(ctx context.Context) {
	every := min(n.cfg.OnionRotation/10, time.Hour)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		if _, err := n.rotateOnion(time.Now()); err != nil {
			n.log.Warn("onion key", zap.Error(err))
		}
	}
}
