package link

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/meshvpn/meshvpn/crypto/keys"
	"golang.org/x/crypto/blake2s"
	"golang.org/x/crypto/chacha20poly1305"
)

// Handshake messages carry WireGuard's two MACs, so that a responder can refuse most of a flood before
// it spends a DH (WireGuard's paper, §5.3 and §5.4.7; the construction is the same, with our own labels):
//
//   - mac1 = MAC(HASH(labelMAC1 ‖ the receiver's static public key), the message up to mac1). Anyone who
//     knows the receiver's key can make it, so it is no secret; it only costs nothing to check and
//     stops traffic from whoever does not know whom they are talking to (a client's link key is fresh
//     per session and known to no one else, a relay's is in its descriptor).
//   - mac2 = MAC(cookie, the message up to mac2), or zeros with no cookie. A responder under load
//     answers an initiation whose mac2 is not right with a cookie reply instead of a handshake. The
//     cookie is MAC(secret, the initiator's source address), the secret random and replaced every
//     two minutes, so only a sender who receives packets at its source address can get one: under
//     load, an initiation with a right mac2 has proven its address, and only then does the per-source
//     limit apply — a limit keyed on addresses anyone may forge would let a spoofer spend a victim's
//     allowance.
//   - a cookie reply carries the cookie sealed with XChaCha20-Poly1305 under HASH(labelCookie ‖ the
//     responder's static public key), with a random nonce and the initiation's mac1 as additional
//     data: only whoever sent that initiation (or saw it) can open it, so a forged reply cannot make
//     an initiator take a wrong cookie.
//
// MAC is keyed BLAKE2s-128 and HASH BLAKE2s-256, as in the Noise handshake itself.

const (
	// macLen is the length of mac1, mac2 and a cookie.
	macLen = 16
	// cookieSecretLifetime is how long a responder keeps the secret its cookies are made from.
	cookieSecretLifetime = 2 * time.Minute
	// cookieLifetime is how long an initiator uses a cookie: a little less than the secret's life,
	// for the time the reply took to arrive.
	cookieLifetime = cookieSecretLifetime - 5*time.Second
	// underLoadFor is how long a responder stays under load after the last sign of it.
	underLoadFor = time.Second
)

var (
	labelMAC1   = []byte("meshvpn-link-v2 mac1")
	labelCookie = []byte("meshvpn-link-v2 cookie")
)

// errCookie is returned by openCookieReply for a reply that does not authenticate.
var errCookie = errors.New("link: cookie reply failed authentication")

// macKeys are the keys derived from one static public key: the key of mac1 on messages sent to its
// owner, and the key of cookie replies its owner sends.
type macKeys struct {
	mac1, cookie [32]byte
}

func deriveMACKeys(pub keys.StaticPublic) macKeys {
	var k macKeys
	k.mac1 = blake2s.Sum256(append(append([]byte(nil), labelMAC1...), pub[:]...))
	k.cookie = blake2s.Sum256(append(append([]byte(nil), labelCookie...), pub[:]...))
	return k
}

// mac returns MAC(key, msg), keyed BLAKE2s-128.
func mac(key, msg []byte) [macLen]byte {
	h, err := blake2s.New128(key)
	if err != nil {
		panic(err) // only for a key longer than 32 bytes or empty, which no caller passes
	}
	var out [macLen]byte
	h.Write(msg)
	h.Sum(out[:0])
	return out
}

// mac1Checker checks mac1 on messages sent to this node with a hash keyed once, so a check allocates
// nothing. It is not safe for concurrent use: each reader has its own.
type mac1Checker struct {
	h   hash.Hash
	sum [blake2s.Size]byte
}

// valid reports whether the macLen bytes at pkt[at:] are the mac1 of pkt[:at] under key.
func (c *mac1Checker) valid(key *[32]byte, pkt []byte, at int) bool {
	if c.h == nil {
		h, err := blake2s.New128(key[:])
		if err != nil {
			panic(err)
		}
		c.h = h
	}
	c.h.Reset()
	c.h.Write(pkt[:at])
	sum := c.h.Sum(c.sum[:0])
	return subtle.ConstantTimeCompare(sum, pkt[at:at+macLen]) == 1
}

