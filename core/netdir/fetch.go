package netdir

// The Fetcher is how a client learns the network: it fetches every discovery authority's directory
// over HTTP (the URLs are in the genesis file), checks each against the authority's hash chain (no
// rollback, no fork), combines them into a consensus that a threshold of authorities agree on, and
// fetches the descriptors the consensus names, each checked against the digest the authorities agreed
// on. The result is a NetDir: the relays a client may build circuits through.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/core/descriptor"
	"github.com/meshvpn/meshvpn/core/directory"
	"github.com/meshvpn/meshvpn/core/genesis"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// Limits on what an authority may send.
const (
	maxDocument    = directory.MaxSize
	maxDescriptors = 64 << 20
)

// Fetcher fetches and checks directories for one network.
type Fetcher struct {
	genesis   *genesis.Genesis
	hc        *http.Client
	chainFile string
	log       *zap.Logger

	mu    sync.Mutex
	chain *directory.Chain
}

// NewFetcher returns a Fetcher. chainFile, if not empty, keeps the authorities' chain heads across restarts
// (so a rollback is caught even right after a restart).
func NewFetcher(g *genesis.Genesis, chainFile string, log *zap.Logger) (*Fetcher, error) {
	if log == nil {
		log = zap.NewNop()
	}
	f := &Fetcher{genesis: g, hc: &http.Client{Timeout: 10 * time.Second}, chainFile: chainFile, log: log, chain: directory.NewChain(g.NetworkID)}
	if chainFile == "" {
		return f, nil
	}
	b, err := os.ReadFile(chainFile)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("directory chain state: %w", err)
	default:
		c, err := directory.ParseChain(b)
		if err != nil {
			return nil, fmt.Errorf("directory chain state %s: %w", chainFile, err)
		}
		if c.NetworkID() != g.NetworkID {
			return nil, fmt.Errorf("directory chain state %s belongs to another network", chainFile)
		}
		f.chain = c
	}
	return f, nil
}

// CloseIdleConnections closes the connections kept for the next fetch: a client whose fetches change
// path (through its tunnel, or around it) must not reuse one made on the other path.
func (f *Fetcher) CloseIdleConnections() { f.hc.CloseIdleConnections() }

// SetHTTPClient replaces the HTTP client the fetcher uses (a test network dials from inside a
// namespace).
func (f *Fetcher) SetHTTPClient(hc *http.Client) { f.hc = hc }

// ErrWrongGenesis is a fetch whose every authority answered with a document that the genesis file
// does not vouch for: signed by another key, or for another network. Waiting does not fix that; the
// genesis file (or the network it was given for) is the wrong one.
var ErrWrongGenesis = errors.New("every authority answers with a document the genesis file does not vouch for (signed by another key, or for another network): is it the right genesis file?")

// errNotVouched is a document signed by a key other than its authority's, or for another network.
var errNotVouched = errors.New("not vouched for by the genesis file")

// Fetch asks every authority at once and returns the network a threshold of them agree on. What was
// left out and why (an authority that did not answer, a rollback, a descriptor that did not match) is
// in the NetDir's Problems: kept for status and logs, not fatal while a threshold agrees.
//
// The documents and the descriptors come in two requests to each authority, and an authority that
// publishes a new document in between serves the descriptors of the new one: relays that republished
// their descriptors meanwhile (every few seconds on a test network) then have none that the consensus
// names. A fetch that misses descriptors so is made once more, documents and all.
func (f *Fetcher) Fetch(ctx context.Context, now time.Time) (*NetDir, error) {
	dir, missing, err := f.fetchOnce(ctx, now)
	if missing > 0 && ctx.Err() == nil {
		if again, left, err2 := f.fetchOnce(ctx, now); err2 == nil && left < missing {
			return again, nil
		}
	}
	return dir, err
}

// fetchOnce is one Fetch: the documents, then the descriptors they name. missing counts the relays of
// the consensus left out for want of their descriptor.
func (f *Fetcher) fetchOnce(ctx context.Context, now time.Time) (_ *NetDir, missing int, _ error) {
	g := f.genesis
	docs := make([]*directory.Directory, len(g.Authorities))
	errs := make([]error, len(g.Authorities))
	var wg sync.WaitGroup
	for i, a := range g.Authorities {
		wg.Go(func() { docs[i], errs[i] = f.fetchDocument(ctx, a) })
	}
	wg.Wait()
	var problems []error
	var counted []*directory.Directory
	strangers := 0
	for i, d := range docs {
		if errs[i] == nil && d.NetworkID != g.NetworkID {
			errs[i] = fmt.Errorf("%w: the document is for network %x", errNotVouched, d.NetworkID[:8])
		}
		if errors.Is(errs[i], errNotVouched) || errors.Is(errs[i], directory.ErrWrongNetwork) {
			strangers++
		}
		if errs[i] != nil {
			problems = append(problems, fmt.Errorf("authority %s: %w", name(g.Authorities[i]), errs[i]))
			continue
		}
		counted = append(counted, d)
	}
	if strangers == len(docs) {
		return nil, 0, withProblems(ErrWrongGenesis, problems)
	}
	cons, err := directory.Combine(g.NetworkID, g.AuthorityKeys(), g.Threshold, counted, now)
	if err != nil {
		if !errors.Is(err, directory.ErrNoConsensus) { // which says so itself
			err = fmt.Errorf("no consensus: %w", err)
		}
		return nil, 0, withProblems(err, problems)
	}
	problems = append(problems, cons.Ignored...)
	f.saveChain()
	descs := f.fetchDescriptors(ctx, cons, now, &problems)
	missing = len(cons.Relays) - len(descs)
	dir, left, err := FromConsensus(cons, descs)
	problems = append(problems, left...)
	if err != nil {
		return nil, missing, withProblems(err, problems)
	}
	dir.problems = problems
	return dir, missing, nil
}

