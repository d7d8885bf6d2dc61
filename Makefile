# ecoreco: build the loadable DuckDB extension, run the demo, the tests and the benchmarks.
#   make          build build/release/ecoreco.duckdb_extension
#   make demo     build, generate data, run sql/demo.sql in the DuckDB CLI
#   make test     Rust unit tests + SQL tests in DuckDB 1.5 and 2.0 (CLI and Python)
#   make bench    end-to-end figures (ingest ratio, generator rows/s, ...) + criterion benches

EXT_VERSION   := v$(shell grep -m1 '^version' Cargo.toml | cut -d'"' -f2)
# Every C API call we make is stable since v1.2.0: the same file loads in DuckDB 1.5 and 2.0.
MIN_C_API     := v1.2.0
PLATFORM      := linux_amd64
EXTENSION     := build/release/ecoreco.duckdb_extension
PYTHON        ?= python3
VENV_15       := .venv/duckdb-1.5
VENV_20       := .venv/duckdb-2.0
VENV_BENCH    := .venv/bench
DUCKDB_15     := duckdb==1.5.6 duckdb-cli==1.5.6
DUCKDB_20     := duckdb==2.0.0
PY_TEST_DEPS  := pytest==8.3.5 numpy scikit-learn
CLI           := $(VENV_15)/bin/duckdb
DEMO_EVENTS   ?= 200000

.PHONY: all release demo test test-rust test-sql bench bench-scale venv clean

all: release

release: $(EXTENSION)

$(EXTENSION): Cargo.toml Cargo.lock $(shell find src -name '*.rs') extension/append_metadata.py
	cargo build --release --lib
	@mkdir -p build/release
	strip -o build/release/libecoreco.so target/release/libecoreco.so
	$(PYTHON) extension/append_metadata.py build/release/libecoreco.so $@ \
		--extension-version $(EXT_VERSION) --c-api $(MIN_C_API) --platform $(PLATFORM)
	@rm -f build/release/libecoreco.so

venv: $(VENV_15)/.ok $(VENV_20)/.ok

$(VENV_15)/.ok:
	$(PYTHON) -m venv $(VENV_15)
	$(VENV_15)/bin/pip install -q $(DUCKDB_15) $(PY_TEST_DEPS)
	@touch $@

$(VENV_20)/.ok:
	$(PYTHON) -m venv $(VENV_20)
	$(VENV_20)/bin/pip install -q $(DUCKDB_20) $(PY_TEST_DEPS)
	@touch $@

demo: release venv
	@mkdir -p data
	$(CLI) -unsigned -c "LOAD '$(EXTENSION)'; COPY (FROM ecoreco_synth(events := $(DEMO_EVENTS), seed := 42)) TO 'data/demo_events.csv' (HEADER);"
	$(CLI) -unsigned -cmd "LOAD '$(EXTENSION)'" -c ".read sql/demo.sql"

test: test-rust test-sql

test-rust:
	cargo test --release --lib

test-sql: release venv
	$(VENV_15)/bin/python test/sqllogictest.py $(EXTENSION) test/sql
	$(VENV_20)/bin/python test/sqllogictest.py $(EXTENSION) test/sql
	$(VENV_15)/bin/python -m pytest -q test/python
	$(VENV_20)/bin/python -m pytest -q test/python
	bash test/cli_smoke.sh $(CLI)

$(VENV_BENCH)/.ok:
	$(PYTHON) -m venv $(VENV_BENCH)
	$(VENV_BENCH)/bin/pip install -q $(DUCKDB_20) implicit scipy numpy threadpoolctl
	@touch $@

bench: release venv $(VENV_BENCH)/.ok
	$(VENV_BENCH)/bin/python benches/pipeline.py $(EXTENSION)
	$(VENV_BENCH)/bin/python benches/analytics.py $(EXTENSION)
	$(VENV_BENCH)/bin/python benches/recommend.py $(EXTENSION)
	$(VENV_BENCH)/bin/python benches/quality.py $(EXTENSION)
	cargo bench

# The pipeline at the real data size: EVENTS=42000000 (October) or
# EVENTS=110000000 (October + November), on a file database.
EVENTS        ?= 42000000
MEMORY_LIMIT  ?= 6GB
bench-scale: release venv
	EVENTS=$(EVENTS) MEMORY_LIMIT=$(MEMORY_LIMIT) $(VENV_20)/bin/python benches/scale.py $(EXTENSION)

clean:
	rm -rf build target/release/libecoreco.so data
