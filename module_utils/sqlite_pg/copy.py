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

import json
import time
from dataclasses import dataclass, field

import psycopg2
import psycopg2.errors
from psycopg2 import sql

from . import capture, convert
from .connection import snapshot_readers
from .errors import DataError, MigrationError
from .introspect import quote_ident
from .source import Feed, SourceTable, parallel_chunks

LEDGER = "_migration_ledger"
REJECTS = "_migration_rejects"
ON_ERROR = ("error", "quarantine")
PARALLEL_READERS = 2
# A catch-up stages a table's changed rows in one piece; past this many logged keys the
# table is copied in full instead (streamed in chunks, so memory stays bounded).
REPLAY_MAX_KEYS = 100_000


@dataclass
class TableResult:
    table: str
    status: str                 # copied | appended | caught_up | in_sync | would_(copy|append|catch_up)
    rows: int = 0               # rows now in the target from this source table
    replayed: int = 0           # keys the capture log named (caught_up)
    note: str = ""              # why a table captured changes were logged for was copied in full
    rejected: int = 0           # rows quarantined in _migration_rejects
    bytes: int = 0
    seconds: float = 0.0
    reasons: dict = field(default_factory=dict)   # reason -> count of rejected rows

    @property
    def rows_per_second(self):
        return round(self.rows / self.seconds) if self.seconds else None

    def as_dict(self):
        out = dict(self.__dict__)
        out["seconds"] = round(self.seconds, 3)
        out["rows_per_second"] = self.rows_per_second
        return out


@dataclass
class ColumnPlan:
    target: str
    source: str
    codec: object


# --- bookkeeping tables -------------------------------------------------------------------


def ensure_bookkeeping(cur, schema):
    cur.execute(sql.SQL(
        "CREATE TABLE IF NOT EXISTS {} (table_name text PRIMARY KEY, source_rows bigint NOT NULL, "
        "source_max_rowid bigint, rows_copied bigint NOT NULL, rows_rejected bigint NOT NULL, "
        "bytes bigint NOT NULL, seconds double precision NOT NULL, finished_at timestamptz NOT NULL, "
        "capture_seq bigint)"
    ).format(sql.Identifier(schema, LEDGER)))
    # capture_seq: the change-capture log position this table is up to date with (capture.py);
    # proven_seq: the position at which verification proved the table equal to the source
    # (verify.prove_snapshot), kept by catch-ups, cleared by any other copy.
    cur.execute(sql.SQL("ALTER TABLE {0} ADD COLUMN IF NOT EXISTS capture_seq bigint, "
                        "ADD COLUMN IF NOT EXISTS proven_seq bigint").format(sql.Identifier(schema, LEDGER)))
    cur.execute(sql.SQL(
        "CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, table_name text NOT NULL, "
        "source_key jsonb NOT NULL, reason text NOT NULL, columns text[] NOT NULL, raw jsonb NOT NULL, "
        "rejected_at timestamptz NOT NULL DEFAULT now())"
    ).format(sql.Identifier(schema, REJECTS)))


def read_ledger(cur, schema):
    cur.execute("SELECT to_regclass(%s)", (sql.Identifier(schema, LEDGER).as_string(cur),))
    if cur.fetchone()[0] is None:
        return {}
    # capture_seq, proven_seq through to_jsonb: a ledger written by an older version lacks them.
    # Rows: (source_rows, max_rowid, rows_copied, rows_rejected, capture_seq, proven_seq).
    cur.execute(sql.SQL("SELECT table_name, source_rows, source_max_rowid, rows_copied, rows_rejected, "
                        "(to_jsonb(l) ->> 'capture_seq')::bigint, (to_jsonb(l) ->> 'proven_seq')::bigint "
                        "FROM {} AS l").format(sql.Identifier(schema, LEDGER)))
    return {r[0]: r[1:] for r in cur.fetchall()}


