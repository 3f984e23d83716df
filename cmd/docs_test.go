package cmd

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// binaries are the programs the guides document, each with the arguments that print its flags.
var binaries = map[string][]string{
	"meshvpn-exit-node":     {"--help"},
	"meshvpn-dht-bootstrap": {"--help"},
	"meshvpn-discovery":     {"--help"},
	"meshvpn-client":        {"--help"},
	"meshvpn-bootstrap":     {"init", "--help"}, // the guides document init; testnet and soak are the developers' (README)
}

// guides are the documents whose flags are checked, each with the program its sections are about
// (by the heading that starts them) when a line names none.
var guides = map[string][]struct{ heading, binary string }{
	"../docs/operators.md": {
		{"", "meshvpn-exit-node"},
		{"## Running a DHT bootstrap node", "meshvpn-dht-bootstrap"},
		{"## Running a discovery authority", "meshvpn-discovery"},
		{"## Making a network", "meshvpn-bootstrap"},
	},
	"../docs/client.md": {{"", "meshvpn-client"}},
}

// foreign are other programs the guides show with flags of their own.
var foreign = []string{"systemctl", "journalctl", "curl", "ip", "nft", "apt", "make", "install", "go", "iperf3", "dig", "ping", "tcpdump"}

var flagToken = regexp.MustCompile(`^--([a-z][a-z0-9-]*)(=.*)?$`)

// TestGuidesDocumentEveryFlag: every flag docs/operators.md and docs/client.md give a program is one
// its --help lists, and every flag its --help lists is in them. A line's flags belong to the program
// the line names last before them (a shell command continued with \ goes on with it), or else to
// the program the section is about; flags after another program's name (systemctl, curl) are its.
func TestGuidesDocumentEveryFlag(t *testing.T) {
	bin := t.TempDir()
	args := []string{"build", "-o", bin + "/"}
	for b := range binaries {
		args = append(args, "./"+b)
	}
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	helped := map[string][]string{}
	for b, a := range binaries {
		// Its exit code is not this test's business (meshvpn-bootstrap init --help exits 2).
		out, _ := exec.Command(filepath.Join(bin, b), a...).CombinedOutput()
		for _, m := range regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(string(out), -1) {
			helped[b] = append(helped[b], m[1])
		}
		if len(helped[b]) == 0 {
			t.Fatalf("%s %s lists no flags:\n%s", b, strings.Join(a, " "), out)
		}
	}
	documented := map[string]map[string]bool{}
	for doc, sections := range guides {
		for flag, where := range guideFlags(t, doc, sections) {
			b, f := flag[0], flag[1]
			if documented[b] == nil {
				documented[b] = map[string]bool{}
			}
			documented[b][f] = true
			if f != "help" && !slices.Contains(helped[b], f) {
				t.Errorf("%s, %s: --%s is not a flag of %s (its --help lists %v)", doc, where, f, b, helped[b])
			}
		}
	}
	for b, fs := range helped {
		for _, f := range fs {
			if !documented[b][f] {
				t.Errorf("%s --%s is in its --help but in neither guide", b, f)
			}
		}
	}
}

// guideFlags returns the flags doc gives each program ({program, flag}), each with the first line
// that gives it.
func guideFlags(t *testing.T, doc string, sections []struct{ heading, binary string }) map[[2]string]string {
	t.Helper()
	f, err := os.Open(doc)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	flags := map[[2]string]string{}
	section, carried, continued, inSpan := sections[0].binary, "", false, false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		for _, s := range sections[1:] {
			if strings.HasPrefix(line, s.heading) {
				section = s.binary
			}
		}
		current := section
		if continued {
			current = carried
		}
		for _, tok := range strings.Fields(line) {
			tok = strings.Trim(tok, "`'\"()[],.;:")
			switch base := filepath.Base(tok); {
			case binaries[base] != nil:
				current = base
			case slices.Contains(foreign, base):
				current = ""
			default:
				if m := flagToken.FindStringSubmatch(tok); m != nil && current != "" {
					key := [2]string{current, m[1]}
					if _, ok := flags[key]; !ok {
						flags[key] = "line " + strconv.Itoa(n)
					}
				}
			}
		}
		// A code span that goes on to the next line (a command wrapped in prose) carries on too.
		if strings.HasPrefix(line, "```") {
			inSpan = false
		} else if strings.Count(line, "`")%2 == 1 {
			inSpan = !inSpan
		}
		continued, carried = inSpan || strings.HasSuffix(strings.TrimSpace(line), "\\"), current
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return flags
}
