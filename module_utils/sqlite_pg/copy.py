"""Stream SQLite tables into PostgreSQL through COPY.

The fast path: SQLite formats each chunk of rows as COPY CSV text in SQL (see
``convert``), a reader thread hands the bytes over, and one COPY per table takes them, so
SQLite and PostgreSQL work on both cores while Python only moves bytes. Rows whose
values cannot be stored are left out of the stream by the SQL itself and dealt with
afterwards, one by one, by the ``on_error`` policy. If PostgreSQL still refuses the
stream (invalid UTF-8, a value out of a numeric's range), the table is copied again
chunk by chunk, and a refused chunk is bisected down to the rows PostgreSQL refuses.

Each table is copied in its own transaction, with a row in ``_migration_ledger``: an
interrupted run (kill -9, lost connection) leaves whole tables or nothing, and a rerun
copies only the tables that are not done or whose source changed since.
"""

import time

from . import capture, catchup, convert, frozen
from .connection import snapshot_readers
from .errors import DataError, MigrationError
from .introspect import quote_ident
from .ledger import REJECTS, ensure_bookkeeping, read_ledger, record_ledger
from .pg import psycopg2, sql
from .pgcopy import (
    PARALLEL_READERS,
    TableResult,
    careful_copy,
    copy_sql,
    fill_defaults,
    pg_reason,
    quarantine,
    set_sequence,
    target_codecs,
)
from .source import Feed, SourceTable, parallel_chunks

ON_ERROR = ("error", "quarantine")
# A catch-up stages a table's changed rows in one piece; past this many logged keys the
# table is copied in full instead (streamed in chunks, so memory stays bounded).
REPLAY_MAX_KEYS = 100_000


# --- the source side ------------------------------------------------------------------------


def copy_table(sqlite_conn, pg_conn, target, schema, on_error="error", progress=None, force=False,
               check_mode=False, ledger=None, readers=(), loading=(), capture_at=None):
    """Copy one table; returns a TableResult. Commits its own transaction.

    ``readers``: more SQLite connections on the same snapshot, to format a large table's
    key ranges in parallel. ``capture_at``: the capture log position of the snapshot when
    the table's changes are logged (capture.py), else None.
    """
    start = time.monotonic()
    with pg_conn.cursor() as cur:
        if check_mode:
            cur.execute("SELECT to_regclass(%s)", (sql.Identifier(schema, target.name).as_string(cur),))
            if cur.fetchone()[0] is None:   # planned ahead of the schema: all of it would be copied
                rows = sqlite_conn.execute(f"SELECT count(*) FROM {quote_ident(target.source.name)}").fetchone()[0]
                pg_conn.rollback()
                return TableResult(target.source.name, "would_copy", rows=rows)
        columns = target_codecs(cur, schema, target)
        source = SourceTable(sqlite_conn, target.source, columns)
        source_rows, max_rowid = source.stats()
        if ledger is None:
            ledger = read_ledger(cur, schema)
        done = ledger.get(target.source.name)
        # With capture, "nothing logged since" is what says in sync; the counts must agree too
        # (a row INSERT OR REPLACE removed for a UNIQUE conflict is never logged).
        logged, note = None, ""
        if done and capture_at is not None and done.capture_seq is not None:
            # A capture point past the log's end belongs to an earlier log: nothing is known.
            logged = capture.pending(sqlite_conn, target.source.name, done.capture_seq, capture_at) \
                if done.capture_seq <= capture_at else 1
        elif done and capture_at is not None:
            # Copied before capture was installed: the marker its triggers left in the log says
            # that what changed in between is not known (counts and rowids miss an update).
            logged = capture.pending(sqlite_conn, target.source.name, 0, capture_at) or None
            if logged:
                note = "copied before change capture was installed: changes since are not all logged; copied in full"
        if done and not force and done.source_rows == source_rows and done.max_rowid == max_rowid and not logged:
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, target.name)))
            if cur.fetchone()[0] == done.rows:
                pg_conn.rollback()
                if progress:
                    progress.update(target.source.name, done.rows, source_rows, "in_sync")
                return TableResult(target.source.name, "in_sync", rows=done.rows, rejected=done.rejected)
        if check_mode and logged and not note and done.capture_seq <= capture_at and (
                not target.source.primary_key or not capture.unkeyed(sqlite_conn, target.source, done.capture_seq, capture_at)):
            pg_conn.rollback()
            return TableResult(target.source.name, "would_catch_up", rows=source_rows, replayed=logged)
        # Logged changes (updates, deletes) are not appends: a table they were not replayed
        # into is copied in full.
        appendable = not force and logged is None
        append_after = _appendable(cur, schema, target, done, source_rows, max_rowid) if appendable else None
        if check_mode:
            pg_conn.rollback()
            return TableResult(target.source.name, "would_append" if append_after else "would_copy",
                               rows=source_rows)

        ensure_bookkeeping(cur, schema)
        # The app's deferred foreign keys (target: existing) are checked row by row here, as
        # plain ones are: a child of a quarantined parent is then quarantined too, instead of
        # the whole table failing at COMMIT.
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        tid = sql.Identifier(schema, target.name)
        if append_after is None:
            cur.execute(sql.SQL("DELETE FROM {} WHERE table_name = %s").format(sql.Identifier(schema, REJECTS)),
                        (target.source.name,))
        restore = fill_defaults(cur, schema, target)
        cur.execute("SAVEPOINT s2p_fast")
        def on_rows(done):
            if progress:
                progress.update(target.source.name, done, source_rows)

        if append_after is None:
            freeze = _truncate(cur, schema, target, loading)
            feed = Feed(parallel_chunks(source, [sqlite_conn, *readers], source_rows), on_rows=on_rows)
        else:
            freeze = False
            feed = Feed([source.chunks(start=append_after)], on_rows=on_rows)
        try:
            cur.copy_expert(copy_sql(schema, target.name, columns, freeze), feed, size=1 << 20)
            copied, nbytes, bad_ranges = feed.rows, feed.bytes, feed.bad_ranges
            fast = True
        except psycopg2.Error:
            fast = False
        finally:
            feed.close()
        if not fast:
            # PostgreSQL refused something the SQL checks cannot see: go chunk by chunk.
            cur.execute("ROLLBACK TO SAVEPOINT s2p_fast")
            if append_after is None:
                _truncate(cur, schema, target, loading)
            copied, nbytes, bad_ranges, refused = careful_copy(cur, source, schema, target, columns, append_after)
        else:
            refused = []
        cur.execute("RELEASE SAVEPOINT s2p_fast")

        result = TableResult(target.source.name, "copied", rows=copied, bytes=nbytes, note=note)
        if append_after is not None:
            result.status, result.rows, result.rejected = "appended", done.rows + copied, done.rejected
        rejects = []
        for lo, hi in bad_ranges:
            for key, reasons, raw in source.bad_rows(lo, hi):
                rejects.append((key, reasons, raw))
        rejects.extend(refused)
        for key, reasons, raw in rejects:
            if on_error == "error":
                column, reason = next(iter(reasons.items()))
                raise DataError(target.source.name, key, column, raw.get(column), reason)
            quarantine(cur, schema, target.source.name, key, reasons, raw, result)

        for stmt in restore:
            cur.execute(stmt)
        set_sequence(cur, schema, target, sqlite_conn)
        cur.execute(sql.SQL("ANALYZE {}").format(tid))
        result.seconds = time.monotonic() - start
        record_ledger(cur, schema, target.source.name, source_rows, max_rowid, result.rows, result.rejected,
                      result.bytes, result.seconds, capture_at if append_after is None else None)
    pg_conn.commit()
    if progress:
        progress.update(target.source.name, result.rows, source_rows,
                        result.status)
    return result


