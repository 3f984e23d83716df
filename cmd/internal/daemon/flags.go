package daemon

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// Flags binds a binary's command-line flags to fields of its configuration C: the configuration file
// is read first (the defaults, then the file), and each flag that was given overrides its field.
// Every binary loads its configuration through one of these, so that a flag and its config key can
// never disagree on the field they set.
type Flags[C any] struct {
	fs    *flag.FlagSet
	def   C
	path  *string // --config
	binds []binding[C]
	usage string
	help  io.Writer // where --help writes the usage
}

// binding is one flag: set copies its parsed value into a configuration.
type binding[C any] struct {
	name string
	set  func(*C)
}

// NewFlags returns a binder for the binary name over the defaults def, whose configuration file is
// at defaultPath unless --config says otherwise (a missing default file is no error, a missing named
// one is). On --help, usage and then the flags are written to help; a bad flag is an error of one
// line, which the flag package does not print, nor the usage after it.
func NewFlags[C any](name, usage string, def C, defaultPath string, help io.Writer) *Flags[C] {
	f := &Flags[C]{fs: flag.NewFlagSet(name, flag.ContinueOnError), def: def, usage: usage, help: help}
	f.fs.SetOutput(io.Discard)
	f.fs.Usage = func() {}
	f.path = f.fs.String("config", defaultPath, "configuration file (TOML); see example-config")
	return f
}

// ConfigPath is the configuration file Load read (or looked for): --config's value.
func (f *Flags[C]) ConfigPath() string { return *f.path }

// FlagSet is the underlying flag set, for flags that are not configuration (a subcommand's own).
func (f *Flags[C]) FlagSet() *flag.FlagSet { return f.fs }

// bind defines a flag of type T over the field field picks, its default the default configuration's.
func bind[C, T any](f *Flags[C], name, help string, field func(*C) *T, define func(p *T, name string, value T, usage string)) {
	v := new(T)
	define(v, name, *field(&f.def), help)
	f.binds = append(f.binds, binding[C]{name, func(c *C) { *field(c) = *v }})
}

// String binds a string flag.
func (f *Flags[C]) String(name, help string, field func(*C) *string) {
	bind(f, name, help, field, f.fs.StringVar)
}

// Bool binds a boolean flag.
func (f *Flags[C]) Bool(name, help string, field func(*C) *bool) {
	bind(f, name, help, field, f.fs.BoolVar)
}

// Int binds an integer flag.
func (f *Flags[C]) Int(name, help string, field func(*C) *int) {
	bind(f, name, help, field, f.fs.IntVar)
}

// Duration binds a duration flag ("30s").
func (f *Flags[C]) Duration(name, help string, field func(*C) *time.Duration) {
	bind(f, name, help, field, f.fs.DurationVar)
}

// List binds a comma-separated list flag ("a,b"); an empty value is an empty list.
func (f *Flags[C]) List(name, help string, field func(*C) *[]string) {
	v := new(string)
	f.fs.StringVar(v, name, strings.Join(*field(&f.def), ","), help)
	f.binds = append(f.binds, binding[C]{name, func(c *C) { *field(c) = splitList(*v) }})
}

// Link binds the link timers' flags (--keepalive, --dead-after) to the section field picks.
func (f *Flags[C]) Link(field func(*C) *LinkTimers) {
	f.Duration("keepalive", "link keepalive interval", func(c *C) *time.Duration { return &field(c).KeepaliveInterval })
	f.Duration("dead-after", "a link silent this long is dead", func(c *C) *time.Duration { return &field(c).DeadAfter })
}

// Logging binds the logging section's flags (--log-level, --metrics) to the section field picks.
func (f *Flags[C]) Logging(field func(*C) *Logging) {
	f.String("metrics", "Prometheus metrics address (loopback); empty turns them off", func(c *C) *string { return &field(c).Metrics })
	f.String("log-level", "debug, info, warn or error", func(c *C) *string { return &field(c).LogLevel })
}

// Load parses args, reads the configuration file, applies the flags that were given over it and
// returns the result. After --help it returns flag.ErrHelp; a bad flag or a positional argument is a
// ConfigError.
func (f *Flags[C]) Load(args []string) (C, error) {
	if err := f.fs.Parse(args); err != nil {
		if IsHelp(err) {
			fmt.Fprint(f.help, f.usage)
			f.fs.SetOutput(f.help)
			f.fs.PrintDefaults()
			f.fs.SetOutput(io.Discard)
			return f.def, err
		}
		return f.def, Misconfigured(fmt.Errorf("%w (see --help)", err))
	}
	if f.fs.NArg() > 0 {
		return f.def, Misconfigured(fmt.Errorf("unexpected argument %q (see --help)", f.fs.Arg(0)))
	}
	given := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	cfg := f.def
	if err := LoadConfig(*f.path, &cfg, !given["config"]); err != nil {
		return cfg, err
	}
	for _, b := range f.binds {
		if given[b.name] {
			b.set(&cfg)
		}
	}
	return cfg, nil
}

// Given reports whether the flag name was on the command line Load parsed.
func (f *Flags[C]) Given(name string) bool {
	given := false
	f.fs.Visit(func(fl *flag.Flag) { given = given || fl.Name == name })
	return given
}

// IsHelp reports whether err is the flag package's answer to --help.
func IsHelp(err error) bool { return errors.Is(err, flag.ErrHelp) }

// splitList splits a comma-separated flag value; an empty one is an empty list.
func splitList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
