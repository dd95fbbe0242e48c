"""Which source a target holds: one SQLite database per target (a database and a schema).

The target records its source in ``_migration_source`` (one row): the source's identity,
a random id kept inside the SQLite file itself (table ``_s2p_source``, created at the first
claim), so it survives the file being copied or moved (a restored backup is still the same
source), plus the host and the path, for humans.

``plan`` only reads and decides: keep (ours), claim (no owner, nothing foreign), update (ours,
moved to another host or path), take over (named by ``takeover_from``), or refuse (another
source's target, or tables no migration of this source created). ``apply`` runs a plan
under a transaction-level advisory lock and plans again inside it, so two runs that reach an
unclaimed target at once cannot both claim it. ``hold`` keeps a session-level advisory lock
for the length of one writing call: two runs of one source on one target take turns, and
one that waits longer than ``lock_wait`` seconds is refused, naming the run that holds it.
"""

import os
import socket
import sqlite3
import uuid
from dataclasses import dataclass, field

from .ddl import check_create_privileges
from .errors import MigrationError, SourceError
from .introspect import SOURCE_ID, quote_ident
from .pg import psycopg2, sql

RECORD = "_migration_source"
# The migration's own tables in a target: not "foreign" when they are all a schema holds.
BOOKKEEPING = ("_migration_source", "_migration_ledger", "_migration_rejects", "_migration_changes")
# takeover_from for a target whose tables no recorded source claims.
UNOWNED = "unowned"
# Advisory lock keys (first half): one for claims, one held while a run writes.
_CLAIM_KEY = "sqlite_pg.claim"
_RUN_KEY = "sqlite_pg.run"


class OwnershipError(MigrationError):
    """The target belongs to another source, or holds tables of unknown origin."""


@dataclass
class Source:
    id: str            # None until the first claim writes it into the file
    host: str
    path: str


@dataclass
class OwnershipPlan:
    action: str                  # keep | claim | update | take_over | refuse
    message: str
    owner: dict = None           # the record found in the target, if any
    foreign: list = field(default_factory=list)   # tables no migration of this source created


# --- the source's identity, inside the SQLite file ------------------------------------------


def read_identity(sqlite_conn):
    """The id recorded in the SQLite file, or None (never claimed, or an older file)."""
    try:
        row = sqlite_conn.execute(f"SELECT id FROM {quote_ident(SOURCE_ID)} LIMIT 1").fetchone()
    except sqlite3.OperationalError:
        return None
    return row[0] if row else None


def ensure_identity(path, timeout=30.0):
    """The file's id, written on first use in one short write transaction (it waits for the
    app's writers like any other writer)."""
    try:
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {quote_ident(SOURCE_ID)} "
                         "(id TEXT NOT NULL, created_at TEXT NOT NULL)")
            row = conn.execute(f"SELECT id FROM {quote_ident(SOURCE_ID)} LIMIT 1").fetchone()
            if row is None:
                row = (str(uuid.uuid4()),)
                conn.execute(f"INSERT INTO {quote_ident(SOURCE_ID)} VALUES (?, datetime('now'))", row)
            conn.execute("COMMIT")
            return row[0]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise SourceError(f"cannot record this source's identity in {path}: {exc} (the migration writes one "
                          "small table, _s2p_source, into the file: it needs write access)") from None


def describe(params, sqlite_conn=None):
    """This run's source: its id (when the file has one), host and real path. Without an
    open connection the file is read if it is still there (decommission removes it)."""
    path = os.path.realpath(params["source"])
    host = params.get("source_host") or socket.gethostname()
    if sqlite_conn is not None or not os.path.isfile(path):
        return Source(read_identity(sqlite_conn) if sqlite_conn is not None else None, host, path)
    from .connection import open_sqlite

    conn = open_sqlite(path)
    try:
        return Source(read_identity(conn), host, path)
    finally:
        conn.close()


# --- the target's record --------------------------------------------------------------------


