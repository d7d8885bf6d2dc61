#!/usr/bin/env python3
"""Fuzz worker: runs SQL calls sent by campaign.py, one at a time, and says
what each one gave. It is a separate process so that a call that kills the
host (an abort, a segfault) kills only this worker: the parent sees which
call was running and starts another worker.

Protocol (one JSON object a line): the parent writes {"id": n, "sql": "..."};
the worker answers {"start": n} before it runs the call, then
{"id": n, "outcome": "result"|"error", "error": text, "states": [s, a]},
where `states` is ecoreco_debug_state_counts() after the call (aggregate
states held, addresses known), which must be back to its size before it.
The first line the worker writes is {"ready": true, "states": [s, a]},
after it opened the fixture database.

Each worker runs in its own folder (its working directory, given by the
parent, with its own copy of test/data) and its own temp directory inside
it: DuckDB 1.5 names its spill files the same in every process.

usage: worker.py EXTENSION FIXTURE_DB
"""
import json
import os
import sys

import duckdb


def main():
    extension, fixtures = sys.argv[1], sys.argv[2]
    out = sys.stdout
    con = duckdb.connect(fixtures, read_only=True, config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{extension}'")
    # Calls stay small: no call may use more than this machine can spare.
    con.execute("SET threads = 2")
    con.execute("SET memory_limit = '2GB'")
    temp = os.path.join(os.getcwd(), "duckdb_tmp")
    os.makedirs(temp, exist_ok=True)
    con.execute(f"SET temp_directory = '{temp}'")

    def states():
        return list(con.execute("SELECT s.states, s.addresses FROM (SELECT ecoreco_debug_state_counts() AS s)").fetchone())

    out.write(json.dumps({"ready": True, "states": states()}) + "\n")
    out.flush()
    for line in sys.stdin:
        call = json.loads(line)
        out.write(json.dumps({"start": call["id"]}) + "\n")
        out.flush()
        try:
            con.execute(call["sql"]).fetchall()
            answer = {"id": call["id"], "outcome": "result", "error": None}
        except duckdb.Error as exc:
            answer = {"id": call["id"], "outcome": "error", "error": f"{type(exc).__name__}: {exc}"}
        if not (answer["error"] and "FatalException" in answer["error"]):
            answer["states"] = states()
        out.write(json.dumps(answer) + "\n")
        out.flush()
        # A fatal error invalidates the database: the parent must know, and
        # this worker is of no further use.
        if answer["error"] and "FatalException" in answer["error"]:
            os._exit(3)


if __name__ == "__main__":
    main()
