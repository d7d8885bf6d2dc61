"""Every snippet the documentation shows runs as printed. The pages are
README.md and every docs/*.md (found when the test runs, so a new page is
covered without an edit); blocks are read from the pages themselves, so they
cannot drift from what is tested.

What counts as a runnable snippet: a fenced block whose info string is
exactly one of these words, run from the repository root (where data/
exists), and which must succeed:

- ```sh      bash -euo pipefail, with the DuckDB 1.5.6 CLI of .venv first on
             PATH as `duckdb`; must exit 0. Lines starting with `make demo`
             or `make test` are left out (`make test` runs this test and would
             recurse; `make demo` runs what the other blocks run piecemeal;
             CI runs both).
- ```python  this test's Python (so both DuckDB versions under `make test`);
             must exit 0.
- ```sql     every ```sql block of one page runs in order, statement by
             statement, in one in-memory database of this test's DuckDB
             (Python client) with the extension already loaded, so a block
             may use the tables an earlier block of the same page created,
             and each page starts from an empty database (and an empty
             cache of served models). Every statement
             must succeed and its whole result is read. A block that loads
             the extension itself (LOAD '...') is fine: loading twice is
             harmless.

Not run here, on purpose:
- ```py      PySpark code: it needs a Spark session, which
             test/python/test_spark.py runs it in (with the ```sql spark block
             of docs/spark.md, which reads the folders Spark wrote);
- blocks with any other info string, or none (```text for output, ```yaml
  for a file format): they show text, not code to run.

So to add a snippet that is not run, mark it ```text; everything marked
```sh, ```python or ```sql is a promise that it runs."""
import glob
import os
import re
import subprocess
import sys

import duckdb
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXT = os.path.join(ROOT, "build", "release", "ecoreco.duckdb_extension")
CLI_DIR = os.path.join(ROOT, ".venv", "duckdb-1.5", "bin")
SKIPPED = ("make demo", "make test")
# A fence, its info string, its body, the closing fence.
BLOCK = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.S | re.M)
RUN = ("sh", "python", "sql")


def pages():
    found = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
    return [os.path.relpath(p, ROOT) for p in found]


def page_blocks(page):
    """(info string, body, line) of every fenced block of a page, in order."""
    text = open(os.path.join(ROOT, page), encoding="utf-8").read()
    return [
        (m.group(1).strip(), m.group(2), text[: m.start()].count("\n") + 1)
        for m in BLOCK.finditer(text)
    ]


def shell_and_python():
    found = []
    for page in pages():
        for info, body, line in page_blocks(page):
            if info == "sh":
                body = "\n".join(l for l in body.splitlines() if not l.strip().startswith(SKIPPED))
            elif info != "python":
                continue
            if body.strip():
                found.append(pytest.param(info, body, id=f"{page}:{line}:{info}"))
    return found


def sql_pages():
    return [
        pytest.param(page, id=f"{page}:sql")
        for page in pages()
        if any(info == "sql" for info, _, _ in page_blocks(page))
    ]


def test_the_pages_have_runnable_blocks():
    ids = [b.id for b in shell_and_python()]
    readme = [i for i in ids if i.startswith("README.md:")]
    # The README: loading (sh, python), the pipeline on a file of your own.
    assert sum(":sh" in i for i in readme) >= 2 and sum(":python" in i for i in readme) >= 1, readme
    # The BI page: a file database and the plain CLI, Python readers, Parquet.
    assert sum(i.startswith("docs/bi.md:") for i in ids) >= 4, ids
    sql = [p.id for p in sql_pages()]
    assert "README.md:sql" in sql, sql
    for page in ("ingest", "analytics", "segments", "recommend", "evaluate", "realtime", "report"):
        assert f"docs/{page}.md:sql" in sql, sql


def test_every_block_is_run_or_marked_as_not_code():
    """A block with an info string this test does not know is a typo (```SQL,
    ```bash) that would silently go untested: only the documented ones pass."""
    known = set(RUN) | {"py", "sql spark", "text", "yaml", ""}
    for page in pages():
        for info, _, line in page_blocks(page):
            assert info in known, f"{page}:{line}: ```{info} is neither run here nor marked ```text"


@pytest.mark.parametrize("lang,body", shell_and_python())
def test_block_runs(lang, body):
    env = dict(os.environ, PATH=CLI_DIR + os.pathsep + os.environ.get("PATH", ""))
    if lang == "sh":
        cmd = ["bash", "-euo", "pipefail", "-c", body]
    else:
        cmd = [sys.executable, "-c", body]
    os.makedirs(os.path.join(ROOT, "data"), exist_ok=True)
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"{body}\n--- stdout\n{run.stdout[-3000:]}\n--- stderr\n{run.stderr[-3000:]}"


@pytest.mark.parametrize("page", sql_pages())
def test_sql_blocks_run(page, monkeypatch):
    monkeypatch.chdir(ROOT)
    os.makedirs("data", exist_ok=True)
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXT}'")
    # Served models are cached per process by table name; pages reuse names.
    con.execute("SELECT ecoreco.model_cache_clear()")
    ran = 0
    for info, body, line in page_blocks(page):
        if info != "sql":
            continue
        for statement in duckdb.extract_statements(body):
            try:
                con.execute(statement).fetchall()
            except duckdb.Error as e:
                pytest.fail(f"{page}:{line}: {statement.query.strip()[:300]}\n--> {e}")
            ran += 1
    assert ran > 0
    con.close()


def test_the_readme_is_short_and_the_pages_carry_no_history():
    """The README is the user's entry point (at most 400 lines); the history
    of the project lives in git, so no page names an issue or a commit."""
    assert len(open(os.path.join(ROOT, "README.md"), encoding="utf-8").read().splitlines()) <= 400
    commit = re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b")
    for page in pages():
        text = open(os.path.join(ROOT, page), encoding="utf-8").read()
        assert not re.search(r"\bissue #?\d|#\d+\b", text, re.I), page
        assert not commit.findall(text), (page, commit.findall(text))
