"""The real-time demo (`make stream-demo`): a replay that writes its metrics
to a real InfluxDB while it runs, then reads them back with InfluxQL.

usage: stream_demo.py EXTENSION [EVENTS] [SPEED]

Starts influxd on 127.0.0.1 in a temporary folder, generates one day of
REES46-shaped events (a few percent arrive late, up to 25 minutes after
their event time), trains ALS on the first 16 hours, replays the whole day
paced at SPEED x recorded time with `influx :=` set, polls the server while
the replay runs, prints what it reads back (points per measurement, the
99th percentile of the windows' p99 latency), and stops the server.
"""
import os
import sys
import threading
import time

import duckdb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from influxd import Influxd  # noqa: E402


def prepare(con, events):
    con.execute(f"CREATE OR REPLACE TABLE raw AS FROM ecoreco_synth(events := {events}, days := 1, seed := 42)")
    # Arrival order: event time plus a delay for one event in 40 (up to 25
    # minutes), so some events arrive behind the 10-minute watermark.
    con.execute(
        "CREATE OR REPLACE TABLE events AS SELECT *, event_time + to_seconds(CASE WHEN hash(user_id, event_time, product_id) % 40 = 0 "
        "THEN hash(product_id, event_time) % 1500 ELSE 0 END) AS arrival_time FROM ecoreco.clean_events(raw)"
    )
    con.execute("CREATE OR REPLACE VIEW early AS FROM events WHERE event_time < TIMESTAMP '2019-10-01 16:00:00'")
    # Raw confidence, no decay: the weighting the fold-in reproduces.
    con.execute("CREATE OR REPLACE TABLE model AS FROM ecoreco.als_train(early, factors := 32, iterations := 8, confidence := 'raw', half_life := 0, search := false)")
    # A table replaced behind a name the process served before is refused
    # once by the serving cache (see README, recommend): start afresh.
    con.execute("SELECT ecoreco.model_cache_clear()")


def run(extension, server, events=30000, speed=20000.0, say=print):
    """Replays with metrics sent to `server` (an Influxd); returns figures."""
    server.create_database("ecoreco")
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{extension}'")
    prepare(con, events)
    done = {}

    def replay():
        try:
            done["windows"] = con.execute(
                "SELECT count(*), sum(events), sum(late_events), sum(recommendations), max(p99_ms) FROM ecoreco.replay(events, "
                f"arrival := 'arrival_time', speed := {speed}, influx := ?, influx_database := 'ecoreco', run := 'demo')",
                [server.url],
            ).fetchone()
        except Exception as e:  # reported by the caller
            done["error"] = e

    started = time.monotonic()
    worker = threading.Thread(target=replay)
    worker.start()
    seen_while_running = 0
    while worker.is_alive():
        worker.join(timeout=1.0)
        if worker.is_alive():
            points = server.scalar("SELECT count(events) FROM ecoreco_events WHERE run = 'demo'", "ecoreco") or 0
            seen_while_running = max(seen_while_running, points)
            say(f"  {time.monotonic() - started:5.1f} s: {points} windows in InfluxDB so far")
    if "error" in done:
        raise done["error"]
    windows, total, late, lists, worst_p99 = done["windows"]
    figures = {
        "windows": windows,
        "events": total,
        "late_events": late,
        "recommendations": lists,
        "seconds": time.monotonic() - started,
        "seen_while_running": seen_while_running,
        "points": {},
    }
    for measurement, field in [("ecoreco_events", "events"), ("ecoreco_recommendations", "recommendations")]:
        figures["points"][measurement] = server.scalar(f"SELECT count({field}) FROM {measurement} WHERE run = 'demo'", "ecoreco")
    figures["events_in_influx"] = server.scalar("SELECT sum(events) FROM ecoreco_events WHERE run = 'demo'", "ecoreco")
    figures["p99_of_p99_ms"] = server.scalar("SELECT percentile(p99_ms, 99) FROM ecoreco_recommendations WHERE run = 'demo'", "ecoreco")
    figures["worst_p99_ms"] = worst_p99
    con.close()
    return figures


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    extension = sys.argv[1]
    events = int(sys.argv[2]) if len(sys.argv) > 2 else 30000
    speed = float(sys.argv[3]) if len(sys.argv) > 3 else 20000.0
    with Influxd() as server:
        print(f"influxd on {server.url} (temporary folder); replaying {events} events of one day at {speed:g}x")
        f = run(extension, server, events, speed)
        print(f"replay: {f['windows']} windows, {f['events']} events ({f['late_events']} late), "
              f"{f['recommendations']} lists in {f['seconds']:.1f} s")
        print(f"read back over HTTP (InfluxQL): points per measurement {f['points']}, "
              f"sum(events) = {f['events_in_influx']}, {f['seen_while_running']} windows were there before the replay ended")
        print(f"p99 latency event -> refreshed top-10: 99th percentile over windows {f['p99_of_p99_ms']:.3f} ms, "
              f"worst window {f['worst_p99_ms']:.3f} ms")
    print("influxd stopped")


if __name__ == "__main__":
    main()
