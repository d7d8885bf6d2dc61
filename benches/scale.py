#!/usr/bin/env python3
"""`make bench-scale`: the pipeline at the original's real data size.

Generates EVENTS rows with ecoreco_synth to a CSV (kept in data/ for the
next run), then runs the stages of sql/demo.sql on a FILE database with a
memory_limit, in a child process whose resident memory this process samples
from /proc every 50 ms. Prints each stage's wall time and the child's peak
RSS during it, and the ratio of seconds per million events to a 4M-event run
of the same script (run first, same settings).

The total is the issue's pipeline: als_train with the seed's parameters
(`search := false`). The default als_train (its parameter search on) is
then run too (last, in the same process: its peak RSS includes the model
recommend_all left in the serving cache) and printed on its own line,
outside the total, with the pipeline total it would give in its place.

usage: scale.py EXTENSION   (env: EVENTS=42000000 MEMORY_LIMIT=6GB THREADS=2
                            WITH_SEARCH=1; 0 leaves out the default als_train's run)
Figures are printed, never asserted.
"""
import os
import subprocess
import sys
import tempfile
import threading
import time

import duckdb

EXT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/release/ecoreco.duckdb_extension")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVENTS = int(os.environ.get("EVENTS", "42000000"))
MEMORY_LIMIT = os.environ.get("MEMORY_LIMIT", "6GB")
THREADS = int(os.environ.get("THREADS", "2"))
BASELINE = 4_000_000
WITH_SEARCH = os.environ.get("WITH_SEARCH", "1") != "0"

# Outside the total: the default als_train, for comparison.
SEARCHED = "als_train default (with its search)"
# (stage, SQL statements); the same stages as sql/demo.sql.
STAGES = [
    ("read_events", ["CREATE TABLE events AS FROM ecoreco.read_events('{csv}')"]),
    ("analytics", [
        "CREATE TEMP TABLE a1 AS FROM ecoreco.event_mix(events)",
        "CREATE TEMP TABLE a2 AS FROM ecoreco.missing_values(events)",
        "CREATE TEMP TABLE a3 AS FROM ecoreco.activity(events, by := 'hour')",
        "CREATE TEMP TABLE a4 AS FROM ecoreco.activity(events, by := 'date')",
        "CREATE TEMP TABLE a5 AS FROM ecoreco.price_stats(events)",
        "CREATE TEMP TABLE a6 AS FROM ecoreco.session_stats(events)",
    ]),
    ("rfm_features", ["CREATE TABLE users AS FROM ecoreco.rfm_features(events)"]),
    ("k-means (one fit: model, segments, summary)", [
        "CREATE TABLE kmodel AS FROM ecoreco.kmeans_model(users, k := 5)",
        "CREATE TABLE segments AS SELECT user_id, segment_id, segment, distance FROM kmodel WHERE kind = 'user'",
        "CREATE TEMP TABLE summary AS FROM ecoreco.kmeans_model_summary(kmodel)",
    ]),
    ("als_train (seed's parameters)", ["CREATE TABLE model AS FROM ecoreco.als_train(events, factors := 50, iterations := 15, search := false)"]),
    ("recommend_all", ["CREATE TABLE recs AS FROM ecoreco.recommend_all('model')"]),
    (SEARCHED, ["CREATE TABLE searched AS FROM ecoreco.als_train(events, factors := 50, iterations := 15)"]),
]
if not WITH_SEARCH:
    STAGES = [stage for stage in STAGES if stage[0] != SEARCHED]

CHILD = r'''
import sys, time, duckdb
ext, db, memory, threads, csv = sys.argv[1:6]
con = duckdb.connect(db, config={"allow_unsigned_extensions": "true"})
con.execute(f"LOAD '{ext}'")
con.execute(f"SET memory_limit = '{memory}'")
con.execute(f"SET threads = {threads}")
con.execute("SET VARIABLE ecoreco_progress = false")
con.execute("SET enable_progress_bar = false")
while True:
    line = sys.stdin.readline()
    if not line:
        break
    sql = line.strip().replace("{csv}", csv)
    started = time.perf_counter()
    con.execute(sql)
    print(f"ANSWER {time.perf_counter() - started:.3f}", flush=True)
print("ANSWER sizes", con.execute("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM users), (SELECT count(*) FROM recs), (SELECT value FROM model WHERE name = 'products')").fetchone(), flush=True)
'''


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def read_answer(child):
    """The child's next ANSWER line (other output is passed through)."""
    while True:
        line = child.stdout.readline()
        if not line:
            return None
        if line.startswith("ANSWER "):
            return line[len("ANSWER "):].strip()
        sys.stdout.write(line)


