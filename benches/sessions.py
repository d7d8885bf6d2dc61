#!/usr/bin/env python3
"""Session lists for `make bench`, measured and printed (never asserted):

- ecoreco.recommend_sessions over a batch of sessions (the last sessions of
  1M generated events; the model: als_train with its defaults on the events
  before 2019-10-25): milliseconds per session, wall time of the whole call
  (grouping the sessions, reading the model's param rows, the lists) and
  CPU time of this process, on DuckDB's threads = 2 and 1, at batches of
  1,000 and 10,000 sessions;
- the same sessions one recommend_session call each (a query per session:
  what the batch saves), over the first 200 of them;
- the same with a raw-confidence model, for comparison with the default's
  transform (bm25 transforms whole rows at every solve);
- the lists of the batch equal the one-by-one calls (count and EXCEPT both
  ways).

Floor (printed next to the figures): < 0.5 ms per session.

usage: sessions.py EXTENSION [EVENTS]
"""
import os
import sys
import time

import duckdb

EXT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/release/ecoreco.duckdb_extension")
EVENTS = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
BATCHES = (1_000, 10_000)
ONE_BY_ONE = 200


def connect():
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXT}'")
    return con


def timed(con, sql):
    cpu = time.process_time()
    started = time.perf_counter()
    rows = con.execute(sql).fetchall()
    return time.perf_counter() - started, time.process_time() - cpu, rows


def main():
    con = connect()
    con.execute("SET threads = 2")
    con.execute(f"CREATE TEMP TABLE raw AS FROM ecoreco_synth(events := {EVENTS}, seed := 7)")
    con.execute("CREATE TEMP TABLE events AS FROM ecoreco.clean_events(raw)")
    con.execute("CREATE TEMP VIEW early AS FROM events WHERE event_time < TIMESTAMP '2019-10-25'")
    models = {}
    for name, args in (("default", ""), ("raw", ", confidence := 'raw', half_life := 0")):
        seconds, _, _ = timed(con, f"CREATE TEMP TABLE model_{name} AS FROM ecoreco.als_train(early{args})")
        params = dict(con.execute(f"SELECT name, value FROM ecoreco.als_params(model_{name})").fetchall())
        confidence = {0.0: "raw", 1.0: "log", 2.0: "bm25"}[params["confidence"]]
        models[name] = f"model_{name}"
        products = con.execute(f"SELECT count(*) FROM model_{name} WHERE side = 'product'").fetchone()[0]
        print(f"sessions: {EVENTS:,} events; model '{name}': confidence {confidence}, half-life {params['half_life_days']:g} days, "
              f"{products:,} products x 50 factors (trained in {seconds:.1f} s)")
    # The last sessions of the later events, most recent first.
    con.execute(
        "CREATE TEMP TABLE later AS FROM events WHERE event_time >= TIMESTAMP '2019-10-25' AND user_session IS NOT NULL"
    )
    con.execute(
        "CREATE TEMP TABLE ranked AS SELECT user_session, row_number() OVER (ORDER BY max(event_time) DESC, user_session) AS n, "
        "count(*) AS events FROM later GROUP BY user_session"
    )
    for batch in BATCHES:
        con.execute(f"CREATE TEMP TABLE batch_{batch} AS SELECT l.* FROM later l JOIN ranked r USING (user_session) WHERE r.n <= {batch}")
    for name, table in models.items():
        # Warm-up: the model's index and fold-in are built once per model.
        con.execute(f"SET threads = 2")
        timed(con, f"SELECT count(*) FROM ecoreco.recommend_sessions('{table}', batch_1000)")
        for batch in BATCHES:
            events = con.execute(f"SELECT count(*) FROM batch_{batch}").fetchone()[0]
            for threads in (2, 1):
                con.execute(f"SET threads = {threads}")
                seconds, cpu, rows = timed(con, f"SELECT count(*), count(DISTINCT session_id) FROM ecoreco.recommend_sessions('{table}', batch_{batch}, k := 10)")
                lists, sessions = rows[0]
                print(f"  {name}: recommend_sessions, {sessions:,} sessions ({events:,} events), threads {threads}: {seconds:.2f} s, "
                      f"{1000 * seconds / sessions:.3f} ms per session; CPU {1000 * cpu / sessions:.3f} ms per session"
                      + ("  [floor < 0.5 ms per session]" if threads == 2 else ""))
        con.execute("SET threads = 2")
        # recommend_sessions takes a session's tied events in table order: so do the single calls.
        picked = con.execute(
            f"SELECT user_session, list(product_id ORDER BY event_time, rowid), list(event_type::VARCHAR ORDER BY event_time, rowid) "
            f"FROM batch_1000 GROUP BY user_session ORDER BY user_session LIMIT {ONE_BY_ONE}"
        ).fetchall()
        one = []
        cpu = time.process_time()
        started = time.perf_counter()
        for session, products, types in picked:
            for rank, product, source in con.execute(
                f"SELECT rank, product_id, source FROM ecoreco.recommend_session('{table}', ?, ?, k := 10)", [products, types]
            ).fetchall():
                one.append((session, rank, product, source))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(f"  {name}: recommend_session one call per session, {len(picked)} sessions: {1000 * seconds / len(picked):.3f} ms per session; "
              f"CPU {1000 * cpu / len(picked):.3f} ms")
        con.execute("CREATE OR REPLACE TEMP TABLE one_by_one (session_id VARCHAR, rank INTEGER, product_id BIGINT, source VARCHAR)")
        con.executemany("INSERT INTO one_by_one VALUES (?, ?, ?, ?)", one)
        con.execute(
            "CREATE OR REPLACE TEMP TABLE picked_events AS FROM batch_1000 WHERE user_session IN (SELECT DISTINCT session_id FROM one_by_one)"
        )
        same = con.execute(
            f"WITH b AS (SELECT session_id, rank, product_id, source FROM ecoreco.recommend_sessions('{table}', picked_events, k := 10)) "
            "SELECT (SELECT count(*) FROM b), (SELECT count(*) FROM one_by_one), "
            "(SELECT count(*) FROM (FROM b EXCEPT FROM one_by_one)), (SELECT count(*) FROM (FROM one_by_one EXCEPT FROM b))"
        ).fetchone()
        print(f"  {name}: same lists as recommend_session for those sessions: {same[0] == same[1] and same[2] == 0 and same[3] == 0} "
              f"({same[0]:,} rows vs {same[1]:,}; {same[2]} and {same[3]} differing)")


if __name__ == "__main__":
    main()
