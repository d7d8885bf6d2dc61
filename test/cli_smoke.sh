#!/usr/bin/env bash
# The extension loads in the DuckDB CLI, unsigned, as the README says.
set -euo pipefail
cli="$1"
ext="build/release/ecoreco.duckdb_extension"
out=$("$cli" -unsigned -noheader -csv -c "LOAD '$ext'; LOAD '$ext'; SELECT ecoreco_version(); SELECT count(*) FROM ecoreco.read_events('../shared/data/rees46-2019-oct-head.csv');")
expected=$(printf '%s\n%s' "$(grep -m1 '^version' Cargo.toml | cut -d'"' -f2)" 17434)
if [ "$out" != "$expected" ]; then
  echo "cli smoke: unexpected output from $("$cli" --version):"; echo "$out"; exit 1
fi
# INSTALL from a path, then LOAD by name.
home=$(mktemp -d)
out=$(HOME="$home" "$cli" -unsigned -noheader -csv -c "SET extension_directory='$home/ext'; FORCE INSTALL '$ext'; LOAD ecoreco; SELECT ecoreco.version();")
[ "$out" = "$(echo "$expected" | head -1)" ] || { echo "cli smoke: INSTALL/LOAD by name failed: $out"; exit 1; }
echo "cli smoke ($("$cli" --version | cut -d' ' -f1)): 2 passed, 0 failed"
