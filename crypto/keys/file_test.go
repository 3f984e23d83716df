package keys

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func skipOnWindows(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix permission bits")
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestIdentityFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "identity.key")
	k, err := GenerateIdentity(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := SaveIdentity(path, k); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "# MeshVPN identity key (Ed25519 seed). Keep this file secret.\n" +
		"meshvpn-identity-v1 " + base64.StdEncoding.EncodeToString(k.Seed()) + "\n"
	if string(data) != want {
		t.Errorf("file contents:\n%s\nwant:\n%s", data, want)
	}
	got, err := LoadIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Seed(), k.Seed()) {
		t.Error("loaded identity key differs from the saved one")
	}
}

func TestStaticFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "onion.key")
	k, err := GenerateStatic(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := SaveStatic(path, k); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "# MeshVPN static key (X25519). Keep this file secret.\n" +
		"meshvpn-static-v1 " + base64.StdEncoding.EncodeToString(k.Bytes()) + "\n"
	if string(data) != want {
		t.Errorf("file contents:\n%s\nwant:\n%s", data, want)
	}
	got, err := LoadStatic(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), k.Bytes()) {
		t.Error("loaded static key differs from the saved one")
	}
}

func TestSaveReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "id.key")
	a, _ := GenerateIdentity(rand.Reader)
	b, _ := GenerateIdentity(rand.Reader)
	if err := SaveIdentity(path, a); err != nil {
		t.Fatal(err)
	}
	if err := SaveIdentity(path, b); err != nil {
		t.Fatal(err)
	}
	got, err := LoadIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Public() != b.Public() {
		t.Error("second save did not replace the key")
	}
}

func TestSavePermissions(t *testing.T) {
	skipOnWindows(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "dir", "id.key")
	k, _ := GenerateIdentity(rand.Reader)
	if err := SaveIdentity(path, k); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode = %#o, want 0600", perm)
	}
	for _, d := range []string{filepath.Join(dir, "sub"), filepath.Join(dir, "sub", "dir")} {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o700 {
			t.Errorf("created directory %s mode = %#o, want 0700", d, perm)
		}
	}
}

func TestLoadRefusesInsecurePermissions(t *testing.T) {
	skipOnWindows(t)
	for _, mode := range []fs.FileMode{0o644, 0o640, 0o604, 0o660, 0o601} {
		dir := t.TempDir()
		idPath := filepath.Join(dir, "id.key")
		stPath := filepath.Join(dir, "st.key")
		id, _ := GenerateIdentity(rand.Reader)
		st, _ := GenerateStatic(rand.Reader)
		if err := SaveIdentity(idPath, id); err != nil {
			t.Fatal(err)
		}
		if err := SaveStatic(stPath, st); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{idPath, stPath} {
			if err := os.Chmod(p, mode); err != nil {
				t.Fatal(err)
			}
		}
		_, err := LoadIdentity(idPath)
		checkInsecure(t, err, idPath, mode)
		_, err = LoadStatic(stPath)
		checkInsecure(t, err, stPath, mode)
		_, _, err = LoadOrCreateIdentity(idPath, rand.Reader)
		checkInsecure(t, err, idPath, mode)
	}
}

func checkInsecure(t *testing.T, err error, path string, mode fs.FileMode) {
	t.Helper()
	if !errors.Is(err, ErrInsecurePermissions) {
		t.Fatalf("mode %#o: err = %v, want ErrInsecurePermissions", mode, err)
	}
	msg := err.Error()
	for _, want := range []string{path, "chmod 600", "0" + octal(mode)} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
}

func octal(m fs.FileMode) string {
	const digits = "01234567"
	p := uint32(m.Perm())
	return string([]byte{digits[p>>6&7], digits[p>>3&7], digits[p&7]})
}

func TestLoadWrongKind(t *testing.T) {
	dir := t.TempDir()
	idPath := filepath.Join(dir, "id.key")
	stPath := filepath.Join(dir, "st.key")
	id, _ := GenerateIdentity(rand.Reader)
	st, _ := GenerateStatic(rand.Reader)
	if err := SaveIdentity(idPath, id); err != nil {
		t.Fatal(err)
	}
	if err := SaveStatic(stPath, st); err != nil {
		t.Fatal(err)
	}
	_, err := LoadIdentity(stPath)
	if err == nil || !strings.Contains(err.Error(), "found static key") || !strings.Contains(err.Error(), "want identity key") {
		t.Errorf("LoadIdentity(static file): err = %v, want one naming both kinds", err)
	}
	_, err = LoadStatic(idPath)
	if err == nil || !strings.Contains(err.Error(), "found identity key") || !strings.Contains(err.Error(), "want static key") {
		t.Errorf("LoadStatic(identity file): err = %v, want one naming both kinds", err)
	}
}

func TestLoadMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.key")
	_, err := LoadIdentity(path)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "load identity key "+path) {
		t.Errorf("LoadIdentity(missing): err = %v", err)
	}
}

func TestLoadRefusesDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadStatic(dir); err == nil {
		t.Error("LoadStatic(directory): no error")
	}
}

func TestParseKeyFile(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	enc := base64.StdEncoding.EncodeToString(key)
	label := identityKind.label
	good := []struct {
		name, data string
	}{
		{"canonical", string(formatKeyFile(identityKind, key))},
		{"no comment", label + " " + enc},
		{"no final newline", "# c\n" + label + " " + enc},
		{"comments and blank lines", "\n# one\n\n   # two\n" + label + " " + enc + "\n\n# three\n"},
		{"CRLF", "# c\r\n" + label + " " + enc + "\r\n"},
		{"extra spaces", "  " + label + "\t  " + enc + "  "},
	}
	for _, tt := range good {
		got, err := parseKeyFile([]byte(tt.data), label)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
		} else if !bytes.Equal(got, key) {
			t.Errorf("%s: key = %x, want %x", tt.name, got, key)
		}
	}

	bad := []struct {
		name, data, errWant string
	}{
		{"empty", "", "no"},
		{"only comments", "# a\n# b\n", "no"},
		{"garbage", "hello world, this is not a key file\n", "want"},
		{"garbage pair", "hello world\n", "unknown key label"},
		{"binary", "\x00\x01\x02\xff", "want"},
		{"bare base64", enc + "\n", "want"},
		{"label only", label + "\n", "want"},
		{"three fields", label + " " + enc + " extra\n", "want"},
		{"two key lines", label + " " + enc + "\n" + label + " " + enc + "\n", "more than one key line"},
		{"static label", staticKind.label + " " + enc + "\n", "found static key"},
		{"future version", "meshvpn-identity-v2 " + enc + "\n", "unknown key label"},
		{"short key", label + " " + enc[:40] + "\n", "identity key"},
		{"33-byte key", label + " " + base64.StdEncoding.EncodeToString(make([]byte, 33)) + "\n", "identity key"},
		{"unpadded key", label + " " + strings.TrimRight(enc, "=") + "\n", "identity key"},
		{"bad base64", label + " " + "!" + enc[1:] + "\n", "base64"},
		{"non-canonical base64", label + " " + enc[:42] + "D=\n", "identity key"},
		{"oversize", strings.Repeat("#\n", 2100) + label + " " + enc + "\n", "larger than"},
	}
	for _, tt := range bad {
		got, err := parseKeyFile([]byte(tt.data), label)
		if err == nil {
			t.Errorf("%s: no error, key %x", tt.name, got)
			continue
		}
		if !strings.Contains(err.Error(), tt.errWant) {
			t.Errorf("%s: error %q does not contain %q", tt.name, err, tt.errWant)
		}
		if strings.Contains(err.Error(), enc[:20]) {
			t.Errorf("%s: error %q shows the key", tt.name, err)
		}
	}
}

func TestLoadRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	k, _ := GenerateIdentity(rand.Reader)
	line := "meshvpn-identity-v1 " + base64.StdEncoding.EncodeToString(k.Seed()) + "\n"
	files := map[string]string{
		"garbage":   "not a key\n",
		"two keys":  line + line,
		"oversize":  strings.Repeat("# padding padding padding\n", 200) + line,
		"empty":     "",
		"truncated": line[:30],
	}
	if len(files["oversize"]) <= maxKeyFileSize {
		t.Fatal("oversize test file is not over the limit")
	}
	for name, data := range files {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		writeFile(t, path, data)
		if _, err := LoadIdentity(path); err == nil {
			t.Errorf("%s: LoadIdentity: no error", name)
		} else if !strings.HasPrefix(err.Error(), "load identity key "+path+": ") {
			t.Errorf("%s: error %q lacks context", name, err)
		}
	}
	// Just under the limit is fine.
	path := filepath.Join(dir, "big")
	data := strings.Repeat("#", maxKeyFileSize-len(line)-1) + "\n" + line
	if len(data) != maxKeyFileSize {
		t.Fatalf("test file is %d bytes", len(data))
	}
	writeFile(t, path, data)
	if _, err := LoadIdentity(path); err != nil {
		t.Errorf("file of exactly %d bytes: %v", maxKeyFileSize, err)
	}
}

