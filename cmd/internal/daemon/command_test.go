package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
)

func TestCommandDispatch(t *testing.T) {
	var ran, informed string
	c := Command[string]{
		Name:    "meshvpn-test",
		Example: "example = 1\n",
		Load: func(args []string, _ io.Writer) (string, error) {
			if len(args) > 0 && args[0] == "--help" {
				return "", flag.ErrHelp
			}
			if len(args) > 0 && args[0] == "--bad" {
				return "", errors.New("bad flag")
			}
			return strings.Join(args, " "), nil
		},
		Run: func(cfg string) error {
			ran = cfg
			if cfg == "fail" {
				return errors.New("it broke")
			}
			return nil
		},
		Info: func(cfg string, w io.Writer) error { informed = cfg; _, err := io.WriteString(w, "info\n"); return err },
	}
	for _, tc := range []struct {
		args          []string
		code          int
		stdout, state string
	}{
		{[]string{"example-config"}, 0, "example = 1\n", ""},
		{[]string{"--help"}, 0, "", ""},
		{[]string{"--bad"}, 2, "", ""},
		{[]string{"-x"}, 0, "", "run:-x"},
		{[]string{"run", "fail"}, 1, "", "run:fail"},
		{[]string{"info", "-y"}, 0, "info\n", "info:-y"},
	} {
		ran, informed = "", ""
		var out, errOut bytes.Buffer
		if code := c.Main(tc.args, &out, &errOut); code != tc.code {
			t.Errorf("%v: exit %d, want %d (%s)", tc.args, code, tc.code, errOut.String())
		}
		if out.String() != tc.stdout {
			t.Errorf("%v: printed %q", tc.args, out.String())
		}
		state := ""
		if ran != "" {
			state = "run:" + ran
		}
		if informed != "" {
			state = "info:" + informed
		}
		if state != tc.state {
			t.Errorf("%v: %q, want %q", tc.args, state, tc.state)
		}
		if tc.code != 0 && !strings.HasPrefix(errOut.String(), "meshvpn-test: ") {
			t.Errorf("%v: error %q does not name the program", tc.args, errOut.String())
		}
	}
}

// TestEveryProgramAnswersAlike: version, --version, check, a bad flag in one line with exit code 2,
// --help on stdout with 0, a configuration error (also one Run finds) with 2.
func TestEveryProgramAnswersAlike(t *testing.T) {
	var ran bool
	c := Command[[]string]{
		Name:    "meshvpn-test",
		Example: "example = 1\n",
		Load: func(args []string, help io.Writer) ([]string, error) {
			f := NewFlags("meshvpn-test", "Usage: meshvpn-test [flags]\n", flagTestConfig{}, "/nonexistent/test.toml", help)
			f.FlagSet().Bool("x", false, "a flag")
			_, err := f.Load(args)
			return args, err
		},
		Run: func(args []string) error {
			ran = true
			if slices.Contains(args, "-x") {
				return Misconfigured(errors.New("genesis /etc/meshvpn/genesis: no such file"))
			}
			return nil
		},
		Check: func(args []string) error {
			if slices.Contains(args, "-x") {
				return errors.New("the genesis does not list this authority's key")
			}
			return nil
		},
	}
	for _, tc := range []struct {
		args           []string
		code           int
		stdout, stderr string // a prefix; "" for nothing
	}{
		{[]string{"version"}, 0, "meshvpn-test commit ", ""},
		{[]string{"--version"}, 0, "meshvpn-test commit ", ""},
		{[]string{"--help"}, 0, "Usage: meshvpn-test [flags]\n", ""},
		{[]string{"check"}, 0, "configuration OK\n", ""},
		{[]string{"check", "-x"}, 2, "", "meshvpn-test: the genesis does not list this authority's key\n"},
		{[]string{"check", "--bogus"}, 2, "", "meshvpn-test: flag provided but not defined: -bogus (see --help)\n"},
		{[]string{"--bogus"}, 2, "", "meshvpn-test: flag provided but not defined: -bogus (see --help)\n"},
		{[]string{"-x"}, 2, "", "meshvpn-test: genesis /etc/meshvpn/genesis: no such file\n"},
		{[]string{"--config", "/nonexistent/named.toml"}, 2, "", "meshvpn-test: config /nonexistent/named.toml: "},
	} {
		ran = false
		var out, errOut bytes.Buffer
		code := c.Main(tc.args, &out, &errOut)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d (%s)", tc.args, code, tc.code, errOut.String())
		}
		if !strings.HasPrefix(out.String(), tc.stdout) || (tc.stdout == "") != (out.Len() == 0) {
			t.Errorf("%v: printed %q, want %q…", tc.args, out.String(), tc.stdout)
		}
		if !strings.HasPrefix(errOut.String(), tc.stderr) || (tc.stderr == "") != (errOut.Len() == 0) {
			t.Errorf("%v: error %q, want %q…", tc.args, errOut.String(), tc.stderr)
		}
		if strings.Count(errOut.String(), "\n") > 1 {
			t.Errorf("%v: more than one line of error: %q", tc.args, errOut.String())
		}
		if ran != (tc.args[0] == "-x") {
			t.Errorf("%v: ran %v", tc.args, ran)
		}
	}
}

