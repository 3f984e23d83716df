# MeshVPN build and test entry points. `make test` is the README's test command and what CI runs.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

GO       ?= go
MODULES  := crypto dht network core exit payment cmd
FUZZTIME ?= 10s
BIN      := $(CURDIR)/bin
# The programs carry the commit they were built from (their `version`): stamped by the Go toolchain
# from git, also where GOFLAGS says -buildvcs=false; a build outside git is not stamped and says so.
BUILDVCS := -buildvcs=auto

.PHONY: all build test vet unit fuzz bench demo soak soak-long deps check-go clean install package

all: build

check-go:
	@command -v $(GO) >/dev/null || { echo "Go is missing: install Go 1.26 or newer (https://go.dev/doc/install) and put it on PATH" >&2; exit 1; }
	@$(GO) version | awk '{ split($$3, v, "."); sub("go", "", v[1]); if (v[1] < 1 || (v[1] == 1 && v[2] < 26)) { print "Go 1.26 or newer is needed, found " $$3 > "/dev/stderr"; exit 1 } }'

# Debian packages the tests and the demo need (network namespaces, nftables, traffic tools; lintian
# and systemd-analyze for the packages' checks).
deps:
	@missing=""; \
	for p in nft:nftables ip:iproute2 iperf3:iperf3 curl:curl ping:iputils-ping gcc:gcc tcpdump:tcpdump \
	         lintian:lintian systemd-analyze:systemd dpkg-deb:dpkg setpriv:util-linux; do \
	  command -v $${p%%:*} >/dev/null || missing="$$missing $${p##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  [ "$$(id -u)" = 0 ] || { echo "run as root, or install:$$missing" >&2; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

build: check-go
	@mkdir -p $(BIN)
	@for m in $(MODULES); do (cd $$m && $(GO) build ./...); done
	@mains=$$(cd cmd && $(GO) list -f '{{if eq .Name "main"}}{{.ImportPath}}{{end}}' ./...); \
	if [ -n "$$mains" ]; then (cd cmd && $(GO) build $(BUILDVCS) -o $(BIN)/ $$mains); fi; \
	echo "built every module; binaries in $(BIN): $$(ls $(BIN) | tr '\n' ' ')"

vet: check-go
	@for m in $(MODULES); do echo "go vet $$m"; (cd $$m && $(GO) vet ./...); done

unit: check-go
	@for m in $(MODULES); do (cd $$m && $(GO) test -race -timeout 30m ./...); done

test: deps vet unit

