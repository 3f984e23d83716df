package clientd

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/meshvpn/meshvpn/core/netdir"
)

// pathDirectory is the control socket's directory view.
const pathDirectory = "/v1/directory"

// DirectoryView is the directory as `meshvpn-client directory` shows it: every relay the consensus
// lists, with its flags and weight, as the client uses them.
type DirectoryView struct {
	// Source is "daemon" (the directory the running client picks its paths from) or "fetched" (asked
	// of the genesis file's authorities just now, no daemon running).
	Source  string    `json:"source"`
	Fetched time.Time `json:"fetched"`
	// Authorities are those whose documents the consensus counted: identity and document serial.
	Authorities []string    `json:"authorities"`
	Relays      []RelayView `json:"relays"`
}

// RelayView is one relay of the directory.
type RelayView struct {
	// Name is the operator's label (a label, not an identity: anyone may claim any name).
	Name       string   `json:"name"`
	Identity   string   `json:"identity"`
	Address    string   `json:"address"`
	Flags      string   `json:"flags"`
	Weight     uint64   `json:"weight"`
	Bandwidth  uint64   `json:"bandwidth,omitempty"`
	Country    string   `json:"country,omitempty"`
	Region     string   `json:"region,omitempty"`
	Ports      string   `json:"exit_ports,omitempty"` // an exit's port summary
	IPv6       bool     `json:"ipv6,omitempty"`
	Rendezvous []string `json:"rendezvous,omitempty"` // behind a NAT: where others reach it
}

// ViewOf is the view of a directory, its relays sorted by name, then identity.
func ViewOf(dir *netdir.NetDir, source string) DirectoryView {
	v := DirectoryView{Source: source, Fetched: dir.Fetched()}
	for _, a := range dir.Sources() {
		v.Authorities = append(v.Authorities, fmt.Sprintf("%s serial %d", a.Authority, a.Serial))
	}
	for _, r := range dir.Relays() {
		rv := RelayView{Name: r.Name, Identity: r.Identity.String(), Address: r.Addr.String(), Flags: r.Flags.String(),
			Weight: r.Weight, Bandwidth: r.Bandwidth, Country: r.Country, Region: r.Region, IPv6: r.IPv6}
		if r.IsExit() {
			rv.Ports = r.Exit.String()
		}
		for _, rz := range r.Rendezvous {
			rv.Rendezvous = append(rv.Rendezvous, rz.Addr.String())
		}
		v.Relays = append(v.Relays, rv)
	}
	slices.SortFunc(v.Relays, func(a, b RelayView) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Identity, b.Identity)
	})
	return v
}

// Directory returns the directory the daemon picks its paths from; false with a relay list or before
// the first directory.
func (d *Daemon) Directory() (DirectoryView, bool) {
	if d.picker == nil || d.genesis == nil {
		return DirectoryView{}, false
	}
	dir := d.picker.Dir()
	if dir == nil {
		return DirectoryView{}, false
	}
	return ViewOf(dir, "daemon"), true
}

// serveDirectory answers the control socket's directory view.
func serveDirectory(d *Daemon, w http.ResponseWriter) {
	v, ok := d.Directory()
	if !ok {
		http.Error(w, "no directory: the client runs from a relay list, or has none yet", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// Directory asks the daemon for the directory it uses.
func (c *Control) Directory(ctx context.Context) (DirectoryView, error) {
	var v DirectoryView
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://meshvpn"+pathDirectory, nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		return v, c.unreachable(err)
	}
	defer resp.Body.Close()
	if err := answerError(resp); err != nil {
		return v, err
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 16<<20)).Decode(&v); err != nil {
		return v, fmt.Errorf("control socket: %w", err)
	}
	return v, nil
}
