#!/usr/bin/env python3
"""Fuzz worker: runs SQL calls sent by campaign.py, one at a time, and says
what each one gave. It is a separate process so that a call that kills the
host (an abort, a segfault) kills only this worker: the parent sees which
call was running and starts another worker.

Protocol (one JSON object a line): the parent writes {"id": n, "sql": "..."};
the worker answers {"start": n} before it runs the call, then
{"id": n, "outcome": "result"|"error", "error": text}. The first line the
worker writes is {"ready": true}, after it opened the fixture database.

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
    out.write(json.dumps({"ready": True}) + "\n")
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
        out.write(json.dumps(answer) + "\n")
        out.flush()
        # A fatal error invalidates the database: the parent must know, and
        # this worker is of no further use.
        if answer["error"] and "FatalException" in answer["error"]:
            os._exit(3)


if __name__ == "__main__":
    main()
