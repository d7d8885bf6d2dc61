#!/usr/bin/env python3
"""Runs the forms matrix (test/python/test_forms.py) under valgrind's
memcheck and counts the invalid reads and writes whose stack passes through
ecoreco (frames in the extension's file, or named `ecoreco::`).

The extension given should carry its symbol table (`make test-valgrind`
builds build/valgrind/ecoreco.duckdb_extension from the unstripped library),
so frames are named; build it with CARGO_PROFILE_RELEASE_DEBUG=line-tables-only
for file:line as well.

Python under valgrind runs about 50 times slower: `make test-valgrind` cuts
the matrix's source tables to a few hundred generated events (FORMS_EVENTS);
FORMS_SUBSET and AGGREGATES_SUBSET (comma-separated) cut the matrix itself,
which by default is every aggregate in every form plus the macro forms.

usage: valgrind.py EXTENSION [--log FILE]
exit status 1 if any invalid read or write passes through ecoreco, or the
tests under valgrind fail.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FORMS = "plain,group_by,filter,distinct,order_by,over,over_partition,over_frame,lateral,failing"
# Empty: every aggregate of the matrix.
AGGREGATES = ""


def errors(log):
    """The error blocks of a memcheck log: (kind, stack lines)."""
    blocks, current = [], None
    for line in log.splitlines():
        body = re.sub(r"^==\d+== ?", "", line)
        if re.match(r"(Invalid (read|write)|Conditional jump|Use of uninitialised|Invalid free|Mismatched free|"
                    r"Syscall param|Source and destination overlap)", body):
            current = [body, []]
            blocks.append(current)
        elif current is not None and re.match(r"\s+(at|by) 0x", body):
            current[1].append(body.strip())
        elif current is not None and not body.strip():
            current = None
    return blocks


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("extension")
    parser.add_argument("--log")
    opts = parser.parse_args()
    extension = os.path.abspath(opts.extension)
    log = os.path.abspath(opts.log) if opts.log else tempfile.mktemp(prefix="ecoreco-valgrind-", suffix=".log")
    env = dict(os.environ, PYTHONMALLOC="malloc", ECORECO_EXTENSION=extension,
               FORMS_SUBSET=os.environ.get("FORMS_SUBSET", FORMS),
               AGGREGATES_SUBSET=os.environ.get("AGGREGATES_SUBSET", AGGREGATES))
    command = ["valgrind", "--tool=memcheck", f"--log-file={log}", "--num-callers=40", "--error-limit=no",
               sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               os.path.join(ROOT, "test", "python", "test_forms.py"), "-k", "test_form"]
    started = time.monotonic()
    # DuckDB 1.5 names its spill files ./.tmp/... the same in every process:
    # run from a folder of our own.
    work = tempfile.mkdtemp(prefix="ecoreco-valgrind-")
    proc = subprocess.run(command, env=env, cwd=work)
    elapsed = time.monotonic() - started
    with open(log, errors="replace") as f:
        blocks = errors(f.read())
    ours = [b for b in blocks if any("ecoreco" in frame for frame in b[1])]
    invalid = [b for b in ours if b[0].startswith(("Invalid read", "Invalid write"))]
    print(f"valgrind: {len(blocks)} memcheck errors in all, {len(ours)} with an ecoreco frame, "
          f"{len(invalid)} invalid reads or writes with an ecoreco frame; tests exit {proc.returncode}; "
          f"{elapsed:.0f} s; log {log}")
    for kind, stack in ours[:20]:
        print(f"  {kind}\n    " + "\n    ".join(stack[:12]))
    if invalid or proc.returncode != 0:
        sys.exit(1)


if __name__ == "__main__":
    main()
