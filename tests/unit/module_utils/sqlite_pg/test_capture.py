"""Change capture: triggers log what the app changes; the next copy replays only that."""

import sqlite3

import pytest

from sqlite_pg import run
from sqlite_pg.errors import DataError, MigrationError
from tests.conftest import fetch, make_sqlite, migrate

APP = """
CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL);
CREATE TABLE ideas (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    title TEXT, score INTEGER);
CREATE TABLE tags (idea_id INTEGER NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (idea_id, tag)) WITHOUT ROWID;
CREATE TABLE log (line TEXT);
"""


def _app(sqlite_path, users=50, ideas=4):
    rows = {
        "users": [(u, f"user {u}") for u in range(1, users + 1)],
        "ideas": [(u * 10 + i, u, f"idea {u}.{i}", i) for u in range(1, users + 1) for i in range(ideas)],
        "tags": [(u * 10, t) for u in range(1, users + 1) for t in ("a", "b")],
        "log": [("started",), ("started",)],
    }
    return make_sqlite(sqlite_path, APP, rows)


@pytest.fixture
def captured(pg_db, sqlite_path):
    """The app's file with capture installed, then migrated: the connection options."""
    _app(sqlite_path)
    params = dict(pg_db, source=sqlite_path)
    run.capture(params)
    migrate(params)
    return params


def _write(path, *statements):
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys = ON")
    for stmt in statements:
        conn.execute(stmt)
    conn.commit()
    conn.close()


