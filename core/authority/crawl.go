package authority

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/core/descriptor"
	"github.com/meshvpn/meshvpn/core/whois"
	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/dht"
)

// reason is why a relay's descriptor was refused.
type reason int

const (
	refusedNotFound     reason = iota // no BEP 44 item under the identity
	refusedFetch                      // the DHT lookup failed
	refusedMalformed                  // descriptor.Parse failed (form)
	refusedSignature                  // descriptor.Parse failed (signature)
	refusedIdentity                   // the descriptor is another relay's than the key it is stored under
	refusedSeqMismatch                // BEP 44 seq is not the descriptor's seq
	refusedWrongNetwork               // descriptor.Check: another network
	refusedFuture                     // descriptor.Check: published in the future
	refusedStale                      // descriptor.Check: published too long ago
	refusedOnionKey                   // descriptor.Check: onion key not valid now
	refusedAddress                    // none of the addresses that named the identity is in the descriptor
	refusedOldSeq                     // descriptor.Tracker: lower seq than accepted before
	refusedSeqReused                  // descriptor.Tracker: same seq, other content
	numReasons
)

var reasonNames = [numReasons]string{
	"not_found", "fetch_failed", "malformed", "signature", "identity_mismatch", "seq_mismatch",
	"wrong_network", "future", "stale", "onion_key", "address_mismatch", "old_seq", "seq_reused",
}

func (r reason) String() string { return reasonNames[r] }

// found is a descriptor accepted in this round, and the address its relay was found at.
type found struct {
	desc *descriptor.Descriptor
	raw  []byte
	addr netip.AddrPort
}

// crawlResult is what one crawl learnt.
type crawlResult struct {
	ok       bool // the DHT lookup worked; when it did not, nobody counts as missing
	peers    int  // addresses announced
	named    int  // distinct identities named by whois answers
	accepted map[keys.IdentityPublic]found
	// unsure are the relays whose descriptor lookup failed (rather than found nothing): this round
	// says nothing about them.
	unsure map[keys.IdentityPublic]bool
}

// crawlDHT bootstraps the DHT node if it has not yet, and crawls. It runs apart from the rounds, one
// at a time.
func (a *Authority) crawlDHT(ctx context.Context, now time.Time) crawlResult {
	if !a.bootstrapped {
		bctx, bcancel := context.WithTimeout(ctx, bootstrapTimeout)
		err := a.dht.Bootstrap(bctx)
		bcancel()
		switch {
		case err == nil:
			a.bootstrapped = true
		case ctx.Err() == nil:
			a.log.Warn("dht bootstrap failed; trying again at the next crawl", zap.Error(err))
		}
	}
	return a.crawl(ctx, now)
}

// crawl finds the relays announced on the DHT, asks each address who it is, and fetches and checks
// the descriptor of every identity named.
func (a *Authority) crawl(ctx context.Context, now time.Time) crawlResult {
	lctx, cancel := context.WithTimeout(ctx, a.cfg.Crawl.FetchTimeout)
	peers, err := a.dht.FindPeers(lctx, a.infohash)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("finding relays on the DHT", zap.Error(err))
			a.stats.dhtErrors.Add(1)
		}
		return crawlResult{}
	}
	res := crawlResult{ok: true, peers: len(peers), accepted: make(map[keys.IdentityPublic]found), unsure: make(map[keys.IdentityPublic]bool)}

	answers := make([]whoisAnswer, len(peers))
	errs := make([]error, len(peers))
	forEach(len(peers), a.cfg.Crawl.Concurrency, func(i int) {
		answers[i], errs[i] = a.whois.ask(ctx, peers[i], a.cfg.Crawl.WhoisTimeout)
	})
	byID := make(map[keys.IdentityPublic][]netip.AddrPort)
	for i, p := range peers {
		switch {
		case errs[i] != nil:
			a.stats.whoisNoAnswer.Add(1)
			a.log.Debug("whois", zap.Stringer("addr", p), zap.Error(errs[i]))
		case answers[i].network != a.networkID:
			a.stats.whoisWrongNetwork.Add(1)
			a.log.Debug("whois answer for another network", zap.Stringer("addr", p))
		default:
			a.stats.whoisAnswered.Add(1)
			byID[answers[i].id] = append(byID[answers[i].id], p)
		}
	}
	// Relays behind NATs are not announced (nobody could ask their address who they are): every relay
	// that answered is asked which relays are registered with it as their rendezvous.
	var answered []netip.AddrPort
	for i, p := range peers {
		if errs[i] == nil && answers[i].network == a.networkID {
			answered = append(answered, p)
		}
	}
	regs := make([][]whois.Registration, len(answered))
	forEach(len(answered), a.cfg.Crawl.Concurrency, func(i int) {
		var err error
		if regs[i], err = a.whois.askRegistered(ctx, answered[i], a.cfg.Crawl.WhoisTimeout); err != nil {
			a.log.Debug("registered relays", zap.Stringer("rendezvous", answered[i]), zap.Error(err))
		}
	})
	via := make(map[keys.IdentityPublic][]netip.AddrPort) // the rendezvous each was found registered with
	for i, rv := range answered {
		for _, r := range regs[i] {
			byID[r.Identity] = append(byID[r.Identity], r.Addr)
			via[r.Identity] = append(via[r.Identity], rv)
		}
	}
	ids := make([]keys.IdentityPublic, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(x, y keys.IdentityPublic) int { return bytes.Compare(x[:], y[:]) })
	res.named = len(ids)

	var mu sync.Mutex
	forEach(len(ids), a.cfg.Crawl.Concurrency, func(i int) {
		f, why, err := a.fetch(ctx, ids[i], byID[ids[i]], via[ids[i]], now)
		if err != nil {
			a.stats.refused[why].Add(1)
			a.log.Info("descriptor refused", zap.Stringer("relay", ids[i]), zap.Stringer("reason", why), zap.Error(err))
			if why == refusedFetch {
				mu.Lock()
				res.unsure[ids[i]] = true
				mu.Unlock()
			}
			return
		}
		a.stats.accepted.Add(1)
		mu.Lock()
		res.accepted[ids[i]] = f
		mu.Unlock()
	})
	return res
}

