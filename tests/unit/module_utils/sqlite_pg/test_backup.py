"""Consistent copies of a live file, and long reads that never hold the app's writes.

The app is a real process with SQLite's usual 5 s busy timeout (SQLAlchemy's default too),
writing while the migration reads. A copy longer than that timeout is made certain, not
left to the machine's speed: another PostgreSQL session locks the target table for 7 s,
so the copy stands still after it started reading - as on a slow or busy server.
"""

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time

import psycopg2
import pytest

from sqlite_pg import backup, run
from sqlite_pg.connection import open_sqlite
from sqlite_pg.errors import MigrationError
from tests.conftest import fetch, make_sqlite

APP = """
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE notes (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), body BLOB);
"""

# The app: inserts a user and renames an old one every 50 ms, each in its own transaction,
# for at most ``limit`` seconds; prints what it committed and every write that failed.
WRITER = r"""
import json, signal, sqlite3, sys, time
path, timeout, limit = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
conn = sqlite3.connect(path, timeout=timeout)
n, committed, failed, longest, end = 0, [], [], 0.0, time.monotonic() + limit
while not stop and time.monotonic() < end:
    n += 1
    start = time.monotonic()
    try:
        with conn:
            conn.execute("INSERT INTO users (name) VALUES (?)", (f"live {n}",))
            conn.execute("UPDATE users SET name = name || '+' WHERE id = ?", (1 + n % 100,))
        committed.append(n)
        longest = max(longest, time.monotonic() - start)
    except sqlite3.OperationalError as exc:
        failed.append(str(exc))
    time.sleep(0.05)
print(json.dumps(dict(committed=len(committed), failed=failed, longest=longest)))
"""


def _app(path, users=2000, notes=4000, journal_mode="delete"):
    make_sqlite(path, APP, {"users": [(i, f"user {i}") for i in range(1, users + 1)],
                            "notes": [(i, 1 + i % users, os.urandom(1000)) for i in range(1, notes + 1)]})
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA journal_mode = {journal_mode}").fetchone()
    conn.close()
    return path


class Writer:
    def __init__(self, path, timeout=5.0, limit=60.0):
        self.proc = subprocess.Popen([sys.executable, "-c", WRITER, path, str(timeout), str(limit)],
                                     stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)

    def stop(self):
        self.proc.terminate()
        return json.loads(self.proc.communicate(timeout=30)[0])


def _hold_table(params, table, seconds):
    """Another session holds ``table`` locked for ``seconds``: whoever reads it waits."""
    conn = psycopg2.connect(host=params["login_unix_socket"], port=params["port"], user=params["login_user"],
                            dbname=params["db"])
    with conn.cursor() as cur:
        cur.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')

    def release():
        time.sleep(seconds)
        conn.commit()
        conn.close()

    thread = threading.Thread(target=release)
    thread.start()
    return thread


@pytest.mark.parametrize("read_from", ["auto", "live"])
def test_the_app_keeps_writing_through_a_long_bulk_copy_of_a_rollback_journal_file(pg_db, tmp_path, read_from):
    """Journal mode delete, a copy that lasts past the app's 5 s busy timeout: read from a
    page copy (auto), not one write of the app fails, the page copy is gone afterwards, and
    the writes made meanwhile reach PostgreSQL through capture. Reading the file itself
    (``read_from: live``) is what the app could not survive."""
    path = _app(str(tmp_path / "app.db"))
    params = dict(pg_db, source=path)
    run.schema(params)
    run.capture(params)
    snapshots = tmp_path / "snapshots"
    writer = Writer(path)
    holder = _hold_table(params, "notes", 7)
    try:
        start = time.monotonic()
        result = run.copy(params, read_from=read_from, snapshot_dir=str(snapshots))
        seconds = time.monotonic() - start
    finally:
        holder.join()
        app = writer.stop()
    assert seconds > 6, "the copy was meant to outlast the app's busy timeout"
    assert result["read"]["journal_mode"] == "delete"
    if read_from == "live":
        assert result["read"]["way"] == "live"
        assert any("locked" in error for error in app["failed"]), app
        return
    assert result["read"]["way"] == "page_copy" and result["read"]["lock_seconds"] < 1, result["read"]
    assert app["failed"] == [] and app["longest"] < 1, app
    assert app["committed"] > 60, "the app did not write during the copy"
    assert os.listdir(snapshots) == [], "the page copy (the app's data) was left behind"
    # The writes made during the copy are in the log: the next pass brings them over.
    run.schema(params, phase="constraints")
    assert run.copy(params)["tables"]["users"]["status"] == "caught_up"
    assert fetch(params, "SELECT count(*) FROM users WHERE name LIKE 'live %%'")[0][0] == app["committed"]
    run.verify_all(params)


