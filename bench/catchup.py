#!/usr/bin/env python3
"""What the final pass at cutover costs - the write downtime's data part - with and without
change capture and the proof, on the benchmark's demo database.

    python bench/catchup.py [--rows 1.3M|0.3M|5.2M] [--changes 10000]

After a bulk copy with capture installed (the path ``migrate.yml`` takes), an app-like
writer updates ``--changes`` existing rows spread over all three tables, inserts a tenth as
many and deletes a tenth as many. Then, each timed:

- proof (what ``migrate.yml`` does now): before the changes, while the app would still run,
  ``copy(prove=True)`` proves the copy equal to the source at P (timed apart: it is not in
  the freeze); after them ``copy`` replays the logged keys and ``verify_all(since_proof=True)``
  verifies only the rows changed since P, every row count, keys and sequences;
- capture, full verification (the previous cutover): ``copy`` replays, ``verify_all`` in full;
- no capture: ``copy`` appends the new rows, ``verify_all`` finds the updated tables
  different, ``copy(force=True)`` copies them again, ``verify_all``.

All start from the same copy of the source and the same changes, on a server started with
the benchmark's durable settings.

    python bench/catchup.py --live [--rows 1.3M|5.2M]

The whole window with a live app instead (tests/app/writer.py: inserts, updates, deletes,
from before the load to after cutover): capture, schema, the load with the proof at P,
constraints, then ``cutover.apply`` (stop, final pass, DATABASE_URL, start, health and
moved checks). Prints the write downtime as the report gives it (stop to start), the
longest pause the app's log shows, and the acknowledged writes missing in PostgreSQL.
"""

import argparse
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run as bench  # noqa: E402

from sqlite_pg import cutover  # noqa: E402
from sqlite_pg import run as engine  # noqa: E402
from sqlite_pg.errors import VerifyError  # noqa: E402
from tests.app.control import stop_command  # noqa: E402


