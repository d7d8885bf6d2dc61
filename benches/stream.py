#!/usr/bin/env python3
"""Real-time figures for `make bench`, measured and printed (never asserted):

- replay of 1M generated events as fast as possible (`speed := 0`), with
  state updates, fold-in and a refreshed top-10 after every event, on
  DuckDB's `threads` = 2 and 1: events/s (wall time of the call, reading
  the events and the model's param rows included) and the latency
  event -> refreshed top-10 (p50 / p95 / p99 over every event);
- the same latency when arrival is paced at the floor's 200,000 events/s
  (or, when the unpaced replay is slower, at 80 % of its rate; speed =
  recorded span x rate / events), over the first 200K events, so queueing
  counts;
- determinism: a hash of every list (event, rank, product, score, source)
  for threads 2 and 1, and paced vs unpaced.

Floors (printed next to the figures): >= 200,000 events/s on 2 cores, p99 <=
50 ms at that rate. The model: the pipeline's, als_train with its defaults
(50 factors, 15 iterations; confidence, half-life, alpha, regularization and
blend chosen by its search) on the events before 2019-10-25; users first
seen later are folded in, with the model's weighting. When the model keeps
the item-to-item signal (item_weight > 0: the search keeps it here), the
unpaced replays run with it (the default) and again without it
(item_weight := 0), so the cost of the signal is printed. The unpaced
replays run again with a raw-confidence model without decay in the same
run, for comparison (bm25 transforms a user's whole row at every solve).

usage: stream.py EXTENSION [EVENTS]
"""
import os
import sys
import time

import duckdb

EXT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/release/ecoreco.duckdb_extension")
EVENTS = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
PACED = min(EVENTS, 200_000)
FLOOR_RATE = 200_000


def connect():
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXT}'")
    return con


def timed(con, sql):
    started = time.perf_counter()
    rows = con.execute(sql).fetchall()
    return time.perf_counter() - started, rows


def cpu_timed(con, sql):
    """Wall seconds, CPU seconds of this process (every thread), rows: on a
    shared machine the CPU time says what the work costs, the wall time
    also what the other jobs took."""
    cpu = time.process_time()
    seconds, rows = timed(con, sql)
    return seconds, time.process_time() - cpu, rows


# Every list as one number (order-independent sum of row hashes), with the
# latency percentiles over all lists (rank 1 carries the list's latency).
SUMMARY = (
    "SELECT count(*) FILTER (rank = 1), sum(hash(event, rank, product_id, score, source)), "
    "quantile_disc(latency_ms, [0.5, 0.95, 0.99, 0.999]) FILTER (rank = 1), avg(latency_ms) FILTER (rank = 1) FROM ecoreco.replay_recommendations({table}, model := '{model}', arrival := 'arrival_time', speed := {speed})"
)


