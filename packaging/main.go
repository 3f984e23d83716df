// Command packaging builds MeshVPN's Debian packages with nfpm (github.com/goreleaser/nfpm/v2): one
// package per program, each with its systemd units, its example configuration as a conffile under
// /etc/meshvpn, the system user its daemon runs as (a sysusers.d file), a man page made from its
// --help, and the maintainer scripts that tie them together. `make package` runs it on binaries built
// for packaging (static, stripped, -trimpath):
//
//	go run . --bin DIR --out DIR --version 0.1.0
//
// It is a module of its own, outside go.work, so that nfpm's dependencies never enter the versions
// the product's modules build with (a workspace takes the highest version any of its modules asks
// for); it is built with GOWORK=off.
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

// program is one package: a program, and what a host needs to run it as a service.
type program struct {
	Name     string   // the package's and the program's name
	Synopsis string   // the description's first line
	About    string   // the rest of the description
	Units    []string // systemd units in this folder
	Config   string   // /etc/meshvpn/<Config>, what `Name example-config` prints; "" for none
	User     string   // the system user its units run as; "" for none (the client runs as root)
	Depends  []string
	// LiftOnRemove: removing the package runs `Name down` first, which lifts the client's kill switch
	// (nothing else would, once the program is gone).
	LiftOnRemove bool
}

var programs = []program{
	{
		Name:     "meshvpn-client",
		Synopsis: "MeshVPN client: this computer's traffic through a 3-hop onion circuit",
		About: "The client daemon sends all of this computer's traffic through a circuit of\n" +
			"three MeshVPN relays (guard, middle, exit), with a kill switch that blocks\n" +
			"everything else until `meshvpn-client down`, DNS through the tunnel, split\n" +
			"tunnelling and exit choice. The unit meshvpn-client.service runs it; it\n" +
			"needs CAP_NET_ADMIN (TUN, routes, nftables) and runs as root with every\n" +
			"other capability dropped.",
		Units:        []string{"meshvpn-client.service"},
		Config:       "client.toml",
		Depends:      []string{"nftables"},
		LiftOnRemove: true,
	},
	{
		Name:     "meshvpn-exit-node",
		Synopsis: "MeshVPN relay and exit node",
		About: "A relay of a MeshVPN network (guard or middle), and unless relay-only an\n" +
			"exit that forwards its clients' traffic to the internet under its exit\n" +
			"policy, NATed with nftables. meshvpn-exit-node.service runs an exit as the\n" +
			"user meshvpn-exit with CAP_NET_ADMIN only; meshvpn-relay.service runs a\n" +
			"relay that never exits, with no capability at all.",
		Units:   []string{"meshvpn-exit-node.service", "meshvpn-relay.service"},
		Config:  "exit-node.toml",
		User:    "meshvpn-exit",
		Depends: []string{"nftables"},
	},
	{
		Name:     "meshvpn-dht-bootstrap",
		Synopsis: "MeshVPN DHT bootstrap node and STUN server",
		About: "The node every other node of a MeshVPN network starts from: a BitTorrent\n" +
			"mainline DHT node and a STUN server for NAT detection, named in the\n" +
			"network's genesis file. meshvpn-dht-bootstrap.service runs it as the user\n" +
			"meshvpn-dht, with no capability.",
		Units:  []string{"meshvpn-dht-bootstrap.service"},
		Config: "dht-bootstrap.toml",
		User:   "meshvpn-dht",
	},
	{
		Name:     "meshvpn-discovery",
		Synopsis: "MeshVPN discovery authority",
		About: "A discovery authority of a MeshVPN network: it finds the relays on the DHT,\n" +
			"probes them and publishes a signed directory that clients trust when a\n" +
			"threshold of the network's authorities agree. meshvpn-discovery.service runs\n" +
			"it as the user meshvpn-discovery, with no capability.",
		Units:  []string{"meshvpn-discovery.service"},
		Config: "discovery.toml",
		User:   "meshvpn-discovery",
	},
	{
		Name:     "meshvpn-bootstrap",
		Synopsis: "MeshVPN network tools: genesis files and test networks",
		About: "meshvpn-bootstrap writes a new MeshVPN network's genesis file (init), and\n" +
			"runs a whole network in network namespaces on one machine (testnet, soak),\n" +
			"finding the daemons beside itself.",
	},
}

// unitDir is where packages put systemd units on Debian 12 (/lib is /usr/lib on merged-/usr systems).
const unitDir = "/lib/systemd/system"

