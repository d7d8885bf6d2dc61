#!/usr/bin/env python3
"""The cost of `als_train`'s default search, as a ratio to a plain fit.

Runs `als_train(events, factors := 50, iterations := 15)` (the search on,
which also chooses the item-to-item signal) and the same call with
`search := false` on ecoreco_synth data (or a CSV of events), read with
read_events, each in a fresh child process, alternating, and prints each
run's wall and CPU seconds (the child's own CPU, all threads: the load of
other processes does not inflate it), the ratio searched / plain, the
search's progress lines with the child's CPU seconds at each, and the
choices (`ecoreco.als_params`).

usage: search.py EXTENSION [EXTENSION ...]
env: EVENTS=4000000 SEED=808 (or CSV=path) ROUNDS=2 THREADS=2
Figures are printed, never asserted.
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXTS = [os.path.abspath(e) for e in sys.argv[1:]] or [os.path.join(ROOT, "build/release/ecoreco.duckdb_extension")]
EVENTS = int(os.environ.get("EVENTS", "4000000"))
SEED = int(os.environ.get("SEED", "808"))
CSV = os.environ.get("CSV")
ROUNDS = int(os.environ.get("ROUNDS", "2"))
THREADS = int(os.environ.get("THREADS", "2"))
PARAMS = ("alpha", "confidence", "regularization", "half_life_days", "blend", "item_weight",
          "item_sequence_weight", "item_cooccurrence_weight", "item_repeat_weight", "item_decay", "item_validation_prefixes",
          "user_item_weight", "validation_ndcg", "validation_ndcg_plain", "search_fits")

CHILD = r'''
import os, sys, time, threading, duckdb
ext, source, threads, search = sys.argv[1:5]
con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
con.execute(f"LOAD '{ext}'")
con.execute(f"SET threads = {threads}")
con.execute(f"CREATE TABLE events AS FROM {source}")
con.execute("SET VARIABLE ecoreco_progress = true")
# Each progress line gets the process's CPU seconds so far beside it.
r, w = os.pipe()
saved = os.dup(2)
os.dup2(w, 2)
lines = []
def pump():
    with os.fdopen(r) as f:
        for line in f:
            lines.append(f"{time.process_time() - cpu0:7.2f} CPU  {line.rstrip()}")
t = threading.Thread(target=pump, daemon=True)
t.start()
cpu0, wall0 = time.process_time(), time.perf_counter()
con.execute(f"CREATE TABLE model AS FROM ecoreco.als_train(events, factors := 50, iterations := 15, search := {search})")
cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
os.dup2(saved, 2)
os.close(w)
t.join(timeout=5)
print(f"RESULT {wall:.3f} {cpu:.3f}")
for line in lines:
    print("PROGRESS", line)
for name, value in con.execute("SELECT name, value FROM ecoreco.als_params(model)").fetchall():
    print("PARAM", name, value)
'''


def source():
    if CSV:
        return f"ecoreco.read_events('{os.path.abspath(CSV)}')"
    path = os.path.join(ROOT, "data", f"search_{EVENTS}_{SEED}.csv")
    if not os.path.exists(path):
        import duckdb
        os.makedirs(os.path.dirname(path), exist_ok=True)
        con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
        con.execute(f"LOAD '{EXTS[0]}'")
        con.execute(f"COPY (FROM ecoreco_synth(events := {EVENTS}, seed := {SEED})) TO '{path}.tmp' (HEADER)")
        os.replace(path + ".tmp", path)
    return f"ecoreco.read_events('{path}')"


def run(ext, src, search):
    out = subprocess.run([sys.executable, "-c", CHILD, ext, src, str(THREADS), search],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    wall, cpu = map(float, next(l for l in out if l.startswith("RESULT")).split()[1:])
    progress = [l[len("PROGRESS "):] for l in out if l.startswith("PROGRESS")]
    params = dict(l.split(" ", 2)[1:] for l in out if l.startswith("PARAM"))
    return wall, cpu, progress, params


def main():
    src = source()
    print(f"als_train search cost: {src}, threads {THREADS}, load {os.getloadavg()[0]:.1f}")
    for rnd in range(ROUNDS):
        for ext in EXTS:
            pw, pc, plain_progress, _ = run(ext, src, "false")
            sw, sc, progress, params = run(ext, src, "true")
            print(f"round {rnd} {os.path.basename(os.path.dirname(ext))}: plain {pw:.1f} s wall / {pc:.1f} s CPU, "
                  f"searched {sw:.1f} / {sc:.1f} s: ratio {sw / pw:.2f}x wall, {sc / pc:.2f}x CPU "
                  f"(load {os.getloadavg()[0]:.1f})")
            if rnd == 0:
                for line in plain_progress:
                    print("    plain", line)
                for line in progress:
                    print("   ", line)
                print("    params:", ", ".join(f"{k} {params[k]}" for k in PARAMS if k in params))


main()
