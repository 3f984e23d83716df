package daemon

import (
	"fmt"
	"os"
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
	return newLogger(level, zapcore.Lock(os.Stderr))
}

func newLogger(level string, w zapcore.WriteSyncer) (*zap.Logger, error) {
	if level == "" {
		level = DefaultLogLevel
	}
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	core := zapcore.NewCore(zapcore.NewJSONEncoder(encoderConfig()), w, zap.NewAtomicLevelAt(lvl))
	return zap.New(core, zap.AddCaller(), zap.ErrorOutput(w)), nil
}

// encoderConfig is the daemons' log format: zap's production JSON, with ISO 8601 times.
func encoderConfig() zapcore.EncoderConfig {
	cfg := zap.NewProductionEncoderConfig()
	cfg.TimeKey = "time"
	cfg.EncodeTime = zapcore.ISO8601TimeEncoder
	return cfg
}

// newNotices returns the logger of a daemon's notices: the few lines it prints whatever its log
// level, that it serves and that it stopped, as the log's own JSON lines with the level "notice" (as
// Tor's notice level), so that an operator at the default level (warn) sees the daemon come up and go
// down, and a warning still means something is wrong.
func newNotices(w zapcore.WriteSyncer) *zap.Logger {
	return noticesTo(w)
}

// Notices returns the notices logger on standard error, for a program that runs its daemon without
// RunUntilSignal (meshvpn-client up --foreground).
func Notices() *zap.Logger { return noticesTo(zapcore.Lock(os.Stderr)) }

func noticesTo(w zapcore.WriteSyncer) *zap.Logger {
	cfg := encoderConfig()
	cfg.EncodeLevel = func(_ zapcore.Level, enc zapcore.PrimitiveArrayEncoder) { enc.AppendString("notice") }
	return zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(cfg), w, zapcore.DebugLevel))
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
