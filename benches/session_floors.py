#!/usr/bin/env python3
"""The default model in the session stage, on real logs, for `make bench`
(printed, never asserted).

The next-click protocol of ecoreco.evaluate_sessions (HR@20 and MRR@20,
all targets and new products only) on the REES46 head and the Diginetica
sample in ../shared/data, sessions split 70/30 in time by their first event
(in Diginetica sessions act as users). The model is the pipeline's one:
`als_train(train part)` with its defaults (its search, its item-to-item
choice, all on the training part), served by `recommend_sessions` for every
prefix of every test session (its steps, repeats of a product in a row
merged, as the evaluation does), the next step the target. Beside it, the
baselines of evaluate_sessions on the same split (AR, SR, SKNN, popular,
and covisit's own item-to-item lists), and the ratio of the model to the
best of AR, SR and SKNN (floor 1x, goal 1.1x). No default was chosen on
the test parts reported here.

usage: session_floors.py EXTENSION
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DATA, connect, extension  # noqa: E402

EXT = extension()

BASELINES = ("ar", "sr", "sknn")


def load(con):
    con.execute(
        f"""CREATE TEMP TABLE rees AS
        SELECT strptime(replace(event_time, ' UTC', ''), '%Y-%m-%d %H:%M:%S') AS event_time,
               event_type, product_id::BIGINT AS product_id, nullif(category_id, '')::BIGINT AS category_id,
               user_id::BIGINT AS user_id, user_session
        FROM read_csv('{DATA}/rees46-2019-oct-head.csv', all_varchar := true)
        WHERE user_session IS NOT NULL AND user_session <> ''"""
    )
    con.execute(
        f"""CREATE TEMP TABLE digi AS
        SELECT eventdate::TIMESTAMP + to_milliseconds(timeframe::BIGINT) AS event_time, 'view' AS event_type,
               item_id::BIGINT AS product_id, NULL::BIGINT AS category_id,
               session_id::BIGINT AS user_id, session_id AS user_session
        FROM read_csv('{DATA}/diginetica-sample.csv', delim := ';', all_varchar := true)"""
    )


def cut(con, table):
    """The first event of the session at 70 % (sessions by first event):
    sessions starting before it train."""
    return con.execute(
        f"""SELECT started FROM (
              SELECT started, row_number() OVER (ORDER BY started, user_session) AS r, count(*) OVER () AS n
              FROM (SELECT user_session, min(event_time) AS started FROM {table} GROUP BY user_session))
            WHERE r = floor(n * 0.7)::BIGINT + 1"""
    ).fetchone()[0]


def model_metrics(con, table, at):
    model = f"floors_{table}"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE train_part AS
            FROM {table} WHERE user_session IN (SELECT user_session FROM {table} GROUP BY user_session HAVING min(event_time) < '{at}')"""
    )
    start = time.perf_counter()
    con.execute(f"CREATE OR REPLACE TABLE {model} AS FROM ecoreco.als_train(train_part)")
    train_s = time.perf_counter() - start
    params = dict(con.execute(
        f"SELECT name, value FROM {model} WHERE side = 'param' AND name IN ('item_weight', 'confidence', 'blend', 'item_repeat_weight')"
    ).fetchall())
    # Test sessions' steps: ordered by time then product, repeats in a row merged.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE steps AS
            WITH e AS (SELECT user_session, product_id, event_time FROM {table}
                       WHERE user_session IN (SELECT user_session FROM {table} GROUP BY user_session HAVING min(event_time) >= '{at}')),
            o AS (SELECT *, lag(product_id) OVER (PARTITION BY user_session ORDER BY event_time, product_id) AS prev FROM e)
            SELECT user_session, product_id, row_number() OVER (PARTITION BY user_session ORDER BY event_time, product_id) AS pos
            FROM o WHERE prev IS NULL OR prev <> product_id"""
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE prefixes AS
           SELECT t.user_session || '#' || t.pos AS prefix, s.product_id, 'view' AS event_type, s.pos
           FROM steps t JOIN steps s ON s.user_session = t.user_session AND s.pos < t.pos WHERE t.pos > 1"""
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE targets AS
           SELECT t.user_session || '#' || t.pos AS prefix, t.product_id AS target,
                  NOT EXISTS (SELECT 1 FROM steps s WHERE s.user_session = t.user_session AND s.pos < t.pos AND s.product_id = t.product_id) AS new
           FROM steps t WHERE t.pos > 1"""
    )
    results = {}
    for label, extra in (("default model", ""), ("  item_weight := 0", ", item_weight := 0")):
        start = time.perf_counter()
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE lists AS
               FROM ecoreco.recommend_sessions('{model}', prefixes, session_col := 'prefix', order_col := 'pos', k := 20{extra})"""
        )
        if not extra:
            serve_s = time.perf_counter() - start
        rows = con.execute(
            """SELECT cls, avg((r.rank IS NOT NULL)::INT), avg(coalesce(1.0 / r.rank, 0)), count(*)
               FROM (SELECT *, 'all' AS cls FROM targets UNION ALL SELECT *, 'new' FROM targets WHERE new) t
               LEFT JOIN lists r ON r.session_id = t.prefix AND r.product_id = t.target
               GROUP BY cls"""
        ).fetchall()
        results[label] = {c: (hr, mrr, n) for c, hr, mrr, n in rows}
    n_prefixes = con.execute("SELECT count(*) FROM targets").fetchone()[0]
    return results, params, train_s, serve_s, n_prefixes


def baselines(con, table, at):
    rows = con.execute(
        f"""SELECT model, targets, hit_rate, mrr, prefixes FROM ecoreco.evaluate_sessions(
            {table}, split := TIMESTAMP '{at}', k := 20, time_col := 'event_time')"""
    ).fetchall()
    return {(m, t): (hr, mrr, n) for m, t, hr, mrr, n in rows}


def report(con, name, table):
    at = cut(con, table)
    ours, params, train_s, serve_s, n = model_metrics(con, table, at)
    base = baselines(con, table, at)
    print(f"{name}: {n} test prefixes, sessions starting from {at} (later 30 %)")
    print(f"  model: als_train defaults on the earlier 70 % ({train_s:.1f} s), chose "
          + ", ".join(f"{k} {v:g}" for k, v in sorted(params.items()))
          + f"; recommend_sessions {1000 * serve_s / max(n, 1):.3f} ms per prefix")
    print(f"  {'':22} {'HR@20 all':>10} {'MRR@20 all':>11} {'HR@20 new':>10} {'MRR@20 new':>11}")
    table_rows = [(m, [base[(m, t)][i] for t in ("all", "new") for i in (0, 1)])
                  for m in ("popular", "ar", "sr", "sknn", "ecoreco")]
    table_rows[-1] = ("covisit (item-to-item)", table_rows[-1][1])
    for label, res in ours.items():
        table_rows.append((label, [res[t][i] for t in ("all", "new") for i in (0, 1)]))
    for m, cells in table_rows:
        print(f"  {m:22} " + " ".join(f"{c:>10.3f} " for c in cells))
    ratios = []
    for t in ("all", "new"):
        for i, metric in ((0, "HR"), (1, "MRR")):
            best = max(base[(b, t)][i] for b in BASELINES)
            ratios.append(f"{metric}@20 {t} {ours['default model'][t][i] / best:.2f}x")
    print("  default model / best of AR, SR, SKNN (floor 1x, goal 1.1x): " + ", ".join(ratios))


def main():
    con = connect(EXT)
    load(con)
    report(con, "REES46 head", "rees")
    report(con, "Diginetica sample", "digi")


if __name__ == "__main__":
    main()
