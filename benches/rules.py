#!/usr/bin/env python3
"""Serving rules figures for `make bench`, measured and printed (never
asserted):

- recommend_all at EVENTS generated events (ecoreco_synth, default 4M):
  without rules, then with an include table of half the catalogue,
  max_per_brand := 2 and diversity := 0.3: seconds of each (best of
  RUNS) and their ratio (floor: at most 2x);
- that every user who can get 10 products under those rules gets 10: a
  user can when 10 products of the included half, not bought by them,
  fit two per brand (products without a brand are not counted), which
  is checked per user in SQL against the lists.

usage: rules.py EXTENSION   (env: EVENTS, RUNS)
"""
import os
import sys
import time

import duckdb

EXT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/release/ecoreco.duckdb_extension")
EVENTS = int(os.environ.get("EVENTS", "4000000"))
RUNS = int(os.environ.get("RUNS", "3"))


def best_of(con, sql):
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        con.execute(sql)
        times.append(time.perf_counter() - started)
    return min(times)


def main():
    con = duckdb.connect(config={"allow_unsigned_extensions": "true", "memory_limit": "3GB", "threads": "2"})
    con.execute(f"LOAD '{EXT}'")
    started = time.perf_counter()
    con.execute(f"CREATE TEMP TABLE raw AS FROM ecoreco_synth(events := {EVENTS}, seed := 11)")
    con.execute("CREATE TEMP TABLE events AS FROM ecoreco.clean_events(raw)")
    con.execute("DROP TABLE raw")
    con.execute("CREATE TEMP TABLE model AS FROM ecoreco.als_train(events, factors := 32, iterations := 5, search := false)")
    users, products, priced, branded = con.execute(
        "SELECT count(*) FILTER (side = 'user'), count(*) FILTER (side = 'product'), count(*) FILTER (side = 'price'), "
        "count(name) FILTER (side = 'product') FROM model").fetchone()
    print(f"rules          {EVENTS:,} events: {users:,} users x {products:,} products ({priced:,} priced, {branded:,} branded); "
          f"data and model {time.perf_counter() - started:.1f} s")
    # Half the catalogue: every other product by id.
    con.execute("CREATE TEMP TABLE half AS SELECT id AS product_id FROM model WHERE side = 'product' AND id % 2 = 0")
    plain = "CREATE OR REPLACE TEMP TABLE plain AS FROM ecoreco.recommend_all(model, k := 10)"
    ruled = ("CREATE OR REPLACE TEMP TABLE ruled AS FROM ecoreco.recommend_all(model, k := 10, include := 'half', "
             "max_per_brand := 2, diversity := 0.3)")
    # A first call loads the model into the cache: not timed.
    con.execute("FROM ecoreco.recommend_all(model, k := 1) LIMIT 1").fetchall()
    t_plain = best_of(con, plain)
    t_ruled = best_of(con, ruled)
    print(f"rules          recommend_all k 10: no rules {t_plain:.2f} s, include half + max_per_brand 2 + diversity 0.3 "
          f"{t_ruled:.2f} s: {t_ruled / t_plain:.2f}x (floor 2x), best of {RUNS}")
    # Who can get 10: per user, the included products not bought, two per
    # brand at most (unbranded ones all count).
    can, got, broken, short = con.execute("""
        WITH p AS (SELECT id AS product_id, name AS brand FROM model WHERE side = 'product' AND id % 2 = 0),
        capacity AS (SELECT sum(n) AS n FROM (SELECT CASE WHEN brand IS NULL THEN count(*) ELSE least(count(*), 2) END AS n FROM p GROUP BY brand)),
        bought AS (SELECT id AS user_id, count(*) FILTER (item % 2 = 0) AS n FROM model WHERE side = 'purchased' GROUP BY id),
        u AS (SELECT m.id AS user_id, (SELECT n FROM capacity) - coalesce(b.n, 0) >= 10 AS can FROM model m LEFT JOIN bought b ON b.user_id = m.id WHERE m.side = 'user'),
        lists AS (SELECT user_id, count(*) AS n FROM ruled GROUP BY user_id)
        SELECT count(*) FILTER (can), count(*) FILTER (can AND coalesce(l.n, 0) = 10),
               (SELECT count(*) FROM ruled WHERE product_id % 2 = 1)
               + (SELECT count(*) FROM (SELECT r.user_id FROM ruled r JOIN p USING (product_id) WHERE p.brand IS NOT NULL GROUP BY r.user_id, p.brand HAVING count(*) > 2)),
               count(*) FILTER (can AND coalesce(l.n, 0) < 10)
        FROM u LEFT JOIN lists l USING (user_id)""").fetchone()
    print(f"rules          users who can get 10: {can:,}; got 10: {got:,}; short: {short}; rows breaking a rule: {broken}")
    sources = con.execute("SELECT source, count(*) FROM ruled GROUP BY source ORDER BY source").fetchall()
    print("rules          ruled rows by source: " + ", ".join(f"{s} {n:,}" for s, n in sources))


if __name__ == "__main__":
    main()