// fetch gets the descriptor of id from the DHT and checks it. addrs are where the relay was found;
// via the rendezvous it was found registered with, if it is behind a NAT.
func (a *Authority) fetch(ctx context.Context, id keys.IdentityPublic, addrs, via []netip.AddrPort, now time.Time) (found, reason, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Crawl.FetchTimeout)
	defer cancel()
	v, seq, err := a.dht.Fetch(ctx, ed25519.PublicKey(id[:]), descriptor.Salt(a.networkID))
	switch {
	case errors.Is(err, dht.ErrNotFound):
		return found{}, refusedNotFound, err
	case err != nil:
		return found{}, refusedFetch, err
	}
	return checkDescriptor(v, seq, id, addrs, via, now, a.networkID, &a.tracker)
}

// checkDescriptor decides whether raw, the BEP 44 item with sequence number seq stored under id, is
// id's descriptor, valid now in the network, and at one of addrs (where id was found); the tracker
// records it only if every other check passed. It returns the accepted descriptor, or why not.
func checkDescriptor(raw []byte, seq int64, id keys.IdentityPublic, addrs, via []netip.AddrPort, now time.Time, networkID [32]byte, t *descriptor.Tracker) (found, reason, error) {
	d, err := descriptor.Parse(raw)
	switch {
	case errors.Is(err, descriptor.ErrSignature):
		return found{}, refusedSignature, err
	case err != nil:
		return found{}, refusedMalformed, err
	case d.Identity != id:
		return found{}, refusedIdentity, fmt.Errorf("the descriptor of %s is stored under %s", d.Identity, id)
	case seq < 0 || uint64(seq) != d.Seq:
		return found{}, refusedSeqMismatch, fmt.Errorf("BEP 44 seq %d, descriptor seq %d", seq, d.Seq)
	}
	if err := d.Check(now, networkID); err != nil {
		why := refusedMalformed
		for e, r := range map[error]reason{
			descriptor.ErrWrongNetwork: refusedWrongNetwork, descriptor.ErrFuture: refusedFuture,
			descriptor.ErrStale: refusedStale, descriptor.ErrOnionKey: refusedOnionKey,
		} {
			if errors.Is(err, e) {
				why = r
			}
		}
		return found{}, why, err
	}
	// The relay's preferred address among those it was found at.
	i := slices.IndexFunc(d.Addresses, func(a netip.AddrPort) bool { return slices.Contains(addrs, a) })
	if i < 0 && slices.ContainsFunc(d.Rendezvous, func(r descriptor.Rendezvous) bool { return slices.Contains(via, r.Addr) }) {
		// Behind a NAT, registered with a rendezvous its descriptor names: its registration comes from
		// its NAT's address, whose port a symmetric NAT picks anew for each destination.
		i = slices.IndexFunc(d.Addresses, func(a netip.AddrPort) bool {
			return slices.ContainsFunc(addrs, func(b netip.AddrPort) bool { return b.Addr() == a.Addr() })
		})
	}
	if i < 0 {
		return found{}, refusedAddress, fmt.Errorf("found at %v, but the descriptor lists %v", addrs, d.Addresses)
	}
	if err := t.Accept(d); err != nil {
		switch {
		case errors.Is(err, descriptor.ErrOldSeq):
			return found{}, refusedOldSeq, err
		case errors.Is(err, descriptor.ErrSeqReused):
			return found{}, refusedSeqReused, err
		}
		return found{}, refusedMalformed, err
	}
	return found{desc: d, raw: bytes.Clone(raw), addr: d.Addresses[i]}, 0, nil
}

// forEach calls f(0), …, f(n-1) on at most limit goroutines at once, and returns when all have.
func forEach(n, limit int, f func(i int)) {
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			f(i)
		})
	}
	wg.Wait()
}
