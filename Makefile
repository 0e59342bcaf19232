# Two commands do all set-up on a fresh Debian machine as root: `make demo` and `make test`.
# Each installs what it needs first (Debian packages, then the .venv), so nothing is done by hand.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEBS := etcd-server etcd-client clang llvm libbpf-dev bpftool iproute2 iptables nftables procps
BPF_SRC := $(wildcard src/fleetnet/datapath/bpf/*.c) $(wildcard src/fleetnet/datapath/bpf/*.h) $(wildcard src/fleetnet/datapath/bpf/lib/*.h)

.PHONY: all deps venv build demo test lint typecheck unit bench docs clean

all: build

.stamp-debs:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@touch $@

$(BIN)/fleetnet: pyproject.toml | .stamp-debs
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

deps: .stamp-debs $(BIN)/fleetnet

# eBPF objects are compiled once when fleetnet is built, not at every start.
.stamp-bpf: $(BPF_SRC) | deps
	$(BIN)/python -m fleetnet.datapath.build
	@touch $@

build: deps .stamp-bpf

lint: deps
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: deps
	$(BIN)/mypy

test: build lint typecheck
	$(BIN)/pytest -q $(PYTEST_ARGS)

demo: build
	$(BIN)/fleetnet demo

# load generators and baselines of the benchmarks only
BENCH_DEBS := apache2-utils iperf3
.stamp-bench-debs:
	@missing=""; for p in $(BENCH_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi
	@touch $@

bench: build .stamp-bench-debs
	$(BIN)/python -m benchmarks.run

# the command and API references are generated from the code; tests fail when they are stale
docs: deps
	$(BIN)/python -m fleetnet.docsgen --out docs
	$(BIN)/python docs/figures.py

clean:
	rm -rf .stamp-* build *.egg-info src/fleetnet/datapath/bpf/*.o
