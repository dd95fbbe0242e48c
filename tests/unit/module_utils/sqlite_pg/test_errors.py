"""Faults of the environment reach the operator as what happened and what to do, never as
"unexpected error": a lost PostgreSQL connection, a corrupt SQLite file."""

import sqlite3
import threading
import time

import psycopg2
import pytest

from sqlite_pg import run
from sqlite_pg.errors import ConnectionLost, SourceCorrupt, json_safe
from tests.conftest import fetch, make_sqlite


def _two_tables(path, rows=2000):
    make_sqlite(path, "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE b (id INTEGER PRIMARY KEY, "
                      "v TEXT);", {"a": [(i, f"a{i}") for i in range(rows)], "b": [(i, f"b{i}") for i in range(rows)]})


def test_a_lost_connection_says_so_and_a_rerun_resumes(pg_db, pg_cluster, sqlite_path):
    _two_tables(sqlite_path)
    params = dict(pg_db, source=sqlite_path)
    run.schema(params, phase="tables")
    # Table b is locked elsewhere: the copy waits there, and its backend is terminated then.
    admin = psycopg2.connect(host=pg_cluster.sockdir, port=pg_cluster.port, user="postgres", dbname=pg_db["db"])
    lock = admin.cursor()
    lock.execute("LOCK TABLE b IN ACCESS EXCLUSIVE MODE")
    killed = []

    def kill_when_waiting():
        watcher = psycopg2.connect(host=pg_cluster.sockdir, port=pg_cluster.port, user="postgres",
                                   dbname=pg_db["db"])
        watcher.autocommit = True
        with watcher.cursor() as cur:
            for _ in range(400):
                cur.execute("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> %s",
                            (admin.get_backend_pid(),))
                row = cur.fetchone()
                if row:
                    cur.execute("SELECT pg_terminate_backend(%s)", row)
                    killed.append(row[0])
                    break
                time.sleep(0.05)
        watcher.close()

    thread = threading.Thread(target=kill_when_waiting)
    thread.start()
    with pytest.raises(ConnectionLost) as err:
        run.copy(params)
    thread.join()
    admin.rollback()
    admin.close()
    assert killed
    message = str(err.value)
    assert "the connection to PostgreSQL was lost (server closed the connection" in message
    assert "rerun the same step: it resumes" in message and "unexpected error" not in message
    assert fetch(params, "SELECT table_name FROM _migration_ledger") == [("a",)]   # a was committed
    again = run.copy(params)
    assert again["tables"]["a"]["status"] == "in_sync" and again["tables"]["b"]["status"] == "copied"
    assert fetch(params, "SELECT count(*) FROM b") == [(2000,)]


def _corrupt_table_pages(path, table):
    """Overwrite the middle leaf pages of ``table`` with garbage (as a torn disk write would)."""
    conn = sqlite3.connect(path)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = [r[0] for r in conn.execute("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' "
                                        "ORDER BY pageno", (table,))]
    conn.close()
    with open(path, "r+b") as fh:
        for page in pages[len(pages) // 3: len(pages) // 3 + 3]:
            fh.seek((page - 1) * page_size)
            fh.write(b"\xa5" * page_size)


def test_a_corrupt_file_is_named_and_the_backup_pointed_to(pg_db, sqlite_path):
    make_sqlite(sqlite_path, "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT); "
                             "CREATE TABLE z (id INTEGER PRIMARY KEY, v TEXT);",
                {"a": [(i, f"a{i}") for i in range(100)], "z": [(i, "z" * 200) for i in range(20000)]})
    params = dict(pg_db, source=sqlite_path)
    run.schema(params, phase="tables")
    _corrupt_table_pages(sqlite_path, "z")
    with pytest.raises(SourceCorrupt) as err:
        run.copy(params)
    message = str(err.value)
    assert f"the SQLite file {sqlite_path!r} is corrupt" in message
    assert "Restore the file from the backup" in message and "migration_work_dir/backups" in message
    assert fetch(params, "SELECT count(*) FROM a") == [(100,)]   # what was copied before the damage stays
    with pytest.raises(SourceCorrupt):
        run.profile(params, check_integrity=False)


def test_results_carry_text_that_is_not_utf8_as_its_bytes():
    bad = b"\xffA".decode("utf-8", "surrogateescape")
    assert json_safe({"key": {"k": bad}, "ok": ["x", 1]}) == {"key": {"k": {"invalid_utf8_hex": "ff41"}},
                                                             "ok": ["x", 1]}
