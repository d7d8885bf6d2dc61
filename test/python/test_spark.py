"""Models exchanged with a real Spark, both ways (PySpark from PyPI, local[2]).

Run by `make test` in its own venv per PySpark version (.venv/spark-<version>),
never in the DuckDB-only venvs. One SparkSession (one JVM) serves the whole
module. The Spark side trains as the original pipeline did: StringIndexer on
both ids, weights view 1 / cart 3 / purchase 5 summed and capped at 10,
implicit ALS of rank 10, on the real REES46 head; everything Spark saves goes
to a temporary folder made for this run.
"""
import math
import os
import shutil

import duckdb
import pytest
from pyspark.ml import Pipeline
from pyspark.ml.feature import StringIndexer
from pyspark.ml.recommendation import ALS, ALSModel
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXT = os.path.join(ROOT, "build", "release", "ecoreco.duckdb_extension")
HEAD = os.path.join(
    os.environ.get("ECORECO_SHARED_DATA", os.path.join(os.path.dirname(ROOT), "shared", "data")),
    "rees46-2019-oct-head.csv",
)
RANK, ITERATIONS, K = 10, 5, 10
# Scores are float32 dot products summed in different orders by Spark and
# ecoreco: they agree to a few ulps, far inside this relative tolerance.
TOL = 1e-4


