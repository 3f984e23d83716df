package testnet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/meshvpn/meshvpn/core/netdir"
)

// Running reports whether a node's process runs.
func (n *Net) Running(node *Node) bool { return node.proc != nil && !node.proc.exited() }

// Restart starts a node whose process has ended (killed or stopped) again, from its config file and
// data directory: the same identity, keys and address. It returns once the node serves its metrics,
// or with an error that carries its log. Its log goes on in the same file, after a line that marks
// the restart.
func (n *Net) Restart(node *Node) error {
	if n.Running(node) {
		return fmt.Errorf("restart %s: it is running", node.Name)
	}
	path := filepath.Join(node.dir, "exit-node.toml")
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("restart %s: %w", node.Name, err)
	}
	logPath := filepath.Join(n.dir, node.Name+".log")
	if f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0); err == nil {
		fmt.Fprintf(f, "==== testnet: %s restarted at %s ====\n", node.Name, time.Now().Format("15:04:05.000"))
		f.Close()
	}
	p, err := n.run(node.ns, node.Name, filepath.Join(n.bin, "meshvpn-exit-node"), "--config", path)
	if err != nil {
		return fmt.Errorf("restart %s: %w", node.Name, err)
	}
	node.proc = p
	if err := p.waitFor(context.Background(), 30*time.Second, func() bool { return n.metricsUp(node.ns) }); err != nil {
		return fmt.Errorf("restart %s: %w", node.Name, err)
	}
	return nil
}

// AwaitConsensus waits until the authorities agree on every relay of the testnet as running, with
// the exits and a guard flagged, and returns that consensus (after a restart: until the restarted
// relay is listed again). It is fetched from the first authority's namespace: the client's routes
// everything but its own traffic into its tunnel.
func (n *Net) AwaitConsensus(ctx context.Context, limit time.Duration) (*netdir.NetDir, error) {
	if n.Genesis == nil || len(n.Authorities) == 0 {
		return nil, fmt.Errorf("no authorities: the testnet runs from a relay list")
	}
	return n.awaitConsensus(ctx, n.Authorities[0].ns, limit)
}
