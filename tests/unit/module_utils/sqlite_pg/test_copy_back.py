"""Rollback's data path: every write made on PostgreSQL after cutover ends up in SQLite."""

import datetime
import sqlite3

import pytest

from sqlite_pg import run
from sqlite_pg.connection import connect_pg
from sqlite_pg.errors import MigrationError
from tests.conftest import fetch, make_sqlite, migrate

DDL = """
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, active BOOLEAN, created DATETIME, meta JSON);
CREATE TABLE ideas (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), text TEXT);
CREATE TABLE tags (name TEXT, n);
"""


def test_writes_after_cutover_come_back_and_quarantined_rows_stay(pg_db, sqlite_path):
    make_sqlite(sqlite_path, DDL, {
        "users": [(1, "ann", 1, "2024-01-01 10:00:00.000000", '{"a": 1}'),
                  (2, "bob", 0, "2024-01-02 10:00:00.500000", None),
                  (3, "bad\x00name", 1, None, None)],          # quarantined: never reaches PostgreSQL
        "ideas": [(1, 1, "first"), (2, 2, "second")],
        "tags": [("x", 1), ("x", 1)],
    })
    params = dict(pg_db, source=sqlite_path)
    migrate(params, on_error="quarantine")
    # The app, now on PostgreSQL, writes:
    new_id = fetch(params, "INSERT INTO users (name, active, created, meta) VALUES ('cy', true, "
                           "'2024-03-01 09:30:00.25', '{\"b\": [1, 2]}') RETURNING id")
    assert new_id == [(4,)]   # past the quarantined row's key, which stays reserved
    fetch(params, "UPDATE ideas SET text = 'edited' WHERE id = 2 RETURNING id")
    fetch(params, "DELETE FROM ideas WHERE id = 1 RETURNING id")
    fetch(params, "INSERT INTO ideas (user_id, text) VALUES (4, 'new idea') RETURNING id")
    fetch(params, "INSERT INTO tags VALUES ('y', 2) RETURNING name")

    planned = run.copy_back(params, check_mode=True)
    assert planned["changed"] and planned["tables"]["ideas"]["status"] == "would_copy_back"
    assert sqlite3.connect(sqlite_path).execute("SELECT count(*) FROM ideas").fetchone()[0] == 2   # untouched

    back = run.copy_back(params)
    assert back["changed"]
    conn = sqlite3.connect(sqlite_path)
    users = conn.execute("SELECT id, name, active, created, meta FROM users ORDER BY id").fetchall()
    assert users == [(1, "ann", 1, "2024-01-01 10:00:00.000000", '{"a": 1}'),
                     (2, "bob", 0, "2024-01-02 10:00:00.500000", None),
                     (3, "bad\x00name", 1, None, None),
                     (4, "cy", 1, "2024-03-01 09:30:00.250000", '{"b": [1, 2]}')]
    assert conn.execute("SELECT id, user_id, text FROM ideas ORDER BY id").fetchall() == [
        (2, 2, "edited"), (3, 4, "new idea")]
    assert sorted(conn.execute("SELECT name, n FROM tags").fetchall()) == [("x", 1), ("x", 1), ("y", 2)]
    conn.close()
    run.verify_all(params)   # both sides equal again (the quarantined row accounted for)
    assert not run.copy_back(params)["changed"]   # a rerun changes nothing


def test_migrate_again_after_a_rollback(pg_db, sqlite_path):
    make_sqlite(sqlite_path, DDL, {"users": [(1, "ann", 1, None, None)], "ideas": [(1, 1, "first")], "tags": []})
    params = dict(pg_db, source=sqlite_path)
    migrate(params)
    fetch(params, "INSERT INTO ideas (user_id, text) VALUES (1, 'on postgres') RETURNING id")
    run.copy_back(params)                                   # rollback: SQLite has both ideas
    conn = sqlite3.connect(sqlite_path)
    conn.execute("INSERT INTO users VALUES (2, 'bob', 0, NULL, NULL)")   # the app, back on SQLite, writes
    conn.commit()
    conn.close()
    again = migrate(params)                                  # parents emptied with their children, both reloaded
    assert again["tables"]["users"]["rows"] == 2 and again["tables"]["ideas"]["rows"] == 2
    run.verify_all(params)


