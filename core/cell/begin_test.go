package cell

import (
	"bytes"
	"errors"
	"testing"

	"github.com/meshvpn/meshvpn/crypto/ticket"
)

func TestBeginRoundTrip(t *testing.T) {
	for _, b := range []Begin{{}, {Reattach: true, ID: ticket.ID{1, 2}, Proof: [32]byte{3}}} {
		got, err := DecodeBegin(b.Encode())
		if err != nil || got != b {
			t.Fatalf("%+v came back as %+v, %v", b, got, err)
		}
	}
	for _, b := range []Begun{{}, {Kept: true, ID: ticket.ID{9}}} {
		got, err := DecodeBegun(b.Encode())
		if err != nil || got != b {
			t.Fatalf("%+v came back as %+v, %v", b, got, err)
		}
	}
}

func TestBeginRefusesWhatItCannotMean(t *testing.T) {
	newWithID := make([]byte, BeginLen)
	newWithID[5] = 1
	badMode := make([]byte, BeginLen)
	badMode[0] = 2
	badStatus := make([]byte, BegunLen)
	badStatus[0] = 7
	for name, b := range map[string][]byte{
		"short": make([]byte, BeginLen-1), "long": make([]byte, BeginLen+1),
		"new session carrying an id": newWithID, "unknown mode": badMode,
	} {
		if _, err := DecodeBegin(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("begin %s: %v, want ErrMalformed", name, err)
		}
	}
	for name, b := range map[string][]byte{"short": make([]byte, BegunLen-1), "unknown status": badStatus} {
		if _, err := DecodeBegun(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("begun %s: %v, want ErrMalformed", name, err)
		}
	}
}

func FuzzDecodeBegin(f *testing.F) {
	f.Add((&Begin{}).Encode())
	f.Add((&Begin{Reattach: true, ID: ticket.ID{1}, Proof: [32]byte{2}}).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeBegin(b)
		if err != nil {
			return
		}
		if !bytes.Equal(m.Encode(), b) {
			t.Fatal("begin does not round-trip")
		}
	})
}

func FuzzDecodeBegun(f *testing.F) {
	f.Add((&Begun{Kept: true, ID: ticket.ID{1}}).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeBegun(b)
		if err != nil {
			return
		}
		if !bytes.Equal(m.Encode(), b) {
			t.Fatal("begun does not round-trip")
		}
	})
}