def main():
    con = connect()
    con.execute("SET threads = 2")
    con.execute(f"CREATE TEMP TABLE raw AS FROM ecoreco_synth(events := {EVENTS}, seed := 7)")
    # Arrival: event time, one event in 50 delayed up to 25 minutes.
    con.execute(
        "CREATE TEMP TABLE events AS SELECT *, event_time + to_seconds(CASE WHEN hash(user_id, event_time, product_id) % 50 = 0 "
        "THEN hash(product_id, event_time) % 1500 ELSE 0 END) AS arrival_time FROM ecoreco.clean_events(raw) "
        # Ties in arrival broken by the rest of the row, so the input order
        # (and with it which events are late) is the same in every run.
        "ORDER BY arrival_time, event_time, user_id, product_id, event_type, category_id"
    )
    con.execute("CREATE TEMP VIEW early AS FROM events WHERE event_time < TIMESTAMP '2019-10-25'")
    # The pipeline's model (everything chosen by the search), and a raw
    # one without decay for comparison.
    con.execute("CREATE TEMP VIEW warm AS FROM events LIMIT 100")
    hashes = {}
    for model, args in (("model", ""), ("raw_model", ", confidence := 'raw', half_life := 0")):
        seconds, _ = timed(con, f"CREATE TEMP TABLE {model} AS FROM ecoreco.als_train(early{args})")
        users, products = con.execute(f"SELECT count(*) FILTER (side = 'user'), count(*) FILTER (side = 'product') FROM {model}").fetchone()
        params = dict(con.execute(f"SELECT name, value FROM ecoreco.als_params({model})").fetchall())
        confidence = {0.0: "raw", 1.0: "log", 2.0: "bm25"}[params["confidence"]]
        item_weight = params.get("item_weight", 0.0)
        print(f"stream: {EVENTS:,} events, model '{model}' ({'als_train defaults' if model == 'model' else 'raw confidence, no decay'}): "
              f"confidence {confidence}, half-life {params['half_life_days']:g} days, item_weight {item_weight:g}, "
              f"{users:,} users x {products:,} products x 50 factors (trained in {seconds:.1f} s)")
        # Warm-up: the model's index and its fold-in (YtY, A0^-1 y) are built
        # once per model and cached; the replays below find them.
        con.execute("SET threads = 2")
        seconds, _ = timed(con, f"FROM ecoreco.replay(warm, model := '{model}', arrival := 'arrival_time')")
        print(f"  first call (indexes the model, precomputes the fold-in): {seconds:.2f} s")
        # The default model with and without its item-to-item signal.
        signals = [("signal on", "")] if item_weight > 0 else [("no signal kept", "")]
        if model == "model" and item_weight > 0:
            signals.append(("signal off (item_weight := 0)", ", item_weight := 0"))
        for (signal, extra), threads in [(x, t) for x in signals for t in (2, 1)]:
            con.execute(f"SET threads = {threads}")
            seconds, cpu, rows = cpu_timed(con, "SELECT sum(events), sum(late_events), sum(recommendations), sum(new_users), sum(unknown_users), "
                                                f"sum(fallback_share * recommendations) / sum(recommendations) FROM ecoreco.replay(events, model := '{model}', arrival := 'arrival_time'{extra})")
            total, late, lists, new, unknown, fallback = rows[0]
            rate = total / seconds
            floor = threads == 2 and model == "model" and not extra
            if floor:
                rate_2 = rate
            print(f"  {model}, {signal}, threads {threads}, speed 0: {total:,} events ({late:,} late), {lists:,} lists, {new:,} users ({unknown:,} unknown to the model), "
                  f"fallback share {fallback:.3f}: {seconds:.1f} s, {rate:,.0f} events/s; CPU {cpu:.1f} s, {total / cpu:,.0f} events per CPU-second; "
                  f"load average {os.getloadavg()[0]:.1f}"
                  + ("  [floor >= 200,000 events/s on 2 cores]" if floor else ""))
            if model != "model" or extra:
                continue
            seconds, rows = timed(con, SUMMARY.format(table="events", speed=0, model=model))
            n, h, (p50, p95, p99, p999), mean = rows[0]
            hashes[threads] = h
            print(f"  {model}, threads {threads}, speed 0: latency event -> refreshed top-10 over {n:,} lists: p50 {p50:.3f} ms, p95 {p95:.3f} ms, "
                  f"p99 {p99:.3f} ms, p99.9 {p999:.3f} ms, mean {mean:.3f} ms")

    con.execute("SET threads = 2")
    con.execute(f"CREATE TEMP VIEW first_part AS FROM events LIMIT {PACED}")
    span = con.execute("SELECT epoch(max(event_time) - min(event_time)) FROM first_part").fetchone()[0]
    # The floor's rate when the replay reaches it; else 80 % of the rate it
    # reached (at 100 % any stall queues every later event: the latency of
    # an overloaded server, not of the replay).
    paced_rate = FLOOR_RATE if rate_2 >= FLOOR_RATE else 0.8 * rate_2
    speed = span * paced_rate / PACED
    _, rows = timed(con, SUMMARY.format(table="first_part", speed=0, model="model"))
    unpaced_hash = rows[0][1]
    seconds, rows = timed(con, SUMMARY.format(table="first_part", speed=speed, model="model"))
    n, paced_hash, (p50, p95, p99, _), _ = rows[0]
    print(f"  paced at {paced_rate:,.0f} events/s ({'the floor' if paced_rate == FLOOR_RATE else '80% of the unpaced rate'}; speed {speed:,.0f}x) over the first {PACED:,} events: {seconds:.1f} s; "
          f"latency p50 {p50:.3f} ms, p95 {p95:.3f} ms, p99 {p99:.3f} ms  [floor p99 <= 50 ms]")
    print(f"  same lists for threads 2 and 1: {hashes[2] == hashes[1]}; paced and unpaced: {paced_hash == unpaced_hash}")


if __name__ == "__main__":
    main()
