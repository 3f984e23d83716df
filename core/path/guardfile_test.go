package path

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

const goodGuardFile = `meshvpn guard set v1
guard pQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= sampled=2026-03-01T12:00:00Z expires=2026-04-14T07:31:09Z
guard pQABAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= sampled=2026-03-01T12:00:00Z expires=2026-04-30T12:00:00Z
`

func TestGuardFileRoundTrip(t *testing.T) {
	file := filepath.Join(t.TempDir(), "guards")
	g := NewGuardSet()
	pickGuard(t, newSelector(t, guardNet(), g, 1, nil), ExitChoice{})
	if err := g.Save(file); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("guard file mode %#o, want 0600", fi.Mode().Perm())
	}
	g2, err := LoadGuardSet(file)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g2.Guards(), g.Guards()) || g2.Changed() {
		t.Fatalf("loaded %v, saved %v", g2.Guards(), g.Guards())
	}

	guards, err := parseGuardSet([]byte(goodGuardFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(guards) != 2 || guards[0].Identity != testID(0) || guards[1].Identity != testID(1) ||
		!guards[0].Expires.Equal(time.Date(2026, 4, 14, 7, 31, 9, 0, time.UTC)) {
		t.Fatalf("parsed %v", guards)
	}
	if got := formatGuardSet(guards); string(got) != goodGuardFile {
		t.Fatalf("formatted as\n%s", got)
	}
	if guards, err := parseGuardSet([]byte(guardFileHeader + "\n")); err != nil || len(guards) != 0 {
		t.Fatalf("empty set: %v, %v", guards, err)
	}
}

// file1 is a guard file of one line.
func file1(line string) string { return guardFileHeader + "\n" + line + "\n" }

func TestGuardFileGarbage(t *testing.T) {
	line := strings.Split(goodGuardFile, "\n")[1]
	for _, tc := range []struct {
		name, data, want string
	}{
		{"empty", "", "does not end in a newline"},
		{"no final newline", strings.TrimSuffix(goodGuardFile, "\n"), "does not end in a newline"},
		{"not a guard file", "[[relay]]\nname = \"r1\"\n", `not a guard file: line 1 is "[[relay]]"`},
		{"other version", "meshvpn guard set v2\n", "not a guard file"},
		{"blank line", goodGuardFile + "\n", "line 4:"},
		{"CRLF", strings.ReplaceAll(goodGuardFile, "\n", "\r\n"), "not a guard file"},
		{"double space", file1(strings.Replace(line, " ", "  ", 1)), "line 2:"},
		{"bad keyword", file1("relay" + strings.TrimPrefix(line, "guard")), `want "guard <identity>`},
		{"bad identity", file1(strings.Replace(line, "pQAA", "pQA!", 1)), "line 2: keys:"},
		{"local time", file1(strings.Replace(line, "12:00:00Z", "13:00:00+01:00", 1)),
			"want a UTC time"},
		{"fractions", file1(strings.Replace(line, "12:00:00Z", "12:00:00.5Z", 1)), "want a UTC time"},
		{"no key", file1(strings.Replace(line, "sampled=", "", 1)), "want sampled=<time>"},
		{"swapped keys", file1(strings.NewReplacer("sampled=", "expires=", "expires=", "sampled=").Replace(line)),
			"want sampled=<time>"},
		{"expires first", file1(strings.Replace(line, "2026-04-14T07:31:09Z", "2026-03-01T12:00:00Z", 1)),
			"expires before it was sampled"},
		{"pinned forever", file1(strings.Replace(line, "2026-04-14", "2099-04-14", 1)),
			"is longer than the longest"},
		{"duplicate", goodGuardFile + line + "\n",
			"line 4: guard pQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= is listed again (first on line 2)"},
		{"too many", guardFileHeader + "\n" + strings.Repeat(line+"\n", GuardMax+1), "7 guards, more than 6"},
		{"too big", guardFileHeader + "\n" + strings.Repeat("x", maxGuardFileSize), "more than 4096"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseGuardSet([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("parse: %v; want an error saying %q", err, tc.want)
			}
			file := filepath.Join(t.TempDir(), "guards")
			if err := os.WriteFile(file, []byte(tc.data), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = LoadGuardSet(file)
			if err == nil || !strings.Contains(err.Error(), "path: guard file "+file+": ") ||
				!strings.Contains(err.Error(), tc.want) {
				t.Fatalf("LoadGuardSet: %v", err)
			}
			if _, err := LoadOrNewGuardSet(file); err == nil {
				t.Fatal("LoadOrNewGuardSet accepted a bad file")
			}
		})
	}
}

func TestGuardFileEveryBadLineReported(t *testing.T) {
	line := strings.Split(goodGuardFile, "\n")[1]
	data := guardFileHeader + "\n" + line + "\nguard x sampled=y expires=z\n" + "nonsense\n"
	_, err := parseGuardSet([]byte(data))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"line 3: keys:", "; sampled=", "; expires=", "\nline 4:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestGuardFileAccess(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "none")
	if _, err := LoadGuardSet(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	if g, err := LoadOrNewGuardSet(missing); err != nil || len(g.Guards()) != 0 {
		t.Errorf("LoadOrNewGuardSet of a missing file: %v, %v", g, err)
	}
	if _, err := LoadGuardSet(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
	if runtime.GOOS == "windows" {
		return
	}
	file := filepath.Join(dir, "guards")
	if err := os.WriteFile(file, []byte(goodGuardFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadGuardSet(file); !isErr(err, ErrInsecureGuardFile, "chmod 600") {
		t.Errorf("mode 0644: %v, want ErrInsecureGuardFile", err)
	}
}

func TestGuardFileSaveReplaces(t *testing.T) {
	file := filepath.Join(t.TempDir(), "guards")
	if err := os.WriteFile(file, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := NewGuardSet().Save(file); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(file)
	if err != nil || !bytes.Equal(data, []byte(guardFileHeader+"\n")) {
		t.Fatalf("file holds %q, %v", data, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(file))
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

func FuzzParseGuardSet(f *testing.F) {
	f.Add([]byte(goodGuardFile))
	f.Add([]byte(guardFileHeader + "\n"))
	f.Add([]byte(guardFileHeader + "\nguard x sampled=y expires=z\n"))
	f.Add([]byte(strings.Replace(goodGuardFile, "2026-04-14", "2099-04-14", 1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		guards, err := parseGuardSet(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if got := formatGuardSet(guards); !bytes.Equal(got, data) {
			t.Fatalf("%q parses, but formats as %q: two spellings of one set", data, got)
		}
		if len(guards) > GuardMax {
			t.Fatalf("%d guards", len(guards))
		}
		seen := map[[32]byte]bool{}
		for _, e := range guards {
			if seen[e.Identity] {
				t.Fatalf("%v twice", e.Identity)
			}
			seen[e.Identity] = true
			if life := e.Expires.Sub(e.Sampled); life <= 0 || life > GuardLifetimeMax {
				t.Fatalf("lifetime %v accepted", life)
			}
		}
	})
}
