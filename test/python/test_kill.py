"""A process killed (SIGKILL) in the middle of a long write leaves either
nothing or the whole result, never a part of it: the model table of
`CREATE TABLE model AS FROM ecoreco.als_train(...)` in a file database, the
folder of `ecoreco.als_export_spark`, the page of `ecoreco.report`, and a
Parquet export written with `COPY ... TO` as sql/06_report.sql writes them.

Each write runs once undisturbed in a child process, which gives its
duration and the expected result (rows and a content digest); then, for five
kill points spread over that duration, a child on a fresh copy of the same
database is killed there, and the database (reopened) and the output path
are checked: absent, or equal to the undisturbed result.
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import duckdb
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXT = os.path.join(ROOT, "build", "release", "ecoreco.duckdb_extension")
KILL_POINTS = (0.1, 0.3, 0.5, 0.7, 0.9)

# The child: opens the database, loads the extension, says "go", runs the
# write, says "done". The parent times the write from "go".
CHILD = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], config={"allow_unsigned_extensions": "true"})
con.execute("LOAD '" + sys.argv[2] + "'")
con.execute("SET threads = 2")
con.execute("SET enable_progress_bar = false")
print("go", flush=True)
con.execute(sys.argv[3]).fetchall()
con.close()
print("done", flush=True)
"""

WRITES = {
    "als_train": "CREATE TABLE trained AS FROM ecoreco.als_train(events, seed := 3)",
    "als_export_spark": "FROM ecoreco.als_export_spark(model, '{out}/als')",
    "report": "FROM ecoreco.report(events, model := 'model', path := '{out}/report.html')",
    "copy_parquet": "COPY (FROM ecoreco.recommend_all(model) ORDER BY ALL) "
    "TO '{out}/recommendations.parquet' (FORMAT parquet, USE_TMP_FILE true)",
}


def digest_rows(con, sql):
    rows = con.execute(sql).fetchall()
    return len(rows), hashlib.sha256(repr(rows).encode()).hexdigest()


def digest_tree(path):
    """Files under path (relative names) with their bytes' digests; Spark's
    metadata without its time stamp (the export's time) and uid."""
    out = {}
    for base, _, files in os.walk(path):
        for name in files:
            full = os.path.join(base, name)
            with open(full, "rb") as f:
                data = f.read()
            if os.path.relpath(full, path) == os.path.join("metadata", "part-00000"):
                meta = json.loads(data)
                meta.pop("timestamp")
                meta.pop("uid")
                data = json.dumps(meta, sort_keys=True).encode()
            out[os.path.relpath(full, path)] = hashlib.sha256(data).hexdigest()
    return out


def result(write, db, out):
    """What a write left: None when absent, else something to compare."""
    if write == "als_train":
        con = duckdb.connect(db)
        try:
            if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'trained'").fetchone()[0]:
                return None
            return digest_rows(con, "FROM trained ORDER BY ALL")
        finally:
            con.close()
    if write == "als_export_spark":
        path = os.path.join(out, "als")
        return digest_tree(path) if os.path.exists(path) else None
    if write == "report":
        path = os.path.join(out, "report.html")
        if not os.path.exists(path):
            return None
        with open(path, "rb") as f:
            page = f.read()
        # The page carries no time stamp of its own; a whole one ends the document.
        return hashlib.sha256(page).hexdigest(), page.rstrip().endswith(b"</html>")
    path = os.path.join(out, "recommendations.parquet")
    if not os.path.exists(path):
        return None
    con = duckdb.connect()
    try:
        return digest_rows(con, f"FROM read_parquet('{path}')")
    except duckdb.Error as exc:  # a torn file is a result too: a wrong one
        return ("unreadable", str(exc)[:200])
    finally:
        con.close()


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A checkpointed file database with events and a trained model."""
    folder = tmp_path_factory.mktemp("kill")
    db = str(folder / "template.duckdb")
    con = duckdb.connect(db, config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXT}'")
    con.execute("CREATE TEMP TABLE raw AS FROM ecoreco_synth(events := 150000, seed := 5)")
    con.execute("CREATE TABLE events AS FROM ecoreco.clean_events(raw)")
    con.execute("CREATE TABLE model AS FROM ecoreco.als_train(events, seed := 3)")
    con.execute("CHECKPOINT")
    con.close()
    return folder, db


def start(folder, template_db, write, name):
    """A child on a fresh copy of the database, in its own folder (DuckDB 1.5
    names its spill files the same in every process)."""
    work = folder / name
    work.mkdir()
    db = str(work / "db.duckdb")
    shutil.copy(template_db, db)
    out = work / "out"
    out.mkdir()
    sql = WRITES[write].format(out=out)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, db, EXT, sql],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline().strip() == "go", child.stderr.read()
    return child, db, str(out)


@pytest.mark.parametrize("write", list(WRITES))
def test_killed_write_leaves_nothing_or_everything(template, write):
    folder, template_db = template
    started = time.monotonic()
    child, db, out = start(folder, template_db, write, f"{write}-whole")
    line = child.stdout.readline().strip()
    duration = time.monotonic() - started
    assert child.wait(timeout=600) == 0 and line == "done", child.stderr.read()
    whole = result(write, db, out)
    assert whole is not None
    if write == "report":
        assert whole[1], "the undisturbed report is not a whole page"

    outcomes = []
    for point in KILL_POINTS:
        child, db, out = start(folder, template_db, write, f"{write}-{point}")
        time.sleep(duration * point)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        left = result(write, db, out)
        outcomes.append("absent" if left is None else "whole" if left == whole else f"PARTIAL {left!r:.200}")
    print(f"{write}: {duration:.2f} s undisturbed; killed at {KILL_POINTS}: {outcomes}")
    assert all(o in ("absent", "whole") for o in outcomes), outcomes
