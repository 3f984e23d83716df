package directory

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/core/descriptor"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

var (
	network = [32]byte{7, 7, 7}
	t0      = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

func identity(t testing.TB, seed byte) *keys.Identity {
	t.Helper()
	id, err := keys.GenerateIdentity(bytes.NewReader(bytes.Repeat([]byte{seed}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// relayID returns a relay identity; the tests need only its bytes, sorted by n.
func relayID(n byte) keys.IdentityPublic { return keys.IdentityPublic{n, 0xee} }

func digest(n byte) [32]byte { return [32]byte{0xd0, n} }

// document returns a document for period serial of the authority with seed, valid for an hour from
// t0 + (serial-1) hours, chained on prev.
func document(serial uint64, prev [32]byte, entries ...Entry) *Directory {
	start := t0.Add(time.Duration(serial-1) * time.Hour)
	return &Directory{
		NetworkID: network, Serial: serial, Previous: prev,
		ValidAfter: start, ValidUntil: start.Add(3 * time.Hour), Entries: entries,
	}
}

// signed signs d with the authority key of seed, parses the result and returns it with its encoding.
func signed(t testing.TB, seed byte, d *Directory) (*Directory, []byte) {
	t.Helper()
	b, err := d.Sign(identity(t, seed))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return p, b
}

func entry(n byte, flags Flags, weight, latency uint32) Entry {
	return Entry{Identity: relayID(n), Descriptor: digest(n), Flags: flags, Weight: weight, LatencyMicros: latency}
}

func TestRoundTrip(t *testing.T) {
	for _, entries := range [][]Entry{nil, {entry(1, Running|Guard|Fast, 100, 2500), entry(2, Running|Exit|Degraded, 7, 0)}} {
		d := document(2, [32]byte{1}, entries...)
		got, b := signed(t, 1, d)
		if !reflect.DeepEqual(got, d) {
			t.Fatalf("parsed\n%+v\nwant\n%+v", got, d)
		}
		if len(b) != headerLen+len(entries)*entryLen+sigLen {
			t.Fatalf("%d bytes", len(b))
		}
		if h, err := got.Hash(); err != nil || h != sha256.Sum256(b) {
			t.Fatalf("hash %x, %v", h, err)
		}
		if again, err := got.Encode(); err != nil || !bytes.Equal(again, b) {
			t.Fatal("re-encodes differently", err)
		}
	}
	if s := (Running | Degraded).String(); s != "Running|Degraded" {
		t.Fatal(s)
	}
}

func TestEveryBitFlipIsRefused(t *testing.T) {
	_, b := signed(t, 1, document(2, [32]byte{1}, entry(1, Running, 1, 1), entry(2, Guard, 2, 2)))
	for i := range len(b) * 8 {
		m := bytes.Clone(b)
		m[i/8] ^= 1 << (i % 8)
		if _, err := Parse(m); err == nil {
			t.Fatalf("bit %d flipped: accepted", i)
		}
	}
}

func TestForgedSignatureIsRefused(t *testing.T) {
	d, b := signed(t, 1, document(1, [32]byte{}, entry(1, Running, 1, 1)))
	copy(b[len(b)-sigLen:], identity(t, 2).Sign(signedMessage(b[:len(b)-sigLen])))
	if _, err := Parse(b); !errors.Is(err, ErrSignature) {
		t.Fatalf("signature by another key: %v", err)
	}
	d.Entries[0].Flags |= Guard // changed after parsing: the signature no longer covers it
	if _, err := d.Verify(); !errors.Is(err, ErrSignature) {
		t.Fatalf("changed document: %v", err)
	}
}

// resign replaces b's signature with one by seed 1 over its body.
func resign(t *testing.T, b []byte) []byte {
	body := b[:len(b)-sigLen]
	return append(bytes.Clone(body), identity(t, 1).Sign(signedMessage(body))...)
}

func TestParseRefusesWhatSignNeverWrites(t *testing.T) {
	_, b := signed(t, 1, document(2, [32]byte{1}, entry(1, Running, 1, 1), entry(2, Guard, 2, 2)))
	e0, e1 := headerLen, headerLen+entryLen
	mutate := func(f func(b []byte) []byte) []byte { return resign(t, f(bytes.Clone(b))) }
	cases := map[string][]byte{
		"version 0":      mutate(func(b []byte) []byte { b[0] = 0; return b }),
		"serial 0":       mutate(func(b []byte) []byte { binary.BigEndian.PutUint64(b[65:], 0); return b }),
		"serial 1, prev": mutate(func(b []byte) []byte { binary.BigEndian.PutUint64(b[65:], 1); return b }),
		"serial 2, zero": mutate(func(b []byte) []byte { clear(b[73:105]); return b }),
		"empty window":   mutate(func(b []byte) []byte { copy(b[113:121], b[105:113]); return b }),
		"window 25 h": mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint64(b[113:], uint64(t0.Add(26*time.Hour).Unix()))
			return b
		}),
		"time past 9999": mutate(func(b []byte) []byte { binary.BigEndian.PutUint64(b[113:], descriptor.MaxUnix+1); return b }),
		"duplicate":      mutate(func(b []byte) []byte { copy(b[e1:e1+32], b[e0:e0+32]); return b }),
		"unsorted":       mutate(func(b []byte) []byte { b[e1] = 0; return b }),
		"unknown flag":   mutate(func(b []byte) []byte { b[e0+64] |= 0x40; return b }),
		"count too high": mutate(func(b []byte) []byte { b[124] = 3; return b }),
		"count too low":  mutate(func(b []byte) []byte { b[124] = 1; return b }),
		"count 20001": mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[121:], MaxEntries+1)
			return b
		}),
		"trailing byte": mutate(func(b []byte) []byte { return append(b, 0) }),
	}
	for name, m := range cases {
		if _, err := Parse(m); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Parse(make([]byte, MaxSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Error(err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	d := document(1, [32]byte{1}, entry(2, 0x80, 0, 0), entry(1, 0, 0, 0))
	d.ValidUntil = d.ValidAfter.Add(MaxValidity + time.Second)
	d.ValidAfter = d.ValidAfter.Add(time.Nanosecond)
	err := d.Validate()
	for _, want := range []string{"previous hash", "whole second", "longer than", "not sorted", "unknown flags"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("no %q in: %v", want, err)
		}
	}
}

func TestMaxSize(t *testing.T) {
	entries := make([]Entry, MaxEntries)
	for i := range entries {
		binary.BigEndian.PutUint32(entries[i].Identity[:], uint32(i))
	}
	d := document(1, [32]byte{}, entries...)
	_, b := signed(t, 1, d)
	if len(b) != MaxSize {
		t.Fatalf("%d bytes, MaxSize %d", len(b), MaxSize)
	}
	d.Entries = append(d.Entries, Entry{Identity: keys.IdentityPublic{0xff}})
	if _, err := d.Sign(identity(t, 1)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("%d entries: %v", len(d.Entries), err)
	}
}