// cookieJar is a responder's side of cookies: the rotating secret, and the key that seals replies.
type cookieJar struct {
	seal cipher.AEAD // keyed by HASH(labelCookie ‖ own static public key)

	mu     sync.RWMutex
	secret [32]byte
	born   time.Duration // node clock; the secret is replaced when it is cookieSecretLifetime old
	fresh  bool

	// nonces makes the replies' random nonces: a ChaCha8 generator (cryptographically strong)
	// seeded from crypto/rand, since a getrandom system call per reply costs more than the rest of
	// the reply together (4 µs against 1 µs, measured here).
	nonceMu sync.Mutex
	nonces  *mrand.ChaCha8
}

func newCookieJar(k *macKeys) *cookieJar {
	aead, err := chacha20poly1305.NewX(k.cookie[:])
	if err != nil {
		panic(err) // the key is 32 bytes
	}
	var seed [32]byte
	if _, err := rand.Read(seed[:]); err != nil {
		panic(fmt.Errorf("link: cookie nonce seed: %w", err)) // crypto/rand does not fail on Linux
	}
	return &cookieJar{seal: aead, nonces: mrand.NewChaCha8(seed)}
}

// cookie returns the cookie for a sender at rt: MAC(secret, address ‖ port ‖ channel). The channel
// binds a relayed initiation's cookie to the rendezvous channel it came by.
func (j *cookieJar) cookie(rt route, now time.Duration) [macLen]byte {
	j.mu.RLock()
	if !j.fresh || now-j.born >= cookieSecretLifetime {
		j.mu.RUnlock()
		j.mu.Lock()
		if !j.fresh || now-j.born >= cookieSecretLifetime {
			if _, err := rand.Read(j.secret[:]); err != nil {
				panic(fmt.Errorf("link: cookie secret: %w", err)) // crypto/rand does not fail on Linux
			}
			j.born, j.fresh = now, true
		}
		j.mu.Unlock()
		j.mu.RLock()
	}
	var src [16 + 2 + 4]byte
	a16 := rt.addr.Addr().Unmap().As16()
	copy(src[:16], a16[:])
	binary.BigEndian.PutUint16(src[16:18], rt.addr.Port())
	binary.BigEndian.PutUint32(src[18:22], rt.channel)
	c := mac(j.secret[:], src[:])
	j.mu.RUnlock()
	return c
}

// validMAC2 reports whether an initiation from rt carries the mac2 its current cookie gives.
func (j *cookieJar) validMAC2(pkt []byte, rt route, now time.Duration) bool {
	m2 := pkt[initiationMAC2At : initiationMAC2At+macLen]
	var zero [macLen]byte
	if subtle.ConstantTimeCompare(m2, zero[:]) == 1 {
		return false
	}
	c := j.cookie(rt, now)
	want := mac(c[:], pkt[:initiationMAC2At])
	return subtle.ConstantTimeCompare(want[:], m2) == 1
}

// reply makes the cookie reply to an initiation from rt.
func (j *cookieJar) reply(init []byte, rt route, now time.Duration) cookieReply {
	m := cookieReply{ReceiverIndex: binary.BigEndian.Uint32(init[4:8])}
	j.nonceMu.Lock()
	j.nonces.Read(m.Nonce[:])
	j.nonceMu.Unlock()
	c := j.cookie(rt, now)
	j.seal.Seal(m.Sealed[:0], m.Nonce[:], c[:], init[initiationMAC1At:initiationMAC1At+macLen])
	return m
}

// openCookieReply opens a cookie reply from the node whose cookie-reply key is key, to an initiation
// whose mac1 was mac1.
func openCookieReply(key *[32]byte, m *cookieReply, mac1 []byte) ([macLen]byte, error) {
	var c [macLen]byte
	aead, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		return c, err
	}
	if _, err := aead.Open(c[:0], m.Nonce[:], m.Sealed[:], mac1); err != nil {
		return c, errCookie
	}
	return c, nil
}

// sealInitiation fills in mac1 (under the responder's key mac1Key) and mac2 (under cookie, or zeros
// for none) of the initiation in pkt.
func sealInitiation(pkt []byte, mac1Key *[32]byte, cookie *[macLen]byte) {
	m1 := mac(mac1Key[:], pkt[:initiationMAC1At])
	copy(pkt[initiationMAC1At:], m1[:])
	putMAC2(pkt, cookie)
}

// putMAC2 writes mac2 into an initiation whose mac1 is already in place.
func putMAC2(pkt []byte, cookie *[macLen]byte) {
	if cookie == nil {
		clear(pkt[initiationMAC2At : initiationMAC2At+macLen])
		return
	}
	m2 := mac(cookie[:], pkt[:initiationMAC2At])
	copy(pkt[initiationMAC2At:], m2[:])
}
