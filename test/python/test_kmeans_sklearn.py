"""K-Means against scikit-learn: same standardised data, same k, k-means++.
Our inertia (in standardised units) must be within 1% of scikit-learn's,
both taking the best of 10 k-means++ starts."""
import os

import duckdb
import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.cluster import KMeans  # noqa: E402
from sklearn.metrics import silhouette_score  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXT = os.path.join(ROOT, "build", "release", "ecoreco.duckdb_extension")
COLS = ["f0", "f1", "f2", "f3", "f4", "f5"]


def datasets():
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 6, size=(5, 6))
    blobs = np.vstack([rng.normal(c, rng.uniform(0.5, 2.0), size=(1200, 6)) for c in centers])
    # Heavy-tailed, RFM-like: counts and spend are log-normal, rates bounded.
    n = 8000
    rfm = np.column_stack([
        rng.uniform(0, 31, n),
        rng.lognormal(0.5, 0.8, n).round(),
        rng.lognormal(3.0, 1.5, n) * (rng.random(n) < 0.2),
        rng.lognormal(2.0, 1.0, n).round(),
        rng.beta(0.5, 8, n),
        rng.lognormal(1.5, 0.9, n).round(),
    ])
    return {"blobs": blobs, "rfm_like": rfm}


@pytest.mark.parametrize("name", ["blobs", "rfm_like"])
def test_inertia_within_one_percent_of_scikit_learn(name):
    data = datasets()[name]
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXT}'")
    con.execute("CREATE TABLE feats (user_id BIGINT, " + ", ".join(f"{c} DOUBLE" for c in COLS) + ")")
    con.executemany("INSERT INTO feats VALUES (?, ?, ?, ?, ?, ?, ?)", [[i, *map(float, row)] for i, row in enumerate(data)])
    ours = con.execute(
        f"SELECT inertia, silhouette, sample_size FROM ecoreco.kmeans_summary(feats, k := 5, max_iter := 300, n_init := 10, columns := {COLS}) LIMIT 1"
    ).fetchone()
    scaled = StandardScaler().fit_transform(data)
    km = KMeans(n_clusters=5, init="k-means++", n_init=10, max_iter=300, random_state=0).fit(scaled)
    print(f"{name}: ours {ours[0]:.3f} scikit-learn {km.inertia_:.3f}")
    assert ours[0] <= km.inertia_ * 1.01
    # Both silhouettes are exact over all users: the default (Spark's,
    # squared Euclidean) always, the Euclidean one because there are fewer
    # users than its 50,000 sample.
    assert ours[2] == len(data)
    labels = con.execute(
        f"SELECT list(segment_id ORDER BY user_id) FROM ecoreco.kmeans_segments(feats, k := 5, max_iter := 300, n_init := 10, columns := {COLS})"
    ).fetchone()[0]
    assert ours[1] == pytest.approx(silhouette_score(scaled, labels, metric="sqeuclidean"), rel=1e-9)
    euclidean = con.execute(
        f"SELECT silhouette, sample_size FROM ecoreco.kmeans_summary(feats, k := 5, max_iter := 300, n_init := 10, columns := {COLS}, silhouette_distance := 'euclidean') LIMIT 1"
    ).fetchone()
    assert euclidean[1] == len(data)
    assert euclidean[0] == pytest.approx(silhouette_score(scaled, labels), rel=1e-9)