func main() {
	bin := flag.String("bin", "", "the folder holding the five programs, built for packaging")
	out := flag.String("out", "dist", "where the packages are written")
	version := flag.String("version", "0.1.0", "the packages' version")
	arch := flag.String("arch", runtime.GOARCH, "the packages' architecture (Debian's name)")
	maintainer := flag.String("maintainer", "MeshVPN developers <meshvpn@users.noreply.github.com>", "the packages' Maintainer field")
	flag.Parse()
	if *bin == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: go run . --bin DIR [--out DIR] [--version V] [--arch A] [--maintainer M]")
		os.Exit(2)
	}
	if err := build(*bin, *out, *version, *arch, *maintainer); err != nil {
		fmt.Fprintln(os.Stderr, "packaging:", err)
		os.Exit(1)
	}
}

func build(bin, out, version, arch, maintainer string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	stage, err := os.MkdirTemp("", "meshvpn-packaging-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	// The packages' time (files, changelog): SOURCE_DATE_EPOCH for a reproducible build, else now.
	when := time.Now()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
		}
		when = time.Unix(sec, 0)
	}
	for _, p := range programs {
		name, err := pack(p, bin, out, filepath.Join(stage, p.Name), version, arch, maintainer, when)
		if err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
		fmt.Println(name)
	}
	return nil
}

// pack writes p's package into out and returns its path; stage is a scratch folder for the files it
// makes (configuration, man page, scripts).
func pack(p program, bin, out, stage, version, arch, maintainer string, when time.Time) (string, error) {
	if err := os.MkdirAll(stage, 0o755); err != nil {
		return "", err
	}
	exe := filepath.Join(bin, p.Name)
	doc := "/usr/share/doc/" + p.Name + "/"
	var contents files.Contents
	add := func(src, dst string, mode os.FileMode, typ string) {
		contents = append(contents, &files.Content{Source: src, Destination: dst, Type: typ, FileInfo: &files.ContentFileInfo{Mode: mode}})
	}
	// write stages generated content under name and returns its path.
	write := func(name string, b []byte) (string, error) {
		path := filepath.Join(stage, name)
		return path, os.WriteFile(path, b, 0o644)
	}

	add(exe, "/usr/bin/"+p.Name, 0o755, "")
	help, err := run(exe, "--help")
	if err != nil && !strings.Contains(help, "Usage") { // meshvpn-bootstrap --help exits 2 (issue 17 §2)
		return "", err
	}
	man, err := write(p.Name+".1.gz", gz(manPage(p, version, help)))
	if err != nil {
		return "", err
	}
	add(man, "/usr/share/man/man1/"+p.Name+".1.gz", 0o644, "")
	for _, u := range p.Units {
		text, err := os.ReadFile(u)
		if err != nil {
			return "", err
		}
		// The units name the programs where `make install` puts them; a package puts them in /usr/bin.
		staged, err := write(u, bytes.ReplaceAll(text, []byte("/usr/local/bin/"), []byte("/usr/bin/")))
		if err != nil {
			return "", err
		}
		add(staged, unitDir+"/"+u, 0o644, "")
	}
	if p.Config != "" {
		cfg, err := run(exe, "example-config")
		if err != nil {
			return "", err
		}
		staged, err := write(p.Config, []byte(cfg))
		if err != nil {
			return "", err
		}
		add(staged, "/etc/meshvpn/"+p.Config, 0o644, files.TypeConfig)
	}
	if p.User != "" {
		add(p.Name+".sysusers", "/usr/lib/sysusers.d/"+p.Name+".conf", 0o644, "")
	}
	add("copyright", doc+"copyright", 0o644, "")
	changelog, err := write("changelog.gz", gz([]byte(fmt.Sprintf("%s (%s) unstable; urgency=medium\n\n  * Built from the MeshVPN repository; see its history for the changes.\n\n -- %s  %s\n",
		p.Name, version, maintainer, when.UTC().Format(time.RFC1123Z)))))
	if err != nil {
		return "", err
	}
	add(changelog, doc+"changelog.gz", 0o644, "")
	if _, err := os.Stat(p.Name + ".lintian-overrides"); err == nil {
		add(p.Name+".lintian-overrides", "/usr/share/lintian/overrides/"+p.Name, 0o644, "")
	}

	var scripts nfpm.Scripts
	for _, s := range []struct {
		tmpl string
		dst  *string
	}{{postinst, &scripts.PostInstall}, {prerm, &scripts.PreRemove}, {postrm, &scripts.PostRemove}} {
		text, err := script(s.tmpl, p)
		if err != nil {
			return "", err
		}
		if text == "" {
			continue
		}
		name := strings.Fields(s.tmpl)[0]
		if *s.dst, err = write(name, []byte(text)); err != nil {
			return "", err
		}
	}
	depends := p.Depends
	if p.User != "" {
		// What creates the user from the sysusers.d file (Debian's dh_installsysusers asks the same).
		depends = append(depends, "systemd | systemd-standalone-sysusers | systemd-sysusers")
	}
	info := nfpm.WithDefaults(&nfpm.Info{
		Name:          p.Name,
		Arch:          arch,
		Platform:      "linux",
		Version:       version,
		VersionSchema: "none",
		Section:       "net",
		Priority:      "optional",
		Maintainer:    maintainer,
		Description:   p.Synopsis + "\n" + p.About,
		Homepage:      "https://github.com/meshvpn/meshvpn",
		MTime:         when,
		Overridables: nfpm.Overridables{
			Contents: contents,
			Depends:  depends,
			Scripts:  scripts,
			Deb:      nfpm.Deb{Compression: "xz"},
		},
	})
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return "", err
	}
	path := filepath.Join(out, deb.Default.ConventionalFileName(info))
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if err := deb.Default.Package(info, f); err != nil {
		f.Close()
		return "", err
	}
	return path, f.Close()
}

