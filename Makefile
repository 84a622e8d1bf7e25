# Set-up, build, tests, lints, demo and benchmarks. Everything installs into
# .venv from requirements-dev.txt; cargo keeps its work in target/.

VENV    := .venv
PY      := $(VENV)/bin/python
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(abspath $(VENV))/bin:$(PATH)
CARGO_TEST_CRATES := -p mosaik-core -p mosaik-store -p mosaik-net

.PHONY: all venv build test test-rust test-python nemesis-deps nemesis lint docs demo bench clean

all: test

$(VENV)/.deps: requirements-dev.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.deps

build: venv
	maturin develop --release --quiet

test: build nemesis-deps lint docs test-rust test-python

test-rust:
	cargo test --release $(CARGO_TEST_CRATES)

test-python: build nemesis-deps
	$(PY) benches/replication.py --smoke
	$(PY) benches/compare.py --smoke --out $(VENV)/compare-smoke
	$(PY) benches/durability.py --smoke
	$(PY) benches/collections_memory.py --smoke
	$(PY) benches/groups.py --smoke
	$(PY) -m pytest benches/micro --benchmark-disable -q
	$(PY) -m pytest tests

lint: build
	cargo fmt --all --check
	cargo clippy --release --workspace --all-targets -- -D warnings
	$(PY) -m ruff check python tests benches
	$(PY) -m ruff format --check python tests benches
	$(PY) -m mypy --strict python/mosaik tests/typed_collections.py
	$(PY) -m mypy.stubtest mosaik._native

# The documentation site (mkdocs.yml), built into .venv/site with every
# warning an error. It reads python/mosaik from source and _native.pyi, so
# it needs no build. (The variable silences mkdocs-material's banner about
# its successor; it changes nothing in the build.)
docs: venv
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

# nft and ip for the tests in network namespaces (tests/nemesis,
# tests/test_hosts.py), installed only as root; without them (or without
# root) those tests skip and say why.
nemesis-deps:
	@{ command -v nft && command -v ip; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y -qq --no-install-recommends nftables iproute2 >/dev/null 2>&1 || \
	    { apt-get update -qq && apt-get install -y -qq --no-install-recommends nftables iproute2; } || \
	    echo "nemesis-deps: could not install nftables/iproute2; the namespace tests will skip"; \
	  else echo "nemesis-deps: nft or ip missing and not root; the namespace tests will skip"; fi; }

# Soak: rounds with new seeds for DURATION seconds (default 1800). Options:
# SEED= (first seed; replays with ROUNDS=1), MEMBERS= (3 or 3,5), STORE=
# (memory, disk or both), ROUND= (workload seconds per round), ROUNDS=.
nemesis: build nemesis-deps
	$(PY) -m tests.nemesis --duration $(or $(DURATION),1800) \
	  $(if $(SEED),--seed $(SEED)) $(if $(MEMBERS),--members $(MEMBERS)) \
	  $(if $(STORE),--store $(STORE)) $(if $(ROUND),--round $(ROUND)) \
	  $(if $(ROUNDS),--rounds $(ROUNDS))

demo: build
	$(PY) -m mosaik demo

bench: build
	$(PY) benches/transport.py
	$(PY) benches/mesh.py
	$(PY) benches/replication.py
	$(PY) benches/durability.py
	$(PY) benches/compare.py
	$(PY) benches/collections_memory.py
	$(PY) benches/groups.py
	$(PY) benches/latency_stages.py
	$(PY) -m pytest benches/micro --benchmark-only -q --benchmark-columns=min,median,mean,ops

clean:
	rm -rf $(VENV) target
