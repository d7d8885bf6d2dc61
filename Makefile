# ecoreco: build the loadable DuckDB extension, run the demo, the tests and the benchmarks.
#   make          build build/release/ecoreco.duckdb_extension
#   make demo     build, generate data, run sql/demo.sql in the DuckDB CLI
#   make test     Rust unit tests + SQL tests in DuckDB 1.5 and 2.0 (CLI and Python)
#                 + the model exchange with a real Spark (PySpark, needs Java 17)
#   Each target installs the Debian packages it needs when they are missing
#   (test/system_packages.sh: as root through apt-get, otherwise it says what to run).
#   make bench    end-to-end figures (ingest ratio, generator rows/s, ...) + criterion benches
#   make report   the demo, then a screenshot of its report: data/report.html, data/report.png
#   make stream-demo  replay with metrics sent to a temporary local InfluxDB, read back

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
# The BI tests read the Parquet exports with a second reader.
PY_REPORT_DEPS := pyarrow==26.0.1
# The fuzz campaign (test/fuzz) draws its calls with hypothesis.
PY_FUZZ_DEPS  := hypothesis==6.170.15
CLI           := $(VENV_15)/bin/duckdb
# Spark versions the ALSModel exchange is tested against, one venv each.
PYSPARK_VERSIONS := 3.5.9 4.0.5
SPARK_TEST    := test/python/test_spark.py
DEMO_EVENTS   ?= 200000

SYSTEM        := bash test/system_packages.sh

.PHONY: system-build system-test lint all release demo report stream-demo test test-rust test-sql test-spark test-valgrind bench bench-scale venv clean

all: release

release: $(EXTENSION)

# Checked before every build (a quick `command -v`); installs when missing.
system-build:
	@$(SYSTEM) build

$(EXTENSION): Cargo.toml Cargo.lock $(shell find src -name '*.rs') $(shell find sql/macros -name '*.sql') extension/append_metadata.py | system-build
	cargo build --release --lib
	@mkdir -p build/release
	strip -o build/release/libecoreco.so target/release/libecoreco.so
	$(PYTHON) extension/append_metadata.py build/release/libecoreco.so $@ \
		--extension-version $(EXT_VERSION) --c-api $(MIN_C_API) --platform $(PLATFORM)
	@rm -f build/release/libecoreco.so

venv: $(VENV_15)/.ok $(VENV_20)/.ok $(VENV_15)/.report-ok $(VENV_20)/.report-ok $(VENV_15)/.fuzz-ok $(VENV_20)/.fuzz-ok

$(VENV_15)/.ok: | system-build
	$(PYTHON) -m venv $(VENV_15)
	$(VENV_15)/bin/pip install -q $(DUCKDB_15) $(PY_TEST_DEPS)
	@touch $@

$(VENV_20)/.ok: | system-build
	$(PYTHON) -m venv $(VENV_20)
	$(VENV_20)/bin/pip install -q $(DUCKDB_20) $(PY_TEST_DEPS)
	@touch $@

# A separate stamp, so that venvs made before these packages were needed get them.
$(VENV_15)/.report-ok: $(VENV_15)/.ok
	$(VENV_15)/bin/pip install -q $(PY_REPORT_DEPS)
	@touch $@

$(VENV_20)/.report-ok: $(VENV_20)/.ok
	$(VENV_20)/bin/pip install -q $(PY_REPORT_DEPS)
	@touch $@

$(VENV_15)/.fuzz-ok: $(VENV_15)/.ok
	$(VENV_15)/bin/pip install -q $(PY_FUZZ_DEPS)
	@touch $@

$(VENV_20)/.fuzz-ok: $(VENV_20)/.ok
	$(VENV_20)/bin/pip install -q $(PY_FUZZ_DEPS)
	@touch $@

demo: release venv
	@mkdir -p data
	$(CLI) -unsigned -c "LOAD '$(EXTENSION)'; COPY (FROM ecoreco_synth(events := $(DEMO_EVENTS), seed := 42)) TO 'data/demo_events.csv' (HEADER);"
	$(CLI) -unsigned -cmd "LOAD '$(EXTENSION)'" -c ".read sql/demo.sql"
	@echo "== The Parquet exports read back by pyarrow and by DuckDB =="
	$(VENV_20)/bin/python test/python/parquet_readback.py data

report: demo
	@$(SYSTEM) browser
	$(VENV_20)/bin/python test/python/headless.py screenshot data/report.html data/report.png


# Starts influxd (Debian's influxdb package) on 127.0.0.1 in a temporary
# folder, replays one day of generated events with metrics written to it
# while it runs, reads them back with InfluxQL and stops the server.
stream-demo: release venv
	@$(SYSTEM) influx
	$(VENV_20)/bin/python test/python/stream_demo.py $(EXTENSION)

# What the tests need beyond Python packages: headless Chromium (the report),
# influxd (a real server started by the tests), Java 17 (PySpark).
test: system-test lint test-rust test-sql test-valgrind test-spark

system-test: system-build
	@$(SYSTEM) browser influx spark valgrind

# The Rust community's checks: rustfmt's layout and clippy's lints, warnings
# as errors (the library and its unit tests).
lint:
	cargo fmt --check
	cargo clippy --lib --tests -- -D warnings