def app_changes(path, changes, seed=7):
    """Updates spread over every table, plus inserts and deletes, as the app would make them."""
    rng = random.Random(seed)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys = ON")
    top = {t: conn.execute(f"SELECT max(id) FROM {t}").fetchone()[0] for t in ("users", "ideas", "analyses")}
    for table, column in (("users", "username"), ("ideas", "text"), ("analyses", "result")):
        ids = rng.sample(range(1, top[table] + 1), changes // 3)
        conn.executemany(f"UPDATE {table} SET {column} = {column} || ' (edited)' WHERE id = ?", [(i,) for i in ids])
    extra = max(changes // 10, 1)
    user = conn.execute("SELECT id FROM users LIMIT 1").fetchone()[0]
    for _ in range(extra):
        conn.execute("INSERT INTO ideas (user_id, text, mode, created_at) "
                     "SELECT user_id, text, mode, created_at FROM ideas WHERE user_id = ? LIMIT 1", (user,))
    ids = rng.sample(range(1, top["analyses"] + 1), extra)
    conn.executemany("DELETE FROM analyses WHERE id = ?", [(i,) for i in ids])
    conn.commit()
    conn.close()


def timed(fn):
    start = time.monotonic()
    out = fn()
    return out, time.monotonic() - start


MODES = {"proof": "with capture and the proof at P", "capture": "with capture, full verification",
         "plain": "without capture"}


def one(cluster, source, work, changes, mode):
    """The final pass's steps [(name, seconds, what)] and the proof's seconds (before the freeze)."""
    path = os.path.join(work, f"{mode}.db")
    shutil.copyfile(source, path)
    db = cluster.fresh_db("catchup_" + mode)
    params = bench.params_for(dict(source=path, cluster=cluster), db)
    if mode != "plain":
        engine.capture(params)
    engine.schema(params, phase="tables")
    engine.copy(params)
    engine.schema(params, phase="constraints")
    proof = None
    if mode == "proof":
        _, proof = timed(lambda: engine.copy(params, prove=True))
    app_changes(path, changes)
    cluster.settle()
    steps = []
    result, seconds = timed(lambda: engine.copy(params))
    steps.append(("copy", seconds, sorted({t["status"] for t in result["tables"].values()})))
    start = time.monotonic()
    try:
        checked = engine.verify_all(params, since_proof=mode == "proof")
        steps.append(("verify", time.monotonic() - start,
                      "ok: " + ", ".join(sorted({t["path"] for t in checked["tables"].values()}))))
    except VerifyError:
        steps.append(("verify", time.monotonic() - start, "differs"))
        result, seconds = timed(lambda: engine.copy(params, force=True))
        steps.append(("copy force", seconds, sorted({t["status"] for t in result["tables"].values()})))
        _, seconds = timed(lambda: engine.verify_all(params))
        steps.append(("verify", seconds, "ok"))
    cluster.drop_db(db)
    return steps, proof


class LogWatch:
    """The app's longest pause between two acknowledged writes, from its log, polled."""

    def __init__(self, path):
        import threading

        self.path, self.longest, self.stop = path, 0.0, False
        self.thread = threading.Thread(target=self.watch, daemon=True)
        self.thread.start()

    def watch(self):
        seen, last = 0, time.monotonic()
        while not self.stop:
            try:
                n = os.path.getsize(self.path)
            except FileNotFoundError:
                n = 0
            now = time.monotonic()
            if n != seen:
                self.longest, seen, last = max(self.longest, now - last), n, now
            time.sleep(0.005)

    def done(self):
        self.stop = True
        self.thread.join()
        return self.longest


def live_cutover(cluster, source, work):
    """The window with the app writing throughout: (downtime, longest pause, final pass, lost, writes)."""
    root = os.path.dirname(HERE)
    app_dir = os.path.join(work, "live")
    os.makedirs(app_dir)
    path = os.path.join(app_dir, "bot.db")
    shutil.copyfile(source, path)
    # WAL, as a long-lived app's file usually is: in rollback-journal mode the bulk copy's read
    # transaction holds the app's commits past its busy timeout (issue #16, section 4).
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
    env_file = os.path.join(app_dir, ".env")
    with open(env_file, "w") as fh:
        fh.write(f"DATABASE_URL=sqlite:///{path}\n")
    pidfile = os.path.join(app_dir, "app.pid")
    start = (f"nohup {sys.executable} {root}/tests/app/writer.py {app_dir} >> {app_dir}/app.out 2>&1 & "
             f"echo $! > {pidfile}")
    db = cluster.fresh_db("catchup_live")
    params = bench.params_for(dict(source=path, cluster=cluster), db)
    engine.capture(params)   # before the app starts: SQLite's default journal blocks it during this DDL
    import subprocess

    subprocess.run(["sh", "-c", start], check=True)
    try:
        engine.schema(params, phase="tables")
        engine.copy(params, passes=3, max_lag=100, prove=True)
        engine.schema(params, phase="constraints")
        watch = LogWatch(os.path.join(app_dir, "writes.log"))
        time.sleep(3)
        params.update(env_file=env_file, work_dir=os.path.join(app_dir, ".sqlite_pg"), capture=True,
                      database_url=f"postgresql+psycopg2://postgres@/{db}?host={cluster.sockdir}&port={cluster.port}",
                      app_stop_command=stop_command(pidfile, poll=0.01),   # its exit, not init's reaping
                      app_start_command=start, moved_check_seconds=2)
        if os.environ.get("BENCH_PROFILE"):   # where the window's time goes, by function
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            moved = profiler.runcall(cutover.apply, params, params["work_dir"])
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
        else:
            moved = cutover.apply(params, params["work_dir"])
        time.sleep(3)
        longest = watch.done()
    finally:
        subprocess.run(["sh", "-c", f"kill $(cat {pidfile}) 2>/dev/null"], check=False)
    with open(os.path.join(app_dir, "writes.log")) as fh:
        acknowledged = {line.strip() for line in fh if line.strip() and not line.startswith("#")}
    on_pg = {r[0] for r in cluster.sql("SELECT telegram_id FROM users", db=db)}
    cluster.drop_db(db)
    return moved["write_downtime_seconds"], longest, moved["seconds"], len(acknowledged - on_pg), len(acknowledged)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1.3M", choices=sorted(bench.SIZES))
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--live", action="store_true", help="the whole window with a live app")
    args = parser.parse_args()
    cache = os.path.join(HERE, ".cache")
    os.makedirs(cache, exist_ok=True)
    source = bench.source_db(cache, args.rows, bench.SIZES[args.rows])
    cluster = bench.BenchCluster().start()
    try:
        with tempfile.TemporaryDirectory(dir=cache) as work:
            if args.live:
                downtime, longest, final, lost, writes = live_cutover(cluster, source, work)
                print(f"{args.rows}, live app: write downtime {downtime:.2f} s (stop to start: "
                      + ", ".join(f"{k} {v:.2f} s" for k, v in final.items() if k not in ("checking",))
                      + f"), longest pause in the app's log {longest:.2f} s, {lost} of {writes} "
                      "acknowledged writes missing in PostgreSQL")
                return
            for mode, title in MODES.items():
                steps, proof = one(cluster, source, work, args.changes, mode)
                total = sum(s[1] for s in steps)
                print(f"{title}: final pass {total:.2f} s"
                      + (f" (the proof before the freeze: {proof:.2f} s)" if proof is not None else ""))
                for name, seconds, what in steps:
                    print(f"  {name:<11} {seconds:6.2f} s  {what}")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
