"""The PostgreSQL side of the data path, shared by the copy, the catch-up, the verification
and the rollback: the target's real column types, the COPY statement and its careful
(chunk by chunk, bisecting) form, staging rows in a temporary table, quarantine, and the
sequences after a load."""

import json
from dataclasses import dataclass, field

from . import convert
from .errors import MigrationError
from .introspect import quote_ident
from .ledger import REJECTS
from .pg import psycopg2, sql

# SQLite connections on one snapshot that format a table's key ranges at once.
PARALLEL_READERS = 2


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


def copy_sql(schema, table, columns, freeze=False):
    return sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, QUOTE E'\\x01'{})").format(
        sql.Identifier(schema, table), sql.SQL(", ").join(sql.Identifier(c.target) for c in columns),
        sql.SQL(", FREEZE" if freeze else ""))


def stage(cur, schema, target, columns, name, payload):
    """A temporary table with ``columns`` of the target's types, filled from COPY text."""
    cur.execute(sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
        sql.Identifier(name), sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        sql.Identifier(schema, target.name)))
    if payload:
        cur.copy_expert(sql.SQL("COPY {} FROM STDIN WITH (FORMAT csv, QUOTE E'\\x01')").format(
            sql.Identifier(name)), Bytes(payload))


def fill_defaults(cur, schema, target):
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


def careful_copy(cur, source, schema, target, columns, start=None):
    """Chunk by chunk, each in a savepoint; a refused chunk is bisected to the refused rows."""
    copied = nbytes = 0
    bad_ranges, refused = [], []
    copy = copy_sql(schema, target.name, columns)

    def attempt(payload):
        cur.execute("SAVEPOINT s2p_chunk")
        try:
            cur.copy_expert(copy, Bytes(payload))
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
            column = column_from_context(error)
            for key, _reasons, raw in source.bad_rows(lo, keys[-1], only_bad=False):
                refused.append((key, {column or "(row)": pg_reason(error)}, raw))
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
        column = column_from_context(error)
        for row_key, _reasons, raw in source.bad_rows(lo, key, only_bad=False):
            refused.append((row_key, {column or "(row)": pg_reason(error)}, raw))
    return copied, nbytes, bad_ranges, refused


class Bytes:
    def __init__(self, data):
        self.data = data

    def read(self, _size=-1):
        data, self.data = self.data, b""
        return data


def pg_reason(error):
    diag = getattr(error, "diag", None)
    text = (diag.message_primary if diag and diag.message_primary else str(error)).strip()
    return f"PostgreSQL refused the value: {text}"


def column_from_context(error):
    diag = getattr(error, "diag", None)
    context = (diag.context or "") if diag else ""
    marker = ", column "
    if marker in context:
        return context.split(marker, 1)[1].split(":", 1)[0].strip()
    return None


def quarantine(cur, schema, table, key, reasons, raw, result):
    reason = "; ".join(f"{col}: {why}" for col, why in reasons.items())
    cur.execute(sql.SQL("INSERT INTO {} (table_name, source_key, reason, columns, raw) VALUES (%s, %s, %s, %s, %s)")
                .format(sql.Identifier(schema, REJECTS)),
                (table, json.dumps({k: convert.raw_json(v) for k, v in key.items()}), reason,
                 sorted(reasons), convert.dumps_raw(raw)))
    result.rejected += 1
    for why in reasons.values():
        result.reasons[why] = result.reasons.get(why, 0) + 1


def set_sequence(cur, schema, target, sqlite_conn):
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