# Every fuzz target of every package, each for FUZZTIME: a duration (10s) or an execution count
# (30000x). Go 1.26's fuzz coordinator can fail a duration run at its deadline with "context deadline
# exceeded" and no failing input (go.dev/issue/75804, fixed in Go 1.27): such a run is retried once;
# any run that writes a failing input, or fails otherwise, fails the target. CI uses counts, which have
# no deadline to race.
fuzz: check-go
	@for m in $(MODULES); do \
	  for pkg in $$(cd $$m && $(GO) list ./...); do \
	    for f in $$(cd $$m && $(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	      echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	      out=$$(mktemp); ok=0; \
	      for try in 1 2; do \
	        if (cd $$m && $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg) >$$out 2>&1; then ok=1; break; fi; \
	        if grep -q 'context deadline exceeded' $$out && ! grep -q -e 'Failing input written' -e 'panic:' $$out; then \
	          echo "  go fuzz coordinator deadline flake (go.dev/issue/75804), no failing input: retrying once"; continue; \
	        fi; \
	        break; \
	      done; \
	      if [ $$ok = 1 ]; then tail -n 1 $$out; rm -f $$out; else tail -n 40 $$out; rm -f $$out; exit 1; fi; \
	    done; \
	  done; \
	done

# Performance figures, each beside the limit it is measured against, in one run.
REPORT_FILTER := grep -v -e '^=== RUN' -e '^ *--- PASS' -e '^PASS' -e '^ok'
bench: check-go
	@echo "== crypto =="
	@cd crypto && $(GO) test -run '^TestReport$$' -count=1 -v ./perf/ -args -report | $(REPORT_FILTER)
	@echo; echo "== links (network/link, one core) =="
	@cd network && $(GO) test -run '^$$' -bench . -benchmem -cpu 1 ./link/ | grep -e '^Benchmark'
	@echo; echo "== handshake flood (network/link, loopback) =="
	@cd network && $(GO) test -run '^TestReportFlood$$' -count=1 -v ./link/ -args -report | $(REPORT_FILTER)
	@echo; echo "== link setup across emulated NATs (namespaces, root) =="
	@cd network && $(GO) test -run '^TestReport$$' -count=1 -v ./link/ -args -report | $(REPORT_FILTER)
	@echo; echo "== relay forwarding, idle circuits' memory, a CREATE flood's cost to others, the key ratchet's sweep =="
	@cd core && $(GO) test -run '^TestReport' -count=1 -v ./relay/ -args -report | $(REPORT_FILTER)
	@echo; echo "== circuits =="
	@cd core && $(GO) test -run '^TestReport$$' -count=1 -v ./client/ -args -report | $(REPORT_FILTER)
	@echo; echo "== discovery at scale (loopback) =="
	@cd cmd && $(GO) test -run '^TestReport$$' -count=1 -v ./internal/scale/ -args -report | $(REPORT_FILTER)
	@echo; echo "== testnet in namespaces (root) =="
	@cd cmd && $(GO) test -run '^TestReport$$' -count=1 -v ./internal/testnet/ -args -report | $(REPORT_FILTER)
	@echo; echo "== circuits replaced at their lifetime under a flow, keys ratcheting (namespaces, root) =="
	@cd cmd && $(GO) test -run '^TestReportCircuitLifetime$$' -count=1 -v ./internal/testnet/ -args -report | $(REPORT_FILTER)

# The whole network in namespaces with real traffic through a circuit (needs root).
demo: deps build
	@[ "$$(id -u)" = 0 ] || { echo "make demo needs root (network namespaces, TUN devices, nftables)" >&2; exit 1; }
	@$(BIN)/meshvpn-bootstrap testnet --demo

# The demo's reroute (kill the circuit's middle during a download) many times over, on fresh networks,
# with the machine kept busy (needs root). SOAKFLAGS="--runs 20 --per-net 5 --disturb ns,cpu,mem".
soak: deps build
	@[ "$$(id -u)" = 0 ] || { echo "make soak needs root (network namespaces, TUN devices, nftables)" >&2; exit 1; }
	@$(BIN)/meshvpn-bootstrap soak $(SOAKFLAGS)

# One network for 30 minutes with traffic throughout and the circuit's middle killed every 3 minutes;
# reports each reroute's gap, lost connections, the directory's age and each daemon's memory, with a
# verdict (needs root). SOAKLONGFLAGS="--duration 10m --kill-every 1m --keep DIR".
soak-long: deps build
	@[ "$$(id -u)" = 0 ] || { echo "make soak-long needs root (network namespaces, TUN devices, nftables)" >&2; exit 1; }
	@$(BIN)/meshvpn-bootstrap soak-long $(SOAKLONGFLAGS)

# The programs into $(PREFIX)/bin and the client's systemd unit (packaging/meshvpn-client.service,
# hardened, kill switch kept across restarts) into $(UNITDIR). DESTDIR stages it for a package.
PREFIX  ?= /usr/local
UNITDIR ?= /etc/systemd/system
install: build
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BIN)/* $(DESTDIR)$(PREFIX)/bin/
	sed 's|/usr/local/bin/|$(PREFIX)/bin/|' packaging/meshvpn-client.service | install -D -m 0644 /dev/stdin $(DESTDIR)$(UNITDIR)/meshvpn-client.service
	@echo "installed; for the client as a service: systemctl daemon-reload && systemctl enable --now meshvpn-client"

# Debian packages of the five programs into $(DIST) (packaging/main.go, with nfpm): static, stripped
# binaries, each daemon with its systemd units, its example configuration as a conffile under
# /etc/meshvpn and its system user (sysusers.d). cmd/internal/deb's test builds them with this target
# and checks them (lintian, systemd-analyze verify, the testnet run from the unpacked binaries).
# packaging/ is a module of its own, outside go.work, so nfpm's dependencies stay out of the product's.
VERSION ?= 0.1.0
DIST    ?= $(CURDIR)/dist
package: check-go
	@mkdir -p $(DIST)/bin && rm -f $(DIST)/*.deb $(DIST)/bin/meshvpn-*
	@mains=$$(cd cmd && $(GO) list -f '{{if eq .Name "main"}}{{.ImportPath}}{{end}}' ./...); \
	cd cmd && CGO_ENABLED=0 $(GO) build $(BUILDVCS) -trimpath -ldflags='-s -w' -o $(DIST)/bin/ $$mains
	@cd packaging && GOWORK=off $(GO) run . --bin $(DIST)/bin --out $(DIST) --version $(VERSION)

clean:
	rm -rf $(BIN) $(DIST)