def _appendable(cur, schema, target, done, source_rows, max_rowid):
    """The rowid after which only new rows were added since the last copy, or None.

    The catch-up for apps that mostly insert: rows past the recorded highest rowid are
    appended instead of copying the table again. Updates and deletes of older rows are not
    seen here; verification is the check, and a table that fails it is copied with force.
    """
    if not done or done.max_rowid is None or max_rowid is None or max_rowid <= done.max_rowid or source_rows <= done.source_rows:
        return None
    cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, target.name)))
    return (done.max_rowid,) if cur.fetchone()[0] == done.rows else None


def _truncate(cur, schema, target, loading=()):
    """Empty the table for a fresh load. True when COPY may use FREEZE (emptied in this transaction).

    A table other tables reference is emptied with CASCADE only when every referencing table
    is loaded in this run too (parents load first, so the children are copied again after);
    otherwise rows the app wrote on PostgreSQL could be lost, and the copy refuses.
    """
    tid = sql.Identifier(schema, target.name)
    cur.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(tid))
    has_rows = cur.fetchone()[0]
    cur.execute("SELECT DISTINCT conrelid::regclass::text, conrelid FROM pg_constraint "
                "WHERE confrelid = %s::regclass AND contype = 'f' AND conrelid <> confrelid", (tid.as_string(cur),))
    referencing = cur.fetchall()
    if referencing:
        if not has_rows:
            return False
        cur.execute("SELECT to_regclass(t)::oid FROM unnest(%s::text[]) t",
                    ([sql.Identifier(schema, name).as_string(cur) for name in loading],))
        loading_oids = {r[0] for r in cur.fetchall()}
        outside = sorted(name for name, oid in referencing if oid not in loading_oids)
        if outside:
            raise MigrationError(
                f"table {target.name!r} must be copied again but tables outside this run reference it "
                f"({', '.join(outside)}); include them, or drop those foreign keys first")
        cur.execute(sql.SQL("TRUNCATE {} CASCADE").format(tid))
        return False
    cur.execute(sql.SQL("TRUNCATE {}").format(tid))
    return True


