"""Rollback's data path: bring what PostgreSQL holds now back into the SQLite file.

After cutover the app writes to PostgreSQL; a rollback must not lose those writes. Each
migrated table of the SQLite file is rewritten from PostgreSQL in one SQLite transaction
(the app is stopped): rows are deleted and inserted again from PostgreSQL, except the rows
that the copy quarantined (they never reached PostgreSQL and stay as they were).

Each value goes back in the spelling its column already uses in the SQLite file
(``spelling.py``): learned from the column's values before they are rewritten, so a Django
app finds ``2024-01-01 00:00:00`` again where SQLAlchemy's would hold
``2024-01-01 00:00:00.000000``, a ``T`` or a ``Z`` stays, booleans stay 0/1 or ``'true'``,
uuids keep or drop their dashes, JSON from jsonb stays compact or ASCII-escaped. Date/times
go back in UTC (with the column's form of offset, if it has one), an interval as the column
held it (the epoch plus the duration, or a count of its unit), enums as their names. A column whose
values disagree on an aspect, or that is empty, gets SQLAlchemy's spelling for it
(``spelling.DEFAULT``). Only the spelling follows the column, never the value: afterwards
``sqlite_pg_verify`` proves both sides equal.

Tables whose content already matches (same count and checksum) are left alone, so a
rerun changes nothing.
"""

import sqlite3
import time

from .errors import MigrationError
from .introspect import quote_ident
from .ledger import REJECTS
from .pg import psycopg2, sql
from .pgcopy import target_codecs
from .spelling import learn_columns, to_sqlite

_BATCH = 5000


def _plain_key(key):
    """Keys the rejects table holds as plain JSON values (not a hex-encoded BLOB or bad text)."""
    return all(not isinstance(v, dict) for v in key.values())


def _kept_keys(cur, schema, table):
    """Keys of the rows quarantined for ``table``: they stay in SQLite as they are."""
    cur.execute("SELECT to_regclass(%s)", (sql.Identifier(schema, REJECTS).as_string(cur),))
    if cur.fetchone()[0] is None:
        return []
    cur.execute(sql.SQL("SELECT source_key FROM {} WHERE table_name = %s").format(sql.Identifier(schema, REJECTS)),
                (table,))
    return [r[0] for r in cur.fetchall()]


def copy_back_table(sqlite_conn, pg_conn, target, schema, check_mode=False):
    start = time.monotonic()
    table = target.source
    qname = quote_ident(table.name)
    with pg_conn.cursor() as cur:
        codecs = target_codecs(cur, schema, target)   # the target table and its columns must exist
        kept = _kept_keys(cur, schema, table.name)
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, target.name)))
        pg_rows = cur.fetchone()[0]
    pg_conn.rollback()
    sqlite_rows = sqlite_conn.execute(f"SELECT count(*) FROM {qname}").fetchone()[0]
    result = dict(table=table.name, postgresql_rows=pg_rows, sqlite_rows_before=sqlite_rows, kept=len(kept))
    if check_mode:
        result["status"] = "would_copy_back"
        return result

    key_cols = list(table.primary_key) or ["rowid"]
    declared = {c.source: table.column(c.source).declared for c in target.columns}
    units = {c.source: c.interval_unit for c in target.columns}
    # Learned before the rows are deleted: each value goes back as its column spells the others.
    spelled = learn_columns(sqlite_conn, table, {c.source: c.codec.pg_type for c in codecs})
    sqlite_conn.execute("CREATE TEMP TABLE IF NOT EXISTS s2p_kept (k TEXT PRIMARY KEY)")
    sqlite_conn.execute("DELETE FROM s2p_kept")
    # The kept keys are rendered by SQLite's own json_array, as the rows' keys are below.
    marks = ", ".join("?" * len(key_cols))
    sqlite_conn.executemany(f"INSERT OR IGNORE INTO s2p_kept SELECT json_array({marks})",
                            [tuple(k.get(c) for c in key_cols) for k in kept if _plain_key(k)])
    key_json = "json_array(" + ", ".join(quote_ident(c) if c != "rowid" else "rowid" for c in key_cols) + ")"
    deleted = sqlite_conn.execute(
        f"DELETE FROM {qname} WHERE {key_json} NOT IN (SELECT k FROM s2p_kept)").rowcount

    names = [c.source for c in target.columns]
    insert = (f"INSERT INTO {qname} ({', '.join(quote_ident(n) for n in names)}) "
              f"VALUES ({', '.join('?' * len(names))})")
    inserted = 0
    with pg_conn.cursor(name="s2p_copy_back") as cur:   # server-side: bounded memory
        cur.itersize = _BATCH
        cur.execute(sql.SQL("SELECT {} FROM {} AS t").format(_select_list(codecs), sql.Identifier(schema, target.name)))
        while True:
            rows = cur.fetchmany(_BATCH)
            if not rows:
                break
            sqlite_conn.executemany(insert, [
                tuple(to_sqlite(v, declared[n], units[n], spelled[n]) for v, n in zip(row, names, strict=True))
                for row in rows])
            inserted += len(rows)
    pg_conn.rollback()
    result.update(status="copied_back", deleted=deleted, inserted=inserted,
                  seconds=round(time.monotonic() - start, 3))
    return result


