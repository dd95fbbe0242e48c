"""The SQLite side's counts inside cutover's freeze: read once per table while the change
log stands still, read again as soon as a captured write moves it."""

import sqlite3

from sqlite_pg import frozen, introspect, run, source
from sqlite_pg.model import Options, build_model
from tests.conftest import make_sqlite


def _table(path):
    conn = sqlite3.connect(path)
    model = build_model(conn, introspect.read_schema(conn), Options())
    return conn, source.SourceTable(conn, model["notes"].source, [])


def test_inside_the_freeze_a_count_is_read_once_per_log_position(sqlite_path):
    make_sqlite(sqlite_path, "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);",
                {"notes": [(i, f"n{i}") for i in range(1, 11)]})
    run.capture(dict(source=sqlite_path))
    conn, notes = _table(sqlite_path)
    assert notes.stats() == (10, 10)
    with frozen.counts():
        assert notes.stats() == (10, 10)
        # Invisible to the log (what a stopped app cannot do): the frozen count stands.
        conn.execute("DROP TRIGGER " + introspect.quote_ident(next(
            n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND sql LIKE '%INSERT%'"))))
        conn.execute("INSERT INTO notes VALUES (11, 'unlogged')")
        conn.commit()
        assert notes.stats() == (10, 10)
        # A logged write moves the log: counted again.
        conn.execute("DELETE FROM notes WHERE id = 1")
        conn.commit()
        assert notes.stats() == (10, 11)
    assert notes.stats() == (10, 11)   # outside the freeze: always read
    conn.close()


def test_without_capture_the_count_is_always_read(sqlite_path):
    make_sqlite(sqlite_path, "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);", {"notes": [(1, "a")]})
    conn, notes = _table(sqlite_path)
    with frozen.counts():
        assert notes.stats() == (1, 1)
        conn.execute("INSERT INTO notes VALUES (2, 'b')")
        conn.commit()
        assert notes.stats() == (2, 2)
    conn.close()
