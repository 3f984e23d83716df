package daemon

import (
	"fmt"
	"time"
)

// LinkTimers is the configuration section of a daemon's links (the [link] table of the relay and the
// client, the probe links' timers of the authority): how often a quiet link sends a keepalive, and
// how long a silent one lives. Every daemon with links embeds it, so the keys, the flags (Flags.Link)
// and the check are the same everywhere.
type LinkTimers struct {
	KeepaliveInterval time.Duration `toml:"keepalive_interval"`
	DeadAfter         time.Duration `toml:"dead_after"`
}

// Validate checks 0 < keepalive_interval < dead_after: a link must hear a keepalive before it is
// declared dead.
func (l LinkTimers) Validate(section string) error {
	if l.KeepaliveInterval <= 0 || l.DeadAfter <= l.KeepaliveInterval {
		return fmt.Errorf("%s: want 0 < keepalive_interval (%v) < dead_after (%v)", section, l.KeepaliveInterval, l.DeadAfter)
	}
	return nil
}

// Logging is what every daemon says about itself: its log level and where its metrics are served.
// Daemons embed it at the top of their configuration (keys log_level and metrics).
type Logging struct {
	LogLevel string `toml:"log_level"`
	// Metrics is the Prometheus metrics address; empty turns them off.
	Metrics string `toml:"metrics"`
}

// Validate checks the level and the address (a loopback one unless public).
func (l Logging) Validate(public bool) []error {
	var errs []error
	if _, err := NewLogger(l.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if l.Metrics != "" {
		if err := CheckMetricsAddr(l.Metrics, public); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}
