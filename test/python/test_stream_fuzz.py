"""The real-time functions get NULL, wrong types and absurd values for every
parameter (as test_fuzz.py does for the others): a result or an SQL error,
never a crash of the host and never an 'internal error'. No InfluxDB runs
here: addresses point at a port nothing listens on."""
import os
import sys

import duckdb
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from influxd import free_port  # noqa: E402
from test_fuzz import BAD_VALUES, call_sql, run, run_bad_values  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXT = os.path.join(ROOT, "build", "release", "ecoreco.duckdb_extension")

REPLAY = {"model": "'model'", '"window"': "INTERVAL 5 MINUTE", "watermark": "INTERVAL 10 MINUTE", "speed": "0", "k": "3",
          "seed": "1", "arrival": "NULL", "blend": "0.5", "exclude_purchased": "true", "late": "'skip'", "view": "1",
          "cart": "3", "purchase": "5", "cap": "10", "run": "'fuzz'"}
CALLS = {
    "ecoreco.replay": (["'events'"], REPLAY),
    "ecoreco.replay_recommendations": (["'events'"], REPLAY),
    "ecoreco.replay_products": (["'events'"], REPLAY),
    "ecoreco.recommend_session": (["'model'", "[1000000, 1000001]", "['view', 'cart']"], {"k": "3", "blend": "0.5", "view": "1", "cart": "3", "purchase": "5", "cap": "10"}),
    "ecoreco.influx_lines": (["'windows'"], {"model": "'model'", "run": "'fuzz'"}),
}


@pytest.fixture(scope="module")
def con():
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXT}'")
    con.execute("CREATE TEMP TABLE raw AS FROM ecoreco_synth(events := 2000, seed := 5)")
    con.execute("CREATE TEMP TABLE events AS FROM ecoreco.clean_events(raw)")
    con.execute("CREATE TEMP TABLE model AS FROM ecoreco.als_train(events, factors := 4, iterations := 2, confidence := 'raw', half_life := 0, search := false)")
    # Another test of this process may have served a different 'model'.
    con.execute("SELECT ecoreco.model_cache_clear()")
    con.execute("CREATE TEMP TABLE windows AS FROM ecoreco.replay(events)")
    return con


@pytest.mark.parametrize("fn", sorted(CALLS))
def test_baseline_calls_work(con, fn):
    positional, named = CALLS[fn]
    assert con.execute(call_sql(fn, positional, named)).fetchall()[0][0] > 0


@pytest.mark.parametrize("fn", sorted(CALLS))
def test_every_parameter_survives_bad_values(con, fn):
    run_bad_values(con, fn, *CALLS[fn])


def test_influx_functions_survive_bad_values(con):
    dead = f"'http://127.0.0.1:{free_port()}'"
    con.execute("CREATE OR REPLACE TEMP TABLE lines AS SELECT 'm x=1' AS line")
    for bad in BAD_VALUES:
        run(con, f"SELECT ecoreco.influx_line({bad}, {{'a': 'b'}}, {{'x': 1}}, 1)")
        run(con, f"SELECT ecoreco.influx_line('m', {{'a': {bad}}}, {{'x': {bad}}}, {bad})")
        run(con, f"FROM ecoreco.influx_write(lines, url := {bad}, database := 'db')")
        run(con, f"FROM ecoreco.influx_write(lines, url := {dead}, database := {bad})")
        run(con, f"FROM ecoreco.replay(events, influx := {bad})")
        run(con, f"FROM ecoreco.replay(events, influx := {dead}, influx_database := {bad})")
