package daemon

import (
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestRepeatsFoldsAWarningThatKeepsComing(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	log := zap.New(core)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	r := &Repeats{Now: func() time.Time { return now }}
	for range 30 { // one every 2 s for a minute: the first line, then one for the other 29
		r.Warn(log, "refresh failed")
		now = now.Add(2 * time.Second)
	}
	r.Warn(log, "refresh failed")
	var times []int64
	for _, e := range logs.All() {
		times = append(times, e.ContextMap()["times"].(int64))
	}
	if len(times) != 2 || times[0] != 1 || times[1] != 30 {
		t.Fatalf("lines with counts %v, want [1 30]", times)
	}
	r.Reset()
	r.Warn(log, "refresh failed")
	if logs.Len() != 3 || logs.All()[2].Level != zapcore.WarnLevel {
		t.Fatalf("after Reset the next failure was not logged at once: %d lines", logs.Len())
	}
}
