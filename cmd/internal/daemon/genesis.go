package daemon

import (
	"fmt"
	"io"
	"os"

	"github.com/meshvpn/meshvpn/core/genesis"
)

// LoadGenesis reads and parses the network's genesis file. Its errors are ConfigErrors.
func LoadGenesis(path string) (*genesis.Genesis, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, Misconfigured(fmt.Errorf("genesis: %w", err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, genesis.MaxSize+1))
	if err != nil {
		return nil, Misconfigured(fmt.Errorf("genesis %s: %w", path, err))
	}
	g, err := genesis.Parse(b)
	if err != nil {
		return nil, Misconfigured(fmt.Errorf("genesis %s: %w", path, err))
	}
	return g, nil
}