def read_owner(cur, schema):
    cur.execute("SELECT to_regclass(%s)", (sql.Identifier(schema, RECORD).as_string(cur),))
    if cur.fetchone()[0] is None:
        return None
    cur.execute(sql.SQL("SELECT source_id, host, path, claimed_at::text, history FROM {} LIMIT 1").format(
        sql.Identifier(schema, RECORD)))
    row = cur.fetchone()
    return dict(zip(("source_id", "host", "path", "claimed_at", "history"), row, strict=True)) if row else None


def foreign_tables(cur, schema):
    """Tables, views and sequences-owning relations in the schema that are not bookkeeping,
    nor an extension's own (pg_stat_statements' views, PostGIS's spatial_ref_sys)."""
    cur.execute("""SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
                      AND c.relname <> ALL(%s)
                      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                                         AND d.objid = c.oid AND d.deptype = 'e')
                    ORDER BY 1""", (schema, list(BOOKKEEPING)))
    return [r[0] for r in cur.fetchall()]


def _where(cur, schema):
    cur.execute("SELECT current_database()")
    return f"{cur.fetchone()[0]}.{schema}"


def _name(record):
    return f"{record['host']}:{record['path']} (source id {record['source_id']})"


def plan(cur, schema, source, target_mode="create", takeover_from=""):
    """Decide, reading only. A source without an id yet can only claim an unowned target."""
    owner = read_owner(cur, schema)
    where = _where(cur, schema)
    if owner is not None:
        if source.id and owner["source_id"] == source.id:
            if (owner["host"], owner["path"]) != (source.host, source.path):
                return OwnershipPlan("update", f"{where}: this source moved from {owner['host']}:{owner['path']} "
                                               f"to {source.host}:{source.path}; the record follows it", owner)
            return OwnershipPlan("keep", f"{where} holds this source", owner)
        if not source.id and (owner["host"], owner["path"]) == (source.host, source.path) \
                and not os.path.exists(source.path):
            # After decommission the file is gone: the record's host and path still name it.
            return OwnershipPlan("keep", f"{where} holds this source (its SQLite file is gone)", owner)
        if takeover_from and takeover_from == owner["source_id"]:
            return OwnershipPlan("take_over", f"{where}: taken over from {_name(owner)} as takeover_from asks; "
                                              "every table is copied again", owner)
        return OwnershipPlan("refuse", (
            f"target {where} holds the data of another source: {_name(owner)}, since {owner['claimed_at']}. "
            f"This source is {source.host}:{source.path} (source id {source.id or 'not recorded yet'}). Nothing "
            "was changed. Point this host at its own target (migration_db_name for a database per host, or "
            "migration_db_schema for a schema per host: inventory/example shows both), or, if that source is "
            f"gone for good (decommissioned), take the target over with migration_takeover_from={owner['source_id']} "
            "(module option takeover_from)"), owner)
    foreign = [] if target_mode == "existing" else foreign_tables(cur, schema)
    if foreign and takeover_from != UNOWNED:
        shown = ", ".join(foreign[:10]) + (f" and {len(foreign) - 10} more" if len(foreign) > 10 else "")
        return OwnershipPlan("refuse", (
            f"target {where} already holds tables that no migration of this source created: {shown}. Nothing "
            "was changed. Give this source an empty target (migration_db_name or migration_db_schema); if these "
            "are the app's own tables (create_all, alembic upgrade head), set migration_target: existing (module "
            f"option target: existing); if they are an earlier load of this same file, set "
            f"migration_takeover_from={UNOWNED}"), None, foreign)
    if foreign:
        return OwnershipPlan("take_over", f"{where}: tables without an owner ({', '.join(foreign[:10])}) taken "
                                          "over as takeover_from asks; every table is copied again", None, foreign)
    return OwnershipPlan("claim", f"{where} is claimed for {source.host}:{source.path}")


