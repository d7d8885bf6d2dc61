"""BI clients on a file database: the views of sql/views.sql queried from
Python and from the DuckDB CLI, a second process that opens the file
without the ecoreco extension and reads everything but the one view that
calls into it (it reads that view's materialised table instead), the
pipeline's outputs exported to Parquet and read back by pyarrow with the
same rows and types, and unqualified names through search_path."""
import json
import os
import subprocess
import sys

import duckdb
import pyarrow.parquet as pq
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXT = os.path.join(ROOT, "build", "release", "ecoreco.duckdb_extension")
HEAD = os.path.join(os.path.dirname(ROOT), "shared", "data", "rees46-2019-oct-head.csv")
HEAD = os.path.join(os.environ["ECORECO_SHARED_DATA"], "rees46-2019-oct-head.csv") if "ECORECO_SHARED_DATA" in os.environ else HEAD
CLI = os.path.join(ROOT, ".venv", "duckdb-1.5", "bin", "duckdb")
OUTPUTS = ["events", "user_features", "segments", "model", "products", "evaluation", "bi_recommendations_table"]


def connect(path=":memory:"):
    # A file DuckDB 2.0 writes opens in 1.5 clients (the CLI here) only in
    # 1.5's storage format.
    con = duckdb.connect(path, config={"allow_unsigned_extensions": "true", "storage_compatibility_version": "v1.5.0"})
    con.execute(f"LOAD '{EXT}'")
    return con


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """The pipeline's tables for the real REES46 head in a file database,
    then sql/views.sql, as sql/demo.sql makes them (a smaller ALS)."""
    db = str(tmp_path_factory.mktemp("bi") / "pipeline.duckdb")
    con = connect(db)
    con.execute(f"CREATE TABLE events AS FROM ecoreco.read_events('{HEAD}')")
    con.execute("CREATE TABLE user_features AS FROM ecoreco.rfm_features(events)")
    con.execute("CREATE TABLE kmeans_model AS FROM ecoreco.kmeans_model(user_features, k := 5, seed := 42)")
    con.execute("CREATE TABLE segments AS FROM ecoreco.kmeans_assign(user_features, kmeans_model)")
    con.execute("CREATE TABLE segment_summary AS FROM ecoreco.kmeans_model_summary(kmeans_model)")
    con.execute("CREATE TABLE segment_centroids AS FROM ecoreco.kmeans_model_centroids(kmeans_model)")
    con.execute("CREATE TABLE rfm_segments AS FROM ecoreco.rfm_segments(user_features)")
    con.execute("CREATE TABLE rfm_summary AS FROM ecoreco.rfm_segment_summary(user_features)")
    con.execute("CREATE TABLE model AS FROM ecoreco.als_train(events, factors := 8, iterations := 3)")
    con.execute("CREATE TABLE evaluation AS FROM ecoreco.evaluate_recommendations(events, factors := 8, iterations := 3)")
    con.execute("CREATE TABLE products AS FROM ecoreco.product_features(events)")
    con.execute(open(os.path.join(ROOT, "sql", "views.sql")).read())
    live = con.execute("FROM bi_recommendations ORDER BY user_id, rank").fetchall()
    con.close()
    return db, live


# Read without the extension, in another process: every BI view and the
# materialised table, and the error of the view that needs the extension.
READER = r"""
import json, sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
out = {"catalogs": [r[0] for r in con.execute("SELECT database_name FROM duckdb_databases() WHERE NOT internal").fetchall()]}
out["kpis"] = con.execute("SELECT date::VARCHAR, events, users, sessions, views, carts, purchases, buyers, purchase_sessions, conversion, revenue FROM bi_daily_kpis").fetchall()
out["users"] = con.execute("SELECT count(*), count(segment), count(DISTINCT segment_id), sum(purchases) FROM bi_users").fetchall()
out["products"] = con.execute("SELECT count(*), sum(revenue_share), min(revenue_rank), sum(purchases) FROM bi_product_performance").fetchall()
out["recs"] = con.execute("FROM bi_recommendations_table ORDER BY user_id, rank").fetchall()
out["rfm_users"] = con.execute("SELECT count(rfm_segment), min(r_score), max(r_score) FROM bi_users").fetchall()
out["rfm"] = con.execute("SELECT count(*), sum(users), round(sum(revenue), 2), round(sum(share), 2) FROM bi_rfm_segments").fetchall()
out["segments"] = con.execute("SELECT count(*), sum(users), count(monetary), count(unique_products) FROM bi_segments").fetchall()
out["rounded"] = con.execute("SELECT max(abs(share * 1e4 - round(share * 1e4))) FROM (SELECT share FROM bi_segments UNION ALL SELECT share FROM bi_rfm_segments UNION ALL SELECT revenue_share FROM bi_product_performance WHERE revenue_share IS NOT NULL)").fetchall()
try:
    con.execute("FROM bi_recommendations").fetchall()
    out["view_error"] = None
except duckdb.Error as e:
    out["view_error"] = str(e)
print(json.dumps(out, default=str))
"""


