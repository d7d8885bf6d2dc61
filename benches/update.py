#!/usr/bin/env python3
"""als_update figures for `make bench`, measured and printed (never
asserted):

- EVENTS generated events (ecoreco_synth, default 4M) over 33 days; the
  model of the first 30 days (als_train, fixed parameters, no search);
- the update with day 31 (als_update over the 31 days' events, of which
  it reads the histories of the users active on day 31; best of 3) against a full
  als_train of days 1-31 with the same parameters: seconds of each and
  their ratio (floor: the update at most 10 % of the refit), wall and
  process CPU (the CPU ratio moves less with a shared machine's load);
- NDCG@10 of both on days 32-33 (recommend_all; relevant: the products a
  user carted or bought those days; users in both models with at least
  one), and the update's relative to the refit's (floor: within 2 %);
  also the 30-day model without the update, for the scale of the drift.

usage: update.py EXTENSION   (env: EVENTS, FACTORS, ITERATIONS)
"""
import os
import sys
import time

import duckdb

EXT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/release/ecoreco.duckdb_extension")
EVENTS = int(os.environ.get("EVENTS", "4000000"))
FACTORS = int(os.environ.get("FACTORS", "32"))
ITERATIONS = int(os.environ.get("ITERATIONS", "15"))
PARAMS = f"factors := {FACTORS}, iterations := {ITERATIONS}, search := false"


def timed(con, sql):
    """(wall seconds, process CPU seconds) of the statements in `sql`."""
    started, cpu = time.perf_counter(), time.process_time()
    for statement in sql.split(";"):
        if statement.strip():
            con.execute(statement)
    return time.perf_counter() - started, time.process_time() - cpu


NDCG = """
WITH rel AS (SELECT DISTINCT user_id, product_id FROM test WHERE event_type IN ('cart', 'purchase')),
users AS (SELECT user_id FROM rel WHERE user_id IN (SELECT id FROM refit WHERE side = 'user')
          AND user_id IN (SELECT id FROM {model} WHERE side = 'user') GROUP BY user_id),
recs AS (SELECT r.user_id, r.rank, r.product_id FROM ecoreco.recommend_all({model}, k := 10) r SEMI JOIN users USING (user_id)),
dcg AS (SELECT user_id, sum(CASE WHEN rel.product_id IS NOT NULL THEN 1 / log2(rank + 1) ELSE 0 END) AS dcg
        FROM recs LEFT JOIN rel USING (user_id, product_id) GROUP BY user_id),
ideal AS (SELECT user_id, sum(1 / log2(i + 1)) AS idcg FROM (SELECT user_id, row_number() OVER (PARTITION BY user_id) AS i FROM rel SEMI JOIN users USING (user_id)) WHERE i <= 10 GROUP BY user_id)
SELECT avg(coalesce(dcg, 0) / idcg), count(*) FROM ideal LEFT JOIN dcg USING (user_id)
"""


def main():
    con = duckdb.connect(config={"allow_unsigned_extensions": "true", "memory_limit": "3GB", "threads": "2"})
    con.execute(f"LOAD '{EXT}'")
    started = time.perf_counter()
    con.execute(f"CREATE TEMP TABLE raw AS FROM ecoreco_synth(events := {EVENTS}, days := 33, seed := 17)")
    con.execute("CREATE TEMP TABLE all_events AS FROM ecoreco.clean_events(raw)")
    con.execute("DROP TABLE raw")
    day0 = con.execute("SELECT date_trunc('day', min(event_time)) FROM all_events").fetchone()[0]
    con.execute(f"SET VARIABLE day30 = TIMESTAMP '{day0}' + INTERVAL 30 DAY")
    con.execute(f"SET VARIABLE day31 = TIMESTAMP '{day0}' + INTERVAL 31 DAY")
    con.execute("CREATE TEMP TABLE first30 AS FROM all_events WHERE event_time < getvariable('day30')")
    con.execute("CREATE TEMP TABLE first31 AS FROM all_events WHERE event_time < getvariable('day31')")
    con.execute("CREATE TEMP TABLE test AS FROM all_events WHERE event_time >= getvariable('day31')")
    n30, n31, n_test = (con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("first30", "first31", "test"))
    con.execute(f"CREATE TEMP TABLE base AS FROM ecoreco.als_train(first30, {PARAMS})")
    con.execute("SET VARIABLE since = (SELECT max(event_time) FROM first30)")
    print(f"update         {EVENTS:,} events over 33 days: days 1-30 {n30:,}, day 31 {n31 - n30:,}, days 32-33 {n_test:,}; "
          f"data and 30-day model {time.perf_counter() - started:.1f} s ({PARAMS})")
    # Best of 3 (the machine is shared); the refit, 10x longer, runs once.
    runs = [timed(con, """
        CREATE OR REPLACE TEMP TABLE updated AS FROM ecoreco.als_update(base, first31, since := getvariable('since'))""")
            for _ in range(3)]
    t_update, c_update = min(r[0] for r in runs), min(r[1] for r in runs)
    t_refit, c_refit = timed(con, f"CREATE TEMP TABLE refit AS FROM ecoreco.als_train(first31, {PARAMS})")
    changed = dict(con.execute(
        "SELECT name, value FROM updated WHERE side = 'param' AND name IN ('updated_users', 'added_users', 'added_products')").fetchall())
    print(f"update         als_update with day 31 {t_update:.1f} s vs full als_train of days 1-31 {t_refit:.1f} s: "
          f"{100 * t_update / t_refit:.1f} % (floor 10 %); CPU {c_update:.2f} s vs {c_refit:.2f} s: {100 * c_update / c_refit:.1f} %; "
          f"load {os.getloadavg()[0]:.1f}; re-solved {changed['updated_users']:,.0f} users, "
          f"added {changed['added_users']:,.0f} users and {changed['added_products']:,.0f} products")
    scores = {}
    for model in ("refit", "updated", "base"):
        scores[model] = con.execute(NDCG.format(model=model)).fetchone()
    refit, users = scores["refit"]
    print(f"update         NDCG@10 on days 32-33 ({users:,} users): full refit {refit:.4f}, update {scores['updated'][0]:.4f} "
          f"({100 * (scores['updated'][0] / refit - 1):+.2f} %, floor within 2 %), 30-day model alone {scores['base'][0]:.4f} "
          f"({100 * (scores['base'][0] / refit - 1):+.2f} %)")


if __name__ == "__main__":
    main()
