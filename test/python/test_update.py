"""ecoreco.als_update on the REES46 head, split in time: the model of the
first 80 % of the events, updated with all of them. Checked against numpy:
a user without new events keeps their row bit for bit; a user with new
events gets one exact ALS half-step against the old product factors from
their whole history (the fold-in property); a new product gets one exact
product half-step against the updated user factors; recommend serves the
new table."""
import os

import duckdb
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXT = os.path.join(ROOT, "build", "release", "ecoreco.duckdb_extension")
DATA = os.path.join(ROOT, "..", "shared", "data", "rees46-2019-oct-head.csv")
WEIGHT = {"view": 1.0, "cart": 3.0, "purchase": 5.0}
CAP = 10.0


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    c.execute(f"LOAD '{EXT}'")
    c.execute(f"CREATE TABLE events AS FROM ecoreco.read_events('{DATA}')")
    c.execute("SET VARIABLE since = (SELECT quantile_disc(event_time, 0.8) FROM events)")
    c.execute("CREATE TABLE old_events AS FROM events WHERE event_time <= getvariable('since')")
    c.execute("CREATE TABLE m0 AS FROM ecoreco.als_train(old_events, factors := 8, iterations := 5, search := false)")
    c.execute("CREATE TABLE m1 AS FROM ecoreco.als_update(m0, events, since := getvariable('since'))")
    return c


def rows(con, table, side):
    return {i: np.array(f, dtype=np.float32) for i, f in con.execute(
        f"SELECT id, factors FROM {table} WHERE side = '{side}'").fetchall()}


def pair_weights(con, user):
    w = {}
    for p, t in con.execute(f"SELECT product_id, event_type FROM events WHERE user_id = {user}").fetchall():
        if t in WEIGHT:
            w[p] = w.get(p, 0.0) + WEIGHT[t]
    return {p: min(v, CAP) for p, v in w.items()}


def test_params_record_the_parent(con):
    params = dict(con.execute("SELECT name, value FROM m1 WHERE side = 'param'").fetchall())
    parent = con.execute("SELECT value FROM m0 WHERE side = 'param' AND name = 'model_id'").fetchone()[0]
    assert params["parent_model_id"] == parent
    assert params["model_id"] != parent
    assert params["data_end"] == con.execute("SELECT epoch(max(event_time)) FROM events").fetchone()[0]
    assert params["updated_at"] > 1.7e9
    assert params["added_products"] > 0 and params["updated_users"] > 0 and params["added_users"] > 0
    assert params["users"] == con.execute("SELECT count(*) FROM m1 WHERE side = 'user'").fetchone()[0]


def test_unchanged_users_and_products_are_copied_bit_for_bit(con):
    changed = "(SELECT DISTINCT user_id FROM events WHERE event_time > getvariable('since'))"
    for side, keep in [("user", f"id NOT IN {changed}"), ("product", "true")]:
        old = f"SELECT id, item, name, value, factors FROM m0 WHERE side = '{side}' AND {keep}"
        new = f"SELECT id, item, name, value, factors FROM m1 WHERE side = '{side}' AND id IN (SELECT id FROM m0 WHERE side = '{side}') AND {keep}"
        assert con.execute(f"SELECT count(*) FROM ({old})").fetchone() == con.execute(f"SELECT count(*) FROM ({new})").fetchone()
        assert con.execute(f"SELECT count(*) FROM ({old} EXCEPT ALL {new})").fetchone()[0] == 0
        assert con.execute(f"SELECT count(*) FROM ({new} EXCEPT ALL {old})").fetchone()[0] == 0


def test_changed_users_get_one_half_step(con):
    params = dict(con.execute("SELECT name, value FROM m0 WHERE side = 'param'").fetchall())
    lam, alpha = params["regularization"], params["alpha"]
    old_products = rows(con, "m0", "product")
    Y = np.array(list(old_products.values()), dtype=np.float64)
    gram = Y.T @ Y + lam * np.eye(Y.shape[1])
    new_users = rows(con, "m1", "user")
    old_users = rows(con, "m0", "user")
    changed = [u for (u,) in con.execute(
        "SELECT DISTINCT user_id FROM events WHERE event_time > getvariable('since') ORDER BY user_id LIMIT 40").fetchall()]
    checked = 0
    for u in changed:
        w = {p: v for p, v in pair_weights(con, u).items() if p in old_products}
        if not w:
            assert u not in new_users or u in old_users
            continue
        a, b = gram.copy(), np.zeros(Y.shape[1])
        for p, v in w.items():
            y = old_products[p].astype(np.float64)
            a += alpha * v * np.outer(y, y)
            b += (1 + alpha * v) * y
        x = np.linalg.solve(a, b)
        assert np.allclose(new_users[u], x, rtol=1e-4, atol=1e-5), (u, new_users[u], x)
        checked += 1
    assert checked >= 20