def ensure_csv(events):
    os.makedirs(os.path.join(ROOT, "data"), exist_ok=True)
    csv = os.path.join(ROOT, "data", f"scale_{events}.csv")
    if not os.path.exists(csv):
        started = time.perf_counter()
        con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
        con.execute(f"LOAD '{EXT}'")
        con.execute(f"COPY (FROM ecoreco_synth(events := {events}, seed := 5)) TO '{csv}.tmp' (HEADER)")
        os.replace(csv + ".tmp", csv)
        print(f"  generated {events:,} events ({os.path.getsize(csv) / 1e9:.1f} GB) in {time.perf_counter() - started:.0f} s")
    return csv


def run(events, on_stage=lambda name, seconds, peak: None):
    csv = ensure_csv(events)
    with tempfile.TemporaryDirectory(dir=os.path.join(ROOT, "data")) as tmp:
        db = os.path.join(tmp, "scale.duckdb")
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, EXT, db, MEMORY_LIMIT, str(THREADS), csv],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        peak = [0]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_kb(child.pid))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        results = []
        for name, statements in STAGES:
            peak[0] = rss_kb(child.pid)
            seconds = 0.0
            for sql in statements:
                child.stdin.write(sql + "\n")
                child.stdin.flush()
                answer = read_answer(child)
                if answer is None:
                    raise SystemExit(f"the pipeline process died during {name} (exit {child.wait()})")
                seconds += float(answer)
            results.append((name, seconds, peak[0] / 1e6))
            on_stage(name, seconds, peak[0] / 1e6)
        child.stdin.close()
        sizes = read_answer(child) or ""
        child.wait()
        stop.set()
    return results, sizes


def main():
    print(f"ecoreco bench-scale: duckdb {duckdb.__version__}, file database, memory_limit = {MEMORY_LIMIT}, threads = {THREADS}")
    print(f"{BASELINE:,} events (the baseline):", flush=True)
    baseline, _ = run(BASELINE, lambda name, seconds, peak: print(f"  {name:43} {seconds:8.1f} s {peak:6.2f} GB", flush=True))
    row = lambda name, seconds, peak, base: print(
        f"{name:45} {seconds:8.1f} {peak:12.2f} {(seconds / EVENTS) / (base / BASELINE) if base > 0 else float('nan'):17.2f}x", flush=True)
    print(f"{EVENTS:,} events:")
    print(f"{'stage':45} {'seconds':>8} {'peak RSS GB':>12} {'s/M events vs 4M':>18}", flush=True)
    base = dict((name, seconds) for name, seconds, _ in baseline)
    if EVENTS != BASELINE:
        results, sizes = run(EVENTS, lambda name, seconds, peak: row(name, seconds, peak, base[name]))
    else:
        results, sizes = baseline, ""
        for name, seconds, peak in results:
            row(name, seconds, peak, base[name])
    pipeline = [r for r in results if r[0] != SEARCHED]
    total = sum(r[1] for r in pipeline)
    print(f"{'total (the issue pipeline: seed parameters)':45} {total:8.1f} {max(r[2] for r in pipeline):12.2f}")
    seconds = dict((r[0], r[1]) for r in results)
    if SEARCHED in seconds:
        searched = total - seconds["als_train (seed's parameters)"] + seconds[SEARCHED]
        print(f"{'total with the default als_train instead':45} {searched:8.1f} {max(r[2] for r in results):12.2f}")
    print(f"sizes (events, users, recommendation rows, products): {sizes}")


if __name__ == "__main__":
    main()