def test_a_client_without_the_extension_reads_the_views_and_tables(pipeline):
    db, live = pipeline
    run = subprocess.run([sys.executable, "-c", READER, db], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert "ecoreco" not in out["catalogs"], out["catalogs"]
    # The head is one day: 17,434 events, 4,504 users, 5,066 sessions,
    # 214 purchases by 193 buyers, revenue 59,442.63 (README figures).
    [(day, events, users, sessions, views, carts, purchases, buyers, purchase_sessions, conversion, revenue)] = out["kpis"]
    assert (day, events, users, sessions, views, carts, purchases, buyers) == (
        "2019-10-01", 17434, 4504, 5066, 17055, 165, 214, 193)
    # Rates are rounded to 4 decimals in the views a person reads.
    assert conversion == round(purchase_sessions / 5066, 4)
    assert revenue == pytest.approx(59442.63)
    assert out["users"] == [[4504, 4504, 5, 214]]
    [(n_products, share, best_rank, product_purchases)] = out["products"]
    assert (n_products, best_rank, product_purchases) == (6493, 1, 214)
    assert share == pytest.approx(1.0, abs=0.01)
    # RFM and K-Means segments beside each other: every user has an RFM
    # segment; the ten RFM names hold all users and all revenue; the five
    # K-Means segments hold all users, with a centroid column per feature.
    assert out["rfm_users"] == [[4504, 1, 5]]
    assert out["rfm"] == [[10, 4504, 59442.63, 1.0]]
    assert out["segments"] == [[5, 4504, 5, 5]]
    assert out["rounded"][0][0] < 1e-6
    # The materialised table holds exactly what the view gives with the
    # extension: top 10 for each of the 4,504 users.
    assert len(out["recs"]) == 45040
    assert [tuple(r) for r in out["recs"]] == [tuple(r) for r in json.loads(json.dumps(live, default=str))]
    # The view itself needs the extension: a clear catalog error.
    assert out["view_error"] and "recommend_all" in out["view_error"], out["view_error"]


def test_the_cli_queries_the_views_without_the_extension(pipeline):
    db, _ = pipeline
    run = subprocess.run(
        [CLI, "-readonly", "-csv", "-noheader", db, "-c",
         "SELECT events, sessions, purchases FROM bi_daily_kpis; "
         "SELECT count(*) FROM bi_users WHERE segment IS NOT NULL; "
         "SELECT count(*), count(DISTINCT user_id) FROM bi_recommendations_table;"],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["17434,5066,214", "4504", "45040,4504"]


def test_the_cli_with_the_extension_queries_the_live_view(pipeline):
    db, live = pipeline
    run = subprocess.run(
        [CLI, "-unsigned", "-readonly", "-csv", "-noheader", db, "-cmd", f"LOAD '{EXT}'", "-c",
         "SELECT count(*), sum(rank) FROM bi_recommendations;"],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [f"{len(live)},{sum(r[1] for r in live)}"]


ARROW = {
    "BIGINT": "int64", "INTEGER": "int32", "DOUBLE": "double", "FLOAT": "float", "VARCHAR": "string",
    "BOOLEAN": "bool", "DATE": "date32[day]", "TIMESTAMP": "timestamp[us]", "FLOAT[]": "list<element: float>",
}


def test_every_output_round_trips_through_parquet_and_pyarrow(pipeline, tmp_path):
    db, _ = pipeline
    con = duckdb.connect(db, read_only=True)
    for table in OUTPUTS:
        path = str(tmp_path / f"{table}.parquet")
        con.execute(f"COPY {table} TO '{path}' (FORMAT parquet)")
        arrow = pq.read_table(path)
        columns = con.execute(f"DESCRIBE {table}").fetchall()
        assert arrow.column_names == [c[0] for c in columns], table
        for name, duck_type, *_ in columns:
            got = str(arrow.schema.field(name).type).replace("item:", "element:")
            assert got == ARROW[duck_type], (table, name, duck_type, got)
        rows = con.execute(f"FROM {table}").fetchall()
        assert arrow.num_rows == len(rows) > 0, table
        back = [tuple(r.values()) for r in arrow.to_pylist()]
        assert sorted(map(repr, back)) == sorted(map(repr, rows)), table


def test_search_path_makes_names_unqualified(tmp_path):
    db = str(tmp_path / "nb.duckdb")
    con = connect(db)
    con.execute(f"CREATE TABLE events AS FROM ecoreco.read_events('{HEAD}')")
    with pytest.raises(duckdb.CatalogException):
        con.execute("FROM rfm_features(events)")
    con.execute("SET search_path = 'nb,ecoreco'")
    assert con.execute("SELECT count(*), sum(purchases) FROM rfm_features(events)").fetchone() == (4504, 214)
    assert con.execute("SELECT views FROM funnel(events)").fetchone() == (17055,)
    # New tables still go to the first catalog (the database file).
    con.execute("CREATE TABLE users AS FROM rfm_features(events)")
    assert con.execute(
        "SELECT database_name, schema_name FROM duckdb_tables() WHERE table_name = 'users'"
    ).fetchall() == [("nb", "main")]
    con.close()
    assert duckdb.connect(db).execute("SELECT count(*) FROM users").fetchone() == (4504,)