func TestLoadOrCreateIdentity(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "identity.key")
	seed := bytes.Repeat([]byte{9}, 32)
	k1, created, err := LoadOrCreateIdentity(path, bytes.NewReader(seed))
	if err != nil || !created {
		t.Fatalf("first call: created = %v, err = %v; want true, nil", created, err)
	}
	if !bytes.Equal(k1.Seed(), seed) {
		t.Error("created key was not made from the reader")
	}
	k2, created, err := LoadOrCreateIdentity(path, bytes.NewReader(bytes.Repeat([]byte{1}, 32)))
	if err != nil || created {
		t.Fatalf("second call: created = %v, err = %v; want false, nil", created, err)
	}
	if k2.Public() != k1.Public() {
		t.Error("second call returned a different key")
	}
}

func TestLoadOrCreateStatic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "onion.key")
	k1, created, err := LoadOrCreateStatic(path, rand.Reader)
	if err != nil || !created {
		t.Fatalf("first call: created = %v, err = %v; want true, nil", created, err)
	}
	k2, created, err := LoadOrCreateStatic(path, rand.Reader)
	if err != nil || created {
		t.Fatalf("second call: created = %v, err = %v; want false, nil", created, err)
	}
	if k2.Public() != k1.Public() {
		t.Error("second call returned a different key")
	}
}

func TestLoadOrCreateKeepsBadFile(t *testing.T) {
	dir := t.TempDir()
	corrupt := "meshvpn-identity-v1 this-is-not-base64\n"
	st, _ := GenerateStatic(rand.Reader)
	stPath := filepath.Join(dir, "static.key")
	if err := SaveStatic(stPath, st); err != nil {
		t.Fatal(err)
	}
	stData, _ := os.ReadFile(stPath)
	cases := map[string]string{
		filepath.Join(dir, "corrupt.key"): corrupt,
		filepath.Join(dir, "empty.key"):   "",
		stPath:                            string(stData), // a static key where an identity key belongs
	}
	for path, data := range cases {
		if path != stPath {
			writeFile(t, path, data)
		}
		k, created, err := LoadOrCreateIdentity(path, rand.Reader)
		if err == nil || created || k != nil {
			t.Errorf("%s: LoadOrCreateIdentity = %v, %v, %v; want an error", path, k, created, err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != data {
			t.Errorf("%s was overwritten", path)
		}
	}

	// A dangling symlink is an existing name; creating through it would write somewhere unexpected.
	if runtime.GOOS != "windows" {
		link := filepath.Join(dir, "link.key")
		target := filepath.Join(dir, "elsewhere.key")
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		if _, created, err := LoadOrCreateStatic(link, rand.Reader); err == nil || created {
			t.Errorf("dangling symlink: created = %v, err = %v; want an error", created, err)
		}
		if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a key was written through a dangling symlink")
		}
	}
}

func TestLoadOrCreateShortReader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "id.key")
	if _, created, err := LoadOrCreateIdentity(path, bytes.NewReader(nil)); err == nil || created {
		t.Errorf("created = %v, err = %v; want an error", created, err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Error("a key file was written after generation failed")
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestSaveLeavesNoTempFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "id.key")
	k, _ := GenerateIdentity(rand.Reader)
	for range 3 {
		if err := SaveIdentity(path, k); err != nil {
			t.Fatal(err)
		}
	}
	if names := dirNames(t, dir); len(names) != 1 || names[0] != "id.key" {
		t.Errorf("directory holds %q after saves, want only id.key", names)
	}

	// Make the final rename fail: the target is a non-empty directory.
	dir = t.TempDir()
	path = filepath.Join(dir, "st.key")
	if err := os.MkdirAll(filepath.Join(path, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	st, _ := GenerateStatic(rand.Reader)
	err := SaveStatic(path, st)
	if err == nil {
		t.Fatal("SaveStatic over a directory: no error")
	}
	if !strings.HasPrefix(err.Error(), "save static key "+path+": ") {
		t.Errorf("error %q lacks context", err)
	}
	if names := dirNames(t, dir); len(names) != 1 || names[0] != "st.key" {
		t.Errorf("directory holds %q after a failed save, want only st.key", names)
	}
}