@pytest.fixture(scope="module")
def spark():
    # Spark's driver and block manager listen on 127.0.0.1 only (by default
    # they would take the machine's first non-loopback address).
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    session = (
        SparkSession.builder.master("local[2]")
        .appName("ecoreco-test")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("spark")


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    c.execute(f"LOAD '{EXT}'")
    c.execute(f"CREATE TABLE events AS FROM ecoreco.read_events('{HEAD}')")
    return c


@pytest.fixture(scope="module")
def spark_model(spark, folder):
    """Spark trains on the head as the original pipeline did and saves the
    ALS model and the indexers (a PipelineModel of two StringIndexers)."""
    events = spark.read.csv(
        HEAD, header=True,
        schema="event_time STRING, event_type STRING, product_id BIGINT, category_id DECIMAL(20,0), "
        "category_code STRING, brand STRING, price DOUBLE, user_id BIGINT, user_session STRING",
    )
    weights = (
        events.where(F.col("event_type").isin("view", "cart", "purchase"))
        .where(F.col("user_id").isNotNull() & F.col("product_id").isNotNull())
        .withColumn(
            "w",
            F.when(F.col("event_type") == "view", 1).when(F.col("event_type") == "cart", 3).otherwise(5),
        )
        .groupBy("user_id", "product_id")
        .agg(F.least(F.sum("w"), F.lit(10)).cast("double").alias("weight"))
    )
    indexers = Pipeline(
        stages=[
            StringIndexer(inputCol="user_id", outputCol="user_idx"),
            StringIndexer(inputCol="product_id", outputCol="product_idx"),
        ]
    ).fit(weights)
    als = ALS(
        rank=RANK, maxIter=ITERATIONS, regParam=0.1, alpha=1.0, implicitPrefs=True, seed=42,
        userCol="user_idx", itemCol="product_idx", ratingCol="weight", coldStartStrategy="drop",
        numUserBlocks=2, numItemBlocks=2,
    ).fit(indexers.transform(weights))
    als.save(str(folder / "als"))
    indexers.save(str(folder / "indexers"))
    return {
        "als": als,
        "users": [int(x) for x in indexers.stages[0].labels],
        "products": [int(x) for x in indexers.stages[1].labels],
        "path": str(folder / "als"),
        "indexer": str(folder / "indexers"),
        "weights": weights,
        "pairs": weights.count(),
        "files": len([f for f in os.listdir(folder / "als" / "userFactors") if f.endswith(".parquet")]),
    }


def compare_lists(mine, theirs):
    """Both lists are (product_id, score) best first, scores scaled so the
    best is 1. Scores must agree rank by rank; ids must agree wherever the
    score is not tied (within TOL) with a neighbour, and a tied id must have
    its counterpart within the tied run. Returns the number of positions
    whose ids differ (tie swaps)."""
    assert len(mine) == len(theirs) == K
    swaps = 0
    for r, ((p, s), (q, t)) in enumerate(zip(mine, theirs)):
        assert math.isclose(s, t, rel_tol=TOL, abs_tol=TOL), (r, mine, theirs)
        if p != q:
            tied = [i for i in range(K) if abs(theirs[i][1] - t) <= TOL]
            assert p in [theirs[i][0] for i in tied] or r == tied[-1], (r, mine, theirs)
            swaps += 1
    return swaps


def scaled(pairs):
    top = pairs[0][1]
    assert top > 0, pairs
    return [(p, s / top) for p, s in pairs]


def test_spark_trained_model_imports_and_serves_the_same_top10(spark, spark_model, con):
    con.execute(
        "CREATE TABLE imported AS FROM ecoreco.als_import_spark(?, events := 'events', indexer := ?)",
        [spark_model["path"], spark_model["indexer"]],
    )
    # The same rows als_train writes: the model serves without further ado.
    assert con.execute("DESCRIBE imported").fetchall() == con.execute(
        "DESCRIBE FROM ecoreco.als_train(events, factors := 2, iterations := 1)"
    ).fetchall()
    sides = dict(con.execute("SELECT side, count(*) FROM imported GROUP BY side").fetchall())
    assert spark_model["files"] == 2, "a model in several part files, as Spark writes them"
    assert sides["user"] == len(spark_model["users"]) == 4504
    assert sides["product"] == len(spark_model["products"]) == 6493
    assert con.execute("SELECT value FROM ecoreco.als_params(imported) WHERE name = 'factors'").fetchone()[0] == RANK
    # The interactions the events give are the pairs Spark trained on.
    assert con.execute(
        "SELECT value FROM ecoreco.als_params(imported) WHERE name = 'interactions'"
    ).fetchone()[0] == spark_model["pairs"] == 12107

    # Every factor row arrived exactly, under the id its index stands for.
    als = spark_model["als"]
    for side, frame, labels in (("user", als.userFactors, spark_model["users"]), ("product", als.itemFactors, spark_model["products"])):
        theirs = {labels[row["id"]]: [float(x) for x in row["features"]] for row in frame.collect()}
        mine = dict(con.execute("SELECT id, factors FROM imported WHERE side = ?", [side]).fetchall())
        assert mine.keys() == theirs.keys()
        assert all(mine[i] == theirs[i] for i in theirs), side

    # 100 users spread over the id range: Spark's top 10 against ecoreco's.
    users = sorted(spark_model["users"])[::45][:100]
    assert len(users) == 100
    index = {u: i for i, u in enumerate(spark_model["users"])}
    subset = spark.createDataFrame([(index[u],) for u in users], ["user_idx"])
    spark_top = {
        spark_model["users"][row["user_idx"]]: [
            (spark_model["products"][rec["product_idx"]], rec["rating"]) for rec in row["recommendations"]
        ]
        for row in als.recommendForUserSubset(subset, K).collect()
    }
    assert set(spark_top) == set(users)
    swaps = 0
    for u in users:
        mine = con.execute(
            "SELECT product_id, score FROM ecoreco.recommend(?, model := 'imported', events := 'events', "
            "blend := 0, exclude_purchased := false) ORDER BY rank",
            [u],
        ).fetchall()
        assert math.isclose(mine[0][1], 1.0, rel_tol=1e-6)
        swaps += compare_lists(mine, scaled(spark_top[u]))
    print(f"100 users: top-10 scores agree; {swaps} of 1000 positions differ only by tied scores")
    assert swaps < 50


def test_ecoreco_model_exports_and_spark_serves_the_same_top10(spark, folder, con):
    con.execute(f"CREATE TABLE own AS FROM ecoreco.als_train(events, factors := {RANK}, iterations := {ITERATIONS})")
    path = str(folder / "ecoreco_als")
    assert con.execute("FROM ecoreco.als_export_spark(own, ?)", [path]).fetchall() == [(path, 4504, 6493, RANK)]
    assert "ecoreco_als" in os.listdir(folder)
    assert not [n for n in os.listdir(folder) if n.startswith(".")], "no staging folder is left"

    model = ALSModel.load(path)
    assert model.rank == RANK
    assert (model.getUserCol(), model.getItemCol()) == ("user_id", "product_id")
    spark_top = {
        row["user_id"]: [(rec["product_id"], rec["rating"]) for rec in row["recommendations"]]
        for row in model.recommendForAllUsers(K).collect()
    }
    mine = {}
    # Spark serves the factors alone: ecoreco's lists without the category
    # blend and without the known users' item-to-item blend.
    for user, product, score in con.execute(
        "SELECT user_id, product_id, score FROM ecoreco.recommend_all('own', blend := 0, exclude_purchased := false, item_weight := 0) "
        "ORDER BY user_id, rank"
    ).fetchall():
        mine.setdefault(user, []).append((product, score))
    assert set(mine) == set(spark_top) and len(mine) == 4504
    # A user whose best dot product is not positive has no collaborative
    # ranking in ecoreco (every als score is 0): counted, not compared.
    no_ranking = [u for u, recs in spark_top.items() if recs[0][1] <= 0]
    swaps = sum(compare_lists(mine[u], scaled(spark_top[u])) for u in spark_top if u not in no_ranking)
    print(f"{len(spark_top)} users: top-10 scores agree; {swaps} positions differ only by tied scores; "
          f"{len(no_ranking)} users without a positive score")
    assert len(no_ranking) < 45
    assert swaps < 0.05 * K * len(spark_top)


def test_round_trip_keeps_the_model(spark_model, folder, con):
    """Spark's model imported, exported again, imported again: same content hash."""
    path = str(folder / "round_trip")
    con.execute(
        "CREATE TABLE first AS FROM ecoreco.als_import_spark(?, events := 'events', indexer := ?)",
        [spark_model["path"], spark_model["indexer"]],
    )
    con.execute("FROM ecoreco.als_export_spark(first, ?)", [path]).fetchall()
    con.execute("CREATE TABLE second AS FROM ecoreco.als_import_spark(?, events := 'events')", [path])
    ids = con.execute("SELECT (SELECT any_value(model_id) FROM first), (SELECT any_value(model_id) FROM second)").fetchone()
    assert ids[0] == ids[1]
    assert con.execute(
        "SELECT count(*) FROM (FROM first EXCEPT FROM second)"
    ).fetchone()[0] == 0
    shutil.rmtree(path)


def error_of(con, sql, params=()):
    with pytest.raises(duckdb.Error) as info:
        con.execute(sql, list(params)).fetchall()
    return str(info.value)


def test_bad_inputs_give_clear_errors_and_write_nothing(spark_model, folder, con):
    # A folder that is not an ALS model: the indexers' PipelineModel.
    err = error_of(con, "FROM ecoreco.als_import_spark(?)", [spark_model["indexer"]])
    assert "is not an ALSModel: it holds a org.apache.spark.ml.PipelineModel" in err, err
    # The ALS folder passed as the indexer: no StringIndexerModel in it.
    err = error_of(con, "FROM ecoreco.als_import_spark(?, indexer := ?)", [spark_model["path"], spark_model["path"]])
    assert "holds a org.apache.spark.ml.recommendation.ALSModel; pass the StringIndexerModel" in err, err
    # The user indexer alone: nothing maps the product indices back.
    user_stage = next(p for p in os.listdir(os.path.join(spark_model["indexer"], "stages")) if p.startswith("0_"))
    err = error_of(
        con, "FROM ecoreco.als_import_spark(?, indexer := ?)",
        [spark_model["path"], os.path.join(spark_model["indexer"], "stages", user_stage)],
    )
    assert "no StringIndexerModel whose output column is 'product_idx' (the ALS model's itemCol)" in err, err
    # Rank mismatch between the metadata and the factor files.
    damaged = folder / "damaged"
    shutil.copytree(spark_model["path"], damaged)
    meta = next(p for p in (damaged / "metadata").iterdir() if p.name.startswith("part-"))
    meta.write_text(meta.read_text().replace('"rank":10', '"rank":12'))
    err = error_of(con, "FROM ecoreco.als_import_spark(?, indexer := ?)", [str(damaged), spark_model["indexer"]])
    assert "the metadata says rank 12 but userFactors row id" in err and "has 10 features" in err, err
    shutil.rmtree(damaged)

    # Ids beyond Spark's INT: the first one is named and nothing is written.
    con.execute(
        "CREATE TABLE big_events AS SELECT * REPLACE (user_id + 3000000000 AS user_id) FROM events"
    )
    con.execute("CREATE TABLE big AS FROM ecoreco.als_train(big_events, factors := 4, iterations := 1)")
    first = con.execute("SELECT min(id) FROM big WHERE side = 'user'").fetchone()[0]
    before = sorted(os.listdir(folder))
    err = error_of(con, "FROM ecoreco.als_export_spark(big, ?)", [str(folder / "big")])
    assert f"user_id {first} does not fit Spark's INT" in err, err
    assert sorted(os.listdir(folder)) == before
    # An existing folder is never overwritten.
    con.execute("CREATE TABLE small AS FROM ecoreco.als_train(events, factors := 2, iterations := 1)")
    err = error_of(con, "FROM ecoreco.als_export_spark(small, ?)", [spark_model["path"]])
    assert "already exists" in err, err
    assert ALSModel.load(spark_model["path"]).rank == RANK


def readme_blocks():
    """The code blocks of the worked example of docs/spark.md, in order."""
    text = open(os.path.join(ROOT, "docs", "spark.md"), encoding="utf-8").read()
    section = text.split("## Worked example", 1)[1].split("\n## ", 1)[0]
    blocks = []
    for part in section.split("```")[1::2]:
        language, _, code = part.partition("\n")
        blocks.append((language.strip(), code))
    return blocks


def test_readme_example_runs_as_written(spark, spark_model, tmp_path):
    """The worked example of docs/spark.md, block by block; only the models/ folder is moved
    into this test's own folder (Spark resolves relative paths against the
    JVM's working directory, not Python's)."""
    blocks = readme_blocks()
    assert [language for language, _ in blocks] == ["py", "sql spark", "py"]
    where = lambda code: code.replace("models/", f"{tmp_path}/models/")
    train = {"weights": spark_model["weights"]}
    exec(where(blocks[0][1]), train)
    assert sorted(os.listdir(tmp_path / "models")) == ["spark_als", "spark_indexers"]

    c = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    c.execute(f"LOAD '{EXT}'")
    c.execute(f"CREATE TABLE events AS FROM ecoreco.read_events('{HEAD}')")
    results = [c.execute(statement).fetchall() for statement in where(blocks[1][1]).split(";\n") if statement.strip()]
    assert len(results) == 4
    # The user has two views and no purchase: nothing is excluded, so the
    # list is Spark's own top 10 for them.
    users, products = train["indexers"].stages[0].labels, train["indexers"].stages[1].labels
    subset = spark.createDataFrame([(users.index("541312140"),)], ["user_idx"])
    theirs = [
        (int(products[r["product_idx"]]), r["rating"])
        for r in train["als"].recommendForUserSubset(subset, K).collect()[0]["recommendations"]
    ]
    compare_lists([(r[2], r[3]) for r in results[1]], scaled(theirs))
    assert results[3] == [(f"{tmp_path}/models/ecoreco_als", 4504, 6493, RANK)]

    serve = {}
    exec(where(blocks[2][1]), serve)
    assert serve["top10"].count() == 4504
    assert serve["top10"].columns == ["user_id", "recommendations"]


@pytest.mark.parametrize("k", [2, 5, 8])
def test_silhouette_equals_spark_clustering_evaluator(spark, con, k):
    """kmeans_summary's default silhouette is Spark's ClusteringEvaluator
    (squared Euclidean, every user) on the same standardized features and
    the same segments: the head's rfm_features standardized with the
    model's own scaling rows (NULL imputed as 0, as the fit does)."""
    from pyspark.ml.evaluation import ClusteringEvaluator
    from pyspark.ml.linalg import Vectors

    con.execute("CREATE OR REPLACE TEMP TABLE head_features AS FROM ecoreco.rfm_features(events)")
    con.execute(f"CREATE OR REPLACE TEMP TABLE head_kmodel AS FROM ecoreco.kmeans_model(head_features, k := {k}, seed := 7)")
    ours, metric, sample_size, users = con.execute(
        "SELECT silhouette, silhouette_metric, sample_size, users FROM head_kmodel WHERE kind = 'model'"
    ).fetchone()
    assert metric == "squared_euclidean" and sample_size == users
    summary = con.execute(
        f"SELECT DISTINCT silhouette, silhouette_metric FROM ecoreco.kmeans_summary(head_features, k := {k}, seed := 7)"
    ).fetchall()
    assert summary == [(ours, "squared_euclidean")]
    scaling = con.execute("SELECT feature, value, distance FROM head_kmodel WHERE kind = 'scaling'").fetchall()
    columns = [f for f, _, _ in scaling]
    rows = con.execute(
        "SELECT s.segment_id, " + ", ".join(f'coalesce(f."{c}"::DOUBLE, 0)' for c in columns)
        + " FROM head_features f JOIN head_kmodel s ON s.kind = 'user' AND s.user_id = f.user_id ORDER BY f.user_id"
    ).fetchall()
    assert len(rows) == users
    points = [
        (float(r[0]), Vectors.dense([(x - mean) / std for x, (_, mean, std) in zip(r[1:], scaling)]))
        for r in rows
    ]
    frame = spark.createDataFrame(points, ["prediction", "features"])
    theirs = ClusteringEvaluator(metricName="silhouette", distanceMeasure="squaredEuclidean").evaluate(frame)
    print(f"k = {k}: ecoreco {ours:.12f}, Spark ClusteringEvaluator {theirs:.12f}, {users} users")
    assert abs(ours - theirs) <= 1e-9
    # The sampled Euclidean silhouette (scikit-learn's) is another number.
    euclidean = con.execute(
        f"SELECT DISTINCT silhouette, silhouette_metric FROM ecoreco.kmeans_summary(head_features, k := {k}, seed := 7, silhouette_distance := 'euclidean')"
    ).fetchall()
    assert len(euclidean) == 1 and euclidean[0][1] == "euclidean" and abs(euclidean[0][0] - ours) > 1e-3
