#!/usr/bin/env python3
"""The fuzz campaign: thousands of generated calls of every public ecoreco
function, each run in a worker process (worker.py) so that a call that
crashes the host is caught and reported with its SQL.

What is called:
- every macro of the `ecoreco` catalog, listed from duckdb_functions() at run
  time (a new macro is covered without editing this file: it gets generic
  arguments until MACRO_CALLS gives it a known-good shape);
- every `ecoreco_*` aggregate, scalar and table function of the system
  catalog, called directly, with arguments of the declared types and wrong
  ones, as a plain aggregate, with GROUP BY (many groups), FILTER, DISTINCT,
  ORDER BY inside the call, as a window (`OVER ()`, partitioned, framed), on
  empty, NULL-filled, extreme and malformed tables.

Calls come from hypothesis strategies with a fixed seed (printed; FUZZ_SEED
changes it), generation only (no shrinking), so a run is reproducible. With
--systematic, the campaign first runs every `ecoreco_*` aggregate in every
calling form (AGGREGATE_SHAPES) on every one of its sources, in order, not
by chance; the drawn calls follow.

Each worker runs in its own folder, with its own copy of test/data and its
own temp directory (DuckDB 1.5 names its spill files the same in every
process). After every call the worker reports ecoreco_debug_state_counts():
a call after which the aggregate state registry is not back to its size is
a leak; after a statement that failed, states DuckDB freed without telling
any callback are counted apart (docs/reliability.md). Each
call has a time limit; a call that kills its worker is a crash, one that
outlives the limit a hang (the worker is killed), an error whose message says
"internal error" (a caught Rust panic) or DuckDB's "INTERNAL Error" an
internal error. Any of these, or a leak, fails the run. Everything else is a result
or an SQL error, which is what bad arguments must give.

usage: campaign.py EXTENSION [--calls N] [--seed S] [--workers W] [--systematic]
                             [--timeout SECONDS] [--budget SECONDS]
"""
import argparse
import collections
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

import duckdb
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WORKER = os.path.join(HERE, "worker.py")
FIXTURES = os.path.join(HERE, "fixtures.sql")

def split_args(text):
    """Splits an argument list at its top-level commas."""
    parts, depth, quoted, current = [], 0, False, ""
    for ch in text:
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch in "([{":
            depth += 1
        elif not quoted and ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0 and not quoted:
            parts.append(current)
            current = ""
        else:
            current += ch
    return parts + [current]


# ---------------------------------------------------------------------------
# Known-good call shapes. USER and PRODUCT are replaced by ids of the model.

# macro -> (positional arguments, named arguments)
MACRO_CALLS = {
    "read_events": (["'test/data/broken.csv'"], {}),
    "clean_events": (["'raw'"], {}),
    "count_lines": (["'test/data/broken.csv'"], {}),
    "rejects": ([], {}),
    "synth": ([], {"events": "100", "users": "0", "products": "0", "days": "3", "start_date": "'2019-10-01'", "seed": "1"}),
    "event_mix": (["events"], {}),
    "missing_values": (["events"], {}),
    "activity": (["events"], {"by": "'hour'"}),
    "price_stats": (["events"], {}),
    "session_stats": (["events"], {}),
    "funnel": (["events"], {}),
    "top_products": (["events"], {"by": "'views'", "k": "3"}),
    "rfm_features": (["events"], {}),
    "product_features": (["events"], {}),
    "rfm_segments": (["users"], {}),
    "rfm_segment_summary": (["users"], {}),
    "kmeans_segments": (["users"], {"k": "2", "seed": "1", "max_iter": "5", "columns": "['recency', 'frequency']", "sample": "100", "n_init": "1"}),
    "kmeans_summary": (["users"], {"k": "2", "seed": "1", "max_iter": "5", "columns": "['recency', 'frequency']", "sample": "100", "n_init": "1"}),
    "kmeans_centroids": (["users"], {"k": "2", "seed": "1", "max_iter": "5", "columns": "['recency', 'frequency']", "sample": "100", "n_init": "1"}),
    "kmeans_model": (["users"], {"k": "2", "seed": "1", "max_iter": "5", "columns": "['recency', 'frequency']", "sample": "100", "n_init": "1"}),
    "kmeans_assign": (["users", "'kmodel'"], {}),
    "als_export_spark": (["'model'", "'exported'"], {}),
    "als_import_spark": (["'test/data/no_such_spark_model'", "'events'"], {}),
    "report": (["'events'"], {"path": "'report.html'"}),
    "kmeans_model_centroids": (["'kmodel'"], {}),
    "kmeans_model_summary": (["'kmodel'"], {}),
    "kmeans_sweep": (["users"], {"k_min": "2", "k_max": "3", "seed": "1", "max_iter": "5", "columns": "['recency', 'frequency']", "sample": "100", "n_init": "1"}),
    "interactions": (["events"], {"view": "1", "cart": "3", "purchase": "5", "cap": "10"}),
    "als_train": (["events"], {"factors": "4", "iterations": "2", "regularization": "0.1", "alpha": "1.0", "cg_steps": "2", "seed": "1", "view": "1", "cart": "3", "purchase": "5", "cap": "10", "search": "false"}),
    "als_loss": (["'model'"], {}),
    "als_params": (["'model'"], {}),
    "recommend": (["USER"], {"model": "'model'", "events": "'events'", "k": "3", "blend": "0.5", "exclude_purchased": "true"}),
    "recommend_all": (["'model'"], {"k": "2", "blend": "0.5", "exclude_purchased": "true"}),
    "similar_products": (["PRODUCT"], {"model": "'model'", "k": "3"}),
    "evaluate_recommendations": (["events"], {"split": "0.8", "k": "3", "blend": "0.5", "factors": "4", "iterations": "2", "search": "false"}),
    "version": ([], {}),
    "model_cache_clear": ([], {}),
}

