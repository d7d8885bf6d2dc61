"""Wrong tables get ecoreco's errors: every function that takes a table,
called with every pipeline table that is not its input (events, users,
segments, model, recommendations, replay windows), answers with an error
that starts with `ecoreco.<function>:` and says what to pass, never with a
Binder or Catalog error that shows a macro's insides, and never with a
result. Tables are small (the first 3,000 events of the real head) so the
matrix runs in seconds, in the DuckDB version of this test's Python."""
import os

import duckdb
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXT = os.path.join(ROOT, "build", "release", "ecoreco.duckdb_extension")
HEAD = os.path.join(os.path.dirname(ROOT), "shared", "data", "rees46-2019-oct-head.csv")

TABLES = ("events", "users", "segments", "model", "recommendations", "windows")

EVENTS = "pass the events: the output of ecoreco.read_events"
USERS = "pass the output of ecoreco.rfm_features(events)"
MODEL = "pass a model made by ecoreco.als_train"
KMODEL = "pass a model made by ecoreco.kmeans_model"
WINDOWS = "pass the output of ecoreco.replay"

# function: (its input, the call with {t} for the table, what the message says to pass)
CALLS = {
    "event_mix": ("events", "FROM ecoreco.event_mix({t})", EVENTS),
    "missing_values": ("events", "FROM ecoreco.missing_values({t})", EVENTS),
    "activity": ("events", "FROM ecoreco.activity({t}, by := 'date')", EVENTS),
    "price_stats": ("events", "FROM ecoreco.price_stats({t})", EVENTS),
    "session_stats": ("events", "FROM ecoreco.session_stats({t})", EVENTS),
    "funnel": ("events", "FROM ecoreco.funnel({t})", EVENTS),
    "top_products": ("events", "FROM ecoreco.top_products({t})", EVENTS),
    "rfm_features": ("events", "FROM ecoreco.rfm_features({t})", EVENTS),
    "product_features": ("events", "FROM ecoreco.product_features({t})", EVENTS),
    "clean_events": ("raw", "FROM ecoreco.clean_events({t})", "pass a table with the nine raw REES46 columns"),
    "interactions": ("events", "FROM ecoreco.interactions({t})", EVENTS),
    "als_train": ("events", "FROM ecoreco.als_train({t}, factors := 2, iterations := 1, search := false)", "pass the events"),
    "evaluate_recommendations": ("events", "FROM ecoreco.evaluate_recommendations({t}, factors := 2, iterations := 1, search := false)", "pass the events"),
    "replay": ("events", "FROM ecoreco.replay({t}, model := 'model')", EVENTS),
    "report": ("events", "FROM ecoreco.report({t}, model := NULL, path := '__DIR__/r.html')", EVENTS),
    "kmeans_segments": ("users", "FROM ecoreco.kmeans_segments({t}, k := 2)", USERS),
    "kmeans_summary": ("users", "FROM ecoreco.kmeans_summary({t}, k := 2)", USERS),
    "kmeans_centroids": ("users", "FROM ecoreco.kmeans_centroids({t}, k := 2)", USERS),
    "kmeans_model": ("users", "FROM ecoreco.kmeans_model({t}, k := 2)", USERS),
    "kmeans_sweep": ("users", "FROM ecoreco.kmeans_sweep({t}, k_min := 2, k_max := 3)", USERS),
    "kmeans_assign": ("users", "FROM ecoreco.kmeans_assign({t}, kmodel)", USERS),
    "rfm_segments": ("users", "FROM ecoreco.rfm_segments({t})", USERS),
    "rfm_segment_summary": ("users", "FROM ecoreco.rfm_segment_summary({t})", USERS),
    "kmeans_assign/model": ("kmodel", "FROM ecoreco.kmeans_assign(users, {t})", KMODEL),
    "kmeans_model_summary": ("kmodel", "FROM ecoreco.kmeans_model_summary({t})", KMODEL),
    "kmeans_model_centroids": ("kmodel", "FROM ecoreco.kmeans_model_centroids({t})", KMODEL),
    "als_params": ("model", "FROM ecoreco.als_params({t})", MODEL),
    "als_loss": ("model", "FROM ecoreco.als_loss({t})", MODEL),
    "recommend": ("model", "FROM ecoreco.recommend(1, model := '{t}')", MODEL),
    "recommend_all": ("model", "FROM ecoreco.recommend_all('{t}')", MODEL),
    "similar_products": ("model", "FROM ecoreco.similar_products(1, model := '{t}')", MODEL),
    "replay/model": ("model", "FROM ecoreco.replay(events, model := '{t}')", MODEL),
    "recommend_session": ("model", "FROM ecoreco.recommend_session('{t}', [1], ['view'])", MODEL),
    "recommend_sessions": ("model", "FROM ecoreco.recommend_sessions('{t}', events)", MODEL),
    "explain": ("model", "FROM ecoreco.explain('{t}', 1, 1, events := 'events')", MODEL),
    "explain/events": ("events", "FROM ecoreco.explain('model', 1, 1, events := '{t}')", EVENTS),
    "als_update": ("model", "FROM ecoreco.als_update({t}, events, since := TIMESTAMP '2000-01-01')", MODEL),
    "als_update/events": ("events", "FROM ecoreco.als_update(model, {t}, since := TIMESTAMP '2000-01-01')", EVENTS),
    "als_export_spark": ("model", "FROM ecoreco.als_export_spark({t}, '__DIR__/spark_{t}')", MODEL),
    "report/model": ("model", "FROM ecoreco.report(events, model := '{t}', path := '__DIR__/r.html')", MODEL),
    "report/segments": ("segments", "FROM ecoreco.report(events, model := NULL, segments := '{t}', path := '__DIR__/r.html')", "pass the output of ecoreco.kmeans_segments"),
    "report/evaluation": ("evaluation", "FROM ecoreco.report(events, model := NULL, evaluation := '{t}', path := '__DIR__/r.html')", "pass the output of ecoreco.evaluate_recommendations"),
    "influx_lines": ("windows", "FROM ecoreco.influx_lines({t})", WINDOWS),
    "influx_write": ("lines", "FROM ecoreco.influx_write({t}, url := 'http://127.0.0.1:9')", "pass the output of ecoreco.influx_lines"),
}

