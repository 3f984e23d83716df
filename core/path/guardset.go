package path

import (
	"slices"
	"sync"
	"time"

	"github.com/meshvpn/meshvpn/crypto/keys"
)

// Guard set policy (see the package docs for why).
const (
	// GuardTarget is how many guards the set is filled to.
	GuardTarget = 3
	// GuardMax bounds the set when it grows because none of its guards can be used.
	GuardMax = 6
	// GuardLifetimeMin and GuardLifetimeMax bound a guard's lifetime, drawn uniformly between them
	// when it is sampled.
	GuardLifetimeMin = 30 * 24 * time.Hour
	GuardLifetimeMax = 60 * 24 * time.Hour
)

// GuardEntry is one guard of a set.
type GuardEntry struct {
	Identity keys.IdentityPublic
	Sampled  time.Time // when it joined the set (UTC, whole seconds)
	Expires  time.Time // when it leaves it
}

// GuardSet is a client's entry guards, in the order they are tried. A Selector keeps it (drops
// expired guards, samples new ones) during Pick; the caller saves it when Changed says so. It is safe
// for concurrent use.
type GuardSet struct {
	mu      sync.Mutex
	guards  []GuardEntry
	changed bool
}

// NewGuardSet returns an empty set; the first Pick fills it.
func NewGuardSet() *GuardSet { return &GuardSet{} }

// Guards returns the set's guards in order.
func (g *GuardSet) Guards() []GuardEntry {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.guards)
}

// Changed reports whether the set changed since it was made, loaded or last saved.
func (g *GuardSet) Changed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.changed
}

// The methods below are for the Selector, which holds g.mu.

// expire drops the guards that have expired by now. A guard that expires more than GuardLifetimeMax
// from now was sampled in the future, which only a clock stepped back (or an edited file) explains: it
// is kept, but its expiry is brought within the longest lifetime, so no guard is pinned for longer.
func (g *GuardSet) expire(now time.Time) {
	latest := now.Add(GuardLifetimeMax).UTC().Truncate(time.Second)
	kept := g.guards[:0]
	for _, e := range g.guards {
		if !now.Before(e.Expires) {
			g.changed = true
			continue
		}
		if e.Expires.After(latest) {
			e.Expires = latest
			g.changed = true
		}
		kept = append(kept, e)
	}
	clear(g.guards[len(kept):])
	g.guards = kept
}

// add appends a guard sampled now with the given lifetime.
func (g *GuardSet) add(id keys.IdentityPublic, now time.Time, lifetime time.Duration) {
	sampled := now.UTC().Truncate(time.Second)
	g.guards = append(g.guards, GuardEntry{Identity: id, Sampled: sampled, Expires: sampled.Add(lifetime)})
	g.changed = true
}

func (g *GuardSet) contains(id keys.IdentityPublic) bool {
	return slices.ContainsFunc(g.guards, func(e GuardEntry) bool { return e.Identity == id })
}
