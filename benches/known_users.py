#!/usr/bin/env python3
"""The default model against `implicit`, as a user serves it (printed,
never asserted).

For each data set: the 80/20 time split; `als_train` with its defaults on
the first 80 % (its own search, blend and item-to-item choices inside
them), `recommend_all(model)` with its defaults; `implicit` 0.7 at the
original pipeline's parameters (50 factors, 15 iterations, regularization
0.1, alpha 1, raw weights) on the same training pairs. Targets: the
products each user carted or bought after the split; users: those in the
training part with a target. NDCG@10 under two protocols:

- seen products kept: the list of 10 as served (`recommend_all(model)`,
  k 10; implicit's top 10), training purchases excluded by both;
- new products only: targets the user never touched in training, lists
  without the products the user touched (ecoreco: `recommend_all(model,
  k := 50)` with them removed; implicit: its top 50 likewise), the first
  10.

usage: known_users.py EXTENSION [generator:seed:events ...]
       (default: ecoreco_synth:202:1000000 gen_drift:11:1000000)
"""
import math
import os
import sys
import time

for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import duckdb  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_drift  # noqa: E402

EXT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/release/ecoreco.duckdb_extension")
K = 10
DEEP = 50


def make_events(con, generator, seed, events):
    if generator == "ecoreco_synth":
        con.execute(f"CREATE OR REPLACE TEMP TABLE raw_q AS FROM ecoreco_synth(events := {events}, seed := {seed})")
        con.execute("CREATE OR REPLACE TEMP TABLE q AS FROM ecoreco.clean_events(raw_q)")
    else:
        gen_drift.drift_events(con, "q", events, seed)


def ndcg(recommended, relevant):
    dcg = sum(1.0 / math.log2(i + 2) for i, item in enumerate(recommended[:K]) if item in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(K, len(relevant))))
    return dcg / ideal


def implicit_lists(con, deep):
    """implicit's top `deep` per training user (training purchases excluded)."""
    import numpy as np
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits
    train = con.execute("SELECT user_id, product_id, weight, purchases FROM ecoreco.interactions(q_train)").fetchnumpy()
    users, u_idx = np.unique(train["user_id"], return_inverse=True)
    items, i_idx = np.unique(train["product_id"], return_inverse=True)
    confidence = sp.csr_matrix(((1.0 + train["weight"]).astype(np.float32), (u_idx, i_idx)), shape=(len(users), len(items)))
    model = AlternatingLeastSquares(factors=50, regularization=0.1, alpha=1.0, iterations=15,
                                    use_cg=True, num_threads=2, random_state=42, calculate_training_loss=False)
    with threadpool_limits(limits=1, user_api="blas"):
        model.fit(confidence, show_progress=False)
    uf, itf = np.asarray(model.user_factors), np.asarray(model.item_factors)
    bought = {}
    for u, i in zip(u_idx[train["purchases"] > 0], i_idx[train["purchases"] > 0]):
        bought.setdefault(u, []).append(i)
    return users, items, uf, itf, bought


def main():
    specs = [a for a in sys.argv[2:] if ":" in a] or ["ecoreco_synth:202:1000000", "gen_drift:11:1000000"]
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXT}'")
    threads = con.execute("SELECT current_setting('threads')").fetchall()[0][0]
    print(f"known users bench: {EXT}, duckdb {duckdb.__version__}, threads {threads}")
    import numpy as np
    for spec in specs:
        generator, seed, events = spec.split(":")
        seed, events = int(seed), int(events)
        make_events(con, generator, seed, events)
        at = con.execute("SELECT min(epoch(event_time)) + (max(epoch(event_time)) - min(epoch(event_time))) * 0.8 FROM q").fetchall()[0][0]
        con.execute(f"CREATE OR REPLACE TEMP TABLE q_train AS SELECT * FROM q WHERE epoch(event_time) < {at!r}")
        started = time.perf_counter()
        con.execute("CREATE OR REPLACE TEMP TABLE m AS FROM ecoreco.als_train(q_train)")
        trained = time.perf_counter() - started
        params = dict(con.execute("SELECT name, value FROM ecoreco.als_params('m')").fetchall())
        started = time.perf_counter()
        served = {}
        for u, p in con.execute("SELECT user_id, product_id FROM ecoreco.recommend_all('m') ORDER BY user_id, rank").fetchall():
            served.setdefault(u, []).append(p)
        serve_seconds = time.perf_counter() - started
        deep = {}
        for u, p in con.execute(f"SELECT user_id, product_id FROM ecoreco.recommend_all('m', k := {DEEP}) ORDER BY user_id, rank").fetchall():
            deep.setdefault(u, []).append(p)
        relevant = {}
        for u, p in con.execute(f"SELECT DISTINCT user_id, product_id FROM q WHERE epoch(event_time) >= {at!r} "
                                "AND event_type IN ('cart', 'purchase') AND user_id IS NOT NULL AND product_id IS NOT NULL").fetchall():
            relevant.setdefault(u, set()).add(p)
        seen = {}
        for u, p in con.execute("SELECT DISTINCT user_id, product_id FROM q_train WHERE user_id IS NOT NULL AND product_id IS NOT NULL").fetchall():
            seen.setdefault(u, set()).add(p)
        users, items, uf, itf, bought = implicit_lists(con, DEEP)
        position = {u: i for i, u in enumerate(users)}
        scores = {"ecoreco": {"seen": [], "new": []}, "implicit": {"seen": [], "new": []}}
        for u, rel in relevant.items():
            if u not in position:
                continue
            s = itf @ uf[position[u]]
            for i in bought.get(position[u], ()):
                s[i] = -np.inf
            top = [items[i] for i in np.argsort(-s, kind="stable")[:DEEP + len(seen.get(u, ()))]]
            own = seen.get(u, set())
            new_rel = rel - own
            scores["implicit"]["seen"].append(ndcg(top[:K], rel))
            scores["ecoreco"]["seen"].append(ndcg(served.get(u, []), rel))
            if new_rel:
                scores["implicit"]["new"].append(ndcg([p for p in top if p not in own], new_rel))
                scores["ecoreco"]["new"].append(ndcg([p for p in deep.get(u, []) if p not in own], new_rel))
        mean = {m: {p: sum(v) / len(v) for p, v in d.items()} for m, d in scores.items()}
        chosen = ", ".join(f"{n} {params[n]:g}" for n in ["alpha", "regularization", "blend", "item_weight", "user_item_weight", "user_new_item_weight"] if n in params)
        print(f"{generator} seed {seed}, {events / 1e6:g}M: als_train {trained:.1f} s, recommend_all {serve_seconds:.2f} s; chose {chosen}", flush=True)
        for protocol, text in [("seen", "seen products kept"), ("new", "new products only")]:
            e, i = mean["ecoreco"][protocol], mean["implicit"][protocol]
            print(f"  {text:<20} users {len(scores['ecoreco'][protocol]):>6,}  NDCG@10 ecoreco {e:.4f}  implicit {i:.4f}  ratio {e / i:.3f}x", flush=True)


if __name__ == "__main__":
    main()
