package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// MissingIdentity returns a ConfigError when dir has no identity key file id but some of the state
// files a daemon leaves beside it, unless newIdentity (the --new-identity flag): the sign of a restore
// that lost the identity, or of a wrong data directory, which would otherwise make a new node (a new
// relay, a new authority) without a word. A directory with none of them is a first start.
func MissingIdentity(dir, id string, state []string, newIdentity bool) error {
	if newIdentity {
		return nil
	}
	if _, err := os.Lstat(filepath.Join(dir, id)); !errors.Is(err, fs.ErrNotExist) {
		return nil // there, or not readable: the key's loader says which
	}
	var found []string
	for _, f := range state {
		if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
			found = append(found, f)
		}
	}
	if len(found) == 0 {
		return nil
	}
	return Misconfigured(fmt.Errorf("data directory %s holds %s but no %s: a new identity would make this a new node, "+
		"known to nobody (a restore that lost it?). Put the old %s back, or pass --new-identity to start afresh with a new identity",
		dir, strings.Join(found, ", "), id, id))
}
