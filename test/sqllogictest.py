#!/usr/bin/env python3
"""A small sqllogictest runner for ecoreco, run against the built extension.

No DuckDB sqllogictest runner is on PyPI, so this implements the subset of
DuckDB's dialect the tests use:

    # comment
    require ecoreco                 (the extension is loaded before each file)
    statement ok | statement error  (then SQL; for error, `----` and a
                                    substring the error message must contain:
                                    an error record without one is refused,
                                    so no test passes on any error at all)
    query <types> [nosort|rowsort]  (types: one letter per column, I integer,
                                    R real, T text; then SQL, `----`, rows
                                    with tab-separated values)

Values print as DuckDB's runner prints them: NULL, (empty) for '', true /
false for booleans. R columns compare with a relative tolerance of 1e-6, so
expectations can be written as hand-computed decimals. Paths in SQL are
relative to the repository root; __SHARED__ is replaced by the shared data
folder (../shared/data, or $ECORECO_SHARED_DATA), __TEST_DIR__ by a
fresh temporary folder.

usage: sqllogictest.py EXTENSION FILE_OR_DIR...
"""
import math
import os
import sys
import tempfile
import time

import duckdb

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_DIR = tempfile.mkdtemp(prefix="ecoreco-test-")
SHARED = os.environ.get("ECORECO_SHARED_DATA", os.path.join(os.path.dirname(ROOT), "shared", "data"))


class Record:
    def __init__(self, kind, line, sql, expected=None, types="", sort="nosort", error=None):
        self.kind, self.line, self.sql = kind, line, sql
        self.expected, self.types, self.sort, self.error = expected, types, sort, error


def parse(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    records, i = [], 0
    while i < len(lines):
        line = lines[i].strip()
        if not line or line.startswith("#") or line.startswith("require"):
            i += 1
            continue
        head = line.split()
        start = i + 1
        i += 1
        sql_lines = []
        while i < len(lines) and lines[i].strip() not in ("----", "") :
            sql_lines.append(lines[i])
            i += 1
        sql = "\n".join(sql_lines).replace("__SHARED__", SHARED).replace("__TEST_DIR__", TEST_DIR)
        result_lines = []
        if i < len(lines) and lines[i].strip() == "----":
            i += 1
            while i < len(lines) and lines[i].strip() != "":
                result_lines.append(lines[i])
                i += 1
        if head[0] == "statement" and head[1] == "ok":
            records.append(Record("ok", start, sql))
        elif head[0] == "statement" and head[1] == "error":
            error = "\n".join(result_lines).strip()
            if not error:
                raise SystemExit(f"{path}:{start}: 'statement error' needs '----' and the expected message")
            records.append(Record("error", start, sql, error=error))
        elif head[0] == "query":
            sort = head[2] if len(head) > 2 else "nosort"
            records.append(Record("query", start, sql, result_lines, head[1], sort))
        else:
            raise SystemExit(f"{path}:{start}: cannot parse '{line}'")
    return records


def render(value):
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "(empty)" if value == "" else value
    return str(value)


def cell_matches(kind, got, expected):
    if kind == "R" and got not in ("NULL",) and expected not in ("NULL",):
        try:
            g, e = float(got), float(expected)
        except ValueError:
            return got == expected
        if math.isnan(g) or math.isnan(e):
            return math.isnan(g) and math.isnan(e)
        return abs(g - e) <= 1e-6 * max(1.0, abs(e))
    return got == expected


def run_file(extension, path):
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{extension}'")
    failures = []
    for rec in parse(path):
        where = f"{os.path.relpath(path, ROOT)}:{rec.line}"
        try:
            rows = con.execute(rec.sql).fetchall() if rec.kind == "query" else con.execute(rec.sql)
            if rec.kind == "error":
                failures.append(f"{where}: expected an error, the statement succeeded\n  {rec.sql}")
                continue
        except duckdb.Error as exc:
            if rec.kind == "error":
                if rec.error not in str(exc):
                    failures.append(f"{where}: error did not contain {rec.error!r}:\n  {exc}")
            else:
                failures.append(f"{where}: unexpected error: {exc}\n  {rec.sql}")
            continue
        if rec.kind != "query":
            continue
        got = [[render(v) for v in row] for row in rows]
        expected = [row.split("\t") for row in rec.expected]
        if rec.sort == "rowsort":
            got.sort()
            expected.sort()
        ok = len(got) == len(expected) and all(
            len(g) == len(e) == len(rec.types) and all(cell_matches(t, gc, ec) for t, gc, ec in zip(rec.types, g, e))
            for g, e in zip(got, expected)
        )
        if not ok:
            shown_got = "\n".join("\t".join(r) for r in got[:20])
            shown_exp = "\n".join("\t".join(r) for r in expected[:20])
            failures.append(f"{where}: wrong result\n  {rec.sql}\n-- expected:\n{shown_exp}\n-- got:\n{shown_got}")
    con.close()
    return failures


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    extension = os.path.abspath(sys.argv[1])
    files = []
    for arg in sys.argv[2:]:
        if os.path.isdir(arg):
            files += sorted(os.path.join(arg, f) for f in os.listdir(arg) if f.endswith(".test"))
        else:
            files.append(arg)
    os.chdir(ROOT)
    passed = failed = 0
    for path in files:
        started = time.time()
        failures = run_file(extension, path)
        status = "ok" if not failures else "FAILED"
        print(f"[duckdb {duckdb.__version__}] {os.path.relpath(path, ROOT)}: {status} ({time.time() - started:.1f}s)")
        for f in failures:
            print("  " + f.replace("\n", "\n  "))
        if failures:
            failed += 1
        else:
            passed += 1
    print(f"sqllogictest: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