# aggregate -> (source tables with the columns it reads, arguments), as the
# macros call it (see their macro_definition in duckdb_functions()).
PAIRS = "user_id, product_id, weight, purchases, interactions, category_id, last_time, v_weight, v_purchases, v_interactions, v_time, v_target, v_cut, first_time"
TRAINING = "4, 2, 0.1, 1.0, 2, 1, NULL, NULL, false"
LIMITS = "2, '2GB'"
# The product attributes (brand, its time, price, its time) als_train's macro
# passes after the pairs; none here.
ATTRIBUTES = "NULL::VARCHAR, NULL::DOUBLE, NULL::DOUBLE, NULL::DOUBLE"
# The session steps (session key, order) als_train's macro feeds with the
# search on, on rows of their own; none here.
SESSION_STEPS = "NULL::BIGINT, NULL::DOUBLE"
# The serving rules (max_per_category, max_per_brand, min_price, max_price,
# diversity) recommend_all passes; none here.
RULES = "NULL::BIGINT, NULL::BIGINT, NULL::DOUBLE, NULL::DOUBLE, 0.0"
AGGREGATE_CALLS = {
    "ecoreco_als_train": (
        ["als_src", "empty_als_src", "extreme_als_src", "eval_src"],
        f"'ecoreco.als_train', {PAIRS}, {ATTRIBUTES}, {SESSION_STEPS}, {TRAINING}, {LIMITS}, 'false'",
    ),
    "ecoreco_evaluate": (
        ["eval_src"],
        f"'ecoreco.evaluate_recommendations', part, {PAIRS}, relevant, {SESSION_STEPS}, {TRAINING}, 3, 0.5, {LIMITS}, 'false'",
    ),
    "ecoreco_kmeans": (
        ["kfeat", "kfeat_extreme"],
        f"'ecoreco.kmeans_segments', user_id, pos, feature, value, 2, 1, 5, 0, 1, 'squared_euclidean', 3, {LIMITS}",
    ),
    "ecoreco_kmeans_sweep": (
        ["kfeat", "kfeat_extreme"],
        f"'ecoreco.kmeans_sweep', user_id, pos, feature, value, 2, 3, 1, 5, 100, 1, 'squared_euclidean', 3, {LIMITS}",
    ),
    "ecoreco_serve": (
        ["model", "empty_model", "null_model", "model_short_factors", "model_nan", "model_dup", "model_mixed", "model_no_params", "model_huge_ids"],
        f"'ecoreco.recommend_all', model_id, side, id, item, name, value, factors, NULL, NULL, '', 'all', NULL, false, 2, 0.5, true, {RULES}, {LIMITS}, 'false'",
    ),
}
AGGREGATE_CALLS = {name: (sources, [a.strip() for a in split_args(args)]) for name, (sources, args) in AGGREGATE_CALLS.items()}

# scalar -> arguments
SCALAR_CALLS = {
    "ecoreco_version": [],
    "ecoreco_model_cache_clear": [],
    "ecoreco_model_ready": ["'model'"],
    "ecoreco_recommend_sql": ["'model'", "'events'", "USER", "3", "0.5", "true", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "0", "NULL"],
}