def test_new_products_get_one_half_step(con):
    params = dict(con.execute("SELECT name, value FROM m0 WHERE side = 'param'").fetchall())
    lam, alpha = params["regularization"], params["alpha"]
    users = rows(con, "m1", "user")
    X = np.array(list(users.values()), dtype=np.float64)
    gram = X.T @ X + lam * np.eye(X.shape[1])
    new = con.execute(
        "SELECT id, factors, item FROM m1 WHERE side = 'product' AND id NOT IN (SELECT id FROM m0 WHERE side = 'product') ORDER BY id LIMIT 30").fetchall()
    assert len(new) == 30
    for product, factors, category in new:
        touching = con.execute(
            f"SELECT user_id, list(event_type) FROM events WHERE product_id = {product} GROUP BY user_id").fetchall()
        a, b = gram.copy(), np.zeros(X.shape[1])
        for u, types in touching:
            if u not in users:
                continue
            v = min(sum(WEIGHT.get(t, 0.0) for t in types), CAP)
            x = users[u].astype(np.float64)
            a += alpha * v * np.outer(x, x)
            b += (1 + alpha * v) * x
        y = np.linalg.solve(a, b)
        assert np.allclose(np.array(factors), y, rtol=1e-4, atol=1e-5), (product, factors, y)
        assert category == con.execute(f"SELECT min(category_id) FROM events WHERE product_id = {product}").fetchone()[0]


def test_recommend_serves_the_update(con):
    user = con.execute("SELECT min(user_id) FROM events WHERE event_time > getvariable('since') AND user_id IN (SELECT id FROM m1 WHERE side = 'user')").fetchone()[0]
    recs = con.execute(f"FROM ecoreco.recommend({user}, model := 'm1', k := 10)").fetchall()
    assert len(recs) == 10
    # An update of an update records its parent too.
    con.execute("CREATE TABLE m2 AS FROM ecoreco.als_update(m1, events, since := getvariable('since'))")
    assert con.execute("SELECT value FROM m2 WHERE side = 'param' AND name = 'parent_model_id'").fetchone()[0] == \
        con.execute("SELECT value FROM m1 WHERE side = 'param' AND name = 'model_id'").fetchone()[0]


def test_explain_of_an_updated_user_has_a_small_residual(con):
    """The user was solved against the old products; explain solves against
    the new model's, whose gram also holds the products the update added:
    the residual is that difference only (a trained model's is a third or
    more of the score, test_explain.py)."""
    user = con.execute(
        "SELECT min(user_id) FROM events WHERE event_time > getvariable('since') AND user_id IN (SELECT id FROM m0 WHERE side = 'user')").fetchone()[0]
    recs = con.execute(f"SELECT product_id, score FROM ecoreco.recommend({user}, model := 'm1', k := 5, blend := 0)").fetchall()
    for product, score in recs:
        parts = dict(con.execute(
            f"SELECT part, sum(contribution) FROM ecoreco.explain('m1', {user}, {product}, events := 'events', list_k := 5, blend := 0) GROUP BY part").fetchall())
        if "history" in parts:
            assert abs(parts.get("model_residual", 0.0)) <= 0.05 * abs(score), parts


def test_errors(con):
    with pytest.raises(duckdb.Error, match="ecoreco.als_update: the events end at .* not after the model's data"):
        con.execute("FROM ecoreco.als_update(m0, old_events, since := getvariable('since'))").fetchall()
    with pytest.raises(duckdb.Error, match="ecoreco.als_update: the model does not record when its data ends"):
        con.execute("FROM ecoreco.als_update(m0, events)").fetchall()
    # A model from an update records data_end: older events are refused without `since`.
    with pytest.raises(duckdb.Error, match="ecoreco.als_update: the events end at"):
        con.execute("FROM ecoreco.als_update(m1, old_events)").fetchall()
