"""ecoreco.count_lines reads files in blocks: it counts a file larger than
DuckDB's memory_limit (the earlier read_text version held a file whole and
needed a row per line: on DuckDB 1.5 it ran out of memory on the 2.3 MB
REES46 head), and it counts what the read_text definition counted."""
import os

import duckdb
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXT = os.path.join(ROOT, "build", "release", "ecoreco.duckdb_extension")
HEAD = os.path.join(os.path.dirname(ROOT), "shared", "data", "rees46-2019-oct-head.csv")


def connect(**config):
    con = duckdb.connect(config={"allow_unsigned_extensions": "true", **config})
    con.execute(f"LOAD '{EXT}'")
    return con


def test_a_file_larger_than_the_memory_limit(tmp_path):
    lines = 3_000_000
    path = tmp_path / "big.csv"
    row = b"2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,shiseido,35.79,541312140,72d76fde-8bb3-4e00-8c23-a032dfed738c\n"
    with open(path, "wb") as f:
        f.write(b"event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n")
        for _ in range(lines // 10_000):
            f.write(row * 10_000)
    size = os.path.getsize(path)
    con = connect(memory_limit="64MB", threads=1, temp_directory=str(tmp_path / "spill"))
    assert size > 4 * 64 * 2**20
    got = con.execute(f"FROM ecoreco.count_lines('{path}')").fetchall()
    assert got == [(str(path), lines)]


def test_the_real_head_counts_as_read_text_did():
    con = connect()
    got = con.execute(f"FROM ecoreco.count_lines('{HEAD}')").fetchall()
    assert got == [(HEAD, 17_434)]


@pytest.mark.parametrize("pattern", ["test/data/broken*.csv", "test/data/*.csv"])
def test_same_counts_as_the_read_text_definition(pattern):
    os.chdir(ROOT)
    con = connect()
    ours = con.execute(f"FROM ecoreco.count_lines('{pattern}')").fetchall()
    theirs = con.execute(
        f"SELECT filename, len(string_split(rtrim(replace(content, chr(13), ''), chr(10)), chr(10))) - 1 "
        f"FROM read_text('{pattern}') ORDER BY filename"
    ).fetchall()
    assert len(ours) >= 2 and ours == theirs


def test_disabled_file_access_is_refused_by_the_rust_function_too():
    con = connect()
    con.execute("SET enable_external_access = false")
    with pytest.raises(duckdb.Error, match="enable_external_access is false"):
        con.execute(f"SELECT ecoreco_count_data_lines('{HEAD}', true AND current_setting('enable_external_access'))").fetchall()
    # The macro: DuckDB's glob refuses before any file is opened.
    with pytest.raises(duckdb.Error, match="file system operations are disabled"):
        con.execute(f"FROM ecoreco.count_lines('{HEAD}')").fetchall()