# Tables that are legitimately accepted: als_train and evaluate_recommendations
# take any table of (user_id, product_id) rows as interactions (a ratings
# table, the output of ecoreco.interactions), and a recommendations table is
# one; clean_events takes any table with the nine raw columns, event_time as
# text or TIMESTAMP, and the cleaned events are one.
ACCEPTED = {
    ("als_train", "recommendations"),
    ("evaluate_recommendations", "recommendations"),
    ("clean_events", "events"),
}

# The report's recommendations section is ecoreco.recommend_all over the
# model table: its check of that table may answer first, in its own name.
ALSO = {"report/model": "ecoreco.recommend_all:"}


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    c = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    c.execute(f"LOAD '{EXT}'")
    c.execute("SELECT ecoreco.model_cache_clear()")
    c.execute(f"CREATE TABLE events AS FROM ecoreco.read_events('{HEAD}') LIMIT 3000")
    c.execute("CREATE TABLE users AS FROM ecoreco.rfm_features(events)")
    c.execute("CREATE TABLE segments AS FROM ecoreco.kmeans_segments(users, k := 3)")
    c.execute("CREATE TABLE kmodel AS FROM ecoreco.kmeans_model(users, k := 3)")
    c.execute("CREATE TABLE model AS FROM ecoreco.als_train(events, factors := 4, iterations := 2, search := false)")
    c.execute("CREATE TABLE recommendations AS FROM ecoreco.recommend_all('model', k := 3)")
    c.execute("CREATE TABLE windows AS FROM ecoreco.replay(events, model := 'model')")
    return c, str(tmp_path_factory.mktemp("wrong"))


def cases():
    for function, (own, sql, expected) in CALLS.items():
        for table in TABLES:
            if table != own and (function, table) not in ACCEPTED:
                yield pytest.param(function, table, sql, expected, id=f"{function}({table})")


@pytest.mark.parametrize("function,table,sql,expected", list(cases()))
def test_a_wrong_table_gets_our_error(con, function, table, sql, expected):
    con, folder = con
    query = sql.replace("{t}", table).replace("__DIR__", folder)
    with pytest.raises(duckdb.Error) as caught:
        con.execute(query).fetchall()
    message = str(caught.value)
    name = function.split("/")[0]
    assert f"ecoreco.{name}:" in message or ALSO.get(function, "?") in message, message
    assert expected in message, message
    assert "Binder Error" not in message and "Catalog Error" not in message, message