// run runs a program being packaged and returns what it prints.
func run(exe string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s %s: %w\n%s", filepath.Base(exe), strings.Join(args, " "), err, stderr.String())
	}
	if stdout.Len() == 0 { // the flag package prints --help on standard error
		return stderr.String(), err
	}
	return stdout.String(), err
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // no name and no time: reproducible
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// manPage is p's man page: its synopsis, and its --help as written, which is the reference.
func manPage(p program, version, help string) []byte {
	esc := func(s string) string {
		var b strings.Builder
		for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
			line = strings.ReplaceAll(line, `\`, `\e`)
			line = strings.ReplaceAll(line, "-", `\-`)
			if strings.HasPrefix(line, ".") || strings.HasPrefix(line, "'") {
				line = `\&` + line
			}
			b.WriteString(line + "\n")
		}
		return b.String()
	}
	return []byte(fmt.Sprintf(".TH %s 1 \"\" \"MeshVPN %s\" \"MeshVPN\"\n.SH NAME\n%s \\- %s\n.SH DESCRIPTION\n.nf\n%s.fi\n.SH SEE ALSO\nhttps://github.com/meshvpn/meshvpn/tree/main/docs\n",
		strings.ToUpper(p.Name), version, esc(p.Name), esc(strings.TrimSpace(p.Synopsis)), esc(help)))
}

// script renders one maintainer script for p; "" when p needs none of it. Services are not enabled or
// started on install (each needs its configuration, and most a genesis file, first); an upgrade
// restarts those that run, as Debian's debhelper does.
func script(tmpl string, p program) (string, error) {
	if p.User == "" && len(p.Units) == 0 {
		return "", nil
	}
	t, err := template.New("").Parse(tmpl[strings.Index(tmpl, "\n")+1:])
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, p); err != nil {
		return "", err
	}
	return b.String(), nil
}

// The maintainer scripts, each headed by its name. What debhelper's dh_installsystemd --no-enable
// --restart-after-upgrade and dh_installsysusers would write.
const postinst = `postinst
#!/bin/sh
set -e
{{- if or .User .Units}}
if [ "$1" = configure ] || [ "$1" = abort-upgrade ] || [ "$1" = abort-deconfigure ] || [ "$1" = abort-remove ]; then
{{- if .User}}
	systemd-sysusers ${DPKG_ROOT:+--root="$DPKG_ROOT"} {{.Name}}.conf
{{- end}}
{{- range .Units}}
	deb-systemd-helper unmask '{{.}}' >/dev/null || true
	deb-systemd-helper update-state '{{.}}' >/dev/null || true
{{- end}}
{{- if .Units}}
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
		if [ -n "$2" ]; then
			deb-systemd-invoke try-restart{{range .Units}} '{{.}}'{{end}} >/dev/null || true
		fi
	fi
{{- end}}
fi
{{- end}}
`

const prerm = `prerm
#!/bin/sh
set -e
{{- if .Units}}
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
	deb-systemd-invoke stop{{range .Units}} '{{.}}'{{end}} >/dev/null || true
fi
{{- end}}
{{- if .LiftOnRemove}}
if [ "$1" = remove ]; then
	# Stopping leaves the kill switch armed (the unit never lifts it, by design); once this program
	# is gone nothing could lift it, so removing the package does what "meshvpn-client down" does.
	{{.Name}} down >/dev/null 2>&1 || true
fi
{{- end}}
`

const postrm = `postrm
#!/bin/sh
set -e
{{- if .Units}}
if [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
fi
if [ "$1" = remove ]; then
	deb-systemd-helper mask{{range .Units}} '{{.}}'{{end}} >/dev/null || true
fi
if [ "$1" = purge ]; then
	deb-systemd-helper purge{{range .Units}} '{{.}}'{{end}} >/dev/null || true
	deb-systemd-helper unmask{{range .Units}} '{{.}}'{{end}} >/dev/null || true
fi
{{- end}}
`
