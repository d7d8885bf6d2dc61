"""Serving while the model is replaced: threads with their own connections
(cursors of one database) call recommend and recommend_all while another
connection replaces the model table several times. Nothing crashes, and
every answer comes from one whole model: each recommend_all result is
exactly one model's own recommend_all, each recommend list exactly one
model's list for that user (never a mix of two models' rows)."""
import os
import threading
import time

import duckdb

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXT = os.path.join(ROOT, "build", "release", "ecoreco.duckdb_extension")
SEEDS = [1, 2, 3]
REPLACEMENTS = 6
READERS = 4


def test_recommend_while_the_model_is_replaced(tmp_path):
    db = duckdb.connect(str(tmp_path / "serve.duckdb"), config={"allow_unsigned_extensions": "true"})
    db.execute(f"LOAD '{EXT}'")
    db.execute("CREATE TABLE raw AS FROM ecoreco_synth(events := 20000, seed := 11)")
    db.execute("CREATE TABLE events AS FROM ecoreco.clean_events(raw)")
    # Each model's own answers, computed alone.
    expected_all, expected_user = {}, {}
    user = None
    for seed in SEEDS:
        db.execute(f"CREATE OR REPLACE TABLE model_{seed} AS FROM ecoreco.als_train(events, factors := 8, iterations := 3, seed := {seed})")
        if user is None:
            user = db.execute(f"SELECT min(id) FROM model_{seed} WHERE side = 'user'").fetchone()[0]
        expected_all[seed] = frozenset(db.execute(f"FROM ecoreco.recommend_all('model_{seed}', k := 5)").fetchall())
        expected_user[seed] = tuple(db.execute(
            f"FROM ecoreco.recommend({user}, model := 'model_{seed}', events := 'events', k := 5)").fetchall())
    assert len(set(expected_all.values())) == len(SEEDS), "the seeds must give different models"
    # Not named `model`: the serving cache is keyed by table name for the
    # whole process, and other tests in this process serve their own `model`.
    db.execute(f"CREATE TABLE served AS FROM model_{SEEDS[0]}")

    answers, errors = [], []
    stop = threading.Event()

    def reader(n):
        con = db.cursor()
        while not stop.is_set():
            try:
                if n % 2:
                    answers.append(("all", frozenset(con.execute("FROM ecoreco.recommend_all('served', k := 5)").fetchall())))
                else:
                    answers.append(("user", tuple(con.execute(
                        f"FROM ecoreco.recommend({user}, model := 'served', events := 'events', k := 5)").fetchall())))
            except duckdb.Error as exc:
                errors.append(str(exc))
        con.close()

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(READERS)]
    for t in threads:
        t.start()
    writer = db.cursor()
    for i in range(REPLACEMENTS):
        time.sleep(0.3)
        seed = SEEDS[(i + 1) % len(SEEDS)]
        writer.execute(f"CREATE OR REPLACE TABLE served AS FROM model_{seed}")
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a reader hung"

    kinds = {kind for kind, _ in answers}
    assert kinds == {"all", "user"}, f"both functions answered: {len(answers)} answers, errors {errors[:3]}"
    seen = set()
    for kind, answer in answers:
        expected = expected_all if kind == "all" else expected_user
        matches = [seed for seed, rows in expected.items() if rows == answer]
        assert len(matches) == 1, f"a {kind} answer is not exactly one model's: {sorted(answer)[:5]}"
        seen.add(matches[0])
    print(f"{len(answers)} answers from models {sorted(seen)}, {len(errors)} errors: {sorted(set(errors))[:2]}")
    # The readers saw the replacements happen.
    assert len(seen) >= 2, seen
    # A replaced model may be refused once (README: "the next call fails
    # with a message saying so"), never anything else.
    # That refusal is the only error allowed, with its own message.
    refusal = "holds a different model than the one this session read from it before"
    for message in errors:
        assert refusal in message and "run the query again" in message, message
    # The process is alive, and the last model serves.
    final = frozenset(db.execute("FROM ecoreco.recommend_all('served', k := 5)").fetchall())
    assert final == expected_all[SEEDS[REPLACEMENTS % len(SEEDS)]]
    db.execute("SELECT ecoreco.model_cache_clear()")
    db.close()