def test_the_proof_reads_the_page_copy_too(pg_db, tmp_path):
    """The load's last step verifies every table on the pass's snapshot: in a rollback-journal
    file that is the page copy, so the proof holds the app's writes no longer than the copy."""
    path = _app(str(tmp_path / "app.db"))
    params = dict(pg_db, source=path)
    run.schema(params)
    run.capture(params)
    run.copy(params, snapshot_dir=str(tmp_path))
    run.schema(params, phase="constraints")
    writer = Writer(path)
    try:
        result = run.copy(params, prove=True, snapshot_dir=str(tmp_path))
    finally:
        app = writer.stop()
    assert result["read"]["way"] == "page_copy"
    assert app["failed"] == [], app
    users = result["tables"]["users"]
    assert users["status"] == "caught_up" and users["proof"]["proven_at"], users


def test_wal_files_are_read_in_place(tmp_path):
    conn = open_sqlite(_app(str(tmp_path / "wal.db"), users=10, notes=10, journal_mode="wal"))
    plan = backup.plan_reading(conn)
    assert (plan.journal_mode, plan.way) == ("wal", "live")
    assert backup.plan_reading(conn, "page_copy").way == "page_copy"
    with backup.reading(conn, backup.plan_reading(conn, "page_copy"), str(tmp_path / "s")) as (copy, report):
        assert copy.execute("SELECT count(*) FROM users").fetchone()[0] == 10
        assert report["bytes"] > 0
    conn.close()
    with pytest.raises(MigrationError, match="read_from must be one of auto, live, page_copy"):
        backup.plan_reading(open_sqlite(str(tmp_path / "wal.db")), "snapshot")


@pytest.mark.parametrize("journal_mode,way", [("delete", "page_copy"), ("wal", "live")])
def test_preflight_and_verify_say_the_journal_mode_and_the_way_taken(pg_db, tmp_path, journal_mode, way):
    """The profile (preflight) and a verification read as the copy does, and say so."""
    path = _app(str(tmp_path / "app.db"), users=10, notes=10, journal_mode=journal_mode)
    params = dict(pg_db, source=path)
    profile = run.profile(params, snapshot_dir=str(tmp_path / "s"))
    assert profile["integrity"] == ["ok"]
    assert (profile["read"]["journal_mode"], profile["read"]["way"]) == (journal_mode, way)
    assert ("rollback journal (delete)" if way == "page_copy" else "WAL") in profile["read"]["why"]
    run.schema(params)
    assert run.copy(params, snapshot_dir=str(tmp_path / "s"))["read"]["way"] == way
    run.schema(params, phase="constraints")
    assert run.verify_all(params, snapshot_dir=str(tmp_path / "s"))["read"]["way"] == way
    assert run.verify_all(params, read_from="live")["read"]["way"] == "live"
    assert not os.listdir(tmp_path / "s") if way == "page_copy" else True


@pytest.mark.parametrize("journal_mode", ["delete", "wal"])
def test_a_backup_finishes_while_the_app_writes_steadily(tmp_path, journal_mode):
    """The backup API a few pages at a time starts over at every commit of another process:
    with an app writing every 50 ms it never finished. Now: one consistent state, quickly,
    and no write of the app fails."""
    path = _app(str(tmp_path / "app.db"), users=5000, notes=30_000, journal_mode=journal_mode)   # ~35 MB
    writer = Writer(path, limit=20)
    try:
        start = time.monotonic()
        made = backup.backup(path, str(tmp_path / "backups"))
        seconds = time.monotonic() - start
    finally:
        app = writer.stop()
    assert seconds < 10, f"the backup took {seconds:.1f} s"
    assert app["failed"] == [], app
    assert made["size"] > 30_000_000 and made["lock_seconds"] < 2
    copy = sqlite3.connect(made["dest"])
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert copy.execute("SELECT count(*) FROM notes").fetchone()[0] == 30_000
    assert copy.execute("SELECT count(*) FROM users").fetchone()[0] >= 5000
    assert oct(os.stat(made["dest"]).st_mode & 0o777) == "0o600"


def test_page_copies_left_by_a_killed_run_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"{backup.SNAPSHOT_PREFIX}{dead.pid}-x1"
    stale.mkdir()
    (stale / "app.db").write_bytes(b"the app's data")
    mine = tmp_path / f"{backup.SNAPSHOT_PREFIX}{os.getpid()}-x2"
    mine.mkdir()
    conn = open_sqlite(_app(str(tmp_path / "app.db"), users=10, notes=10))
    with backup.reading(conn, backup.plan_reading(conn), str(tmp_path)) as (copy, report):
        assert report["way"] == "page_copy"
        assert copy.execute("SELECT count(*) FROM users").fetchone()[0] == 10
    assert not stale.exists(), "a dead run's page copy is still there"
    assert mine.exists(), "a live run's page copy was removed"
