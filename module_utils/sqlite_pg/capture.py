"""Change capture on the SQLite side, for catch-up passes while the app keeps writing.

Triggers on every migrated table record the primary key of each row the app inserts,
updates or deletes in a log table inside the app's own file (``_s2p_changes``). A catch-up
(``catchup``) then moves only the rows whose keys were logged since the last pass, instead
of copying whole tables again, so the final pass at cutover is short however large the
database is.

The log's key columns have no declared type: SQLite stores the key exactly as the table
holds it, so nothing is converted on the way. A table without a primary key logs only that
it changed; it is copied again in full.

Installed before the bulk copy reads its snapshot, so no change is missed between the two;
``remove`` takes triggers and log away again (decommission). What the triggers cannot see:
rows that ``INSERT OR REPLACE`` deletes because of a UNIQUE constraint other than the
primary key (SQLite fires no delete trigger for them unless ``recursive_triggers`` is on).
Verification catches those: the row counts differ, and the table is copied again.
"""

import sqlite3

from .errors import SourceError
from .introspect import CAPTURE_LOG as LOG
from .introspect import CAPTURE_PREFIX as PREFIX
from .introspect import quote_ident

OPERATIONS = ("ins", "upd", "del")


def _literal(text):
    return "'" + text.replace("'", "''") + "'"


def trigger_name(table, op):
    return f"{PREFIX}{table}_{op}"


def _width(model):
    return max([len(t.source.primary_key) for t in model.values()] + [1])


def trigger_sql(table, width):
    """The three CREATE TRIGGER statements for one introspected table, by operation."""
    q = quote_ident(table.name)
    log = quote_ident(LOG)
    keys = list(table.primary_key)
    cols = ", ".join(["tbl"] + [f"k{i}" for i in range(len(keys))])

    def row(alias):
        return ", ".join([_literal(table.name)] + [f"{alias}.{quote_ident(k)}" for k in keys])

    # BINARY: a key changed only in letter case (a NOCASE key) is still a new key.
    changed = " AND ".join(f"NEW.{quote_ident(k)} IS OLD.{quote_ident(k)} COLLATE BINARY" for k in keys)
    moved = (f" INSERT INTO {log} ({cols}) SELECT {row('NEW')} WHERE NOT ({changed});" if keys else "")
    body = {
        "ins": f"INSERT INTO {log} ({cols}) VALUES ({row('NEW')});",
        # A key that changes leaves its old value behind (gone) and brings the new one.
        "upd": f"INSERT INTO {log} ({cols}) VALUES ({row('OLD')});{moved}",
        "del": f"INSERT INTO {log} ({cols}) VALUES ({row('OLD')});",
    }
    event = {"ins": "INSERT", "upd": "UPDATE", "del": "DELETE"}
    return {op: f"CREATE TRIGGER {quote_ident(trigger_name(table.name, op))} AFTER {event[op]} ON {q} "
                f"BEGIN {body[op]} END" for op in OPERATIONS}


def _log_sql(width):
    keys = "".join(f", k{i}" for i in range(width))
    return [f"CREATE TABLE {quote_ident(LOG)} (seq INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL{keys})",
            # Numbering starts at the clock (microseconds), so a log created again after a
            # removal never reuses the numbers an earlier one gave: a capture point in the
            # ledger from that earlier log can never look valid against the new one.
            f"INSERT INTO sqlite_sequence (name, seq) VALUES ({_literal(LOG)}, "
            f"CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER))"]   # any SQLite version


def _marker(table):
    """A log entry with no key: "this table's changes were not all logged up to here"
    (its triggers are new), so the next copy takes the table in full."""
    return f"INSERT INTO {quote_ident(LOG)} (tbl) VALUES ({_literal(table)})"


def plan_install(conn, model):
    """Statements that bring log and triggers to what ``model`` needs (none when in place)."""
    width = _width(model)
    master = {name: sql for kind, name, sql in conn.execute(
        "SELECT type, name, sql FROM main.sqlite_master WHERE type = 'trigger' OR name = ?", (LOG,))}
    statements = []
    if LOG not in master:
        statements += _log_sql(width)
    else:
        have = {r[1] for r in conn.execute(f"PRAGMA main.table_info({quote_ident(LOG)})")}
        statements += [f"ALTER TABLE {quote_ident(LOG)} ADD COLUMN k{i}" for i in range(width)
                       if f"k{i}" not in have]
    wanted, table_of = {}, {}
    for target in model.values():
        for op, text in trigger_sql(target.source, width).items():
            wanted[trigger_name(target.source.name, op)] = text
            table_of[trigger_name(target.source.name, op)] = target.source.name
    for name in master:
        if name.startswith(PREFIX) and name != LOG and name not in wanted:
            statements.append(f"DROP TRIGGER {quote_ident(name)}")   # a table no longer migrated
    marked = set()
    for name, text in wanted.items():
        if master.get(name) == text:
            continue
        if name in master:
            statements.append(f"DROP TRIGGER {quote_ident(name)}")   # the table's key changed
        statements.append(text)
        if table_of[name] not in marked:
            marked.add(table_of[name])
            statements.append(_marker(table_of[name]))
    return statements