def record_ledger(cur, schema, table, source_rows, max_rowid, rows, rejected, nbytes, seconds, capture_seq,
                  keep_proof=False):
    """``keep_proof``: a catch-up (the proof at an earlier position still holds, with the
    logged changes since); any other copy clears it."""
    cur.execute(sql.SQL(
        "INSERT INTO {0} (table_name, source_rows, source_max_rowid, rows_copied, rows_rejected, bytes, seconds, "
        "finished_at, capture_seq) VALUES (%s, %s, %s, %s, %s, %s, %s, now(), %s) ON CONFLICT (table_name) DO "
        "UPDATE SET source_rows = EXCLUDED.source_rows, source_max_rowid = EXCLUDED.source_max_rowid, "
        "rows_copied = EXCLUDED.rows_copied, rows_rejected = EXCLUDED.rows_rejected, bytes = EXCLUDED.bytes, "
        "seconds = EXCLUDED.seconds, finished_at = EXCLUDED.finished_at, capture_seq = EXCLUDED.capture_seq, "
        "proven_seq = CASE WHEN %s THEN {0}.proven_seq END"
    ).format(sql.Identifier(schema, LEDGER)),
        (table, source_rows, max_rowid, rows, rejected, nbytes, seconds, capture_seq, keep_proof))


def record_proof(cur, schema, table, position):
    """The table was proven equal to the source at capture position ``position``, by a full
    verification on the snapshot at ``position``: its copy now stands for the source there,
    whatever older capture point it had (a table nothing changed in since an earlier pass
    keeps that pass's point; without this it would never be proven)."""
    cur.execute(sql.SQL("UPDATE {} SET proven_seq = %s, capture_seq = %s WHERE table_name = %s "
                        "AND (capture_seq IS NULL OR capture_seq <= %s)").format(
        sql.Identifier(schema, LEDGER)), (position, position, table, position))
    return cur.rowcount == 1


# --- catalog: the target's real column types --------------------------------------------


def target_codecs(cur, schema, target):
    """ColumnPlans for the columns the target table really has, by its catalog types."""
    cur.execute(
        """SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  CASE WHEN t.typtype = 'e' THEN
                    ARRAY(SELECT enumlabel::text FROM pg_enum WHERE enumtypid = t.oid ORDER BY enumsortorder)
                  END
             FROM pg_attribute a
             JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_type t ON t.oid = a.atttypid
            WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped""",
        (schema, target.name),
    )
    catalog = {name: (typ, notnull, labels) for name, typ, notnull, labels in cur.fetchall()}
    if not catalog:
        raise MigrationError(f"table {target.name!r} does not exist in schema {schema!r}: "
                             "create it first (sqlite_pg_schema, phase tables)")
    plans = []
    for col in target.columns:
        if col.name not in catalog:
            raise MigrationError(f"table {target.name!r}: column {col.name!r} does not exist in the target")
        typ, notnull, labels = catalog[col.name]
        # NOT NULL from the catalog, or from the key: SQLite lets NULL into non-integer primary keys.
        plans.append(ColumnPlan(col.name, col.source,
                                convert.codec_for(typ, notnull or col.name in target.primary_key, labels,
                                                  col.interval_unit)))
    return plans


# --- the source side ------------------------------------------------------------------------


def _copy_sql(schema, table, columns, freeze=False):
    return sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, QUOTE E'\\x01'{})").format(
        sql.Identifier(schema, table), sql.SQL(", ").join(sql.Identifier(c.target) for c in columns),
        sql.SQL(", FREEZE" if freeze else ""))


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
        if done and capture_at is not None and done[4] is not None:
            # A capture point past the log's end belongs to an earlier log: nothing is known.
            logged = capture.pending(sqlite_conn, target.source.name, done[4], capture_at) \
                if done[4] <= capture_at else 1
        elif done and capture_at is not None:
            # Copied before capture was installed: the marker its triggers left in the log says
            # that what changed in between is not known (counts and rowids miss an update).
            logged = capture.pending(sqlite_conn, target.source.name, 0, capture_at) or None
            if logged:
                note = "copied before change capture was installed: changes since are not all logged; copied in full"
        if done and not force and done[0] == source_rows and done[1] == max_rowid and not logged:
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, target.name)))
            if cur.fetchone()[0] == done[2]:
                pg_conn.rollback()
                if progress:
                    progress.update(target.source.name, done[2], source_rows, "in_sync")
                return TableResult(target.source.name, "in_sync", rows=done[2], rejected=done[3])
        if check_mode and logged and not note and done[4] <= capture_at and (
                not target.source.primary_key or not capture.unkeyed(sqlite_conn, target.source, done[4], capture_at)):
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
        restore = _fill_defaults(cur, schema, target)
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
            cur.copy_expert(_copy_sql(schema, target.name, columns, freeze), feed, size=1 << 20)
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
            copied, nbytes, bad_ranges, refused = _careful_copy(cur, source, schema, target, columns, append_after)
        else:
            refused = []
        cur.execute("RELEASE SAVEPOINT s2p_fast")

        result = TableResult(target.source.name, "copied", rows=copied, bytes=nbytes, note=note)
        if append_after is not None:
            result.status, result.rows, result.rejected = "appended", done[2] + copied, done[3]
        rejects = []
        for lo, hi in bad_ranges:
            for key, reasons, raw in source.bad_rows(lo, hi):
                rejects.append((key, reasons, raw))
        rejects.extend(refused)
        for key, reasons, raw in rejects:
            if on_error == "error":
                column, reason = next(iter(reasons.items()))
                raise DataError(target.source.name, key, column, raw.get(column), reason)
            _quarantine(cur, schema, target.source.name, key, reasons, raw, result)

        for stmt in restore:
            cur.execute(stmt)
        _set_sequence(cur, schema, target, sqlite_conn)
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
    if not done or done[1] is None or max_rowid is None or max_rowid <= done[1] or source_rows <= done[0]:
        return None
    cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, target.name)))
    return (done[1],) if cur.fetchone()[0] == done[2] else None


