"""The target's bookkeeping: the ledger (``_migration_ledger``, one row per table: what was
copied, up to which change-log position, and where it was proven equal to the source) and
the rejects table (``_migration_rejects``). Copy, catch-up and verify read and write it
here, and nowhere else."""

from collections import namedtuple

from .pg import sql

LEDGER = "_migration_ledger"
REJECTS = "_migration_rejects"

# One table's row: its source's row count and highest rowid at the copy, the rows copied and
# rejected, the change-log position it is up to date with, and the one it was proven at.
# A tuple, so older callers' positional reads keep working.
LedgerRow = namedtuple("LedgerRow", "source_rows max_rowid rows rejected capture_seq proven_seq")


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
    return {r[0]: LedgerRow(*r[1:]) for r in cur.fetchall()}


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
