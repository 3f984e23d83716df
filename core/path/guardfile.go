package path

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/meshvpn/meshvpn/crypto/keys"
)

// The guard file is a header line and one line per guard, in order:
//
//	meshvpn guard set v1
//	guard <identity, base64> sampled=2026-01-02T03:04:05Z expires=2026-02-14T03:04:05Z
//
// It has one spelling per set (UTC times in whole seconds, single spaces, a final newline, nothing
// else), so that the parser can be strict and a set read back is the set that was written.
const (
	guardFileHeader  = "meshvpn guard set v1"
	guardTimeLayout  = "2006-01-02T15:04:05Z"
	maxGuardFileSize = 4 << 10
)

// ErrInsecureGuardFile is returned (wrapped) by LoadGuardSet for a guard file that group or others
// may access: whoever can write it chooses the client's guards, and whoever can read it learns them.
var ErrInsecureGuardFile = errors.New("path: guard file is accessible by group or others")

// Save writes the set to path with mode 0600, atomically (a crash leaves the old file or the new one,
// never half of one), and clears Changed.
func (g *GuardSet) Save(path string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := keys.WritePrivateFile(path, formatGuardSet(g.guards)); err != nil {
		return fmt.Errorf("path: save guard file: %w", err)
	}
	g.changed = false
	return nil
}

// LoadGuardSet reads a set that Save wrote. A missing file gives an error matching fs.ErrNotExist;
// LoadOrNewGuardSet treats that as an empty set.
func LoadGuardSet(path string) (*GuardSet, error) {
	data, err := readGuardFile(path)
	if err == nil {
		var guards []GuardEntry
		if guards, err = parseGuardSet(data); err == nil {
			return &GuardSet{guards: guards}, nil
		}
	}
	return nil, fmt.Errorf("path: guard file %s: %w", path, err)
}

// LoadOrNewGuardSet reads the set at path, or returns an empty one (to be filled by the first Pick
// and saved) when there is no file yet.
func LoadOrNewGuardSet(path string) (*GuardSet, error) {
	g, err := LoadGuardSet(path)
	if errors.Is(err, fs.ErrNotExist) {
		return NewGuardSet(), nil
	}
	return g, err
}

func formatGuardSet(guards []GuardEntry) []byte {
	var b bytes.Buffer
	b.WriteString(guardFileHeader + "\n")
	for _, e := range guards {
		fmt.Fprintf(&b, "guard %s sampled=%s expires=%s\n",
			e.Identity, e.Sampled.UTC().Format(guardTimeLayout), e.Expires.UTC().Format(guardTimeLayout))
	}
	return b.Bytes()
}

// parseGuardSet reads what formatGuardSet writes, and only that, reporting every bad line.
func parseGuardSet(data []byte) ([]GuardEntry, error) {
	if len(data) > maxGuardFileSize {
		return nil, fmt.Errorf("%d bytes, more than %d", len(data), maxGuardFileSize)
	}
	text, ok := strings.CutSuffix(string(data), "\n")
	if !ok {
		return nil, errors.New("not a guard file: does not end in a newline")
	}
	lines := strings.Split(text, "\n")
	if lines[0] != guardFileHeader {
		return nil, fmt.Errorf("not a guard file: line 1 is %.40q, want %q", lines[0], guardFileHeader)
	}
	lines = lines[1:]
	if len(lines) > GuardMax {
		return nil, fmt.Errorf("%d guards, more than %d", len(lines), GuardMax)
	}
	var errs []error
	guards := make([]GuardEntry, 0, len(lines))
	seen := make(map[keys.IdentityPublic]int)
	for i, line := range lines {
		e, err := parseGuardLine(line)
		if err == nil {
			if first, dup := seen[e.Identity]; dup {
				err = fmt.Errorf("guard %s is listed again (first on line %d)", e.Identity, first)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", i+2, err))
			continue
		}
		seen[e.Identity] = i + 2
		guards = append(guards, e)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return guards, nil
}

func parseGuardLine(line string) (GuardEntry, error) {
	f := strings.Split(line, " ")
	if len(f) != 4 || f[0] != "guard" {
		return GuardEntry{}, fmt.Errorf("%.60q: want \"guard <identity> sampled=<time> expires=<time>\"", line)
	}
	var e GuardEntry
	var errs []error
	var err error
	if e.Identity, err = keys.ParseIdentityPublic(f[1]); err != nil {
		errs = append(errs, err)
	}
	if e.Sampled, err = parseGuardTime(f[2], "sampled="); err != nil {
		errs = append(errs, err)
	}
	if e.Expires, err = parseGuardTime(f[3], "expires="); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		switch life := e.Expires.Sub(e.Sampled); {
		case life <= 0:
			errs = append(errs, errors.New("expires before it was sampled"))
		case life > GuardLifetimeMax:
			errs = append(errs, fmt.Errorf("lifetime %v is longer than the longest, %v", life, GuardLifetimeMax))
		}
	}
	if len(errs) == 0 {
		return e, nil
	}
	msgs := make([]string, len(errs))
	for i, err := range errs {
		msgs[i] = err.Error()
	}
	return e, errors.New(strings.Join(msgs, "; ")) // one line per line of the file
}

func parseGuardTime(s, key string) (time.Time, error) {
	v, ok := strings.CutPrefix(s, key)
	if !ok {
		return time.Time{}, fmt.Errorf("%.40q: want %s<time>", s, key)
	}
	t, err := time.Parse(guardTimeLayout, v)
	if err != nil || t.Format(guardTimeLayout) != v {
		return time.Time{}, fmt.Errorf("%s%.30q: want a UTC time like 2026-01-02T03:04:05Z", key, v)
	}
	return t, nil
}

func readGuardFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (mode %v)", fi.Mode())
	}
	// Windows has no Unix permission bits; os reports a fixed mode there that says nothing about access.
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("%w: mode %#o; run: chmod 600 %s", ErrInsecureGuardFile, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxGuardFileSize+1))
	if err != nil {
		return nil, err
	}
	return data, nil
}