def copy_tables(sqlite_conn, pg_conn, model, schema, on_error="error", progress=None, force=False,
                check_mode=False, on_snapshot=None):
    """Copy every table of the model from one consistent snapshot of the source.

    ``on_snapshot(readers, position)`` runs after the copy, still on that snapshot (say, to
    prove the copy equal to it); its result is returned beside the table results."""
    if on_error not in ON_ERROR:
        raise MigrationError(f"on_error must be one of {', '.join(ON_ERROR)}")
    with pg_conn.cursor() as cur:
        ledger = read_ledger(cur, schema)
    pg_conn.rollback()
    # One snapshot for every table, read by up to two connections (the machine's cores).
    readers = snapshot_readers(sqlite_conn, 0 if check_mode else PARALLEL_READERS - 1)
    for reader in readers:
        convert.register_functions(reader)
    try:
        position, tracked = capture.position(sqlite_conn)
        caught_up, refused = {}, None
        if position is not None and not force and not check_mode:
            caught_up, refused = _catch_up(sqlite_conn, pg_conn, model, schema, ledger, position, tracked, on_error,
                                           progress)
            if caught_up:
                with pg_conn.cursor() as cur:
                    ledger = read_ledger(cur, schema)
                pg_conn.rollback()
        loading = {t.name for t in model.values()}
        results = []
        for target in model.values():
            at = position if target.source.name in tracked else None
            result = copy_table(sqlite_conn, pg_conn, target, schema, on_error, progress, force, check_mode,
                                ledger, readers[1:], loading, at)
            entry = caught_up.get(target.source.name)
            if entry and result.status == "in_sync":
                result = TableResult(target.source.name, "caught_up", rows=entry["rows"],
                                     rejected=entry["total_rejected"], seconds=entry["seconds"],
                                     replayed=entry["keys"], reasons=entry["reasons"])
            elif entry and not entry["accounted"]:
                result.note = (f"after the catch-up {entry['source_rows']} source rows but {entry['rows']} copied + "
                               f"{entry['total_rejected']} rejected: a change was not logged; copied in full")
            elif refused and result.status == "copied" and done_before(ledger, target, position):
                result.note = refused
            results.append(result)
        if on_snapshot is not None:
            return results, on_snapshot(readers, position)
        return results
    except Exception:
        pg_conn.rollback()
        raise
    finally:
        for reader in readers:
            reader.execute("ROLLBACK")
        for reader in readers[1:]:
            reader.close()


def done_before(ledger, target, position):
    """Whether the table had a capture point the catch-up could have served."""
    done = ledger.get(target.source.name)
    return bool(done and done.capture_seq is not None and done.capture_seq <= position)


def prune_capture_log(path, sqlite_conn, pg_conn, schema):
    """Drop log entries every table has caught up with (the log only grows otherwise)."""
    if capture.position(sqlite_conn)[0] is None:
        return 0
    with pg_conn.cursor() as cur:
        ledger = read_ledger(cur, schema)
    pg_conn.rollback()
    # Entries after a table's proof stay: the difference since the proof is verified from them.
    return capture.prune(path, {name: min(s for s in row[4:6] if s is not None)
                                for name, row in ledger.items() if row[4] is not None})


def _catch_up(sqlite_conn, pg_conn, model, schema, ledger, position, tracked, on_error, progress):
    """Replay the capture log into the tables it can serve (one transaction); {} when none.

    A table qualifies when its triggers are in place, its last copy recorded a capture
    point, the log names at most REPLAY_MAX_KEYS changes and no key-less entry (unless the
    table has no key at all: then it is reloaded within the replay), and the target still
    holds what the ledger says; the others (and all of them, if PostgreSQL refuses the
    replay) are copied by copy_table.
    """

    work = []
    with pg_conn.cursor() as cur:
        for target in model.values():
            done = ledger.get(target.source.name)
            if target.source.name not in tracked or not done or done.capture_seq is None or done.capture_seq > position:
                continue
            logged = capture.pending(sqlite_conn, target.source.name, done.capture_seq, position)
            if not logged or logged > REPLAY_MAX_KEYS:
                continue   # nothing to do, or so much that the chunked full copy is the better way
            # No key to go by: emptied and loaded again within the replay (such tables, often
            # association tables, are small and may reference rows the replay deletes).
            whole = not target.source.primary_key or not target.primary_key
            if not whole and capture.unkeyed(sqlite_conn, target.source, done.capture_seq, position):
                continue   # triggers newer than its copy, or a NULL key: copy_table takes it in full
            # Inside cutover's freeze the count after the replay is the check (a target that lost
            # rows leaves the table unaccounted for, and the verification then fails it).
            if not frozen.active():
                cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, target.name)))
                if cur.fetchone()[0] != done.rows:
                    continue
            columns = target_codecs(cur, schema, target)
            work.append((target, columns, SourceTable(sqlite_conn, target.source, columns), done.capture_seq, whole))
        if work:
            ensure_bookkeeping(cur, schema)
    if not work:
        pg_conn.rollback()
        return {}, None
    try:
        return catchup.replay(sqlite_conn, pg_conn, work, schema, position, on_error, progress), None
    except psycopg2.Error as exc:
        pg_conn.rollback()   # the tables are copied in full instead
        return {}, f"catch-up refused by PostgreSQL ({pg_reason(exc).split(': ', 1)[-1]}); copied in full"
