"""Monitoring against a real InfluxDB 1.x server (Debian's influxd, started
on 127.0.0.1 in a temporary folder for these tests and stopped after):
metrics written while a replay runs, line protocol escaping as the server
reads it back, and the errors of an unreachable or refusing server."""
import os
import sys

import duckdb
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stream_demo  # noqa: E402
from influxd import Influxd, free_port  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXT = os.path.join(ROOT, "build", "release", "ecoreco.duckdb_extension")


@pytest.fixture(scope="module")
def server():
    with Influxd() as s:
        yield s


def connect():
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXT}'")
    return con


def test_replay_writes_its_windows_while_it_runs(server):
    # What `make stream-demo` does, smaller: one day of events paced so the
    # replay lasts a few seconds; the server is polled meanwhile.
    f = stream_demo.run(EXT, server, events=12000, speed=25000.0, say=lambda _: None)
    assert f["events"] == 12000
    assert f["points"] == {"ecoreco_events": f["windows"], "ecoreco_recommendations": f["windows"]}
    assert f["events_in_influx"] == 12000
    # Windows were in InfluxDB before the replay returned (written as the
    # watermark closed them), not only at the end.
    assert 0 < f["seen_while_running"] <= f["windows"]
    assert f["late_events"] > 0
    assert f["p99_of_p99_ms"] is not None and f["p99_of_p99_ms"] >= 0


def test_escaped_lines_read_back_exactly(server):
    server.create_database("escapes")
    con = connect()
    con.execute(
        "CREATE TABLE lines AS SELECT ecoreco.influx_line('my measure,x', {'run': 'a b,c=d', 'kind': 'k'}, "
        "{'note': 'say \"hi\" \\ bye', 'n': 42::BIGINT, 'x': 0.5, 'ok': true}, 1569974400000000000) AS line"
    )
    line = con.execute("FROM lines").fetchone()[0]
    assert line == 'my\\ measure\\,x,kind=k,run=a\\ b\\,c\\=d n=42i,note="say \\"hi\\" \\\\ bye",ok=true,x=0.5 1569974400000000000'
    written = con.execute(f"FROM ecoreco.influx_write(lines, url := '{server.url}', database := 'escapes')").fetchone()
    assert written[0] == 1 and written[1] == 1 and written[2] == len(line) + 1
    series = server.query('SELECT * FROM "my measure,x"', "escapes")
    assert len(series) == 1
    row = dict(zip(series[0]["columns"], series[0]["values"][0]))
    assert row == {"time": "2019-10-02T00:00:00Z", "kind": "k", "run": "a b,c=d", "note": 'say "hi" \\ bye', "n": 42, "x": 0.5, "ok": True}


def test_window_lines_match_what_the_replay_sent(server):
    # ecoreco.influx_lines makes the same points of a replay's window rows
    # as the replay itself sends with `influx :=` (floats equal to within
    # DuckDB's JSON rendering of doubles, 16 significant digits).
    server.create_database("same")
    con = connect()
    stream_demo.prepare(con, 3000)
    con.execute(f"CREATE TABLE w AS FROM ecoreco.replay(events, arrival := 'arrival_time', influx := '{server.url}', influx_database := 'same')")
    con.execute("CREATE TABLE lines AS FROM ecoreco.influx_lines(w)")
    server.create_database("copy")
    n = con.execute("SELECT count(*) FROM lines").fetchone()[0]
    assert con.execute(f"FROM ecoreco.influx_write(lines, url := '{server.url}', database := 'copy')").fetchone()[0] == n
    for measurement in ["ecoreco_events", "ecoreco_recommendations"]:
        a = server.query(f"SELECT * FROM {measurement}", "same")[0]["values"]
        b = server.query(f"SELECT * FROM {measurement}", "copy")[0]["values"]
        assert len(a) == len(b) == con.execute("SELECT count(*) FROM w").fetchone()[0]
        for x, y in zip(a, b):
            assert len(x) == len(y)
            for u, v in zip(x, y):
                assert u == v or (isinstance(u, float) and u == pytest.approx(v, rel=1e-15)), (x, y)


def test_server_errors_are_clear(server):
    con = connect()
    con.execute("CREATE TABLE lines AS SELECT 'm x=1' AS line")
    with pytest.raises(duckdb.Error, match=r"ecoreco.influx_write: InfluxDB at http://127.0.0.1:\d+ answered HTTP 404 .*database not found"):
        con.execute(f"FROM ecoreco.influx_write(lines, url := '{server.url}', database := 'nope')").fetchall()
    port = free_port()
    with pytest.raises(duckdb.Error, match=rf"could not reach InfluxDB at http://127.0.0.1:{port}"):
        con.execute(f"FROM ecoreco.influx_write(lines, url := 'http://127.0.0.1:{port}')").fetchall()
    con.execute("CREATE TABLE bad AS SELECT 'm x=' AS line")
    server.create_database("bad")
    with pytest.raises(duckdb.Error, match="answered HTTP 400"):
        con.execute(f"FROM ecoreco.influx_write(bad, url := '{server.url}', database := 'bad')").fetchall()
    stream_demo.prepare(con, 500)
    with pytest.raises(duckdb.Error, match=rf"ecoreco.replay: could not reach InfluxDB at http://127.0.0.1:{port}"):
        con.execute(f"FROM ecoreco.replay(events, influx := 'http://127.0.0.1:{port}')").fetchall()
