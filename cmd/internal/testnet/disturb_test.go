package testnet

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// TestDisturbance runs every load for a second: namespaces are made and deleted, the cores spin,
// memory is mapped and touched, and afterwards no namespace of the churn is left.
func TestDisturbance(t *testing.T) {
	needRootAlone(t)
	prefix := fmt.Sprintf("mvdt%d-", os.Getpid()%100000)
	stop, err := StartDisturbance(context.Background(), Disturbance{
		Namespaces: true, CPU: true, Memory: true,
		Prefix: prefix, MemoryFraction: 0.01, Limit: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	s := stop()
	t.Log(s)
	if s.Namespaces < 1 {
		t.Errorf("no namespace cycled in a second (%d failed steps, last: %s)", s.NamespaceErrors, s.LastError)
	}
	if s.Spinners < 1 || s.CPUTime < 500*time.Millisecond {
		t.Errorf("the CPU load spun %v on %d threads", s.CPUTime, s.Spinners)
	}
	if s.MemoryTouched < memChunk {
		t.Errorf("%d bytes of memory touched", s.MemoryTouched)
	}
	if left := NamespacesWithPrefix(prefix); len(left) > 0 {
		t.Errorf("namespaces left behind: %v", left)
	}
	if s2 := stop(); s2 != s {
		t.Errorf("a second stop reports %+v, the first %+v", s2, s)
	}
}
