#!/usr/bin/env python3
"""Recommendation figures for `make bench`, measured and printed in one run
(never asserted):

- quality: NDCG@10 of ALS (seed parameters), tuned, default and popularity
  on 1M generated events (planted tastes), first 80 % of the time span ->
  last 20 %, and a sweep of fixed blends over the seed-parameter model (the
  default blend is now chosen per model: benches/quality.py);
- ALS speed and quality against the `implicit` library (CPU ALS, use_cg,
  same factors / regularization / alpha, 2 threads) on the same training
  matrix and split: seconds per iteration and NDCG@10;
- recommend(user_id) latency at 200K+ products x 64 factors (p50 / p90 / p99);
- recommend_all throughput at 100K users x 50K products x 50 factors;
- recommend_all on the default model of 1M generated events, with the
  item-to-item signal in known users' lists (as als_train chose it) and the
  same table without it (its `recent` rows and `user_item_weight` removed).

usage: recommend.py EXTENSION [--skip-implicit] [--known-users-only]
"""
import gc
import os
import sys
import time

import duckdb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import factor_ndcg  # noqa: E402

EXT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/release/ecoreco.duckdb_extension")
SKIP_IMPLICIT = "--skip-implicit" in sys.argv
KNOWN_USERS_ONLY = "--known-users-only" in sys.argv


def connect():
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXT}'")
    return con


def events_table(con, name, **synth):
    args = ", ".join(f"{k} := {v}" for k, v in synth.items())
    con.execute(f"CREATE OR REPLACE TEMP TABLE raw_{name} AS FROM ecoreco_synth({args})")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS FROM ecoreco.clean_events(raw_{name})")


def timed(con, sql):
    started = time.perf_counter()
    rows = con.execute(sql).fetchall()
    return time.perf_counter() - started, rows


def quality(con):
    events_table(con, "q_events", events=1_000_000, seed=7)
    _, rows = timed(con, "SELECT model, ndcg, precision, recall, users_evaluated, blend FROM ecoreco.evaluate_recommendations(q_events)")
    by_model = {r[0]: r for r in rows}
    for r in rows:
        print(f"quality        {r[0]:<10} NDCG@10 {r[1]:.4f}  precision@10 {r[2]:.4f}  recall@10 {r[3]:.4f}  users {r[4]}")
    ratio = by_model["als"][1] / max(by_model["popularity"][1], 1e-12)
    print(f"quality        ALS / popularity NDCG@10 ratio {ratio:.1f}x (floor 1.5x)")
    sweep = []
    for blend in [0.0, 0.2, 0.5, 0.8, 1.0]:
        _, r = timed(con, f"SELECT ndcg FROM ecoreco.evaluate_recommendations(q_events, blend := {blend}, search := false) WHERE model = 'default'")
        sweep.append((blend, r[0][0]))
    print("quality        fixed-blend sweep, seed parameters (NDCG@10): " + ", ".join(f"{b}: {n:.4f}" for b, n in sweep))
    print(f"quality        best fixed blend {max(sweep, key=lambda x: x[1])[0]}; chosen by als_train on the training part: {by_model['default'][5]:g}")
    return by_model["als"][1]


def against_implicit(con, our_ndcg):
    try:
        import numpy as np
        import scipy.sparse as sp
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits
    except ImportError as exc:
        print(f"implicit       skipped: {exc} (make bench installs it in .venv/bench)")
        return
    # The same split and matrices as evaluate_recommendations builds.
    con.execute("""CREATE OR REPLACE TEMP TABLE cut AS SELECT make_timestamp((epoch_us(min(event_time)) +
                   (epoch_us(max(event_time)) - epoch_us(min(event_time))) * 0.8)::BIGINT) AS at FROM q_events""")
    con.execute("CREATE OR REPLACE TEMP TABLE train_events AS SELECT e.* FROM q_events e, cut WHERE e.event_time < cut.at")
    con.execute("CREATE OR REPLACE TEMP TABLE test_events AS SELECT e.* FROM q_events e, cut WHERE e.event_time >= cut.at")
    train = con.execute("SELECT user_id, product_id, weight, purchases FROM ecoreco.interactions(train_events)").fetchnumpy()
    users, u_idx = np.unique(train["user_id"], return_inverse=True)
    items, i_idx = np.unique(train["product_id"], return_inverse=True)
    weights = train["weight"].astype(np.float32)
    # implicit >= 0.5 uses the matrix values as confidence: pass 1 + alpha * r.
    user_items = sp.csr_matrix((1.0 + weights, (u_idx, i_idx)), shape=(len(users), len(items)))
    iterations = 15
    model = AlternatingLeastSquares(factors=50, regularization=0.1, alpha=1.0, iterations=iterations,
                                    use_cg=True, num_threads=2, random_state=42, calculate_training_loss=False)
    # implicit asks for a single-threaded BLAS; its own loop uses num_threads.
    with threadpool_limits(limits=1, user_api="blas"):
        started = time.perf_counter()
        model.fit(user_items, show_progress=False)
        implicit_per_iter = (time.perf_counter() - started) / iterations
    t1, _ = timed(con, "SELECT count(*) FROM ecoreco.als_train(train_events, iterations := 1, search := false)")
    t16, _ = timed(con, "SELECT count(*) FROM ecoreco.als_train(train_events, iterations := 16, search := false)")
    ours_per_iter = (t16 - t1) / 15
    print(f"als speed      ecoreco {ours_per_iter:.3f} s/iteration, implicit {implicit_per_iter:.3f} s/iteration "
          f"({len(users):,} users x {len(items):,} products, {len(weights):,} interactions, 2 threads) "
          f"ratio {ours_per_iter / implicit_per_iter:.2f}x (floor 1.00x)")
    # NDCG@10 of implicit's factors with our exclusion rule (training purchases).
    relevant = {}
    for u, p in con.execute("SELECT DISTINCT user_id, product_id FROM test_events WHERE event_type IN ('cart', 'purchase')").fetchall():
        relevant.setdefault(u, set()).add(p)
    bought = {}
    for u, p in con.execute("SELECT user_id, product_id FROM ecoreco.interactions(train_events) WHERE purchases > 0").fetchall():
        bought.setdefault(u, set()).add(p)
    scores_all = factor_ndcg(np, users, items, model.user_factors, model.item_factors, relevant, bought, 10)
    theirs = sum(scores_all) / len(scores_all)
    print(f"als quality    NDCG@10 ecoreco {our_ndcg:.4f}, implicit {theirs:.4f} on the same split "
          f"({len(scores_all)} users), difference {100 * (our_ndcg - theirs) / theirs:+.1f}% (floor -2%)")


