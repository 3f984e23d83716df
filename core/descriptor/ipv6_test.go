package descriptor

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/meshvpn/meshvpn/core/exitports"
)

// TestIPv6RoundTrip: an exit that carries IPv6 says so in one more byte, which parses back; a
// descriptor without it is the byte-for-byte encoding it always was.
func TestIPv6RoundTrip(t *testing.T) {
	d := example(t)
	without := sign(t, d, 1)
	d.IPv6 = true
	with := sign(t, d, 1)
	if len(with) != len(without)+1 || !bytes.Equal(with[:len(without)-sigLen], without[:len(without)-sigLen]) || with[len(with)-sigLen-1] != capIPv6 {
		t.Fatalf("the IPv6 capability is not one byte after the rendezvous list:\n%x\n%x", without, with)
	}
	got, err := Parse(with)
	if err != nil {
		t.Fatal(err)
	}
	if !got.IPv6 || !reflect.DeepEqual(got, d) {
		t.Fatalf("parsed\n%+v\nwant\n%+v", got, d)
	}
	if got, err := Parse(without); err != nil || got.IPv6 {
		t.Fatalf("a descriptor without the byte: IPv6 %v, %v", got.IPv6, err)
	}
}

func TestIPv6OnlyForExits(t *testing.T) {
	d := example(t)
	d.Exit, d.IPv6 = exitports.Summary{}, true
	if _, err := d.Sign(identity(t, 1)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a relay that is not an exit signed with IPv6: %v", err)
	}
}

// TestCapabilityByteIsCanonical: a zero byte (none, which is written as no byte) and unknown bits are
// refused, so no descriptor has two encodings and no bit means something to one reader only.
func TestCapabilityByteIsCanonical(t *testing.T) {
	d := example(t)
	id := identity(t, 1)
	d.Identity = id.Public()
	body, err := d.body()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(append(bytes.Clone(body), id.Sign(signedMessage(body))...)); err != nil {
		t.Fatalf("the test's own signing: %v", err)
	}
	for _, c := range []byte{0, 2, 0x81} {
		b := append(bytes.Clone(body), c)
		b = append(b, id.Sign(signedMessage(b))...)
		if _, err := Parse(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("capability byte %#02x: %v", c, err)
		}
	}
}