def _fill_defaults(cur, schema, target):
    """For target-only columns with an operator-given expression: make it the column default
    for this load (COPY then fills it in); returns the statements that put the old ones back."""
    restore = []
    tid = sql.Identifier(schema, target.name)
    for column, expr in target.fill.items():
        cur.execute("SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d JOIN pg_attribute a "
                    "ON a.attrelid = d.adrelid AND a.attnum = d.adnum WHERE d.adrelid = %s::regclass AND a.attname = %s",
                    (tid.as_string(cur), column))
        old = cur.fetchone()
        cur.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {}").format(
            tid, sql.Identifier(column), sql.SQL(expr)))
        restore.append(sql.SQL("ALTER TABLE {} ALTER COLUMN {} {}").format(
            tid, sql.Identifier(column),
            sql.SQL("SET DEFAULT " + old[0]) if old else sql.SQL("DROP DEFAULT")))
    return restore


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


def _careful_copy(cur, source, schema, target, columns, start=None):
    """Chunk by chunk, each in a savepoint; a refused chunk is bisected to the refused rows."""
    copied = nbytes = 0
    bad_ranges, refused = [], []
    copy = _copy_sql(schema, target.name, columns)

    def attempt(payload):
        cur.execute("SAVEPOINT s2p_chunk")
        try:
            cur.copy_expert(copy, _Bytes(payload))
        except psycopg2.Error as exc:
            cur.execute("ROLLBACK TO SAVEPOINT s2p_chunk")
            return exc
        cur.execute("RELEASE SAVEPOINT s2p_chunk")
        return None

    def bisect(lo, keys):
        """Copy the rows with keys in (lo, keys[-1]]; lo is exclusive, keys are in order."""
        nonlocal copied, nbytes
        good, payload = source.payload(lo, keys[-1])
        error = attempt(payload)
        if error is None:
            copied += good
            nbytes += len(payload)
        elif len(keys) == 1:
            if isinstance(error, psycopg2.errors.ForeignKeyViolation):
                parked.append((lo, keys[-1], error))   # its parent may come later in this table
                return
            column = _column_from_context(error)
            for key, _reasons, raw in source.bad_rows(lo, keys[-1], only_bad=False):
                refused.append((key, {column or "(row)": _pg_reason(error)}, raw))
        else:
            mid = len(keys) // 2
            bisect(lo, keys[:mid])
            bisect(keys[mid - 1], keys[mid:])

    parked = []
    for lo, hi, rows, good, payload in source.chunks(careful=True, start=start):
        if rows != good:
            bad_ranges.append((lo, hi))
        if attempt(payload) is None:
            copied += good
            nbytes += len(payload)
        else:
            bisect(lo, source.keys_in(lo, hi))
    # Rows refused only because their parent row (same table) had not arrived yet: retry
    # them until a pass makes no progress; what is left is a real orphan.
    while parked:
        waiting, parked = parked, []
        for lo, key, _error in waiting:
            good, payload = source.payload(lo, key)
            error = attempt(payload)
            if error is None:
                copied += good
                nbytes += len(payload)
            else:
                parked.append((lo, key, error))
        if len(parked) == len(waiting):
            break
    for lo, key, error in parked:
        column = _column_from_context(error)
        for row_key, _reasons, raw in source.bad_rows(lo, key, only_bad=False):
            refused.append((row_key, {column or "(row)": _pg_reason(error)}, raw))
    return copied, nbytes, bad_ranges, refused