def latency(con):
    # 260K generated products, of which about 209K have interactions and so
    # are in the model: at least the 200K of the floor. Default training
    # (15 iterations), 64 factors.
    events_table(con, "l_events", events=4_000_000, products=260_000, seed=11)
    con.execute("CREATE OR REPLACE TEMP TABLE l_model AS FROM ecoreco.als_train(l_events, factors := 64)")
    products = con.execute("SELECT count(*) FROM l_model WHERE side = 'product'").fetchall()[0][0]
    users = [r[0] for r in con.execute("SELECT id FROM l_model WHERE side = 'user' ORDER BY hash(id) LIMIT 1100").fetchall()]
    # 100 warm-up calls (model load, thread start-up), then three passes over
    # 1000 other users, with Python's garbage collector paused so it does not
    # time itself. p99 is taken over all 3000 calls (the 30th slowest, not
    # one outlier); each pass's p99 is printed too, to show the spread.
    def call(u):
        con.execute(f"FROM ecoreco.recommend({u}, model := 'l_model', events := 'l_events')").fetchall()
    for u in users[:100]:
        call(u)
    passes = []
    gc.disable()
    for _ in range(3):
        times = []
        for u in users[100:]:
            started = time.perf_counter()
            call(u)
            times.append((time.perf_counter() - started) * 1e3)
        passes.append(sorted(times))
    gc.enable()
    pooled = sorted(t for p in passes for t in p)
    q = lambda ts, f: ts[int(len(ts) * f)]
    print(f"recommend      one user, {products:,} products x 64 factors, {len(pooled)} calls: p50 {q(pooled, 0.5):.2f} ms, "
          f"p90 {q(pooled, 0.9):.2f} ms, p99 {q(pooled, 0.99):.2f} ms, max {pooled[-1]:.2f} ms "
          f"(p99 of each pass: {', '.join(f'{q(p, 0.99):.2f}' for p in passes)}) (floor p99 5 ms)")


def throughput(con):
    events_table(con, "t_events", events=2_500_000, users=100_000, products=50_000, seed=13)
    con.execute("CREATE OR REPLACE TEMP TABLE t_model AS FROM ecoreco.als_train(t_events, factors := 50, iterations := 3, search := false)")
    users, products = con.execute(
        "SELECT count(*) FILTER (side = 'user'), count(*) FILTER (side = 'product') FROM t_model").fetchall()[0]
    for blend, label in [(0.0, "collaborative"), (0.8, "hybrid (blend 0.8)")]:
        t, rows = timed(con, f"SELECT count(*) FROM ecoreco.recommend_all('t_model', k := 10, blend := {blend})")
        print(f"recommend_all  {label}: {users:,} users x {products:,} products x 50 factors: "
              f"{t:.2f} s, {users / t:,.0f} users/s ({rows[0][0]:,} rows)")


def known_users(con):
    events_table(con, "k_events", events=1_000_000, seed=17)
    con.execute("CREATE OR REPLACE TEMP TABLE k_model AS FROM ecoreco.als_train(k_events)")
    weight = con.execute("SELECT max(value) FROM k_model WHERE name = 'user_item_weight'").fetchall()[0][0]
    # The same model without the known users' signal, under another id
    # (the serving cache knows models by id).
    con.execute("""CREATE OR REPLACE TEMP TABLE k_plain AS SELECT * REPLACE (model_id + 1 AS model_id,
                   CASE WHEN name = 'model_id' THEN value + 1 ELSE value END AS value)
                   FROM k_model WHERE side <> 'recent' AND name IS DISTINCT FROM 'user_item_weight'""")
    users = con.execute("SELECT count(*) FROM k_model WHERE side = 'user'").fetchall()[0][0]
    best = {}
    for _ in range(3):
        for table in ("k_model", "k_plain"):
            t, _rows = timed(con, f"SELECT count(*) FROM ecoreco.recommend_all('{table}')")
            best[table] = min(best.get(table, t), t)
    print(f"recommend_all  default model of 1M events ({users:,} users, user_item_weight {weight}): "
          f"{best['k_model']:.2f} s with the known users' item-to-item blend, {best['k_plain']:.2f} s without "
          f"({best['k_model'] / best['k_plain']:.2f}x; best of 3, the model cached)")


def main():
    con = connect()
    threads = con.execute("SELECT current_setting('threads')").fetchall()[0][0]
    print(f"ecoreco recommend bench: duckdb {duckdb.__version__}, threads={threads}")
    if KNOWN_USERS_ONLY:
        known_users(con)
        return
    our_ndcg = quality(con)
    if not SKIP_IMPLICIT:
        against_implicit(con, our_ndcg)
    latency(con)
    throughput(con)
    known_users(con)


if __name__ == "__main__":
    main()
