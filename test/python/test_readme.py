"""Every command the README shows runs as printed: each ```sh block (in
bash, from the repository root, with the DuckDB 1.5.6 CLI of .venv first on
PATH as `duckdb`) and each ```python block (with this test's Python), in
the README's order, must exit 0. The blocks are read from README.md, so
they cannot drift from what is tested.

Skipped, and only these: the lines `make demo` and `make test` of the
"Two commands" block. `make test` runs this test (it would recurse) and
`make demo` builds and runs everything the other blocks run piecemeal;
both are what CI runs anyway."""
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI_DIR = os.path.join(ROOT, ".venv", "duckdb-1.5", "bin")
SKIPPED = ("make demo", "make test")
BLOCK = re.compile(r"^```(sh|python)\n(.*?)^```", re.S | re.M)


def blocks():
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    found = []
    for m in BLOCK.finditer(text):
        lang, body = m.group(1), m.group(2)
        line = text[: m.start()].count("\n") + 1
        if lang == "sh":
            kept = [l for l in body.splitlines() if not l.strip().startswith(SKIPPED)]
            body = "\n".join(kept)
        if body.strip():
            found.append(pytest.param(lang, body, id=f"README.md:{line}:{lang}"))
    return found


def test_the_readme_has_runnable_blocks():
    ids = [b.id for b in blocks()]
    # Loading (sh, python), the pipeline on a real file, BI: file database,
    # Python reader, Parquet, search_path.
    assert sum(":sh" in i for i in ids) >= 4 and sum(":python" in i for i in ids) >= 3, ids


@pytest.mark.parametrize("lang,body", blocks())
def test_readme_block_runs(lang, body):
    env = dict(os.environ, PATH=CLI_DIR + os.pathsep + os.environ.get("PATH", ""))
    if lang == "sh":
        cmd = ["bash", "-euo", "pipefail", "-c", body]
    else:
        cmd = [sys.executable, "-c", body]
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"{body}\n--- stdout\n{run.stdout[-3000:]}\n--- stderr\n{run.stderr[-3000:]}"
