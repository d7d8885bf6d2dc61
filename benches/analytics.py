#!/usr/bin/env python3
"""Analytics and feature macros vs the same SQL written by hand, in one run.

usage: analytics.py EXTENSION    (BENCH_ROWS=4000000, BENCH_REPEAT=5)

Generates BENCH_ROWS synthetic events (ecoreco_synth), cleans them into a
table `events`, then times every ecoreco.<macro>(events, ...) against the
hand-written query: the macro's own body, as DuckDB stores it (read back from
duckdb_functions(), so the two can never drift apart), with
`query_table(events)` replaced by `events` and each parameter by its value.
The ratio so measures what the macro layer costs (table indirection,
parameter binding, plan differences); the floor is 1.5x.

Both sides materialise their result into a TEMP table (as a user's CREATE
TABLE AS would), run alternately so machine noise hits both alike, and the
best of BENCH_REPEAT runs counts. Timings are printed, never asserted.
"""
import os
import re
import sys
import time

import duckdb

EXT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/release/ecoreco.duckdb_extension")
ROWS = int(os.environ.get("BENCH_ROWS", "4000000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "5"))
FLOOR = 1.5

# (label, macro, parameters other than the table, as SQL literals)
CASES = [
    ("event_mix", "event_mix", {}),
    ("missing_values", "missing_values", {}),
    ("activity(hour)", "activity", {"by": "'hour'"}),
    ("activity(date)", "activity", {"by": "'date'"}),
    ("price_stats", "price_stats", {}),
    ("session_stats", "session_stats", {}),
    ("funnel", "funnel", {}),
    ("top_products", "top_products", {"by": "'views'", "k": "10"}),
    ("top_products(revenue)", "top_products", {"by": "'revenue'", "k": "100"}),
    ("rfm_features", "rfm_features", {}),
    ("product_features", "product_features", {}),
]

STRING_LITERAL = re.compile(r"('(?:[^']|'')*')")


def inline(body, params):
    """The macro body with the table and parameters inlined, string literals
    left alone (error messages mention parameter names)."""
    parts = STRING_LITERAL.split(body)
    for i in range(0, len(parts), 2):  # even parts are outside literals
        text = parts[i].replace("query_table(events)", "events")
        for name, value in params.items():
            text = re.sub(r'"%s"|(?<![\w."])%s(?![\w"])' % (name, name), value, text)
        parts[i] = text
    return "".join(parts)


def timed(con, sql):
    started = time.perf_counter()
    con.execute(sql)
    return time.perf_counter() - started


def main():
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXT}'")
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    print(f"ecoreco analytics bench: duckdb {duckdb.__version__}, threads={threads}, rows={ROWS:,}, best of {REPEAT}")

    started = time.perf_counter()
    con.execute(f"CREATE TEMP TABLE raw AS FROM ecoreco_synth(events := {ROWS})")
    con.execute("CREATE TABLE events AS FROM ecoreco.clean_events(raw)")
    con.execute("DROP TABLE raw")
    users, sessions = con.execute("SELECT count(DISTINCT user_id), count(DISTINCT user_session) FROM events").fetchone()
    print(f"setup          {time.perf_counter() - started:.1f} s  ({users:,} users, {sessions:,} sessions)")

    bodies = dict(
        con.execute(
            "SELECT function_name, macro_definition FROM duckdb_functions() "
            "WHERE database_name = 'ecoreco' AND function_type = 'table_macro'"
        ).fetchall()
    )
    worst = 0.0
    for label, name, params in CASES:
        args = "".join(f", {k} := {v}" for k, v in params.items())
        ours = f"CREATE OR REPLACE TEMP TABLE bench_out AS FROM ecoreco.{name}(events{args})"
        hand = f"CREATE OR REPLACE TEMP TABLE bench_out AS {inline(bodies[name], params)}"
        # Same result from both (a guard against a wrong inlining).
        n_ours = con.execute(f"SELECT count(*) FROM ecoreco.{name}(events{args})").fetchone()[0]
        n_hand = con.execute(f"SELECT count(*) FROM ({inline(bodies[name], params)})").fetchone()[0]
        if n_ours != n_hand:
            raise SystemExit(f"{label}: macro gives {n_ours} rows, the inlined SQL {n_hand}")
        t_ours, t_hand = [], []
        for _ in range(REPEAT):
            t_hand.append(timed(con, hand))
            t_ours.append(timed(con, ours))
        a, b = min(t_ours), min(t_hand)
        worst = max(worst, a / b)
        flag = "" if a / b <= FLOOR else f"   OVER THE {FLOOR:.1f}x FLOOR"
        print(f"analytics  {label:22s} {a:6.2f} s  vs SQL {b:6.2f} s  ratio {a / b:.2f}x{flag}", flush=True)
    print(f"worst ratio {worst:.2f}x (floor {FLOOR:.2f}x)")
    # Close explicitly: with DuckDB 1.5.6, a process that exits with an open
    # connection that loaded the extension sometimes crashes in its exit
    # handlers (seen about 1 run in 10, after all output).
    con.close()


if __name__ == "__main__":
    main()
