"""evaluate_recommendations' `default` row is the pipeline a user runs:
`als_train` on the rows before the split, then `recommend_all`'s lists
(with the item-to-item signal in known users' lists when the search keeps
it), scored by NDCG@k against the products each user carted or bought
after the split. Checked against that pipeline run in SQL and scored here,
on generated events whose search keeps the known users' blend (the REES46
head's three hours are too short for it: its 80 % part keeps no signal).
Seeded, so the search's choice is the same on every machine."""
import math
import os

import duckdb
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXT = os.path.join(ROOT, "build", "release", "ecoreco.duckdb_extension")
PARAMS = "factors := 16, iterations := 10"
K = 10


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    c.execute(f"LOAD '{EXT}'")
    c.execute("CREATE TABLE raw AS FROM ecoreco_synth(events := 60000, seed := 5)")
    c.execute("CREATE TABLE events AS FROM ecoreco.clean_events(raw)")
    # The split as a timestamp: 80 % of the time span.
    c.execute("SET VARIABLE cut = (SELECT min(event_time) + 0.8 * (max(event_time) - min(event_time)) FROM events)")
    return c


def ndcg(lists, relevant):
    total = 0.0
    for user, targets in relevant.items():
        dcg = sum(1 / math.log2(r + 2) for r, p in enumerate(lists.get(user, [])[:K]) if p in targets)
        ideal = sum(1 / math.log2(r + 2) for r in range(min(K, len(targets))))
        total += dcg / ideal
    return total / len(relevant)


def test_default_row_is_als_train_then_recommend_all(con):
    con.execute(f"CREATE TABLE before_cut AS FROM events WHERE event_time < getvariable('cut')")
    con.execute(f"CREATE TABLE m AS FROM ecoreco.als_train(before_cut, {PARAMS})")
    weight = con.execute("SELECT value FROM m WHERE side = 'param' AND name = 'user_item_weight'").fetchone()
    # This data's search keeps the known users' blend: the row must show it.
    assert weight is not None and weight[0] > 0, weight
    relevant = {}
    for user, product in con.execute(
            "SELECT DISTINCT user_id, product_id FROM events WHERE event_time >= getvariable('cut') "
            "AND event_type IN ('cart', 'purchase') AND user_id IN (SELECT id FROM m WHERE side = 'user')").fetchall():
        relevant.setdefault(user, set()).add(product)
    assert len(relevant) >= 100, len(relevant)
    lists = {}
    for user, product in con.execute(
            f"SELECT user_id, product_id FROM ecoreco.recommend_all('m', k := {K}) ORDER BY user_id, rank").fetchall():
        lists.setdefault(user, []).append(product)
    plain = {}
    for user, product in con.execute(
            f"SELECT user_id, product_id FROM ecoreco.recommend_all('m', k := {K}, item_weight := 0) ORDER BY user_id, rank").fetchall():
        plain.setdefault(user, []).append(product)
    # The blend changes some lists, so the check below tells the two apart.
    assert lists != plain
    rows = dict(con.execute(
        f"SELECT model, ndcg FROM ecoreco.evaluate_recommendations(events, split := getvariable('cut'), k := {K}, {PARAMS})").fetchall())
    users = con.execute(
        f"SELECT users_evaluated FROM ecoreco.evaluate_recommendations(events, split := getvariable('cut'), k := {K}, {PARAMS}) "
        "WHERE model = 'default'").fetchone()[0]
    assert users == len(relevant)
    assert rows["default"] == pytest.approx(ndcg(lists, relevant), abs=1e-12)
    # Without the signal the row would be the plain lists' NDCG; print both.
    print(f"default {rows['default']:.4f} (plain lists {ndcg(plain, relevant):.4f}), tuned {rows['tuned']:.4f}, als {rows['als']:.4f}")