def _same(params, sqlite_path, table, order):
    conn = sqlite3.connect(sqlite_path)
    source = [tuple(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY {order}")]
    conn.close()
    return source == [tuple(r) for r in fetch(params, f"SELECT * FROM {table} ORDER BY {order}")]


def test_install_is_idempotent_and_invisible_to_the_migration(pg_db, sqlite_path):
    _app(sqlite_path)
    params = dict(pg_db, source=sqlite_path)
    check = run.capture(params, check_mode=True)
    # The log (and its numbering), three triggers and a marker per table.
    assert check["changed"] and len(check["statements"]) == 2 + 4 * (3 + 1)
    assert "_s2p_changes" not in {r[0] for r in sqlite3.connect(sqlite_path).execute(
        "SELECT name FROM sqlite_master")}, "check mode wrote to the file"
    assert run.capture(params)["changed"]
    assert not run.capture(params)["changed"], "a second install changed something"
    result = run.schema(params, phase="tables")
    assert "_s2p_changes" not in result["tables"] and result["triggers"] == []
    assert "_s2p_changes" in result["not_migrated"]


def test_updates_deletes_and_key_changes_are_replayed_not_recopied(captured, sqlite_path):
    params = captured
    _write(sqlite_path,
           "UPDATE users SET name = 'renamed' WHERE id = 3",
           "DELETE FROM users WHERE id = 4",                       # cascades to its ideas in SQLite
           "INSERT INTO users (name) VALUES ('new one')",
           "INSERT INTO ideas VALUES (9001, 51, 'for the new user', 1)",
           "UPDATE ideas SET id = 8000 WHERE id = 21",             # a key that changes
           "UPDATE ideas SET score = score + 100 WHERE user_id = 7",
           "DELETE FROM tags WHERE idea_id = 10 AND tag = 'a'",
           "INSERT INTO tags VALUES (10, 'c')")
    result = run.copy(params)
    status = {t: r["status"] for t, r in result["tables"].items()}
    assert status == {"users": "caught_up", "ideas": "caught_up", "tags": "caught_up", "log": "in_sync"}, result["tables"]
    assert result["tables"]["users"]["replayed"] == 3
    for table, order in (("users", "id"), ("ideas", "id"), ("tags", "idea_id, tag"), ("log", "line")):
        assert _same(params, sqlite_path, table, order), table
    assert run.verify_all(params)["rows"] > 0
    # The new user's id came from the sequence past the replayed rows.
    assert fetch(params, "INSERT INTO users (name) VALUES ('on postgres') RETURNING id") == [(52,)]
    # The log is pruned behind the copy, and a rerun has nothing to do.
    assert sqlite3.connect(sqlite_path).execute("SELECT count(*) FROM _s2p_changes").fetchone()[0] == 0
    fetch(params, "DELETE FROM users WHERE id = 52 RETURNING id")
    again = run.copy(params)
    assert not again["changed"], again["tables"]


def test_a_table_without_primary_key_is_loaded_again_within_the_catch_up(captured, sqlite_path):
    params = captured
    _write(sqlite_path, "UPDATE log SET line = 'changed' WHERE rowid = 1")
    assert run.copy(params, check_mode=True)["tables"]["log"]["status"] == "would_catch_up"
    result = run.copy(params)
    assert result["tables"]["log"]["status"] == "caught_up" and result["tables"]["log"]["replayed"] == 2
    assert result["tables"]["users"]["status"] == "in_sync"
    assert _same(params, sqlite_path, "log", "line")


def test_rows_that_stop_converting_leave_and_are_quarantined(pg_db, sqlite_path):
    _app(sqlite_path)
    params = dict(pg_db, source=sqlite_path)
    run.capture(params)
    migrate(params, on_error="quarantine")
    _write(sqlite_path, "UPDATE ideas SET score = 'lots' WHERE id = 10")
    with pytest.raises(DataError, match="ideas"):
        run.copy(params)
    assert fetch(params, "SELECT score FROM ideas WHERE id = 10") == [(0,)], "a failed catch-up left changes"
    result = run.copy(params, on_error="quarantine")
    assert result["tables"]["ideas"]["status"] == "caught_up" and result["rejected"] == 1
    assert fetch(params, "SELECT count(*) FROM ideas WHERE id = 10") == [(0,)]
    assert fetch(params, "SELECT source_key FROM _migration_rejects") == [({"id": 10},)]
    # Fixed in SQLite: the row comes back and its reject goes.
    _write(sqlite_path, "UPDATE ideas SET score = 5 WHERE id = 10")
    result = run.copy(params, on_error="quarantine")
    assert result["rejected"] == 0 and fetch(params, "SELECT score FROM ideas WHERE id = 10") == [(5,)]
    assert fetch(params, "SELECT count(*) FROM _migration_rejects") == [(0,)]


def test_changes_before_the_bulk_snapshot_are_not_lost(pg_db, sqlite_path):
    """Capture installed, then writes, then the bulk copy: the copy's snapshot holds them,
    and the ledger's capture point is that snapshot's, so nothing is replayed twice or missed."""
    _app(sqlite_path)
    params = dict(pg_db, source=sqlite_path)
    run.capture(params)
    _write(sqlite_path, "UPDATE users SET name = 'early' WHERE id = 1")
    migrate(params)
    assert fetch(params, "SELECT name FROM users WHERE id = 1") == [("early",)]
    _write(sqlite_path, "UPDATE users SET name = 'late' WHERE id = 1")
    assert run.copy(params)["tables"]["users"]["status"] == "caught_up"
    assert fetch(params, "SELECT name FROM users WHERE id = 1") == [("late",)]


def test_changes_made_while_capture_was_off_are_not_missed(captured, sqlite_path):
    """Removed (a rollback), the app writes, installed again: the ledger's capture point
    belongs to the old log, so the table is copied in full, never trusted as in sync."""
    params = captured
    run.capture(params, state="absent")
    _write(sqlite_path, "UPDATE users SET name = 'while off' WHERE id = 1")   # no trigger saw it
    run.capture(params)
    result = run.copy(params)
    assert result["tables"]["users"]["status"] == "copied", result["tables"]["users"]
    assert fetch(params, "SELECT name FROM users WHERE id = 1") == [("while off",)]
    _write(sqlite_path, "UPDATE users SET name = 'on again' WHERE id = 1")
    assert run.copy(params)["tables"]["users"]["status"] == "caught_up"
    assert fetch(params, "SELECT name FROM users WHERE id = 1") == [("on again",)]


def test_capture_installed_after_the_copy_copies_the_table_in_full_once(pg_db, sqlite_path):
    """Copied without capture, capture installed, one row updated (same count, same highest
    rowid): the rerun must not say in_sync - the key is in the log, and what changed before
    the triggers existed is not known. Copied in full once, then caught up as usual."""
    _app(sqlite_path)
    params = dict(pg_db, source=sqlite_path)
    migrate(params)
    run.capture(params)
    _write(sqlite_path, "UPDATE users SET name = 'after capture' WHERE id = 2",
           "UPDATE ideas SET title = 'edited' WHERE id = 20")
    check = run.copy(params, check_mode=True)
    assert check["changed"] and check["tables"]["users"]["status"] == "would_copy", check["tables"]["users"]
    result = run.copy(params)
    assert result["changed"]
    users = result["tables"]["users"]
    assert users["status"] == "copied" and "before change capture was installed" in users["note"], users
    assert fetch(params, "SELECT name FROM users WHERE id = 2") == [("after capture",)]
    assert fetch(params, "SELECT title FROM ideas WHERE id = 20") == [("edited",)]
    again = run.copy(params)
    assert not again["changed"] and {t["status"] for t in again["tables"].values()} == {"in_sync"}, again["tables"]
    _write(sqlite_path, "UPDATE users SET name = 'caught up' WHERE id = 2")
    assert run.copy(params)["tables"]["users"]["status"] == "caught_up"
    assert fetch(params, "SELECT name FROM users WHERE id = 2") == [("caught up",)]
    run.verify_all(params)


def test_remove_takes_away_only_what_capture_added(pg_db, sqlite_path):
    _app(sqlite_path)
    _write(sqlite_path, "CREATE TRIGGER app_own AFTER INSERT ON log BEGIN SELECT 1; END")
    params = dict(pg_db, source=sqlite_path)
    run.capture(params)
    removed = run.capture(params, state="absent")
    assert removed["changed"] and len(removed["statements"]) == 3 * 4 + 1
    names = {r[0] for r in sqlite3.connect(sqlite_path).execute("SELECT name FROM sqlite_master")}
    assert "app_own" in names and not any(n.startswith("_s2p_") for n in names)
    assert not run.capture(params, state="absent")["changed"]


# --- the rollback window: capture on PostgreSQL --------------------------------------------------


def test_rollback_brings_back_only_the_rows_changed_on_postgres(pg_db, sqlite_path):
    _app(sqlite_path)
    params = dict(pg_db, source=sqlite_path)
    migrate(params)
    planned = run.capture(params, side="postgresql", check_mode=True)
    assert planned["changed"] and not fetch(params, "SELECT to_regclass('_migration_changes') IS NOT NULL")[0][0]
    assert run.capture(params, side="postgresql")["changed"]
    assert not run.capture(params, side="postgresql")["changed"]
    # The app on PostgreSQL: an insert, an update, a delete (with its children), a key change.
    for stmt in ("INSERT INTO users (name) VALUES ('on postgres') RETURNING id",
                 "UPDATE users SET name = 'renamed on postgres' WHERE id = 2 RETURNING id",
                 "DELETE FROM ideas WHERE user_id = 5 RETURNING id",
                 "DELETE FROM users WHERE id = 5 RETURNING id",
                 "UPDATE tags SET tag = 'z' WHERE idea_id = 10 AND tag = 'a' RETURNING idea_id"):
        assert fetch(params, stmt)
    back = run.copy_back(params)
    assert back["changed"]
    status = {t: r["status"] for t, r in back["tables"].items()}
    assert status == {"users": "replayed_back", "ideas": "replayed_back", "tags": "replayed_back",
                      "log": "in_sync"}, back["tables"]
    assert back["tables"]["users"]["keys"] == 3
    for table, order in (("users", "id"), ("ideas", "id"), ("tags", "idea_id, tag")):
        assert _same(params, sqlite_path, table, order), table
    run.verify_all(params)
    removed = run.capture(params, side="postgresql", state="absent")
    assert removed["changed"] and not run.capture(params, side="postgresql", state="absent")["changed"]
    assert fetch(params, "SELECT count(*) FROM pg_trigger WHERE tgname = '_migration_capture'") == [(0,)]


def test_an_app_role_with_only_dml_rights_writes_through_the_capture(pg_db, sqlite_path):
    _app(sqlite_path)
    params = dict(pg_db, source=sqlite_path)
    migrate(params)
    run.capture(params, side="postgresql")
    fetch(params, "CREATE ROLE s2p_dml_only; GRANT SELECT, INSERT, UPDATE, DELETE ON users TO s2p_dml_only; "
                  "GRANT USAGE ON SEQUENCE users_id_seq TO s2p_dml_only; SET ROLE s2p_dml_only; "
                  "INSERT INTO users (name) VALUES ('as the app') RETURNING id")
    assert fetch(params, "SELECT count(*) FROM _migration_changes WHERE table_name = 'users'") == [(1,)]
    fetch(params, "RESET ROLE; DROP OWNED BY s2p_dml_only; DROP ROLE s2p_dml_only; SELECT 1")


# --- what apps do that a naive replay gets wrong ------------------------------------------------

PATTERNS = """
CREATE TABLE accounts (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, login TEXT COLLATE NOCASE UNIQUE);
CREATE TABLE nodes (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES nodes(id), name TEXT);
CREATE TABLE members (account_id INTEGER NOT NULL REFERENCES accounts(id), node_id INTEGER NOT NULL REFERENCES nodes(id));
CREATE TABLE handles (handle TEXT PRIMARY KEY COLLATE NOCASE, note TEXT);
CREATE TABLE slots (id INTEGER PRIMARY KEY, day TEXT, kind TEXT);
CREATE UNIQUE INDEX one_open_slot ON slots (day) WHERE kind GLOB 'open';   -- GLOB: not translated
"""


def _patterns(sqlite_path):
    rows = {
        "accounts": [(i, f"u{i}@example.org", f"user{i}") for i in range(1, 11)],
        "nodes": [(1, None, "root")] + [(i, 1, f"node {i}") for i in range(2, 11)],
        "members": [(i, i) for i in range(1, 11)],
        "handles": [("bob", "first"), ("alice", "x")],
        "slots": [(1, "2024-01-01", "open"), (2, "2024-01-02", "open")],
    }
    return make_sqlite(sqlite_path, PATTERNS, rows)


@pytest.mark.parametrize("statements", [
    # The same unique value for a new row: the old row must leave first.
    ("DELETE FROM members WHERE account_id = 3", "DELETE FROM accounts WHERE id = 3",
     "INSERT INTO accounts VALUES (11, 'u3@example.org', 'again')"),
    # A node moved under a node that is new: the new one must be there first.
    ("INSERT INTO nodes VALUES (11, 1, 'new parent')", "UPDATE nodes SET parent_id = 11 WHERE id = 5"),
    # A parent deleted with the rows of a key-less association table that point at it.
    ("DELETE FROM members WHERE node_id = 7", "DELETE FROM nodes WHERE id = 7"),
    # A key changed only in letter case (NOCASE): the old spelling must leave.
    ("UPDATE handles SET handle = 'Bob' WHERE handle = 'bob'",),
], ids=["unique-reused", "moved-under-new-parent", "keyless-children", "nocase-key"])
def test_common_write_patterns_are_caught_up_not_copied(pg_db, sqlite_path, statements):
    _patterns(sqlite_path)
    params = dict(pg_db, source=sqlite_path)
    run.capture(params)
    migrate(params)
    _write(sqlite_path, *statements)
    result = run.copy(params)
    statuses = {r["status"] for r in result["tables"].values()}
    assert statuses <= {"caught_up", "in_sync"}, [(t, r["status"], r["note"]) for t, r in result["tables"].items()]
    run.verify_all(params)


def test_a_row_replace_removed_without_a_trigger_is_still_found(pg_db, sqlite_path):
    """INSERT OR REPLACE drops the row in conflict on a partial unique index (which PostgreSQL
    does not get: its WHERE does not translate) without firing a delete trigger: the counts give it away, and the table is
    copied in full."""
    _patterns(sqlite_path)
    params = dict(pg_db, source=sqlite_path)
    run.capture(params)
    migrate(params)
    _write(sqlite_path, "INSERT OR REPLACE INTO slots VALUES (3, '2024-01-01', 'open')")
    result = run.copy(params)
    assert result["tables"]["slots"]["status"] == "copied" and "not logged" in result["tables"]["slots"]["note"]
    run.verify_all(params)
    assert not run.copy(params)["changed"]


def test_rollback_refuses_to_overwrite_a_quarantined_row_and_changes_nothing(pg_db, sqlite_path):
    make_sqlite(sqlite_path, "CREATE TABLE members (handle TEXT PRIMARY KEY, age INTEGER);",
                {"members": [("ann", 40), ("bob", "old enough")]})
    params = dict(pg_db, source=sqlite_path)
    migrate(params, on_error="quarantine")
    run.capture(params, side="postgresql")
    fetch(params, "INSERT INTO members VALUES ('bob', 30), ('cy', 20) RETURNING handle")
    before = sqlite3.connect(sqlite_path).execute("SELECT * FROM members ORDER BY handle").fetchall()
    with pytest.raises(MigrationError, match=r"members: .*quarantined rows .*'bob'"):
        run.copy_back(params)
    assert sqlite3.connect(sqlite_path).execute("SELECT * FROM members ORDER BY handle").fetchall() == before


def test_keys_that_read_back_differently_are_rewritten_whole(pg_db, sqlite_path):
    """A UUID key stored as 32 hex digits comes back from PostgreSQL with dashes: row-by-row
    replay could not find the row, so the table is rewritten in full (and equal after)."""
    make_sqlite(sqlite_path, "CREATE TABLE items (id UUID PRIMARY KEY, sku TEXT UNIQUE, qty INTEGER);",
                {"items": [("0f" * 16, "a-1", 1), ("1e" * 16, "b-2", 2)]})
    params = dict(pg_db, source=sqlite_path)
    migrate(params)
    run.capture(params, side="postgresql")
    fetch(params, "UPDATE items SET qty = 5 WHERE sku = 'a-1' RETURNING id")
    back = run.copy_back(params)
    assert back["tables"]["items"]["status"] == "copied_back"
    run.verify_all(params)


def test_passes_repeat_until_the_lag_is_small(captured, sqlite_path):
    params = captured
    _write(sqlite_path, "UPDATE ideas SET score = score + 1")
    result = run.copy(params, passes=3, max_lag=0)
    # The first pass caught up 200 keys; nothing was written meanwhile, so the second found
    # nothing and the loop stopped there.
    assert result["passes"] == 2 and result["lag"] == 0 and result["changed"]
    assert run.copy(params, passes=3)["passes"] == 1