def plan_remove(conn):
    rows = conn.execute("SELECT type, name FROM main.sqlite_master WHERE type IN ('table', 'trigger') "
                        "AND substr(name, 1, length(?)) = ?", (PREFIX, PREFIX)).fetchall()
    triggers = [f"DROP TRIGGER {quote_ident(name)}" for kind, name in rows if kind == "trigger"]
    tables = [f"DROP TABLE {quote_ident(name)}" for kind, name in rows if kind == "table" and name == LOG]
    return triggers + tables


def _execute(path, statements, timeout=30.0):
    """Run DDL in one write transaction on the app's file (waits for the app's writers)."""
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        for stmt in statements:
            conn.execute(stmt)
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        raise SourceError(f"cannot change capture in {path}: {exc}") from None
    finally:
        conn.close()


def install(path, conn, model, check_mode=False):
    """Add the log and the triggers; returns the statements (run unless ``check_mode``)."""
    statements = plan_install(conn, model)
    if statements and not check_mode:
        _execute(path, statements)
    return statements


def remove(path, conn, check_mode=False):
    statements = plan_remove(conn)
    if statements and not check_mode:
        _execute(path, statements)
    return statements


# --- reading the log (on the copy's snapshot connection) --------------------------------------


def position(conn):
    """(highest logged seq, names of the tables whose triggers are all in place), or (None, set())
    when capture is not installed. Read on the snapshot the copy reads, so both agree."""
    names = {name for (name,) in conn.execute(
        "SELECT name FROM main.sqlite_master WHERE (type = 'trigger' AND substr(name, 1, ?) = ?) OR name = ?",
        (len(PREFIX), PREFIX, LOG))}
    if LOG not in names:
        return None, set()
    # The highest number ever given, not max(seq): pruning empties the log, the numbering goes on.
    top = conn.execute("SELECT coalesce(max(seq), 0) FROM main.sqlite_sequence WHERE name = ?", (LOG,)).fetchone()[0]
    candidates = {n[len(PREFIX):-4] for n in names if n.endswith("_ins")}
    tracked = {t for t in candidates if all(trigger_name(t, op) in names for op in OPERATIONS)}
    return top, tracked


def pending(conn, table, since, upto):
    return conn.execute(f"SELECT count(*) FROM {quote_ident(LOG)} WHERE seq > ? AND seq <= ? AND tbl = ?",
                        (since, upto, table)).fetchone()[0]


def unkeyed(conn, table, since, upto):
    """True when an entry in (since, upto] lacks a key part: a marker (see ``_marker``), or a
    row whose key holds a NULL (no row of the target has it); such a table is copied in full."""
    none = " OR ".join([f"k{i} IS NULL" for i in range(len(table.primary_key))] or ["1"])
    return bool(conn.execute(f"SELECT EXISTS (SELECT 1 FROM {quote_ident(LOG)} WHERE seq > ? AND seq <= ? "
                             f"AND tbl = ? AND ({none}))", (since, upto, table.name)).fetchone()[0])


def logged_keys_sql(table, since, upto):
    """A subquery of the keys logged for ``table`` in (since, upto], and its arguments."""
    keys = ", ".join(f"k{i}" for i in range(len(table.primary_key)))
    return (f"SELECT DISTINCT {keys} FROM {quote_ident(LOG)} WHERE seq > ? AND seq <= ? AND tbl = ?",
            [since, upto, table.name])


def prune(path, done):
    """Forget what every table has caught up with: ``done`` maps table -> capture seq."""
    if not done:
        return 0
    conn = sqlite3.connect(path, timeout=5, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        removed = sum(conn.execute(f"DELETE FROM {quote_ident(LOG)} WHERE tbl = ? AND seq <= ?",
                                   (table, seq)).rowcount for table, seq in done.items())
        conn.execute("COMMIT")
        return removed
    except sqlite3.Error:
        return 0   # a busy or read-only file: the log is only longer, nothing is wrong
    finally:
        conn.close()
