# Loom's build, demo and test entry points. `sudo make demo` and
# `sudo make test` are the two commands of the README.

SHELL    := /bin/bash
GO       ?= go
FUZZTIME ?= 10s
PKGS     := ./...
# The Debian packages of the commands in .ci/packages (internal/ci keeps
# this list, .ci/run's and that file equal).
DEB_PKGS := curl ethtool iperf3 iproute2 iputils-ping make nodejs openvswitch-common openvswitch-switch openvswitch-testcontroller procps python3-scapy tcpdump udhcpc udhcpd
.PHONY: all build demo demo-check deps vet test test-unit plugin fuzz bench bench-peers clean

all: build

build:
	$(GO) build -o bin/ ./cmd/...

# The controller with its embedded store, plus a local OVS lab whose VMs
# talk through it. Ctrl-C stops it all.
demo: deps build
	examples/demo.sh

# The same, non-interactive: up, ping, show, tear down (CI runs it).
demo-check: deps build
	examples/demo.sh --once

# Install what the demo and the tests need when something is missing
# (root): DEB_PKGS, without recommended packages.
deps:
	@bash .ci/check-tools 2>/dev/null || { apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(DEB_PKGS); }
	@bash .ci/check-tools

vet:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

# Everything: unit tests and real-OVS integration tests (root), with the
# race detector, the plugin example's module, then a short run of every
# fuzz target.
test: deps vet
	LOOM_REQUIRE_OVS=$${LOOM_REQUIRE_OVS:-1} $(GO) test -race -count=1 -p 1 $(PKGS)
	$(GO) test -race -count=1 ./model -store=etcd   # the model's suite again, on an embedded etcd cluster
	$(GO) test -count=1 -run TestReplicasScale ./loomd   # a timing test, skipped under -race
	LOOM_REQUIRE_OVS=$${LOOM_REQUIRE_OVS:-1} $(MAKE) plugin
	$(MAKE) fuzz

# Unit tests only: no root, no OVS (the OVS tests skip).
test-unit:
	$(GO) test -race -count=1 $(PKGS)
	$(GO) test -race -count=1 ./model -store=etcd
	$(MAKE) plugin

# examples/plugin is a module of its own (an app built into a loomd
# through loomd.Main), so ./... above leaves it out: vet it, test it (its
# OVS test skips without root and OVS, unless LOOM_REQUIRE_OVS=1) and build
# its loomd here.
plugin:
	cd examples/plugin && $(GO) vet ./... && $(GO) test -race -count=1 ./... && $(GO) build -o /dev/null ./cmd/loomd-arpguard

# Each fuzz target for FUZZTIME.
fuzz:
	@set -e; for spec in \
		southbound/openflow/wire:FuzzDecode southbound/openflow/wire:FuzzReadMessage southbound/openflow/wire:FuzzMatch \
		southbound/openflow/flow:FuzzFlowStats southbound/openflow/flow:FuzzGroupMeter \
		southbound/openflow/packet:FuzzFrameDecode southbound/openflow/packet:FuzzLLDP southbound/openflow/packet:FuzzDHCP; do \
		pkg=$${spec%%:*}; fn=$${spec#*:}; \
		echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) ./$$pkg 2>&1 | grep -E '^(fuzz: elapsed.*execs|ok|FAIL|---|\s+.*_test.go)' | tail -3; \
		test $${PIPESTATUS[0]} -eq 0; \
	done

# Every Go benchmark (packet-in path, encoders, reconciliation of 100k
# flows, the 1,000-host fabric, REST, store), as one table.
bench:
	set -o pipefail; $(GO) test -run '^$$' -bench . -benchmem -timeout 30m $(PKGS) | examples/bench/table.awk

# Loom, os-ken (simple_switch_13) and ovs-testcontroller side by side under
# cmd/loombench, with the do-nothing ceiling; installs the peers when missing
# (root). SWITCHES, MACS, LOOPS, DURATION, WARMUP, BUFFERED, PEERS...: see
# examples/bench/peers.sh.
bench-peers:
	examples/bench/peers.sh

clean:
	rm -rf bin