func TestVersion(t *testing.T) {
	bi := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "3de12ac0f1e2a4b5c6d7e8f90123456789abcdef"},
		{Key: "vcs.time", Value: "2026-12-06T05:38:47Z"},
		{Key: "vcs.modified", Value: "false"},
	}}
	for _, tc := range []struct {
		bi       *debug.BuildInfo
		injected string
		want     string
	}{
		{bi, "", "commit 3de12ac0f1e2 (2026-12-06T05:38:47Z), go1.26.8 linux/amd64"},
		{bi, "feedface", "commit feedface, go1.26.8 linux/amd64"},
		{&debug.BuildInfo{}, "", "commit unknown (built without version control information), go1.26.8 linux/amd64"},
		{nil, "", "commit unknown (built without version control information), go1.26.8 linux/amd64"},
		{&debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "true"}}}, "",
			"v1.2.3, commit abc with changes not committed, go1.26.8 linux/amd64"},
	} {
		if got := version(tc.bi, tc.injected, "go1.26.8 linux/amd64"); got != tc.want {
			t.Errorf("version = %q, want %q", got, tc.want)
		}
	}
	if !strings.Contains(Version(), runtime.Version()) {
		t.Errorf("Version() = %q names no Go version", Version())
	}
}

// TestServingAndStoppingAreNotices: at the default log level (warn) a daemon still says, in one
// line each, that it serves and that it stopped; the info lines around them stay quiet.
func TestServingAndStoppingAreNotices(t *testing.T) {
	var buf syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- runUntil(ctx, DefaultLogLevel, &buf, func(log *zap.Logger) (io.Closer, error) {
			log.Info("serving", zap.String("listen", "127.0.0.1:1")) // what daemons log at info
			close(served)
			return io.NopCloser(nil), nil
		})
	}()
	<-served
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var lines []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 || lines[0]["msg"] != "serving" || lines[1]["msg"] != "stopped" ||
		lines[0]["level"] != "notice" || lines[1]["level"] != "notice" || lines[0]["commit"] == nil {
		t.Fatalf("log at warn: %s", buf.String())
	}
	// A daemon that fails to start prints no notice: its error says why (Command.Main prints it).
	buf.Reset()
	err := runUntil(context.Background(), DefaultLogLevel, &buf, func(*zap.Logger) (io.Closer, error) { return nil, errors.New("no") })
	if err == nil || buf.Len() != 0 {
		t.Fatalf("a failed start: %v, printed %q", err, buf.String())
	}
	if err := runUntil(ctx, "loud", &buf, nil); ExitCode(err) != ExitUsage {
		t.Fatalf("a bad log level: %v, exit %d", err, ExitCode(err))
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) Sync() error    { return nil }
func (s *syncBuffer) Len() int       { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Len() }
func (s *syncBuffer) Reset()         { s.mu.Lock(); defer s.mu.Unlock(); s.b.Reset() }
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestResolveURL(t *testing.T) {
	for url, want := range map[string]string{
		"http://10.240.0.31:8080":       "10.240.0.31:8080",
		"http://198.51.100.7/":          "198.51.100.7:80",
		"https://[2001:db8::1]/dir":     "[2001:db8::1]:443",
		"http://[::ffff:192.0.2.1]:81/": "192.0.2.1:81",
	} {
		got, err := ResolveURL(context.Background(), url)
		if err != nil || len(got) != 1 || got[0].String() != want {
			t.Errorf("ResolveURL(%q) = %v, %v; want %s", url, got, err, want)
		}
	}
	for _, bad := range []string{"http://1.2.3.4:0/", "http://1.2.3.4:99999/", "://"} {
		if got, err := ResolveURL(context.Background(), bad); err == nil {
			t.Errorf("ResolveURL(%q) = %v", bad, got)
		}
	}
}
