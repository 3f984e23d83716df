package clientd

import (
	"strings"
	"testing"
	"time"
)

// ratchet_every reaches the client only within 1s to 24h: zero would be the relay's default, not what the
// operator wrote, and a day is already far from the design's hour.
func TestRatchetEveryIsBounded(t *testing.T) {
	for every, ok := range map[time.Duration]bool{0: false, 500 * time.Millisecond: false, time.Second: true, time.Hour: true, 25 * time.Hour: false} {
		c := DefaultConfig()
		c.RatchetEvery = every
		err := c.Validate()
		if bad := err != nil && strings.Contains(err.Error(), "ratchet_every"); bad == ok {
			t.Errorf("ratchet_every %v: %v", every, err)
		}
	}
	if DefaultConfig().RatchetEvery != time.Hour {
		t.Errorf("default ratchet_every %v, want 1h", DefaultConfig().RatchetEvery)
	}
}
