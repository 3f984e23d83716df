package onion

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func TestRotationKeepsCellsFlowing(t *testing.T) {
	c := threeHops(t)
	for round := range 5 {
		// A straggler sealed before the rotation, delivered after cells of the new generation.
		straggler := c.wrapForward(t, SmallSize, 3, byte(round))
		if err := c.path.Rotate(2); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if _, _, err := c.forward(c.wrapForward(t, SmallSize, 3, byte(i)), 1); err != nil {
				t.Fatalf("round %d: cell after rotation: %v", round, err)
			}
		}
		if _, _, err := c.forward(straggler, 1); err != nil {
			t.Fatalf("round %d: straggler from the previous generation: %v", round, err)
		}
		if _, _, err := c.forward(straggler, 1); !errors.Is(err, ErrReplay) {
			t.Fatalf("round %d: replayed straggler: %v", round, err)
		}

		back := c.originate(t, SmallSize, 3, 9)
		if err := c.hops[2].Rotate(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.backward(c.originate(t, SmallSize, 3, 8), 3); err != nil {
			t.Fatalf("round %d: backward after rotation: %v", round, err)
		}
		if _, _, err := c.backward(back, 3); err != nil {
			t.Fatalf("round %d: backward straggler: %v", round, err)
		}
	}
	// Rotations of an idle circuit do not move the key, so the receiver cannot fall behind.
	epoch := c.path.fwd[0].gen.epoch
	for range 20 {
		if err := c.path.Rotate(1); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := c.forward(c.wrapForward(t, SmallSize, 3, 1), 1); err != nil {
		t.Fatal(err)
	}
	if got := c.path.fwd[0].gen.epoch; got != epoch+1 {
		t.Fatalf("20 idle rotations moved the epoch from %d to %d, want one step", epoch, got)
	}
	// Every cell of several generations lost: the receiver catches up to maxSkip generations at once.
	for lost := range maxSkip - 1 {
		c.wrapForward(t, SmallSize, 3, byte(lost))
		if err := c.path.Rotate(1); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := c.forward(c.wrapForward(t, SmallSize, 3, 1), 1); err != nil {
		t.Fatalf("%d generations ahead: %v", maxSkip, err)
	}
	for lost := range maxSkip + 1 {
		c.wrapForward(t, SmallSize, 3, byte(lost))
		if err := c.path.Rotate(1); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := c.forward(c.wrapForward(t, SmallSize, 3, 1), 1); !errors.Is(err, ErrAuth) {
		t.Fatalf("%d generations ahead: %v, want ErrAuth", maxSkip+2, err)
	}
}

func TestByteBudgetRotatesTheKey(t *testing.T) {
	c := threeHops(t)
	s := c.path.fwd[2]
	s.counter, s.sealed = 1, RotateAfterBytes-100 // the next full cell spends the budget
	before := s.gen.key
	if _, _, err := c.forward(c.wrapForward(t, FullSize, 3, 1), 1); err != nil {
		t.Fatal(err)
	}
	if s.gen.epoch != 1 || s.gen.key == before {
		t.Fatalf("after the byte budget: epoch %d, key changed %v", s.gen.epoch, s.gen.key != before)
	}
	if c.hops[2].fwd.cur.epoch != 1 {
		t.Fatalf("receiver did not follow to epoch 1")
	}
}

func TestCounterExhaustionRotates(t *testing.T) {
	c := threeHops(t)
	s := c.path.fwd[0]
	s.counter = maxCounter
	for range 3 {
		if _, _, err := c.forward(c.wrapForward(t, SmallSize, 3, 1), 1); err != nil {
			t.Fatal(err)
		}
	}
	if s.gen.epoch != 1 || s.counter != 2 {
		t.Fatalf("epoch %d counter %d after the last counter, want 1 and 2", s.gen.epoch, s.counter)
	}
}

// TestNoncesNeverRepeat seals many cells across rotations and checks that no (key, nonce) pair recurs
// and that the wire field is the nonce the AEAD used.
func TestNoncesNeverRepeat(t *testing.T) {
	var key [KeySize]byte
	s, err := newSealer(ChaCha20Poly1305, key)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[[KeySize + 12]byte]bool{}
	cell := make([]byte, SmallSize)
	for i := range 20000 {
		if i%3000 == 2999 {
			if err := s.rotate(); err != nil {
				t.Fatal(err)
			}
		}
		for _, domain := range []uint32{domainOnward, domainTerminal} {
			if err := s.seal(cell, domain); err != nil {
				t.Fatal(err)
			}
			var k [KeySize + 12]byte
			copy(k[:], s.gen.key[:])
			copy(k[KeySize:], s.nonce[:])
			if seen[k] {
				t.Fatalf("cell %d: nonce repeated under one key", i)
			}
			seen[k] = true
			if !bytes.Equal(s.nonce[4:], cell[len(cell)-NonceLen:]) {
				t.Fatal("wire nonce differs from the AEAD nonce")
			}
			if binary.BigEndian.Uint64(s.nonce[4:])>>56 != s.gen.epoch&0xff {
				t.Fatal("epoch byte does not match the generation")
			}
		}
	}
}