class _Bytes:
    def __init__(self, data):
        self.data = data

    def read(self, _size=-1):
        data, self.data = self.data, b""
        return data


def _pg_reason(error):
    diag = getattr(error, "diag", None)
    text = (diag.message_primary if diag and diag.message_primary else str(error)).strip()
    return f"PostgreSQL refused the value: {text}"


def _column_from_context(error):
    diag = getattr(error, "diag", None)
    context = (diag.context or "") if diag else ""
    marker = ", column "
    if marker in context:
        return context.split(marker, 1)[1].split(":", 1)[0].strip()
    return None


def _quarantine(cur, schema, table, key, reasons, raw, result):
    reason = "; ".join(f"{col}: {why}" for col, why in reasons.items())
    cur.execute(sql.SQL("INSERT INTO {} (table_name, source_key, reason, columns, raw) VALUES (%s, %s, %s, %s, %s)")
                .format(sql.Identifier(schema, REJECTS)),
                (table, json.dumps({k: convert.raw_json(v) for k, v in key.items()}), reason,
                 sorted(reasons), convert.dumps_raw(raw)))
    result.rejected += 1
    for why in reasons.values():
        result.reasons[why] = result.reasons.get(why, 0) + 1


def _set_sequence(cur, schema, target, sqlite_conn):
    """Identity/serial sequences past max(id) on both sides, and past SQLite's AUTOINCREMENT high-water mark."""
    from .introspect import sqlite_sequence

    high_water = sqlite_sequence(sqlite_conn).get(target.source.name, 0) or 0
    for col in target.columns:
        cur.execute("SELECT pg_get_serial_sequence(%s, %s)",
                    (sql.Identifier(schema, target.name).as_string(cur), col.name))
        seq = cur.fetchone()[0]
        if not seq:
            continue
        cur.execute(sql.SQL("SELECT max({}) FROM {}").format(sql.Identifier(col.name),
                                                             sql.Identifier(schema, target.name)))
        # Past the source's own maximum too: a quarantined row keeps its key, and a new row
        # must never take it (a rollback brings both back into SQLite).
        source_top = sqlite_conn.execute(
            f"SELECT max({quote_ident(col.source)}) FROM {quote_ident(target.source.name)} "
            f"WHERE typeof({quote_ident(col.source)}) = 'integer'").fetchone()[0]
        top = max(cur.fetchone()[0] or 0, int(high_water), source_top or 0)
        cur.execute("SELECT setval(%s, %s, %s)", (seq, max(top, 1), top > 0))


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
    return bool(done and done[4] is not None and done[4] <= position)


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
    from . import catchup

    work = []
    with pg_conn.cursor() as cur:
        for target in model.values():
            done = ledger.get(target.source.name)
            if target.source.name not in tracked or not done or done[4] is None or done[4] > position:
                continue
            logged = capture.pending(sqlite_conn, target.source.name, done[4], position)
            if not logged or logged > REPLAY_MAX_KEYS:
                continue   # nothing to do, or so much that the chunked full copy is the better way
            # No key to go by: emptied and loaded again within the replay (such tables, often
            # association tables, are small and may reference rows the replay deletes).
            whole = not target.source.primary_key or not target.primary_key
            if not whole and capture.unkeyed(sqlite_conn, target.source, done[4], position):
                continue   # triggers newer than its copy, or a NULL key: copy_table takes it in full
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, target.name)))
            if cur.fetchone()[0] != done[2]:
                continue
            columns = target_codecs(cur, schema, target)
            work.append((target, columns, SourceTable(sqlite_conn, target.source, columns), done[4], whole))
        if work:
            ensure_bookkeeping(cur, schema)
    if not work:
        pg_conn.rollback()
        return {}, None
    try:
        return catchup.replay(sqlite_conn, pg_conn, work, schema, position, on_error, progress), None
    except psycopg2.Error as exc:
        pg_conn.rollback()   # the tables are copied in full instead
        return {}, f"catch-up refused by PostgreSQL ({_pg_reason(exc).split(': ', 1)[-1]}); copied in full"