def _statements(cur, schema, plan_, source):
    record = sql.Identifier(schema, RECORD)
    cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
    creates_schema = cur.fetchone() is None
    if read_owner(cur, schema) is None:
        # What to ask the provider for, before anything is written (as for the tables).
        check_create_privileges(cur, schema, creates_schema)
    out = [sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema))] if creates_schema else []
    out += [sql.SQL("CREATE TABLE IF NOT EXISTS {} (source_id text NOT NULL, host text NOT NULL, path text NOT NULL, "
                   "claimed_at timestamptz NOT NULL DEFAULT now(), history jsonb NOT NULL DEFAULT '[]', "
                   "singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton))").format(record)]
    values = (source.id, source.host, source.path)
    if plan_.action == "update":
        out.append(sql.SQL("UPDATE {} SET host = {}, path = {}").format(
            record, sql.Literal(source.host), sql.Literal(source.path)))
        return out
    previous = sql.Literal(psycopg2.extras.Json([plan_.owner] if plan_.owner else []))
    out.append(sql.SQL("DELETE FROM {}").format(record))
    out.append(sql.SQL("INSERT INTO {} (source_id, host, path, history) VALUES ({}, {}, {}, {})").format(
        record, *map(sql.Literal, values), previous))
    if plan_.action == "take_over":
        # The ledger describes the old source's copy: without it every table is copied again.
        out.append(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(schema, "_migration_ledger")))
    return out


def settle(pg_conn, schema, source, path=None, target_mode="create", takeover_from="", check_mode=False):
    """Plan, and unless ``check_mode``, apply: returns the plan; raises OwnershipError on a
    refusal. ``path`` (the SQLite file) gets its id written when the target is claimed."""
    with pg_conn.cursor() as cur:
        decided = plan(cur, schema, source, target_mode, takeover_from)
    pg_conn.rollback()
    if decided.action == "refuse":
        raise OwnershipError(decided.message)
    if check_mode or decided.action == "keep":
        return decided
    if not source.id:
        source.id = ensure_identity(path)
    try:
        with pg_conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))", (_CLAIM_KEY, schema))
            decided = plan(cur, schema, source, target_mode, takeover_from)   # again, under the lock
            if decided.action == "refuse":
                raise OwnershipError(decided.message)
            if decided.action != "keep":
                for stmt in _statements(cur, schema, decided, source):
                    cur.execute(stmt)
        pg_conn.commit()
    except psycopg2.errors.InsufficientPrivilege as exc:
        pg_conn.rollback()
        raise OwnershipError(f"cannot record the source in schema {schema!r}: {exc.pgerror.strip()} - the "
                             "migration's role must own the target database (or the schema)") from None
    except Exception:
        pg_conn.rollback()
        raise
    return decided


def hold(pg_conn, schema, lock_wait=60):
    """Take the run lock of this target for the connection's life (released when it closes)."""
    with pg_conn.cursor() as cur:
        cur.execute("SET lock_timeout = %s", (f"{int(lock_wait)}s",))
        try:
            cur.execute("SELECT pg_advisory_lock(hashtext(%s), hashtext(%s))", (_RUN_KEY, schema))
        except psycopg2.errors.LockNotAvailable:
            pg_conn.rollback()
            holder = _holder(pg_conn, schema)
            raise OwnershipError(f"another run of the migration is writing to schema {schema!r} of this database"
                                 f"{holder} and did not finish within {lock_wait} s. Nothing was changed: "
                                 "wait for it to finish, then run again") from None
        cur.execute("SET lock_timeout = 0")
    pg_conn.commit()


def _holder(pg_conn, schema):
    with pg_conn.cursor() as cur:
        cur.execute("""SELECT a.pid, a.client_addr::text, a.backend_start::text FROM pg_locks l
                         JOIN pg_stat_activity a ON a.pid = l.pid
                        WHERE l.locktype = 'advisory' AND l.granted AND l.database = (
                              SELECT oid FROM pg_database WHERE datname = current_database())
                          AND l.classid::int = hashtext(%s) AND l.objid::int = hashtext(%s) LIMIT 1""",
                    (_RUN_KEY, schema))
        row = cur.fetchone()
    pg_conn.rollback()
    return f" (server pid {row[0]}, from {row[1] or 'a local socket'}, connected at {row[2]})" if row else ""