# table function -> named arguments
TABLE_CALLS = {
    "ecoreco_synth": {"events": "100", "users": "0", "products": "0", "days": "3", "start_date": "DATE '2019-10-01'", "seed": "1"},
}

# ---------------------------------------------------------------------------
# Values.

TABLES = ["events", "users", "products", "model", "model_other", "inter", "raw", "segments", "empty_events",
          "empty_users", "empty_model", "null_events", "null_users", "null_model", "extreme_events",
          "extreme_users", "duplicate_users", "wrong_types", "one_col", "model_wrong", "model_short_factors",
          "model_nan", "model_dup", "model_mixed", "model_no_params", "model_huge_ids", "kfeat", "evalrows",
          "kmodel", "als_src", "eval_src"]
TABLE_VALUES = TABLES + [f"'{t}'" for t in TABLES] + ["'no_such_table'", "'main.events'", "'\"events\"'",
                                                       "'events; DROP TABLE events'", "''"]
INTEGERS = ["0", "1", "2", "3", "-1", "7", "100", "10001", "2147483647", "2147483648", "9007199254740993",
            "9223372036854775807", "-9223372036854775808", "10000000001", "1.5", "-0.0"]
DOUBLES = ["0.0", "0.5", "1.0", "-1.0", "2.0", "1e308", "-1e308", "'nan'::DOUBLE", "'inf'::DOUBLE",
           "'-inf'::DOUBLE", "5e-324", "0.999999999"]
TEXTS = ["''", "' '", "'x'", "'model'", "'events'", "'all'", "'user'", "'product'", "'param'", "'views'",
         "'hour'", "repeat('a', 5000)", "'é€😀'", "'x''y'", "'x\"y'", "'NaN'", "'2019-10-20'"]
BOOLEANS = ["true", "false"]
DATES = ["DATE '2019-10-01'", "DATE '0001-01-01'", "DATE '9999-12-31'", "'infinity'::DATE", "TIMESTAMP '2019-10-20 10:00:00'"]
LISTS = ["[]", "[1, 2]", "[NULL]", "[9223372036854775807]", "['recency', 'frequency']", "['user_id']",
         "['no_such']", "['recency', 'recency']", "[1.0, 'nan'::FLOAT]", "range(1, 1025)", "[[1]]"]
OTHERS = ["NULL", "{'a': 1}", "'\\x00'::BLOB", "INTERVAL 1 DAY", "123456789012345678901234567890"]
PATHS = ["'test/data/broken.csv'", "'test/data/*.csv'", "['test/data/broken.csv', 'test/data/tiny_events.csv']",
         "''", "'   '", "'no/such/*.csv'", "'test/data'", "'test/data/broken.csv.gz'", "['']", "[]"]
COLUMN_LISTS = ["['recency', 'frequency']", "['recency', 'frequency', 'monetary']", "['user_id']", "[]",
                "['no_such']", "[NULL]", "['recency', 'recency']", "NULL", "'recency'", "['recency']"]

ANY = INTEGERS + DOUBLES + TEXTS + BOOLEANS + DATES + LISTS + OTHERS
BY_TYPE = {
    "BIGINT": INTEGERS + ["NULL"], "INTEGER": INTEGERS + ["NULL"], "DOUBLE": DOUBLES + INTEGERS[:6] + ["NULL"],
    "VARCHAR": TEXTS + ["NULL"], "BOOLEAN": BOOLEANS + ["NULL"], "DATE": DATES + ["NULL"],
    "BIGINT[]": ["[]", "[1, 2]", "[NULL]", "[9223372036854775807, -9223372036854775808]", "NULL", "range(10000)"],
    "FLOAT[]": ["[]", "[1.0]", "['nan'::FLOAT]", "[3e38, -3e38]", "NULL", "list_transform(range(1024), lambda x: x::FLOAT)"],
}


def values_for_param(name):
    """The values most likely to matter for a macro parameter of this name."""
    if name in ("events", "raw_events", "features_table", "model", "errors_table", "scans_table"):
        return TABLE_VALUES
    if name == "path":
        return PATHS
    if name == "columns":
        return COLUMN_LISTS
    if name in ("by",):
        return TEXTS + ["'purchases'", "'revenue'", "'date'", "'dayofweek'", "'HOUR'"]
    if name in ("split",):
        return DOUBLES + DATES + ["'2019-10-20 10:00:00'"]
    if name in ("start_date",):
        return DATES + TEXTS
    return INTEGERS + DOUBLES