def _select_list(codecs):
    # JSON goes back as its text: decoded, a JSON string or null would lose its quotes.
    return sql.SQL(", ").join(sql.SQL("t.{}::text" if c.codec.pg_type in ("json", "jsonb") else "t.{}").format(
        sql.Identifier(c.target)) for c in codecs)


_EXACT_KEY_TYPES = ("smallint", "integer", "bigint", "text", "character varying", "character")


def exact_key(target):
    """True when the target has a key whose values come back from PostgreSQL exactly as SQLite
    stores them (a uuid stored as 32 hex digits, or a timestamp written with a T, would not)."""
    return bool(target.primary_key) and all(
        target.column(k).pg_type.split("(")[0].strip() in _EXACT_KEY_TYPES for k in target.primary_key)


def replay_table(sqlite_conn, pg_conn, target, schema, check_mode=False):
    """Bring back only the rows whose keys PostgreSQL's capture log names (pg_capture)."""
    from .pg_capture import LOG

    start = time.monotonic()
    table = target.source
    qname = quote_ident(table.name)
    declared = {c.source: table.column(c.source).declared for c in target.columns}
    units = {c.source: c.interval_unit for c in target.columns}
    keys = list(target.primary_key)
    source_keys = [target.column(k).source for k in keys]
    logged = sql.SQL("SELECT {} FROM (SELECT DISTINCT key FROM {} WHERE table_name = %s) AS l "
                     "CROSS JOIN LATERAL jsonb_populate_record(NULL::{}, l.key) AS r").format(
        sql.SQL(", ").join(sql.SQL("r.{}").format(sql.Identifier(k)) for k in keys),
        sql.Identifier(schema, LOG), sql.Identifier(schema, target.name))
    with pg_conn.cursor() as cur:
        codecs = target_codecs(cur, schema, target)
        kept = {tuple(k.get(c) for c in source_keys) for k in _kept_keys(cur, schema, table.name) if _plain_key(k)}
        cur.execute(logged, (table.name,))
        gone = [tuple(to_sqlite(v, declared[n], units[n]) for v, n in zip(row, source_keys, strict=True))
                for row in cur.fetchall()]
    clash = sorted(set(gone) & kept, key=repr)
    if clash:
        # SQLite holds a quarantined row under that key; the app wrote another on PostgreSQL.
        raise MigrationError(f"{table.name}: the app wrote rows on PostgreSQL under keys that quarantined rows "
                             f"still hold in SQLite ({', '.join(map(repr, clash[:5]))}); decide which to keep "
                             f"(see _migration_rejects) and delete the other, then roll back again")
    with pg_conn.cursor() as cur:
        names = [c.source for c in target.columns]
        cur.execute(sql.SQL("SELECT {} FROM {} AS t WHERE ({}) IN ({})").format(
            _select_list(codecs), sql.Identifier(schema, target.name),
            sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(k)) for k in keys), logged), (table.name,))
        fetched = cur.fetchall()
    pg_conn.rollback()
    result = dict(table=table.name, keys=len(gone), present=len(fetched))
    if check_mode:
        result["status"] = "would_replay_back"
        return result
    spelled = learn_columns(sqlite_conn, table, {c.source: c.codec.pg_type for c in codecs})
    rows = [tuple(to_sqlite(v, declared[n], units[n], spelled[n]) for v, n in zip(row, names, strict=True))
            for row in fetched]
    match = " AND ".join(f"{quote_ident(k)} IS ?" for k in source_keys)
    deleted = sqlite_conn.executemany(f"DELETE FROM {qname} WHERE {match}", gone).rowcount
    sqlite_conn.executemany(f"INSERT INTO {qname} ({', '.join(quote_ident(n) for n in names)}) "
                            f"VALUES ({', '.join('?' * len(names))})", rows)
    result.update(status="replayed_back", deleted=deleted, inserted=len(rows),
                  seconds=round(time.monotonic() - start, 3))
    return result


def copy_back(sqlite_conn, pg_conn, model, schema, check_mode=False, replay=()):
    """Rewrite the given tables of the model from PostgreSQL, in one SQLite transaction;
    the tables named in ``replay`` get only their logged rows back (``replay_table``)."""
    sqlite_conn.execute("PRAGMA foreign_keys = OFF")   # parents and children are rewritten together
    try:
        sqlite_conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        raise MigrationError(f"cannot lock the SQLite file for the rollback (is the app still running?): {exc}") \
            from None
    try:
        results = [(replay_table if name in replay else copy_back_table)(sqlite_conn, pg_conn, target, schema,
                                                                          check_mode)
                   for name, target in model.items()]
        if check_mode:
            sqlite_conn.execute("ROLLBACK")
        else:
            sqlite_conn.execute("COMMIT")
    except (sqlite3.Error, psycopg2.Error) as exc:
        sqlite_conn.execute("ROLLBACK")
        raise MigrationError(f"copy back failed, this step changed nothing in the SQLite file: {exc}") from None
    except Exception:
        sqlite_conn.execute("ROLLBACK")
        raise
    return results
