package sysdns

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"
)

// marker starts every resolv.conf file this package writes: a file without it is someone else's.
const marker = "# meshvpn-client:"

// maxResolvConf bounds what is read of a resolv.conf file (glibc reads a few KiB of it).
const maxResolvConf = 1 << 20

// backupFile is what the backup holds: the replaced file as it was.
type backupFile struct {
	Path    string `json:"path"`              // the file replaced
	Missing bool   `json:"missing,omitempty"` // there was none
	Symlink string `json:"symlink,omitempty"` // it was a symbolic link to this
	Content []byte `json:"content,omitempty"` // else its content
	Perm    uint32 `json:"perm,omitempty"`
}

type fileSetting struct {
	backup string
	log    *zap.Logger
}

// content is the resolv.conf file that sends every name to server.
func content(server netip.Addr, backup string) []byte {
	return fmt.Appendf(nil, `%s DNS goes through the tunnel to the exit's resolver while the client is up.
# "meshvpn-client down" puts the previous file back (kept in %s).
nameserver %s
options edns0 trust-ad
`, marker, backup, server)
}

func ours(b []byte) bool { return bytes.HasPrefix(b, []byte(marker)) }

func applyFile(path, backup string, server netip.Addr, log *zap.Logger) (*fileSetting, error) {
	if restored, err := restoreFile(backup, log); err != nil {
		return nil, fmt.Errorf("the resolv.conf backup of an earlier run: %w", err)
	} else if restored {
		log.Info("put back the resolv.conf file an earlier run replaced")
	}
	b := backupFile{Path: path}
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		b.Missing = true
	case err != nil:
		return nil, err
	case fi.Mode()&fs.ModeSymlink != 0:
		if b.Symlink, err = os.Readlink(path); err != nil {
			return nil, err
		}
	default:
		if b.Content, err = readBounded(path); err != nil {
			return nil, err
		}
		b.Perm = uint32(fi.Mode().Perm())
		if ours(b.Content) {
			// Ours, with no backup: it was restored by hand, or its backup lost. Nothing to keep.
			b.Content = []byte("# meshvpn-client found its own file here and no backup of the one before.\n")
		}
	}
	data, err := json.Marshal(b)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(backup), 0o700); err != nil {
		return nil, err
	}
	if err := writeReplace(backup, data, 0o600); err != nil {
		return nil, fmt.Errorf("resolv.conf backup: %w", err)
	}
	mine := content(server, backup)
	if b.Missing || b.Symlink != "" {
		err = writeReplace(path, mine, 0o644)
	} else {
		err = writeInPlace(path, mine, fs.FileMode(b.Perm))
	}
	if err != nil {
		if _, rerr := restoreFile(backup, log); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return nil, fmt.Errorf("resolv.conf: %w", err)
	}
	return &fileSetting{backup: backup, log: log}, nil
}

// restoreFile puts back the file the backup holds, if the file there now is still ours, and removes
// the backup. It reports whether there was a backup.
func restoreFile(backup string, log *zap.Logger) (bool, error) {
	data, err := readBounded(backup)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var b backupFile
	if err := json.Unmarshal(data, &b); err != nil || !filepath.IsAbs(b.Path) {
		return false, fmt.Errorf("%s: not a resolv.conf backup (remove it once you have checked %s)", backup, DefaultResolvConf)
	}
	now, err := readBounded(b.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		now = nil
	case err != nil:
		return true, err
	}
	if !ours(now) {
		// Something else (a DHCP client, the user) wrote the file since: it stays.
		log.Info("resolv.conf was rewritten by something else while the client was up; leaving it")
	} else {
		switch {
		case b.Missing:
			err = os.Remove(b.Path)
		case b.Symlink != "":
			err = symlinkReplace(b.Symlink, b.Path)
		default:
			err = writeInPlace(b.Path, b.Content, fs.FileMode(b.Perm))
		}
		if err != nil {
			return true, fmt.Errorf("restoring %s: %w", b.Path, err)
		}
	}
	if err := os.Remove(backup); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return true, err
	}
	return true, nil
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxResolvConf+1))
	if err == nil && len(b) > maxResolvConf {
		err = fmt.Errorf("%s: larger than %d bytes", path, maxResolvConf)
	}
	return b, err
}

// writeInPlace rewrites the file at path without replacing it: under `ip netns exec` /etc/resolv.conf
// is a bind mount, which a rename cannot replace.
func writeInPlace(path string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC|os.O_CREATE, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && perm != 0 {
		err = os.Chmod(path, perm)
	}
	return err
}

// writeReplace writes a new file beside path and renames it over path (a symbolic link, or nothing).
func writeReplace(path string, data []byte, perm fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".meshvpn-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// symlinkReplace makes path a symbolic link to target, replacing what is there.
func symlinkReplace(target, path string) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".meshvpn-link")
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// resolvedManages reports whether the resolv.conf file at path is systemd-resolved's: a link into
// /run/systemd/resolve, or a file naming its stub listener.
func resolvedManages(path string) bool {
	if t, err := filepath.EvalSymlinks(path); err == nil && strings.HasPrefix(t, "/run/systemd/resolve/") {
		return true
	}
	b, err := readBounded(path)
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "nameserver" && (f[1] == "127.0.0.53" || f[1] == "127.0.0.54") {
			return true
		}
	}
	return false
}
