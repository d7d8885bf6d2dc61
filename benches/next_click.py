#!/usr/bin/env python3
"""Session-based recommendation on real logs, for `make bench` (printed,
never asserted).

The next-click protocol of ecoreco.evaluate_sessions (HR@20 and MRR@20,
all targets and new products only) on the real data in ../shared/data:
the REES46 head (sessions = user_session, split 70/30 in time by their
first event) and the Diginetica sample (sessions act as users, ordered by
eventdate + timeframe, split 70/30 in time). Reported: the later 30 % of
sessions, trained on the earlier 70 % (ecoreco's blend chosen by the
validation inside those, as covisit_train chooses it). The item-to-item
defaults (blend, windows) were chosen with `--dev`: the earliest 70 % of
sessions only, split 70/30 again, so the reported sessions never took part
in a choice.

Then the cost of building the item-to-item model at 4M generated events
(ecoreco_synth seed 404) against one plain ALS fit (als_train, search :=
false) on the same events.

usage: next_click.py EXTENSION [--dev] [--skip-cost]
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DATA, connect, extension  # noqa: E402

EXT = extension()
DEV = "--dev" in sys.argv

BASELINES = ("ar", "sr", "sknn", "popular")


def load(con):
    con.execute(
        f"""CREATE TEMP TABLE rees AS
        SELECT user_session AS session, product_id,
               strptime(replace(event_time, ' UTC', ''), '%Y-%m-%d %H:%M:%S') AS t
        FROM read_csv('{DATA}/rees46-2019-oct-head.csv', all_varchar := true)
        WHERE user_session IS NOT NULL AND user_session <> ''"""
    )
    con.execute(
        f"""CREATE TEMP TABLE digi AS
        SELECT session_id AS session, item_id AS product_id,
               eventdate::TIMESTAMP + to_milliseconds(timeframe::BIGINT) AS t
        FROM read_csv('{DATA}/diginetica-sample.csv', delim := ';', all_varchar := true)"""
    )
    for name in ("rees", "digi"):
        # The development part: the earliest 70 % of sessions by first event.
        con.execute(
            f"""CREATE TEMP TABLE {name}_dev AS
            WITH s AS (SELECT session, min(t) AS started FROM {name} GROUP BY session),
            r AS (SELECT session, row_number() OVER (ORDER BY started, session) AS r,
                         count(*) OVER () AS n FROM s)
            SELECT e.* FROM {name} e JOIN r USING (session) WHERE r.r <= floor(0.7 * r.n)"""
        )


def evaluate(con, table, **params):
    extra = "".join(f", {k} := {v}" for k, v in params.items())
    rows = con.execute(
        f"""SELECT model, targets, hit_rate, mrr, prefixes FROM ecoreco.evaluate_sessions(
            {table}, split := 0.7, k := 20, session_col := 'session', time_col := 't'{extra})"""
    ).fetchall()
    return {(m, t): (hr, mrr, n) for m, t, hr, mrr, n in rows}


def report(name, res):
    n_all, n_new = res[("popular", "all")][2], res[("popular", "new")][2]
    print(f"{name}: {n_all} prefixes ({n_new} with a new target)")
    print(f"  {'':8} {'HR@20 all':>10} {'MRR@20 all':>11} {'HR@20 new':>10} {'MRR@20 new':>11}")
    for m in ("popular", "ar", "sr", "sknn", "ecoreco"):
        cells = [res[(m, t)][i] for t in ("all", "new") for i in (0, 1)]
        print(f"  {m:8} " + " ".join(f"{c:>10.3f} " for c in cells))
    ratios = []
    for t in ("all", "new"):
        for i, metric in ((0, "HR"), (1, "MRR")):
            best = max(res[(b, t)][i] for b in BASELINES)
            ratios.append(f"{metric}@20 {t} {res[('ecoreco', t)][i] / best:.2f}x")
    print("  ecoreco / best baseline: " + ", ".join(ratios))


def dev_grid(con):
    """The grid the defaults were chosen on (development parts only): the
    smallest ratio to the best baseline over both logs and the four
    metrics, then the sum of the metrics."""
    grid = []
    for cooc in (0.25, 0.5, 1.0):
        for rep in (0.5, 1.0, 2.0, 4.0):
            for decay in (0.5, 0.7, 0.9):
                grid.append(dict(sequence_weight=1.0, cooccurrence_weight=cooc, repeat_weight=rep, decay=decay))
    scored = []
    for params in grid:
        total, worst = 0.0, float("inf")
        for table in ("rees_dev", "digi_dev"):
            res = evaluate(con, table, **params)
            for t in ("all", "new"):
                for i in (0, 1):
                    best = max(res[(b, t)][i] for b in BASELINES)
                    total += res[("ecoreco", t)][i]
                    worst = min(worst, res[("ecoreco", t)][i] / best)
        scored.append((worst, total, params))
    scored.sort(key=lambda x: (-x[0], -x[1]))
    for worst, total, params in scored[:10]:
        print(f"  dev worst ratio {worst:.3f} sum {total:.4f}  {params}")


def cost(con):
    con.execute("CREATE TEMP TABLE raw4 AS FROM ecoreco_synth(events := 4000000, seed := 404)")
    con.execute("CREATE TEMP TABLE ev4 AS FROM ecoreco.clean_events(raw4)")
    con.execute("DROP TABLE raw4")
    times = {}
    for name, sql in (
        ("covisit_train", "SELECT count(*) FROM ecoreco.covisit_train(ev4)"),
        ("als_train (search := false)", "SELECT count(*) FROM ecoreco.als_train(ev4, search := false)"),
    ):
        start = time.perf_counter()
        con.execute(sql).fetchall()
        times[name] = time.perf_counter() - start
    c, a = times["covisit_train"], times["als_train (search := false)"]
    print(f"build cost at 4M events (ecoreco_synth seed 404): covisit_train {c:.1f} s, "
          f"plain ALS fit {a:.1f} s: {c / a:.2f}x (floor <= 0.5x)")


def main():
    con = connect(EXT)
    load(con)
    if DEV:
        for table in ("rees_dev", "digi_dev"):
            report(f"{table} (development part)", evaluate(con, table))
        dev_grid(con)
        return
    report("REES46 head, later 30 % of sessions", evaluate(con, "rees"))
    report("Diginetica sample, later 30 % of sessions", evaluate(con, "digi"))
    if "--skip-cost" not in sys.argv:
        cost(con)


if __name__ == "__main__":
    main()