def test_composite_keys_json_scalars_and_old_dates_come_back(pg_db, sqlite_path):
    make_sqlite(sqlite_path, """
        CREATE TABLE pairs (a TEXT, b INTEGER, doc JSON, at DATETIME, note TEXT, PRIMARY KEY (a, b));""", {
        "pairs": [("é", 1, '"hello"', "0001-01-01 00:00:00.000000", "ok"),
                  ("x", 2, "null", "2024-01-01 00:00:00.000000", "ok"),
                  ("é", 3, "true", None, "bad\x00")],     # quarantined, composite non-ASCII key
    })
    params = dict(pg_db, source=sqlite_path)
    migrate(params, on_error="quarantine")
    fetch(params, "UPDATE pairs SET note = 'changed' WHERE b = 2 RETURNING b")
    assert run.copy_back(params)["changed"]
    conn = sqlite3.connect(sqlite_path)
    rows = conn.execute("SELECT a, b, doc, at, note FROM pairs ORDER BY b").fetchall()
    conn.close()
    assert rows == [("é", 1, '"hello"', "0001-01-01 00:00:00.000000", "ok"),
                    ("x", 2, "null", "2024-01-01 00:00:00.000000", "changed"),
                    ("é", 3, "true", None, "bad\x00")]
    run.verify_all(params)
    assert not run.copy_back(params)["changed"]


def test_a_failed_cutover_keeps_writes_the_app_made_to_sqlite(pg_db, sqlite_path):
    """The app started on PostgreSQL but wrote to SQLite (a hard-coded sqlite:/// URL): the
    cutover's rescue must not rewrite SQLite from PostgreSQL; with writes on both sides it
    changes nothing and says so."""
    from tests.unit.module_utils.sqlite_pg.test_capture import _app, _write

    _app(sqlite_path)
    params = dict(pg_db, source=sqlite_path)
    run.capture(params)
    migrate(params)
    run.capture(params, side="postgresql")   # what cutover installs before the app starts
    _write(sqlite_path, "INSERT INTO users (name) VALUES ('written to sqlite after cutover')",
           "UPDATE ideas SET title = 'edited in sqlite' WHERE id = 10")
    kept = run.copy_back(params, sqlite_untouched=True)
    assert not kept["changed"] and kept["sqlite_ahead"] == {"users": 1, "ideas": 1}
    conn = sqlite3.connect(sqlite_path)
    assert conn.execute("SELECT count(*) FROM users WHERE name = 'written to sqlite after cutover'").fetchone() == (1,)
    conn.close()
    fetch(params, "UPDATE users SET name = 'and on postgresql' WHERE id = 2; SELECT 1")
    with pytest.raises(MigrationError, match=r"wrote to SQLite after the final copy \(1 change\(s\) to ideas, "
                                             r"1 change\(s\) to users\), and on PostgreSQL: 1 to users"):
        run.copy_back(params, sqlite_untouched=True)
    conn = sqlite3.connect(sqlite_path)
    assert conn.execute("SELECT title FROM ideas WHERE id = 10").fetchone() == ("edited in sqlite",)
    conn.close()


def test_intervals_go_back_in_the_form_the_app_wrote(pg_db, sqlite_path):
    # Django's DurationField: integer microseconds; SQLAlchemy's Interval: the epoch plus the duration.
    make_sqlite(sqlite_path, "CREATE TABLE d (id INTEGER PRIMARY KEY, django BIGINT, alchemy DATETIME, secs INTEGER);",
                {"d": [(1, 5400000000, "1970-01-01 01:30:00.000000", 90)]})
    conn = connect_pg(pg_db)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE d (id bigint PRIMARY KEY, django interval, alchemy interval, secs interval)")
    conn.commit()
    conn.close()
    params = dict(pg_db, source=sqlite_path, target="existing", interval_units={"d.secs": "seconds"})
    run.copy(params)
    # The app, now on PostgreSQL, writes durations through psycopg2 (as its ORM does).
    fetch(params, "INSERT INTO d VALUES (2, %s, %s, %s) RETURNING id",
          (datetime.timedelta(days=2, microseconds=1), datetime.timedelta(seconds=-1), datetime.timedelta(minutes=2)))
    run.copy_back(params)
    assert sqlite3.connect(sqlite_path).execute("SELECT * FROM d ORDER BY id").fetchall() == [
        (1, 5400000000, "1970-01-01 01:30:00.000000", 90),
        (2, 172800000001, "1969-12-31 23:59:59.000000", 120)]
    run.verify_all(params)


def test_a_numeric_column_chosen_for_wide_integers_goes_back_exactly(pg_db, sqlite_path):
    make_sqlite(sqlite_path, "CREATE TABLE n (id INTEGER PRIMARY KEY, v ANY) STRICT;",
                {"n": [(1, 9007199254740993), (2, 0.5), (3, 2.0)]})
    params = dict(pg_db, source=sqlite_path)
    migrate(params)
    fetch(params, "INSERT INTO n (v) VALUES (9007199254740995) RETURNING id")
    run.copy_back(params)
    got = sqlite3.connect(sqlite_path).execute("SELECT v, typeof(v) FROM n ORDER BY id").fetchall()
    assert got == [(9007199254740993, "integer"), (0.5, "real"), (2.0, "real"), (9007199254740995, "integer")]
    run.verify_all(params)
