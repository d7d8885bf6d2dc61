"""ecoreco.explain on the REES46 head: for users' recommendation lists, the
parts of every product's explanation add up to the score `recommend`
printed (within 1e-4 relative), whatever the confidence weighting, decay
or blend. The residual part (the stored vector against the exact solve the
history parts decompose) is printed, not bounded: a trained model's stored
vectors come from alternating steps, not from the last product factors."""
import os

import duckdb
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXT = os.path.join(ROOT, "build", "release", "ecoreco.duckdb_extension")
DATA = os.path.join(ROOT, "..", "shared", "data", "rees46-2019-oct-head.csv")


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    c.execute(f"LOAD '{EXT}'")
    c.execute(f"CREATE TABLE events AS FROM ecoreco.read_events('{DATA}')")
    return c


TRAININGS = {
    "raw": "factors := 16, iterations := 10, search := false",
    "bm25_decay": "factors := 16, iterations := 10, search := false, confidence := 'bm25', half_life := 7",
    "log": "factors := 8, iterations := 10, search := false, confidence := 'log'",
}


@pytest.mark.parametrize("training", sorted(TRAININGS))
@pytest.mark.parametrize("blend", [0.0, 0.3])
def test_parts_add_up_to_the_printed_score(con, training, blend):
    table = f"m_{training}"
    con.execute(f"CREATE OR REPLACE TABLE {table} AS FROM ecoreco.als_train(events, {TRAININGS[training]})")
    users = [u for (u,) in con.execute(
        f"SELECT id FROM {table} WHERE side = 'user' ORDER BY hash(id) LIMIT 12").fetchall()]
    checked, residual, collaborative = 0, 0.0, 0.0
    for user in users:
        recs = con.execute(
            f"SELECT product_id, score, source FROM ecoreco.recommend({user}, model := '{table}', "
            f"events := 'events', k := 10, blend := {blend})").fetchall()
        assert len(recs) == 10
        for product, score, source in recs:
            parts = con.execute(
                f"SELECT part, contribution, share FROM ecoreco.explain('{table}', {user}, {product}, "
                f"events := 'events', list_k := 10, blend := {blend})").fetchall()
            total = sum(p[1] for p in parts)
            assert abs(total - score) <= 1e-4 * max(abs(score), 1e-9), (user, product, parts, score)
            if total != 0:
                assert abs(sum(p[2] for p in parts) - 1.0) < 1e-9
            kinds = {p[0] for p in parts}
            if source == "popular":
                assert kinds == {"popular"}
            if source == "collaborative":
                assert "history" in kinds
                residual += abs(sum(p[1] for p in parts if p[0] == "model_residual"))
                collaborative += sum(p[1] for p in parts if p[0] in ("history", "other_history", "model_residual"))
            checked += 1
    assert checked == 10 * len(users)
    if collaborative > 0:
        print(f"{training} blend {blend}: residual {residual / collaborative:.4f} of the collaborative part")


def test_bad_input(con):
    con.execute("CREATE OR REPLACE TABLE m_small AS FROM ecoreco.als_train(events, factors := 4, iterations := 2, search := false)")
    user, product = con.execute(
        "SELECT u.id, p.id FROM m_small u, m_small p WHERE u.side = 'user' AND p.side = 'product' LIMIT 1").fetchone()
    with pytest.raises(duckdb.Error, match="ecoreco.explain: parameter `list_k`"):
        con.execute(f"FROM ecoreco.explain('m_small', {user}, {product}, list_k := -1)").fetchall()
    con.execute("CREATE OR REPLACE TABLE no_events AS SELECT 1 AS x")
    with pytest.raises(duckdb.Error, match="ecoreco.explain"):
        con.execute(f"FROM ecoreco.explain('m_small', {user}, {product}, events := 'no_events')").fetchall()


def test_parts_add_up_in_a_blended_model(con):
    """A model whose search kept the known users' item-to-item blend
    (user_item_weight above 0, `recent` rows): the parts still add up to the
    printed score, the item-to-item rows name the user's latest products,
    and a product listed as item-to-item has such rows."""
    con.execute("CREATE OR REPLACE TABLE m_blended AS FROM ecoreco.als_train(events, factors := 16, iterations := 10)")
    weight = con.execute("SELECT value FROM m_blended WHERE side = 'param' AND name = 'user_item_weight'").fetchone()
    assert weight is not None and weight[0] > 0, weight
    # The products other than the latest at a weight of their own, below
    # the latest's: the parts must add up under the two shares.
    new_weight = con.execute(
        "SELECT value FROM m_blended WHERE side = 'param' AND name = 'user_new_item_weight'").fetchone()
    assert new_weight is not None and new_weight[0] < weight[0], (weight, new_weight)
    users = [u for (u,) in con.execute(
        "SELECT DISTINCT id FROM m_blended WHERE side = 'recent' ORDER BY hash(id) LIMIT 12").fetchall()]
    item_rows = 0
    for user in users:
        latest = {p for (p,) in con.execute(
            f"SELECT item FROM m_blended WHERE side = 'recent' AND id = {user}").fetchall()}
        recs = con.execute(
            f"SELECT product_id, score, source FROM ecoreco.recommend({user}, model := 'm_blended', k := 10)").fetchall()
        assert len(recs) == 10
        for product, score, source in recs:
            parts = con.execute(
                f"SELECT part, contribution, because_product_id FROM ecoreco.explain('m_blended', {user}, {product}, "
                f"events := 'events', list_k := 10)").fetchall()
            total = sum(p[1] for p in parts)
            assert abs(total - score) <= 1e-4 * max(abs(score), 1e-9), (user, product, parts, score)
            items = [p for p in parts if p[0] == "item_to_item"]
            assert {p[2] for p in items} <= latest, (user, product, items, latest)
            if source == "item-to-item":
                assert items, (user, product, parts)
            item_rows += len(items)
    assert item_rows > 0
