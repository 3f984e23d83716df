package daemon

import (
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// DefaultLogLevel keeps a daemon quiet: only warnings and errors unless the operator asks for more.
const DefaultLogLevel = "warn"

// NewLogger returns a JSON logger to standard error at the named level (debug, info, warn, error).
// Callers never log keys or a user's destinations; the logger cannot check that for them.
func NewLogger(level string) (*zap.Logger, error) {
	if level == "" {
		level = DefaultLogLevel
	}
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Sampling = nil
	cfg.DisableStacktrace = true
	cfg.EncoderConfig.TimeKey = "time"
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	return cfg.Build()
}

// Repeats folds a warning that keeps coming into one line per period, which says how many times it
// came since the last line: a daemon that fails the same way every few seconds must not fill its
// operator's disk. The zero value logs at most once a minute.
type Repeats struct {
	Every time.Duration
	Now   func() time.Time // default time.Now

	mu    sync.Mutex
	last  time.Time
	count int
}

// Warn counts one occurrence and logs it, with the count, unless a line went out within Every.
func (r *Repeats) Warn(log *zap.Logger, msg string, fields ...zap.Field) {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	every := r.Every
	if every == 0 {
		every = time.Minute
	}
	r.mu.Lock()
	r.count++
	t := now()
	if !r.last.IsZero() && t.Sub(r.last) < every {
		r.mu.Unlock()
		return
	}
	n := r.count
	r.count, r.last = 0, t
	r.mu.Unlock()
	log.Warn(msg, append(fields, zap.Int("times", n))...)
}

// Reset forgets the streak, so that the next failure is logged at once.
func (r *Repeats) Reset() {
	r.mu.Lock()
	r.count, r.last = 0, time.Time{}
	r.mu.Unlock()
}