# ---------------------------------------------------------------------------
# Strategies: each draws one SQL text.

MACRO_WRAPPERS = [
    "SELECT count(*) FROM (FROM {call} LIMIT 200)",
    "SELECT * FROM {call} LIMIT 5",
    "SELECT count(*) FROM {call}",
    "FROM {call} ORDER BY ALL LIMIT 3",
    "SELECT count(*) FROM range(2) r(i), LATERAL (FROM {call} LIMIT 3)",
    "WITH t AS MATERIALIZED (FROM {call} LIMIT 50) SELECT count(*) FROM t",
]
# Generators of rows: only shapes that stop after a few rows, whatever `events` is.
STREAM_WRAPPERS = ["SELECT count(*) FROM (FROM {call} LIMIT 200)", "SELECT * FROM {call} LIMIT 5"]


def render(name, positional, named):
    args = list(positional) + [f"{k} := {v}" for k, v in named.items()]
    return f"{name}({', '.join(args)})"


@st.composite
def macro_call(draw, name, params, kind):
    good = MACRO_CALLS.get(name)
    if good:
        positional, named = list(good[0]), dict(good[1])
    else:
        positional = [draw(st.sampled_from(values_for_param(p))) for p in params[:1]]
        named = {p: draw(st.sampled_from(values_for_param(p))) for p in params[1:] if draw(st.booleans())}
    slots = len(positional) + len(named)
    for _ in range(draw(st.integers(0, 3)) if slots else 0):
        slot = draw(st.integers(0, slots - 1))
        if slot < len(positional):
            param = params[slot] if slot < len(params) else "?"
            pool = values_for_param(param) if draw(st.booleans()) else ANY
            positional[slot] = draw(st.sampled_from(pool))
        else:
            key = list(named)[slot - len(positional)]
            pool = values_for_param(key) if draw(st.booleans()) else ANY
            named[key] = draw(st.sampled_from(pool))
    # 0 (hypothesis' simplest draw) keeps the argument list as it is.
    shape = draw(st.integers(0, 19))
    if shape == 16 and named:
        named.pop(draw(st.sampled_from(sorted(named))))
    elif shape == 17:
        named["no_such_parameter"] = draw(st.sampled_from(ANY))
    elif shape == 18:
        positional.append(draw(st.sampled_from(ANY)))
    elif shape == 19 and positional:
        positional.pop()
    call = render(f"ecoreco.{name}", positional, named)
    if kind == "macro":
        return draw(st.sampled_from([f"SELECT {call}", f"SELECT {call} FROM range(3)"]))
    wrappers = STREAM_WRAPPERS if name == "synth" else MACRO_WRAPPERS
    if draw(st.integers(0, 9)) == 0 and named and name != "synth":
        # A parameter from a column of a LATERAL join (issue #10, finding 5).
        key = draw(st.sampled_from(sorted(named)))
        named[key] = draw(st.sampled_from(["t.i", "t.i + 2", "t.s", "t.n"]))
        call = render(f"ecoreco.{name}", positional, named)
        return ("SELECT count(*) FROM (SELECT i, 'views' AS s, NULL AS n FROM range(1, 3) r(i)) t, "
                f"LATERAL (FROM {call} LIMIT 3)")
    return draw(st.sampled_from(wrappers)).format(call=call)


AGGREGATE_SHAPES = [
    "SELECT ({agg}) IS NOT NULL FROM {src}",
    "SELECT ({agg}) IS NOT NULL FROM {src} GROUP BY {key} % 97",
    "SELECT ({agg}) IS NOT NULL FROM {src} GROUP BY ALL",
    "SELECT {key} % 3, ({agg}) IS NOT NULL FROM {src} GROUP BY 1",
    "SELECT ({agg}) IS NOT NULL FROM {src} WHERE false",
    "SELECT ({agg} FILTER (WHERE {key} % 2 = 0)) IS NOT NULL FROM {src}",
    "SELECT ({agg_distinct}) IS NOT NULL FROM {src}",
    "SELECT ({agg_ordered}) IS NOT NULL FROM {src}",
    "SELECT ({agg} OVER ()) IS NOT NULL FROM (FROM {src} LIMIT 30)",
    "SELECT ({agg} OVER (PARTITION BY {key} % 3)) IS NOT NULL FROM (FROM {src} LIMIT 30)",
    "SELECT ({agg} OVER (ORDER BY {key} ROWS BETWEEN 2 PRECEDING AND CURRENT ROW)) IS NOT NULL FROM (FROM {src} LIMIT 12)",
    "SELECT count(*) FROM (SELECT unnest([{agg}], recursive := true) FROM {src})",
    "SELECT 1 FROM {src} HAVING ({agg}) IS NOT NULL > 0",
    "SELECT ({agg}) IS NOT NULL FROM (FROM {src} LIMIT 1)",
    "SELECT ({agg}) IS NOT NULL FROM (FROM {src} UNION ALL FROM {src})",
    "SELECT ({agg}) IS NOT NULL FROM {src} GROUP BY GROUPING SETS (({key} % 5), ())",
]


