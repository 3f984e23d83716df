package daemon

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/BurntSushi/toml"
)

// maxConfigSize bounds what LoadConfig reads, so that a wrong path (a log, a device) fails fast.
const maxConfigSize = 1 << 20

// LoadConfig decodes the TOML file at path into v, which holds the defaults already. A missing file is
// an error unless optional is set, in which case v keeps its defaults. Keys that v has no field for are
// errors, all of them listed at once: a misspelt option must not be silently ignored. Its errors are
// ConfigErrors.
func LoadConfig(path string, v any, optional bool) error {
	data, err := readBounded(path)
	if errors.Is(err, fs.ErrNotExist) && optional {
		return nil
	}
	if err != nil {
		return Misconfigured(fmt.Errorf("config %s: %w", path, err))
	}
	return DecodeConfig(path, data, v)
}

// DecodeConfig decodes TOML text into v like LoadConfig; name is used in errors.
func DecodeConfig(name string, data []byte, v any) error {
	md, err := toml.Decode(string(data), v)
	if err != nil {
		return Misconfigured(fmt.Errorf("config %s: %w", name, err))
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return Misconfigured(fmt.Errorf("config %s: unknown keys: %s", name, strings.Join(keys, ", ")))
	}
	return nil
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("more than the %d bytes a config may have", maxConfigSize)
	}
	return data, nil
}
