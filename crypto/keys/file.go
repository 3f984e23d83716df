package keys

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// ErrInsecurePermissions is returned (wrapped) when a key file can be read or written by users other
// than its owner. Like ssh, the loaders refuse such a key rather than use a secret others may have.
var ErrInsecurePermissions = errors.New("keys: key file is accessible by group or others")

// maxKeyFileSize bounds what a loader reads, so that a wrong path (a log, a device) fails fast.
const maxKeyFileSize = 4 << 10

// A keyKind describes one kind of key file.
type keyKind struct {
	name    string // for errors: "identity", "static"
	label   string // first field of the key line; the version is part of it
	comment string
}

var (
	identityKind = keyKind{
		name:    "identity",
		label:   "meshvpn-identity-v1",
		comment: "# MeshVPN identity key (Ed25519 seed). Keep this file secret.",
	}
	staticKind = keyKind{
		name:    "static",
		label:   "meshvpn-static-v1",
		comment: "# MeshVPN static key (X25519). Keep this file secret.",
	}
	keyKinds = []keyKind{identityKind, staticKind}
)

// SaveIdentity writes k to a key file at path with mode 0600, replacing any file there.
// The write is atomic: a crash leaves either the old file or the new one.
func SaveIdentity(path string, k *Identity) error {
	if err := saveKey(path, identityKind, k.Seed()); err != nil {
		return fmt.Errorf("save identity key %s: %w", path, err)
	}
	return nil
}

// LoadIdentity reads an identity key file written by SaveIdentity.
// It refuses files that group or others can access, with an error wrapping ErrInsecurePermissions.
func LoadIdentity(path string) (*Identity, error) {
	seed, err := loadKey(path, identityKind)
	if err != nil {
		return nil, fmt.Errorf("load identity key %s: %w", path, err)
	}
	k, err := IdentityFromSeed(seed)
	if err != nil {
		return nil, fmt.Errorf("load identity key %s: %w", path, err)
	}
	return k, nil
}

// LoadOrCreateIdentity loads the identity key file at path, or, if there is no file, generates a key
// from rand and saves it there; created reports which happened. An existing file is never replaced,
// even if it cannot be loaded, since it may hold the only copy of a node's identity.
func LoadOrCreateIdentity(path string, rand io.Reader) (k *Identity, created bool, err error) {
	if exists, err := fileExists(path); err != nil {
		return nil, false, fmt.Errorf("load identity key %s: %w", path, err)
	} else if exists {
		k, err := LoadIdentity(path)
		return k, false, err
	}
	if k, err = GenerateIdentity(rand); err != nil {
		return nil, false, err
	}
	if err := SaveIdentity(path, k); err != nil {
		return nil, false, err
	}
	return k, true, nil
}

// SaveStatic writes k to a key file at path with mode 0600, replacing any file there.
// The write is atomic: a crash leaves either the old file or the new one.
func SaveStatic(path string, k *Static) error {
	if err := saveKey(path, staticKind, k.Bytes()); err != nil {
		return fmt.Errorf("save static key %s: %w", path, err)
	}
	return nil
}

// LoadStatic reads a static key file written by SaveStatic.
// It refuses files that group or others can access, with an error wrapping ErrInsecurePermissions.
func LoadStatic(path string) (*Static, error) {
	b, err := loadKey(path, staticKind)
	if err != nil {
		return nil, fmt.Errorf("load static key %s: %w", path, err)
	}
	k, err := StaticFromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("load static key %s: %w", path, err)
	}
	return k, nil
}

// LoadOrCreateStatic loads the static key file at path, or, if there is no file, generates a key from
// rand and saves it there; the boolean reports whether the key was created. An existing file is never
// replaced, even if it cannot be loaded.
func LoadOrCreateStatic(path string, rand io.Reader) (*Static, bool, error) {
	if exists, err := fileExists(path); err != nil {
		return nil, false, fmt.Errorf("load static key %s: %w", path, err)
	} else if exists {
		k, err := LoadStatic(path)
		return k, false, err
	}
	k, err := GenerateStatic(rand)
	if err != nil {
		return nil, false, err
	}
	if err := SaveStatic(path, k); err != nil {
		return nil, false, err
	}
	return k, true, nil
}

func fileExists(path string) (bool, error) {
	// Lstat, so that a dangling symlink counts as existing and is reported rather than written through.
	_, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func formatKeyFile(kind keyKind, key []byte) []byte {
	return []byte(kind.comment + "\n" + kind.label + " " + encodeKey([keySize]byte(key)) + "\n")
}

// parseKeyFile returns the key in the contents of a key file whose key line has the given label.
func parseKeyFile(data []byte, label string) ([]byte, error) {
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("key file is larger than %d bytes", maxKeyFileSize)
	}
	want := kindOf(label)
	var key []byte
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if key != nil {
			return nil, fmt.Errorf("line %d: more than one key line", i+1)
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("line %d: want %q followed by a base64 key", i+1, label)
		}
		if fields[0] != label {
			if got := kindOf(fields[0]); got != "" {
				return nil, fmt.Errorf("line %d: found %s key (%s), want %s key (%s)", i+1, got, fields[0], want, label)
			}
			// The label is not echoed: a malformed file may have the secret in its place.
			return nil, fmt.Errorf("line %d: unknown key label, want %q", i+1, label)
		}
		k, err := decodeKey(fields[1], want+" key")
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		key = k[:]
	}
	if key == nil {
		return nil, fmt.Errorf("no %q key line", label)
	}
	return key, nil
}

// kindOf returns the kind name of a key file label, or "" if the label is unknown.
func kindOf(label string) string {
	for _, k := range keyKinds {
		if k.label == label {
			return k.name
		}
	}
	return ""
}

func loadKey(path string, kind keyKind) ([]byte, error) {
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
		return nil, fmt.Errorf("%w: mode %#o lets group or others access it; run: chmod 600 %s",
			ErrInsecurePermissions, perm, path)
	}
	if fi.Size() > maxKeyFileSize {
		return nil, fmt.Errorf("key file is larger than %d bytes", maxKeyFileSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, err
	}
	return parseKeyFile(data, kind.label)
}

func saveKey(path string, kind keyKind, key []byte) error {
	return WritePrivateFile(path, formatKeyFile(kind, key))
}

// WritePrivateFile writes data to path so that only the owner can read it (0600) and a crash leaves
// either the old file or the whole new one: a temporary file in the same directory, synced, renamed
// over path, and the directory synced. The directory is made (0700) if need be. Key files, guard sets
// and directory chain heads are written this way.
func WritePrivateFile(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	// CreateTemp already uses 0600, but a secret must never sit in a file others can read, so do
	// not depend on that.
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	// Sync before rename, or a crash could leave an empty file under the final name.
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename in dir durable, so that a node restarted after a crash does not find its
// key gone and make a new identity. It is best effort: some systems cannot sync directories.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