@st.composite
def aggregate_call(draw, name, types, columns):
    good = AGGREGATE_CALLS.get(name)
    if good:
        sources, args = good
        args = list(args)
        source = draw(st.sampled_from(TABLES)) if draw(st.integers(0, 5)) == 5 else draw(st.sampled_from(sources))
    else:
        source = draw(st.sampled_from(TABLES))
        args = [draw(st.sampled_from(BY_TYPE.get(t, ANY))) for t in types]
    for _ in range(draw(st.integers(0, 3))):
        slot = draw(st.integers(0, len(args) - 1)) if args else None
        if slot is None:
            break
        kind = draw(st.integers(0, 3))
        if kind == 0:
            args[slot] = "NULL"
        elif kind == 1:
            args[slot] = draw(st.sampled_from(BY_TYPE.get(types[slot] if slot < len(types) else "", ANY)))
        elif kind == 2:
            args[slot] = draw(st.sampled_from(ANY))
        else:
            args[slot] = draw(st.sampled_from(columns.get(source, ["user_id"])))
    shape = draw(st.integers(0, 19))
    if shape == 18 and args:
        args.pop()
    elif shape == 19:
        args.append(draw(st.sampled_from(ANY)))
    text = ", ".join(args)
    # Models have `id` where the other inputs have `user_id`.
    key = "id" if "model" in source else "user_id"
    order = draw(st.sampled_from([f"{key} DESC", "1", "random()", f"{key} NULLS FIRST"]))
    sql = draw(st.sampled_from(AGGREGATE_SHAPES)).format(
        agg=f"{name}({text})", agg_distinct=f"{name}(DISTINCT {text})",
        agg_ordered=f"{name}({text} ORDER BY {order})", src=source, key=key)
    return sql


@st.composite
def scalar_call(draw, name, types):
    args = list(SCALAR_CALLS.get(name, [draw(st.sampled_from(BY_TYPE.get(t, ANY))) for t in types]))
    for _ in range(draw(st.integers(0, 3)) if args else 0):
        slot = draw(st.integers(0, len(args) - 1))
        pool = BY_TYPE.get(types[slot], ANY) if slot < len(types) and draw(st.booleans()) else ANY
        args[slot] = draw(st.sampled_from(pool + ["t.i", "t.s", "NULL"]))
    if draw(st.integers(0, 9)) == 0:
        args.append(draw(st.sampled_from(ANY)))
    call = f"{name}({', '.join(args)})"
    return draw(st.sampled_from([
        f"SELECT {call}",
        f"SELECT {call} FROM (SELECT i, i::VARCHAR AS s FROM range(5) r(i)) t",
        f"SELECT count(DISTINCT {call}) FROM (SELECT i, 'model' AS s FROM range(3) r(i)) t",
        f"SELECT {call} FROM (SELECT 1 AS i, NULL AS s) t WHERE false",
    ]))


@st.composite
def table_call(draw, name, types):
    named = dict(TABLE_CALLS.get(name, {}))
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(sorted(types)))
        pool = BY_TYPE.get(types[key], ANY) if draw(st.booleans()) else ANY
        named[key] = draw(st.sampled_from(pool))
    if draw(st.integers(0, 9)) == 0:
        named["no_such_parameter"] = "1"
    return draw(st.sampled_from(STREAM_WRAPPERS)).format(call=render(name, [], named))


# ---------------------------------------------------------------------------
# Workers.

