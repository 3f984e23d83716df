package ticket

import (
	"crypto/rand"
	"testing"
)

func binding(t *testing.T) Binding {
	t.Helper()
	var b Binding
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestProofBindsEverything: a proof verifies only under the key, the id and the circuit binding it was
// made for; changing any of them (another session, another circuit, an older credential) fails.
func TestProofBindsEverything(t *testing.T) {
	id, err := NewID(nil)
	if err != nil {
		t.Fatal(err)
	}
	b1, b2, b3 := binding(t), binding(t), binding(t)
	k1 := Open(id, b1)
	p := Proof(k1, id, b2)
	if !Verify(k1, id, b2, p) {
		t.Fatal("a proof does not verify under its own key, id and binding")
	}
	other, _ := NewID(nil)
	if Verify(k1, other, b2, p) {
		t.Fatal("a proof verifies for another session")
	}
	if Verify(k1, id, b3, p) {
		t.Fatal("a proof made on one circuit verifies on another (replay)")
	}
	k2 := Next(k1, b2)
	if k2 == k1 {
		t.Fatal("the next credential equals the one used")
	}
	if Verify(k2, id, b2, p) {
		t.Fatal("a proof under the old credential verifies under the next one")
	}
	if Open(id, b1) != k1 || Next(k1, b2) != k2 {
		t.Fatal("derivation is not deterministic: client and exit would disagree")
	}
	if Open(other, b1) == k1 {
		t.Fatal("two sessions opened on one circuit share a credential")
	}
	p[0] ^= 1
	if Verify(k1, id, b2, p) {
		t.Fatal("a flipped proof verifies")
	}
}
