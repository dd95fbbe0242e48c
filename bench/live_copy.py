#!/usr/bin/env python3
"""Does the app keep writing while the migration reads its SQLite file? Measured per journal mode.

    python bench/live_copy.py [--rows 1.3M|0.3M|5.2M|small] [--journal-mode delete|wal] [--busy-timeout 5]

On the benchmark's demo database (``bench/.cache``), with change capture installed as
``migrate.yml`` installs it, a writer process (plain ``sqlite3``, a busy timeout of
``--busy-timeout`` seconds, as SQLAlchemy's default) inserts a user and updates an old one
every 20 ms while the engine runs, each timed apart:

1. the profile (``run.profile``, preflight);
2. the bulk copy (``run.copy``);
3. the catch-up with the proof at P (``run.copy(prove=True)``, the load's last step);
4. a full verification (``run.verify_all``, the load's report-only comparison without capture).

For each it prints the step's seconds, the writer's commits, its longest wait for a commit
and its failed writes (``database is locked``). Then the writer stops, a final pass runs
(as at cutover) and ``verify_all`` proves that every committed write reached PostgreSQL.
"""

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run as bench  # noqa: E402

from sqlite_pg import run as engine  # noqa: E402
from sqlite_pg.errors import VerifyError  # noqa: E402

WRITER = r"""
import json, os, signal, sqlite3, sys, time
path, timeout = sys.argv[1], float(sys.argv[2])
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
conn = sqlite3.connect(path, timeout=timeout)
top = conn.execute("SELECT max(id) FROM users").fetchone()[0]
n, waits, failed = 0, [], []
while not stop:
    start = time.monotonic()
    try:
        with conn:
            conn.execute("INSERT INTO users (telegram_id, username, is_active) VALUES (?, 'live', 1)",
                         (f"live-{os.getpid()}-{n}",))
            conn.execute("UPDATE users SET username = username || '.' WHERE id = ?", (1 + n % top,))
        waits.append(time.monotonic() - start)
    except sqlite3.OperationalError as exc:
        failed.append(str(exc))
    n += 1
    time.sleep(0.02)
print(json.dumps(dict(commits=len(waits), longest=max(waits or [0]), failed=len(failed),
                      errors=sorted(set(failed)))))
"""


def with_writer(path, timeout, step):
    """Run ``step()`` while the writer writes; (step's result, seconds, the writer's numbers)."""
    writer = subprocess.Popen([sys.executable, "-c", WRITER, path, str(timeout)], stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    start = time.monotonic()
    try:
        out = step()
    except VerifyError:   # the app wrote since the last pass: expected while it writes
        out = None
    finally:
        seconds = time.monotonic() - start
        time.sleep(1.0)
        writer.terminate()
        numbers = json.loads(writer.communicate()[0])
    return out, seconds, numbers


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1.3M", choices=sorted(bench.SIZES))
    parser.add_argument("--journal-mode", default="delete", choices=["delete", "wal"])
    parser.add_argument("--busy-timeout", type=float, default=5.0)
    args = parser.parse_args()
    cache = os.path.join(HERE, ".cache")
    os.makedirs(cache, exist_ok=True)
    source = bench.source_db(cache, args.rows, bench.SIZES[args.rows])
    cluster = bench.BenchCluster().start()
    try:
        with tempfile.TemporaryDirectory(dir=cache) as work:
            path = os.path.join(work, "bot.db")
            shutil.copyfile(source, path)
            conn = sqlite3.connect(path)
            conn.execute(f"PRAGMA journal_mode = {args.journal_mode}").fetchone()
            conn.close()
            db = cluster.fresh_db("live_copy")
            params = bench.params_for(dict(source=path, cluster=cluster), db)
            engine.schema(params, phase="tables")
            engine.capture(params)
            print(f"{args.rows} rows, journal mode {args.journal_mode}, writer busy timeout {args.busy_timeout} s")
            for name, step in (("profile", lambda: engine.profile(params)),
                               ("bulk copy", lambda: engine.copy(params)),
                               ("catch-up + proof", lambda: engine.copy(params, prove=True)),
                               ("verify (in full)", lambda: engine.verify_all(params, checks="content"))):
                out, seconds, w = with_writer(path, args.busy_timeout, step)
                read = (out or {}).get("read") or {}
                print(f"  {name:<17} {seconds:6.2f} s   writer: {w['commits']} commits, longest wait "
                      f"{w['longest']:.2f} s, {w['failed']} failed {w['errors'] or ''}"
                      + (f"  [read: {read['way']}, lock {read.get('lock_seconds', '-')} s]" if read else ""))
            engine.schema(params, phase="constraints")
            engine.copy(params)
            checked = engine.verify_all(params)
            print(f"  after a final pass: verified, {checked['rows']} rows")
            cluster.drop_db(db)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
