package daemon

import (
	"fmt"

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
