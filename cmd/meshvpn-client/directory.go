package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/meshvpn/meshvpn/cmd/internal/clientd"
	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
	"github.com/meshvpn/meshvpn/core/netdir"
)

// directory prints the directory: the running daemon's (what it picks paths from), or, with no daemon
// running, the one the genesis file's authorities agree on now.
func directory(args []string) error {
	cfg, o, err := parse(args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctl := clientd.Dial(controlSocket(cfg, o))
	defer ctl.Close()
	v, err := ctl.Directory(ctx)
	if errors.Is(err, clientd.ErrNotRunning) {
		if cfg.Genesis == "" {
			return daemon.Misconfigured(errors.New("no daemon runs and no genesis file is configured: pass --genesis FILE"))
		}
		v, err = fetchDirectory(ctx, cfg.Genesis)
	}
	if err != nil {
		return err
	}
	if o.json {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	printDirectory(os.Stdout, v)
	return nil
}

// fetchDirectory asks the genesis file's authorities for the directory, as the daemon does at start.
func fetchDirectory(ctx context.Context, genesisFile string) (clientd.DirectoryView, error) {
	g, err := daemon.LoadGenesis(genesisFile)
	if err != nil {
		return clientd.DirectoryView{}, err
	}
	f, err := netdir.NewFetcher(g, "", nil)
	if err != nil {
		return clientd.DirectoryView{}, err
	}
	dir, err := f.Fetch(ctx, time.Now())
	if err != nil {
		return clientd.DirectoryView{}, fmt.Errorf("directory: %w", err)
	}
	return clientd.ViewOf(dir, "fetched"), nil
}

// printDirectory writes the directory as a table, one relay a line.
func printDirectory(w io.Writer, v clientd.DirectoryView) {
	from := "the running client's"
	if v.Source == "fetched" {
		from = "fetched now (no client running)"
	}
	fmt.Fprintf(w, "directory: %d relays, agreed by %d authorities, %s, fetched %s\n", len(v.Relays), len(v.Authorities), from, v.Fetched.Format(time.DateTime))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADDRESS\tFLAGS\tWEIGHT\tEXIT PORTS\tPLACE\tIDENTITY")
	for _, r := range v.Relays {
		place := r.Country
		if r.Region != "" {
			place += "/" + r.Region
		}
		ports := r.Ports
		if r.IPv6 {
			ports += " +IPv6"
		}
		addr := r.Address
		if len(r.Rendezvous) > 0 {
			addr += " via " + r.Rendezvous[0]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", r.Name, addr, r.Flags, r.Weight, dash(ports), dash(place), r.Identity)
	}
	tw.Flush()
	fmt.Fprintln(w, "Names are the operators' labels, not identities: any relay may claim any name.")
}