// withProblems adds to err what was left out on the way, if anything was: a formatted nil error
// ("(<nil>)", "%!w(<nil>)") tells the user nothing.
func withProblems(err error, problems []error) error {
	if len(problems) == 0 {
		return err
	}
	return fmt.Errorf("%w (%w)", err, errors.Join(problems...))
}

func name(a genesis.Authority) string {
	if a.Name != "" {
		return a.Name
	}
	return a.Identity.String()[:12]
}

// fetchDocument gets an authority's latest document and advances its chain to it.
func (f *Fetcher) fetchDocument(ctx context.Context, a genesis.Authority) (*directory.Directory, error) {
	b, err := f.get(ctx, a.URL+directory.PathDirectory, maxDocument)
	if err != nil {
		return nil, err
	}
	d, err := directory.Parse(b)
	if err != nil {
		return nil, err
	}
	if d.Authority != a.Identity {
		return nil, fmt.Errorf("%w: the document is signed by %s, not by this authority", errNotVouched, d.Authority)
	}
	previous := func(serial uint64) (*directory.Directory, error) {
		b, err := f.get(ctx, a.URL+directory.PathDirectory+"/"+strconv.FormatUint(serial, 10), maxDocument)
		if err != nil {
			return nil, err
		}
		return directory.Parse(b)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.chain.Advance(d, previous); err != nil {
		return nil, err
	}
	return d, nil
}

// fetchDescriptors gets the descriptor bundles of the authorities until every relay of the consensus
// has its descriptor, keeping only those whose digest the consensus names.
func (f *Fetcher) fetchDescriptors(ctx context.Context, cons *directory.Consensus, now time.Time, problems *[]error) map[[32]byte]*descriptor.Descriptor {
	want := make(map[[32]byte]bool, len(cons.Relays))
	for _, r := range cons.Relays {
		want[r.Descriptor] = true
	}
	got := make(map[[32]byte]*descriptor.Descriptor, len(want))
	for _, a := range f.genesis.Authorities {
		if len(got) == len(want) {
			break
		}
		b, err := f.get(ctx, a.URL+directory.PathDescriptors, maxDescriptors)
		if err != nil {
			*problems = append(*problems, fmt.Errorf("descriptors from %s: %w", name(a), err))
			continue
		}
		items, err := directory.ParseBundle(b)
		if err != nil {
			*problems = append(*problems, fmt.Errorf("descriptors from %s: %w", name(a), err))
			continue
		}
		for _, raw := range items {
			dg := descriptor.Digest(raw)
			if !want[dg] || got[dg] != nil {
				continue
			}
			d, err := descriptor.Parse(raw)
			if err == nil {
				err = d.Check(now, f.genesis.NetworkID)
			}
			if err != nil {
				*problems = append(*problems, fmt.Errorf("descriptor from %s: %w", name(a), err))
				continue
			}
			got[dg] = d
		}
	}
	return got
}

func (f *Fetcher) get(ctx context.Context, url string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("GET %s: more than %d bytes", url, limit)
	}
	return b, nil
}

func (f *Fetcher) saveChain() {
	if f.chainFile == "" {
		return
	}
	f.mu.Lock()
	b := f.chain.Encode()
	f.mu.Unlock()
	if err := keys.WritePrivateFile(f.chainFile, b); err != nil {
		f.log.Warn("saving the directory chain state", zap.Error(err))
	}
}

// FetchUntil fetches the network, retrying (after 200 ms, growing to 5 s) until it works or ctx ends.
// What each fetch left out is logged.
func (f *Fetcher) FetchUntil(ctx context.Context) (*NetDir, error) {
	for attempt := 0; ; attempt++ {
		dir, err := f.Fetch(ctx, time.Now())
		if err == nil {
			for _, p := range dir.problems {
				f.log.Info("directory", zap.Error(p))
			}
			return dir, nil
		}
		if errors.Is(err, ErrWrongGenesis) {
			return nil, err // waiting does not fix it
		}
		f.log.Warn("no directory yet", zap.Error(err))
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no directory: %w (last: %v)", ctx.Err(), err)
		case <-time.After(min(time.Duration(attempt+1)*200*time.Millisecond, 5*time.Second)):
		}
	}
}