class Worker:
    def __init__(self, python, extension, fixtures, log_dir, number):
        self.log = os.path.join(log_dir, f"worker-{number}.stderr")
        self.stderr = open(self.log, "wb")
        # Each worker in its own folder, with its own copy of test/data
        # (calls that write files, exports and reports, write them there)
        # and its own temp directory.
        self.folder = os.path.join(log_dir, f"worker-{number}")
        shutil.copytree(os.path.join(ROOT, "test", "data"), os.path.join(self.folder, "test", "data"))
        os.makedirs(os.path.join(self.folder, "tmp"))
        env = dict(os.environ, TMPDIR=os.path.join(self.folder, "tmp"))
        self.proc = subprocess.Popen([python, WORKER, extension, fixtures], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr, cwd=self.folder, env=env)
        self.buffer = b""
        self.sent = collections.deque()  # ids sent, not answered
        self.running = None  # (id, started at)
        ready = self.read_line(timeout=120)
        if ready is None or not json.loads(ready).get("ready"):
            raise RuntimeError(f"fuzz worker did not start: {self.stderr_tail()}")
        # The state registry's size between calls.
        self.states = json.loads(ready)["states"]

    def read_line(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                return ""  # the worker is gone
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()

    def send(self, calls):
        for call_id, sql in calls:
            self.sent.append(call_id)
            self.proc.stdin.write((json.dumps({"id": call_id, "sql": sql}) + "\n").encode())
        self.proc.stdin.flush()

    def stderr_tail(self):
        if not self.stderr.closed:
            self.stderr.flush()
        with open(self.log, "rb") as f:
            return f.read()[-600:].decode(errors="replace").strip()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.stderr.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def build_fixtures(extension, path):
    con = duckdb.connect(path, config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{extension}'")
    with open(FIXTURES) as f:
        for statement in f.read().split(";\n"):
            if statement.strip() and not all(l.startswith("--") for l in statement.strip().splitlines()):
                con.execute(statement)
    user = con.execute("SELECT min(id) FROM model WHERE side = 'user'").fetchone()[0]
    product = con.execute("SELECT min(id) FROM model WHERE side = 'product'").fetchone()[0]
    columns = collections.defaultdict(list)
    for table, column in con.execute("SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = current_database()").fetchall():
        columns[table].append(column)
    functions = con.execute(
        "SELECT DISTINCT function_name, function_type, parameters, parameter_types FROM duckdb_functions() "
        "WHERE (database_name = 'ecoreco' AND function_name <> 'ecoreco_catalog_marker') "
        "OR (function_name LIKE 'ecoreco\\_%' ESCAPE '\\' AND function_type IN ('aggregate', 'scalar', 'table')) "
        "ORDER BY function_name, function_type").fetchall()
    con.close()
    return str(user), str(product), dict(columns), functions


def generate(functions, columns, count, seed_value):
    """`count` SQL texts, drawn by hypothesis from one strategy per function."""
    strategies = []
    for name, kind, params, types in functions:
        if kind in ("table_macro", "macro"):
            strategies.append((f"ecoreco.{name}", macro_call(name, params, kind)))
        elif kind == "aggregate":
            strategies.append((name, aggregate_call(name, types, columns)))
        elif kind == "scalar":
            strategies.append((name, scalar_call(name, types)))
        elif kind == "table":
            strategies.append((name, table_call(name, dict(zip(params, types)))))
    calls = []
    # Each function gets its own run of examples, so each gets its share.
    share = -(-count // max(len(strategies), 1))
    for name, strategy in strategies:
        drawn = []

        @hypothesis_seed(seed_value)
        @settings(max_examples=share, phases=[Phase.generate], database=None, deadline=None,
                  suppress_health_check=list(HealthCheck))
        @given(strategy)
        def draw_one(sql):
            drawn.append(sql)

        draw_one()
        calls.extend((name, sql) for sql in drawn)
    return strategies, calls


SYSTEMATIC_ORDERS = ["{key} DESC"]


def systematic(functions):
    """Every `ecoreco_*` aggregate in every calling form, on each of its
    sources: (name, SQL) in a fixed order. Aggregates without a known-good
    argument list get the first value of each declared type (their calls
    mostly fail, which is a form too)."""
    calls = []
    for name, kind, _, types in functions:
        if kind != "aggregate":
            continue
        sources, args = AGGREGATE_CALLS.get(name, (["events"], [BY_TYPE.get(t, ANY)[0] for t in types]))
        text = ", ".join(args)
        for source in sources:
            key = "id" if "model" in source else "user_id"
            for shape in AGGREGATE_SHAPES:
                for order in SYSTEMATIC_ORDERS:
                    calls.append((name, shape.format(
                        agg=f"{name}({text})", agg_distinct=f"{name}(DISTINCT {text})",
                        agg_ordered=f"{name}({text} ORDER BY {order.format(key=key)})", src=source, key=key)))
        # Inside a LATERAL join, correlated (DuckDB runs it grouped by the
        # outer row), on the first source.
        source = sources[0]
        key = "id" if "model" in source else "user_id"
        calls.append((name, f"SELECT count(*) FROM range(3) r(i), LATERAL (SELECT ({name}({text})) IS NOT NULL AS ok "
                            f"FROM {source} WHERE {key} % 3 <> i)"))
    return calls


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("extension")
    parser.add_argument("--calls", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=int(os.environ.get("FUZZ_SEED", "20261201")))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--budget", type=float, default=900.0, help="seconds for the whole run (a bound on a loaded machine; 2 to 4 minutes is usual)")
    parser.add_argument("--max-failures", type=int, default=300, help="stop after this many crashes + hangs")
    parser.add_argument("--show-errors", type=int, default=0, help="print this many SQL errors per function")
    parser.add_argument("--report", help="write the counts and failures as JSON here")
    parser.add_argument("--systematic", action="store_true",
                        help="first run every aggregate in every calling form on every source, in order")
    opts = parser.parse_args()
    extension = os.path.abspath(opts.extension)
    started = time.monotonic()
    version = duckdb.__version__
    tmp = tempfile.mkdtemp(prefix="ecoreco-fuzz-")
    fixtures = os.path.join(tmp, "fixtures.duckdb")
    user, product, columns, functions = build_fixtures(extension, fixtures)

    strategies, drawn = generate(functions, columns, opts.calls, opts.seed)
    forms = systematic(functions) if opts.systematic else []
    drawn = [(name, sql.replace("USER", user).replace("PRODUCT", product)) for name, sql in forms + drawn]
    covered = collections.Counter(name for name, _ in drawn)
    if forms:
        print(f"fuzz: {len(forms)} systematic calls: {len({n for n, _ in forms})} aggregates x "
              f"{len(AGGREGATE_SHAPES)} forms x their sources, and a correlated LATERAL each", flush=True)
    print(f"fuzz: duckdb {version}, seed {opts.seed}, {len(drawn)} calls over {len(strategies)} functions "
          f"({len(functions)} catalog entries), {opts.workers} workers, {opts.timeout:.0f} s per call", flush=True)
    missing = [name for name, _ in strategies if covered[name] == 0]
    no_shape = [name for name, kind, _, _ in functions if kind in ("table_macro", "macro") and name not in MACRO_CALLS]
    if no_shape:
        print(f"fuzz: macros without a known-good shape in MACRO_CALLS (fuzzed with generic arguments): {no_shape}")

    counts = collections.Counter()
    per_function = collections.defaultdict(collections.Counter)
    failures = []
    error_samples = collections.defaultdict(list)
    python = sys.executable
    spawned = [0]

    def spawn():
        spawned[0] += 1
        return Worker(python, extension, fixtures, tmp, spawned[0])

    workers = [spawn() for _ in range(opts.workers)]
    queue = collections.deque(enumerate(drawn))
    by_id = dict(enumerate(drawn))
    out_of_time = False

    def record_failure(kind, call_id, detail):
        name, sql = by_id[call_id]
        counts[kind] += 1
        counts["calls"] += 1
        per_function[name][kind] += 1
        failures.append({"kind": kind, "function": name, "sql": sql, "detail": detail})
        print(f"fuzz: {kind.upper()} in {name}: {sql}\n      {detail}", flush=True)

    def replace(i, kind):
        """The worker died or hung while running a call: record it, start a
        new worker, and give it the calls the dead one had not run."""
        w = workers[i]
        current = w.running[0] if w.running else None
        w.stop()
        if current is not None:
            detail = w.stderr_tail() or f"worker exit code {w.proc.returncode}"
            if kind == "hang":
                detail = f"no answer after {opts.timeout:.0f} s; worker killed"
            record_failure(kind, current, detail)
        for call_id in reversed([c for c in w.sent if c != current]):
            queue.appendleft((call_id, by_id[call_id]))
        workers[i] = spawn()

    while queue or any(w.sent for w in workers):
        if time.monotonic() - started > opts.budget or counts["crash"] + counts["hang"] >= opts.max_failures:
            out_of_time = True
            break
        for w in workers:
            if not w.sent and queue:
                batch = [queue.popleft() for _ in range(min(25, len(queue)))]
                w.send([(call_id, sql) for call_id, (_, sql) in batch])
        streams = {w.proc.stdout.fileno(): i for i, w in enumerate(workers) if w.sent}
        ready, _, _ = select.select(list(streams), [], [], 0.5)
        for fd in ready:
            i = streams[fd]
            w = workers[i]
            line = w.read_line(timeout=0.01)
            while line:
                message = json.loads(line)
                if "start" in message:
                    w.running = (message["start"], time.monotonic())
                else:
                    call_id = message["id"]
                    w.sent.remove(call_id)
                    w.running = None
                    name, sql = by_id[call_id]
                    error = message["error"] or ""
                    if message["outcome"] == "result":
                        kind = "results"
                    elif "internal error" in error.lower() or "FatalException" in error:
                        kind = "internal"
                    else:
                        kind = "sql_errors"
                    states = message.get("states")
                    if kind != "internal" and states is not None and states != w.states:
                        # Counted once: the new size is the baseline of the
                        # next call. A statement that fails with an error
                        # raised outside ecoreco's callbacks (another
                        # function, DuckDB itself) may have its states freed
                        # without finalize or destroy, which no callback sees
                        # (docs/reliability.md): counted apart, not a
                        # failure. After a result, a leak fails the run.
                        detail = f"aggregate states (held, addresses) {w.states} -> {states}"
                        if kind == "sql_errors":
                            counts["failed_statement_leaks"] += 1
                            counts[kind] += 1
                            counts["calls"] += 1
                            per_function[name][kind] += 1
                            print(f"fuzz: states left by a failed statement in {name}: {sql}\n      {detail}\n"
                                  f"      {error.splitlines()[0][:200]}", flush=True)
                        else:
                            record_failure("leak", call_id, detail)
                        w.states = states
                    elif kind == "internal":
                        record_failure("internal", call_id, error[:400])
                    else:
                        counts[kind] += 1
                        counts["calls"] += 1
                        per_function[name][kind] += 1
                        if kind == "sql_errors" and len(error_samples[name]) < opts.show_errors:
                            error_samples[name].append((sql, error.split("\n")[0][:300]))
                if b"\n" not in w.buffer:
                    break
                line = w.read_line(timeout=0.01)
            if line == "":
                replace(i, "crash")
        for i, w in enumerate(workers):
            if w.running and time.monotonic() - w.running[1] > opts.timeout:
                replace(i, "hang")
            elif w.sent and w.proc.poll() is not None and b"\n" not in w.buffer:
                replace(i, "crash")
    for w in workers:
        w.stop()
    shutil.rmtree(tmp, ignore_errors=True)

    elapsed = time.monotonic() - started
    for name in sorted(error_samples):
        for sql, error in error_samples[name]:
            print(f"error sample {name}: {sql}\n    -> {error}")
    print(f"\n{'function':34} {'calls':>6} {'results':>8} {'errors':>7} {'crash':>6} {'hang':>5} {'internal':>8} {'leak':>5}")
    for name in sorted(per_function):
        c = per_function[name]
        total = sum(v for k, v in c.items() if k != "leak")
        print(f"{name:34} {total:6} {c['results']:8} {c['sql_errors']:7} {c['crash']:6} {c['hang']:5} {c['internal']:8} "
              f"{c['leak']:5}")
    print(f"\nfuzz duckdb {version} seed {opts.seed}: {counts['calls']} calls, {counts['results']} results, "
          f"{counts['sql_errors']} SQL errors, {counts['crash']} crashes, {counts['hang']} hangs, "
          f"{counts['internal']} internal errors, {counts['leak']} leaks (+{counts['failed_statement_leaks']} failed "
          f"statements that left states), {spawned[0] - opts.workers} worker restarts, "
          f"{elapsed:.0f} s")
    if opts.report:
        with open(opts.report, "w") as f:
            json.dump({"duckdb": version, "seed": opts.seed, "counts": counts, "failures": failures,
                       "seconds": elapsed}, f, indent=1)
    bad = counts["crash"] + counts["hang"] + counts["internal"] + counts["leak"]
    if out_of_time:
        print(f"fuzz: stopped early ({len(queue)} calls not run): time budget of {opts.budget:.0f} s "
              f"or {opts.max_failures} crashes/hangs reached")
    if missing:
        print(f"fuzz: functions that got no call: {missing}")
    if bad or missing or counts["calls"] < opts.calls:
        print("fuzz: FAILED")
        sys.exit(1)
    print("fuzz: ok")


if __name__ == "__main__":
    main()
