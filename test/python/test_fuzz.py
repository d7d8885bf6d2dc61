"""Every parameter of every function gets NULL, wrong types and absurd
values: the answer is a result or an SQL error, never a crash of the host
(a crash would kill this test process), and never an 'internal error'
(which is how a caught panic reports itself)."""
import os

import duckdb
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXT = os.path.join(ROOT, "build", "release", "ecoreco.duckdb_extension")

BAD_VALUES = [
    "NULL", "'text'", "''", "-1", "0", "9223372036854775807", "-9223372036854775808", "1e300", "'nan'::DOUBLE",
    "[1, 2]", "DATE '2019-10-01'", "true", "'x\"; DROP TABLE events; --'",
    "'x''); DROP TABLE events; --'", "'events''), (SELECT 1'",
]

# function -> (positional arguments, named arguments) of a call that works.
CALLS = {
    "ecoreco.read_events": (["'test/data/broken.csv'"], {}),
    "ecoreco.clean_events": (["'raw'"], {}),
    "ecoreco.count_lines": (["'test/data/broken.csv'"], {}),
    "ecoreco.synth": ([], {"events": "100", "users": "0", "products": "0", "days": "3", "start_date": "'2019-10-01'", "seed": "1"}),
    "ecoreco.event_mix": (["'events'"], {}),
    "ecoreco.missing_values": (["'events'"], {}),
    "ecoreco.activity": (["'events'"], {"by": "'hour'"}),
    "ecoreco.price_stats": (["'events'"], {}),
    "ecoreco.session_stats": (["'events'"], {}),
    "ecoreco.funnel": (["'events'"], {}),
    "ecoreco.top_products": (["'events'"], {"by": "'views'", "k": "3"}),
    "ecoreco.rfm_features": (["'events'"], {}),
    "ecoreco.product_features": (["'events'"], {}),
    "ecoreco.kmeans_segments": (["'users'"], {"k": "2", "seed": "1", "max_iter": "5", "columns": "['recency', 'frequency']", "sample": "100", "n_init": "1"}),
    "ecoreco.kmeans_summary": (["'users'"], {"k": "2", "seed": "1", "max_iter": "5", "columns": "['recency', 'frequency']", "sample": "100", "n_init": "1"}),
    "ecoreco.kmeans_sweep": (["'users'"], {"k_min": "2", "k_max": "3", "seed": "1", "max_iter": "5", "columns": "['recency', 'frequency']", "sample": "100", "n_init": "1"}),
    "ecoreco.interactions": (["'events'"], {"view": "1", "cart": "3", "purchase": "5", "cap": "10"}),
    "ecoreco.als_train": (["'events'"], {"factors": "4", "iterations": "2", "regularization": "0.1", "alpha": "1.0", "cg_steps": "2", "seed": "1", "view": "1", "cart": "3", "purchase": "5", "cap": "10"}),
    "ecoreco.als_loss": (["'model'"], {}),
    "ecoreco.als_params": (["'model'"], {}),
    "ecoreco.recommend": (["0"], {"model": "'model'", "events": "'events'", "k": "3", "blend": "0.5", "exclude_purchased": "true"}),
    "ecoreco.recommend_all": (["'model'"], {"k": "2", "blend": "0.5", "exclude_purchased": "true"}),
    "ecoreco.similar_products": (["0"], {"model": "'model'", "k": "3"}),
    "ecoreco.evaluate_recommendations": (["'events'"], {"split": "0.8", "k": "3", "blend": "0.5", "factors": "4", "iterations": "2"}),
}


@pytest.fixture(scope="module")
def con():
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXT}'")
    os.chdir(ROOT)
    con.execute("CREATE TEMP TABLE raw AS FROM ecoreco_synth(events := 3000, seed := 5)")
    con.execute("CREATE TEMP TABLE events AS FROM ecoreco.clean_events(raw)")
    con.execute("CREATE TEMP TABLE users AS FROM ecoreco.rfm_features(events)")
    con.execute("CREATE TEMP TABLE model AS FROM ecoreco.als_train(events, factors := 4, iterations := 2)")
    # The served-model cache is the process's: a table named `model` that an
    # earlier test module served held another model.
    con.execute("SELECT ecoreco.model_cache_clear()")
    user = con.execute("SELECT min(id) FROM model WHERE side = 'user'").fetchall()[0][0]
    product = con.execute("SELECT min(id) FROM model WHERE side = 'product'").fetchall()[0][0]
    CALLS["ecoreco.recommend"][0][0] = str(user)
    CALLS["ecoreco.similar_products"][0][0] = str(product)
    return con


def call_sql(fn, positional, named):
    args = list(positional) + [f"{k} := {v}" for k, v in named.items()]
    return f"SELECT count(*) FROM {fn}({', '.join(args)})"


def run(con, sql):
    try:
        con.execute(sql).fetchall()
    except duckdb.Error as exc:
        text = str(exc)
        assert text, sql
        assert "internal error" not in text.lower(), f"{sql}\n{text}"
    # The host is alive and the connection usable.
    assert con.execute("SELECT 42").fetchall() == [(42,)]


@pytest.mark.parametrize("fn", sorted(CALLS))
def test_baseline_calls_work(con, fn):
    # The valid call each bad value is put into returns rows: the bad calls
    # below differ from a working call by that one value only.
    positional, named = CALLS[fn]
    (rows,) = con.execute(call_sql(fn, positional, named)).fetchone()
    assert rows > 0, fn


def run_bad_values(con, fn, positional, named):
    """`fn`'s working call with each argument in turn replaced by each of
    BAD_VALUES: every call returns rows or fails with a clean error."""
    for i in range(len(positional)):
        for bad in BAD_VALUES:
            run(con, call_sql(fn, positional[:i] + [bad] + positional[i + 1:], named))
    for name in named:
        for bad in BAD_VALUES:
            run(con, call_sql(fn, positional, dict(named, **{name: bad})))


@pytest.mark.parametrize("fn", sorted(CALLS))
def test_every_parameter_survives_bad_values(con, fn):
    run_bad_values(con, fn, *CALLS[fn])
    assert con.execute("SELECT count(*) FROM events").fetchall()[0][0] == 3000


def test_raw_rust_functions_survive_nulls(con):
    """The Rust functions under the macros, called directly with NULLs."""
    rows = con.execute(
        "SELECT function_name, function_type, len(parameter_types) FROM duckdb_functions() "
        "WHERE function_name LIKE 'ecoreco\\_%' ESCAPE '\\' AND function_type IN ('scalar', 'aggregate')"
    ).fetchall()
    assert len(rows) >= 8, rows
    for name, kind, n in rows:
        if name == "ecoreco_model_cache_clear":
            continue
        args = ", ".join(["NULL"] * n)
        run(con, f"SELECT {name}({args})")
        if kind == "aggregate":
            run(con, f"SELECT {name}({args}) FROM range(3)")
