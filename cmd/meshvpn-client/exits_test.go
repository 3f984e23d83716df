package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/cmd/internal/clientd"
)

// Status shows the exit choice, each set-exit and what connections it cost, and the refusals by port.
func TestPrintStatusExitChoice(t *testing.T) {
	s := sampleStatus()
	s.Exit = clientd.ExitChoiceStatus{Asked: "country:DE", Port: "tcp/443"}
	at := time.Date(2026, 1, 2, 15, 6, 7, 0, time.UTC)
	s.ExitMoves = []clientd.ExitMove{{At: at, Asked: "country:DE", From: "x-par", To: "x-ber", Path: []string{"g", "m", "x-ber"}},
		{At: at, Asked: "x-ber", To: "x-ber", Stayed: true}}
	s.Refused = map[string]uint64{"tcp/25": 3, "udp/53": 1}
	var b bytes.Buffer
	printStatus(&b, s)
	out := b.String()
	for _, want := range []string{
		"exit choice: country:DE, tcp/443 preferred\n",
		"exit moved 15:06:07: x-par → x-ber (set-exit country:DE); new exit session: connections through x-par were lost",
		"set-exit x-ber at 15:06:07: the exit in use, x-ber, fits; connections went on",
		"refused on the way out (the exit's policy): tcp/25 3, udp/53 1;",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	s.Exit = clientd.ExitChoiceStatus{Asked: "kq1Q", Port: "tcp/25", Required: true, Pinned: true}
	b.Reset()
	printStatus(&b, s)
	if want := "exit choice: kq1Q, must allow tcp/25 (pinned: rebuilds wait for this exit)"; !strings.Contains(b.String(), want) {
		t.Errorf("status lacks %q:\n%s", want, b.String())
	}
}

func TestPrintExits(t *testing.T) {
	l := clientd.ExitList{Source: "directory", Exits: []clientd.ExitInfo{
		{Name: "x-ber", Identity: "BERBERBER=", Country: "DE", Region: "eu-central", Bandwidth: 5 << 20, Ports: "tcp=1-24,26-65535 udp=none", Families: []string{"ipv4"}, State: "running", InUse: true},
		{Name: "x-ams", Identity: "AMSAMSAMS=", Ports: "tcp=80,443 udp=53", Families: []string{"ipv4", "ipv6"}, State: "degraded"},
	}}
	var b bytes.Buffer
	printExits(&b, l, "")
	out := b.String()
	for _, want := range []string{"* x-ber", "DE", "eu-central", "5.0 MiB/s", "tcp=1-24,26-65535 udp=none", "BERBERBER=",
		"  x-ams", "degraded", "ipv4,ipv6", "2 exits from the directory"} {
		if !strings.Contains(out, want) {
			t.Errorf("exits lack %q:\n%s", want, out)
		}
	}
	b.Reset()
	printExits(&b, clientd.ExitList{Source: "directory"}, "tcp/25")
	if !strings.Contains(b.String(), "No exit of the directory allows tcp/25") {
		t.Errorf("empty list:\n%s", b.String())
	}
}

func TestSetExitNeedsTheExitFirst(t *testing.T) {
	for _, args := range [][]string{nil, {"--port", "25"}} {
		if err := setExit(args); err == nil || !strings.Contains(err.Error(), "name the exit first") {
			t.Errorf("set-exit %v: %v", args, err)
		}
	}
}
