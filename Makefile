# Set-up, build, tests, lints, demo and benchmarks. Everything installs into
# .venv from requirements-dev.txt; cargo keeps its work in target/.

VENV    := .venv
PY      := $(VENV)/bin/python
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(abspath $(VENV))/bin:$(PATH)
CARGO_TEST_CRATES := -p mosaik-core -p mosaik-store -p mosaik-net

.PHONY: all venv build test test-rust test-python lint demo bench clean

all: test

$(VENV)/.deps: requirements-dev.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.deps

build: venv
	maturin develop --release --quiet

test: build lint test-rust test-python

test-rust:
	cargo test --release $(CARGO_TEST_CRATES)

test-python: build
	$(PY) benches/replication.py --smoke
	$(PY) benches/compare.py --smoke --out $(VENV)/compare-smoke
	$(PY) benches/durability.py --smoke
	$(PY) -m pytest tests

lint: build
	cargo fmt --all --check
	cargo clippy --release --workspace --all-targets -- -D warnings
	$(PY) -m ruff check python tests benches
	$(PY) -m ruff format --check python tests benches
	$(PY) -m mypy --strict python/mosaik
	$(PY) -m mypy.stubtest mosaik._native

demo: build
	$(PY) -m mosaik demo

bench: build
	$(PY) benches/transport.py
	$(PY) benches/mesh.py
	$(PY) benches/replication.py
	$(PY) benches/durability.py
	$(PY) benches/compare.py
	$(PY) -m pytest benches/micro --benchmark-only -q --benchmark-columns=min,median,mean,ops

clean:
	rm -rf $(VENV) target
