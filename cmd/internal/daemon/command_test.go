package daemon

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
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
