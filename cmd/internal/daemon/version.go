package daemon

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// commit is the source revision, for a build that cannot stamp it from git itself (a build outside
// the repository): go build -ldflags "-X github.com/meshvpn/meshvpn/cmd/internal/daemon.commit=REV".
// `make build` needs no such flag: it builds with -buildvcs=auto, and the Go toolchain stamps the
// revision into the binary's build information.
var commit string

// Version describes this binary's build in one line: the commit it was built from (and whether the
// tree had changes not committed), when that commit was made, and the Go version, e.g.
// "commit 3de12ac0f1e2 (2026-12-06T05:38:47Z), go1.26.8 linux/amd64".
func Version() string {
	bi, _ := debug.ReadBuildInfo()
	return version(bi, commit, runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH)
}

// Revision is the short commit this binary was built from, or "unknown".
func Revision() string {
	bi, _ := debug.ReadBuildInfo()
	rev, _, modified := vcs(bi, commit)
	if rev == "" {
		return "unknown"
	}
	if modified {
		rev += "+changes"
	}
	return rev
}

// vcs reads the revision, its time and whether the tree was modified from the build information; an
// injected revision wins over a stamped one.
func vcs(bi *debug.BuildInfo, injected string) (rev, at string, modified bool) {
	if bi != nil {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if injected != "" && injected != rev {
		rev, at, modified = injected, "", false
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return rev, at, modified
}

func version(bi *debug.BuildInfo, injected, goVersion string) string {
	rev, at, modified := vcs(bi, injected)
	s := "commit unknown (built without version control information)"
	if rev != "" {
		s = "commit " + rev
		switch {
		case modified && at != "":
			s += fmt.Sprintf(" (%s) with changes not committed", at)
		case modified:
			s += " with changes not committed"
		case at != "":
			s += fmt.Sprintf(" (%s)", at)
		}
	}
	if bi != nil && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		s = bi.Main.Version + ", " + s
	}
	return s + ", " + goVersion
}
