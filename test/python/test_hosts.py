"""Host-level behaviour that sqllogictest cannot express: file databases
close and reopen after LOAD, read-only databases, TEMP tables, and every
parameter of every function given NULL, wrong types and absurd values
without crashing the host process."""
import os
import subprocess
import sys

import duckdb
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXT = os.path.join(ROOT, "build", "release", "ecoreco.duckdb_extension")
CONFIG = {"allow_unsigned_extensions": "true"}


def connect(path=":memory:", **kw):
    con = duckdb.connect(path, config=dict(CONFIG, **kw.pop("config", {})), **kw)
    con.execute(f"LOAD '{EXT}'")
    return con


def test_file_database_closes_and_reopens(tmp_path):
    db = str(tmp_path / "user.duckdb")
    con = connect(db)
    con.execute("CREATE TABLE raw AS FROM ecoreco_synth(events := 2000)")
    con.execute("CREATE TABLE ev AS FROM ecoreco.clean_events(raw)")
    assert con.execute("SELECT count(*) FROM ev").fetchone()[0] == 2000
    con.close()
    # Same process: reopening must not hang or fail, and nothing of
    # ecoreco was written into the user's file.
    con = duckdb.connect(db)
    assert con.execute("SELECT count(*) FROM ev").fetchone()[0] == 2000
    assert con.execute("SELECT count(*) FROM duckdb_databases() WHERE database_name = 'ecoreco'").fetchone()[0] == 0
    assert con.execute(
        "SELECT count(*) FROM duckdb_functions() WHERE database_name = 'user' AND NOT internal"
    ).fetchone()[0] == 0
    con.close()
    # Another process opens it read-write: the file is not locked.
    out = subprocess.run(
        [sys.executable, "-c", f"import duckdb; print(duckdb.connect({db!r}).execute('SELECT count(*) FROM raw').fetchone()[0])"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.stdout.strip() == "2000", out.stderr
    assert not os.path.exists(db + ".wal")


def test_load_on_read_only_database(tmp_path):
    db = str(tmp_path / "ro.duckdb")
    con = duckdb.connect(db)
    con.execute("CREATE TABLE t AS SELECT 1 AS x")
    con.close()
    con = connect(db, read_only=True)
    assert con.execute("SELECT ecoreco.version()").fetchone()[0] == con.execute("SELECT ecoreco_version()").fetchone()[0]
    shared = os.path.join(os.path.dirname(ROOT), "shared", "data", "rees46-2019-oct-head.csv")
    assert con.execute(f"SELECT count(*) FROM ecoreco.read_events('{shared}')").fetchone()[0] == 17434
    con.close()


def test_macros_see_temp_tables_and_open_transaction():
    con = connect()
    con.execute("BEGIN")
    con.execute("CREATE TEMP TABLE raw AS FROM ecoreco_synth(events := 500)")
    assert con.execute("SELECT count(*) FROM ecoreco.clean_events(raw)").fetchone()[0] == 500
    con.execute("ROLLBACK")
    with pytest.raises(duckdb.Error):
        con.execute("SELECT count(*) FROM ecoreco.clean_events(raw)")


def test_a_catalog_named_ecoreco_that_is_not_ours_is_refused(tmp_path):
    db = str(tmp_path / "ecoreco.duckdb")
    con = duckdb.connect(db, config=CONFIG)
    with pytest.raises(duckdb.Error, match="already attached"):
        con.execute(f"LOAD '{EXT}'")
    # The user's database was left untouched.
    assert con.execute("SELECT count(*) FROM duckdb_functions() WHERE database_name = 'ecoreco' AND NOT internal").fetchone()[0] == 0


def test_identifiers_cannot_inject_sql():
    con = connect()
    con.execute("CREATE TABLE victim AS SELECT 1 AS x")
    for name in ["victim; DROP TABLE victim; --", 'raw"; DROP TABLE victim; --', "x') ; DROP TABLE victim; --"]:
        with pytest.raises(duckdb.Error):
            con.execute("SELECT * FROM ecoreco.clean_events(?)", [name]).fetchall()
    assert con.execute("SELECT count(*) FROM victim").fetchone()[0] == 1


BAD_VALUES = ["NULL", "'text'", "-1", "0", "9223372036854775807", "-9223372036854775808", "1e300", "[1, 2]", "DATE '2019-10-01'"]
SYNTH_PARAMS = ["events", "users", "products", "days", "start_date", "seed"]


@pytest.mark.parametrize("param", SYNTH_PARAMS)
@pytest.mark.parametrize("value", BAD_VALUES)
def test_bad_parameter_values_never_crash(param, value):
    con = connect()
    for fn in ["ecoreco_synth", "ecoreco.synth"]:
        events = "" if param == "events" else "events := 10, "
        try:
            con.execute(f"SELECT count(*) FROM {fn}({events}{param} := {value})").fetchall()
        except duckdb.Error as exc:
            text = str(exc)
            assert text and "internal error" not in text.lower(), text
    # The host survived and still answers.
    assert con.execute("SELECT 42").fetchone()[0] == 42


@pytest.mark.parametrize("value", BAD_VALUES + ["'no_such_table'", "'test/data/broken.csv'"])
@pytest.mark.parametrize("fn", ["ecoreco.read_events", "ecoreco.clean_events", "ecoreco.count_lines"])
def test_bad_table_and_path_arguments_never_crash(fn, value):
    con = connect()
    os.chdir(ROOT)
    try:
        con.execute(f"SELECT count(*) FROM {fn}({value})").fetchall()
    except duckdb.Error as exc:
        assert str(exc)
    assert con.execute("SELECT 42").fetchone()[0] == 42