# The unit tests with debug assertions and overflow checks on (Cargo.toml's
# `checked` profile); the SQL tests below load the release build.
test-rust:
	cargo test --profile checked --lib

test-sql: release venv
	$(VENV_15)/bin/python test/sqllogictest.py $(EXTENSION) test/sql
	$(VENV_20)/bin/python test/sqllogictest.py $(EXTENSION) test/sql
	$(VENV_15)/bin/python -m pytest -q test/python --ignore=$(SPARK_TEST)
	$(VENV_20)/bin/python -m pytest -q test/python --ignore=$(SPARK_TEST)
	bash test/cli_smoke.sh $(CLI)
	$(VENV_15)/bin/python test/fuzz/campaign.py $(EXTENSION) --systematic
	$(VENV_20)/bin/python test/fuzz/campaign.py $(EXTENSION) --systematic

# The forms matrix (test/python/test_forms.py: every aggregate in every
# calling form, and the macro-only aggregates through their macros) under
# valgrind's memcheck, in DuckDB 1.5 and 2.0 side by side (valgrind runs one
# thread at a time): fails on any invalid read or write with an ecoreco
# frame. The source tables are cut to 800 generated events (valgrind is about
# 50 times slower). The extension is the same build, not stripped, so frames
# are named (CARGO_PROFILE_RELEASE_DEBUG=line-tables-only adds file:line).
# About 3 minutes on 2 cores; each log is kept in build/valgrind/.
VALGRIND_EXTENSION := build/valgrind/ecoreco.duckdb_extension
VALGRIND_EVENTS ?= 800
$(VALGRIND_EXTENSION): $(EXTENSION)
	@mkdir -p build/valgrind
	$(PYTHON) extension/append_metadata.py target/release/libecoreco.so $@ \
		--extension-version $(EXT_VERSION) --c-api $(MIN_C_API) --platform $(PLATFORM)

test-valgrind: $(VALGRIND_EXTENSION) venv
	@$(SYSTEM) valgrind
	@FORMS_EVENTS=$(VALGRIND_EVENTS) $(VENV_15)/bin/python test/valgrind.py $(VALGRIND_EXTENSION) \
		--log build/valgrind/duckdb-1.5.log > build/valgrind/duckdb-1.5.out 2>&1 & \
	FORMS_EVENTS=$(VALGRIND_EVENTS) $(VENV_20)/bin/python test/valgrind.py $(VALGRIND_EXTENSION) \
		--log build/valgrind/duckdb-2.0.log > build/valgrind/duckdb-2.0.out 2>&1; two=$$?; \
	wait $$!; one=$$?; \
	echo "DuckDB 1.5:"; tail -n 25 build/valgrind/duckdb-1.5.out; \
	echo "DuckDB 2.0:"; tail -n 25 build/valgrind/duckdb-2.0.out; \
	test $$one -eq 0 && test $$two -eq 0

# PySpark from PyPI with DuckDB 2.0 beside it; Spark needs a Java runtime.
.venv/spark-%/.ok: | system-build
	@$(SYSTEM) spark
	$(PYTHON) -m venv .venv/spark-$*
	.venv/spark-$*/bin/pip install -q pyspark==$* $(DUCKDB_20) pytest==8.3.5 numpy
	@touch $@

test-spark: release $(foreach v,$(PYSPARK_VERSIONS),.venv/spark-$(v)/.ok)
	@$(SYSTEM) spark
	@for v in $(PYSPARK_VERSIONS); do \
		echo "Spark exchange tests with PySpark $$v"; \
		.venv/spark-$$v/bin/python -m pytest -q -s $(SPARK_TEST) || exit 1; \
	done

$(VENV_BENCH)/.ok:
	$(PYTHON) -m venv $(VENV_BENCH)
	$(VENV_BENCH)/bin/pip install -q $(DUCKDB_20) implicit scipy numpy threadpoolctl
	@touch $@

bench: release venv $(VENV_BENCH)/.ok
	$(VENV_BENCH)/bin/python benches/pipeline.py $(EXTENSION)
	$(VENV_BENCH)/bin/python benches/analytics.py $(EXTENSION)
	$(VENV_BENCH)/bin/python benches/recommend.py $(EXTENSION)
	$(VENV_BENCH)/bin/python benches/rules.py $(EXTENSION)
	$(VENV_BENCH)/bin/python benches/update.py $(EXTENSION)
	$(VENV_BENCH)/bin/python benches/quality.py $(EXTENSION)
	$(VENV_BENCH)/bin/python benches/next_click.py $(EXTENSION)
	$(VENV_BENCH)/bin/python benches/session_floors.py $(EXTENSION)
	$(VENV_BENCH)/bin/python benches/stream.py $(EXTENSION)
	$(VENV_BENCH)/bin/python benches/sessions.py $(EXTENSION)
	cargo bench --features bench

# The pipeline at the real data size: EVENTS=42000000 (October) or
# EVENTS=110000000 (October + November), on a file database.
EVENTS        ?= 42000000
MEMORY_LIMIT  ?= 6GB
bench-scale: release venv
	EVENTS=$(EVENTS) MEMORY_LIMIT=$(MEMORY_LIMIT) $(VENV_20)/bin/python benches/scale.py $(EXTENSION)

clean:
	rm -rf build target/release/libecoreco.so data
