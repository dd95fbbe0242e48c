"""Verification's fast independent path: per key range, one hash of the source rows computed
in SQLite and one of the stored rows computed in PostgreSQL, both over the same canonical text.

The canonical text of a row is its key and each hashed column's value as PostgreSQL prints
the stored value (``x::text`` under ``DateStyle ISO``; floats by their bytes): the
PostgreSQL side is that text, the SQLite side spells it from the source value by the rules
below, in SQL (C code, no per-value Python), written here and sharing nothing with the copy's
conversion code (``convert``). Per target type, the source values spelled here:

- integers: an INTEGER as its decimal digits;
- text, varchar, citext, json: TEXT as itself (an INTEGER as its digits), length-prefixed
  (``<characters>:<text>``) so that no text can pass for a field boundary;
- boolean: 1/0 and the spellings t/true/y/yes/on/1, f/false/n/no/off/0 (lower case, no
  spaces) as ``true``/``false``;
- double precision, real: the IEEE bytes of a REAL (or of an INTEGER a double holds
  exactly), rounded to float4 for ``real``, against ``float8send``/``float4send`` of the
  stored value (exact: the sign of zero included; SQLite's own number text is neither);
- timestamp (and timestamptz, printed in UTC): ISO text ``YYYY-MM-DD HH:MM:SS`` with ``T`` or
  a space, with no fraction or one of six digits (trailing zeros dropped, as PostgreSQL
  prints), or a bare date (midnight); date: ``YYYY-MM-DD``, or that at midnight;
- bytea: a BLOB's (or TEXT's UTF-8) bytes as lower-case hex; uuid: TEXT in the canonical
  8-4-4-4-12 form (any case) or a 16-byte BLOB.

Every other source value of a hashed column is spelled as a byte PostgreSQL never prints
there (``\\x01``): its range's hashes differ, and the caller judges that range row by row with
``readback``'s rules (which know every spelling, offsets, epochs, fractions past the
microsecond...). A range whose hashes agree holds, under every key, a stored value whose
printed text is the canonical spelling of the source value: the same value. Columns of the
other types (numeric, time, interval, jsonb, enum, character(n), ...) are not hashed;
the caller reads them back with ``readback`` for every row.

Only for a table keyed by one integer column (both sides ordered by it, ranges on it); the
caller takes the full path for the others. Quarantined keys are left out on the SQLite side.
"""

import bisect
import hashlib
import json
import struct
import threading

from .introspect import quote_ident
from .pg import sql

INTEGERS = ("bigint", "integer", "smallint")
TEXTS = ("text", "citext", "json")
CHUNK_ROWS = 20_000
BAD = "char(1)"   # a field PostgreSQL never prints: the range is judged by the rules instead
SEP, EOL = "|", "\n"


def _hashed(pg_type):
    t = pg_type.lower()
    return (t in INTEGERS or t in TEXTS or t.startswith("character varying") or t in (
        "boolean", "double precision", "real", "bytea", "uuid", "date") or t.startswith("timestamp"))


_D = "[0-9]"
DATE_GLOB = f"{_D * 4}-{_D * 2}-{_D * 2}"
DATETIME_GLOB = f"{DATE_GLOB}[ T]{_D * 2}:{_D * 2}:{_D * 2}"


def _sqlite_timestamp(x):
    """ISO text of a naive timestamp, as PostgreSQL prints it (seconds always, fraction without
    trailing zeros). Every shape passed through is digits where digits belong, so that no
    field of a row can reach into the next one."""
    spaced = f"substr({x}, 1, 10) || ' ' || substr({x}, 12)"
    return (f"CASE WHEN +{x} < x'' AND {x} GLOB '{DATE_GLOB} {_D * 2}:{_D * 2}:{_D * 2}.{_D * 6}' "
            f"THEN rtrim(rtrim({x}, '0'), '.') "
            f"WHEN typeof({x}) <> 'text' THEN {BAD} "
            f"WHEN length({x}) = 19 AND {x} GLOB '{DATETIME_GLOB}' THEN {spaced} "
            f"WHEN length({x}) BETWEEN 21 AND 26 AND {x} GLOB '{DATETIME_GLOB}.*' AND NOT substr({x}, 21) GLOB '*[^0-9]*' "
            f"THEN rtrim(rtrim({spaced}, '0'), '.') "
            f"WHEN length({x}) = 10 AND {x} GLOB '{DATE_GLOB}' THEN {x} || ' 00:00:00' "
            f"ELSE {BAD} END")


def sqlite_field(x, pg_type):
    """SQLite SQL spelling the source value ``x`` (an SQL expression) as PostgreSQL prints the
    value it must be stored as; never NULL (``N`` for NULL)."""
    t = pg_type.lower()
    if t in INTEGERS:
        # Comparisons, not typeof() (the cost is per value); unary + drops the column's
        # affinity, so TEXT and BLOB sort above every number; a REAL that passes prints with
        # '.' or 'e', which no integer's text has.
        return f"CASE WHEN +{x} <= 9223372036854775807 THEN {x} WHEN {x} IS NULL THEN 'N' ELSE {BAD} END"
    if t in TEXTS or t.startswith("character varying"):
        # TEXT only: numbers sort below '' and BLOBs above every text (x'' is the least BLOB).
        return (f"CASE WHEN +{x} >= '' AND +{x} < x'' THEN length({x}) || ':' || {x} WHEN {x} IS NULL THEN 'N' "
                f"WHEN typeof({x}) = 'integer' THEN length(CAST({x} AS TEXT)) || ':' || {x} ELSE {BAD} END")
    if t == "boolean":
        body = (f"WHEN typeof({x}) IN ('integer', 'real') AND {x} = 1 THEN 'true' "
                f"WHEN typeof({x}) IN ('integer', 'real') AND {x} = 0 THEN 'false' "
                f"WHEN typeof({x}) = 'text' AND lower({x}) IN ('t', 'true', 'y', 'yes', 'on', '1') THEN 'true' "
                f"WHEN typeof({x}) = 'text' AND lower({x}) IN ('f', 'false', 'n', 'no', 'off', '0') THEN 'false'")
    elif t in ("double precision", "real"):
        return f"CASE WHEN {x} IS NULL THEN 'N' ELSE {FLOAT8 if t == 'double precision' else FLOAT4}({x}) END"
    elif t.startswith("timestamp"):
        return f"CASE WHEN {x} IS NULL THEN 'N' ELSE {_sqlite_timestamp(x)} END"
    elif t == "date":
        body = (f"WHEN typeof({x}) = 'text' AND length({x}) = 10 AND {x} GLOB '{DATE_GLOB}' THEN {x} "
                f"WHEN typeof({x}) = 'text' AND length({x}) = 19 AND substr({x}, 11) IN (' 00:00:00', 'T00:00:00') "
                f"AND {x} GLOB '{DATE_GLOB}*' THEN substr({x}, 1, 10)")
    elif t == "bytea":
        body = f"WHEN typeof({x}) IN ('blob', 'text') THEN lower(hex({x}))"
    elif t == "uuid":
        h = f"lower(hex({x}))"
        body = (f"WHEN typeof({x}) = 'text' AND length({x}) = 36 AND lower({x}) GLOB '{_UUID}' THEN lower({x}) "
                f"WHEN typeof({x}) = 'blob' AND length({x}) = 16 THEN substr({h}, 1, 8) || '-' || substr({h}, 9, 4) "
                f"|| '-' || substr({h}, 13, 4) || '-' || substr({h}, 17, 4) || '-' || substr({h}, 21)")
    else:
        raise ValueError(f"no canonical spelling for {pg_type}")
    return f"CASE WHEN {x} IS NULL THEN 'N' {body} ELSE {BAD} END"


FLOAT8, FLOAT4 = "s2p_rowhash_float8", "s2p_rowhash_float4"


def _bits(fmt):
    """The IEEE bytes (hex) of the double or float a REAL (or an INTEGER a double holds
    exactly) must be stored as: PostgreSQL's float8send/float4send of the stored value. A
    Python function, not SQLite's own number text, which is neither exact nor keeps the sign
    of zero; BAD for anything else."""
    def bits(value):
        if type(value) is int and abs(value) <= 2**53:
            value = float(value)
        if type(value) is not float:
            return "\x01"
        try:
            return struct.pack(fmt, value).hex()
        except OverflowError:   # beyond float4's range: no float4 holds it
            return "\x01"
    return bits


def register(conn):
    """The functions the SQLite side needs (on every connection that hashes)."""
    conn.create_function(FLOAT8, 1, _bits(">d"), deterministic=True)
    conn.create_function(FLOAT4, 1, _bits(">f"), deterministic=True)


_HEX = "[0-9a-f]"
_UUID = "-".join(_HEX * n for n in (8, 4, 4, 4, 12))


def pg_field(name, pg_type):
    """PostgreSQL's printed text of the stored value of column ``name`` (``N`` for NULL)."""
    t = pg_type.lower()
    ident = sql.Identifier(name)
    if t in TEXTS or t.startswith("character varying"):
        return sql.SQL("coalesce(length({0}::text) || ':' || {0}::text, 'N')").format(ident)
    if t == "timestamp with time zone":
        return sql.SQL("coalesce(({} AT TIME ZONE 'UTC')::text, 'N')").format(ident)
    if t == "bytea":
        return sql.SQL("coalesce(encode({}, 'hex'), 'N')").format(ident)
    if t in ("double precision", "real"):
        send = "float8send" if t == "double precision" else "float4send"
        return sql.SQL("coalesce(encode({}({}), 'hex'), 'N')").format(sql.SQL(send), ident)
    return sql.SQL("coalesce({}::text, 'N')").format(ident)


class Plan:
    """What of ``target`` is hashed: its integer key, the hashed columns (target name, source
    name, type), the columns left to ``readback``."""

    def __init__(self, target, types, key):
        self.target = target
        self.key = key
        self.columns = [(c.name, c.source, types[c.name]) for c in target.columns
                        if c.name in types and _hashed(types[c.name])]
        self.unhashed = [c.name for c in target.columns if c.name in types and not _hashed(types[c.name])]
        self.source_key = target.column(key).source
        # One call that builds the line (printf in SQLite, concat_ws in PostgreSQL) costs less
        # than a chain of ||, which copies the growing line for every field; both take at
        # most ~100 arguments, so wider tables join groups with ||.
        ours = [sqlite_field(quote_ident(s), t) for _n, s, t in self.columns]
        self.sqlite_line = f" || '{SEP}' || ".join(
            f"printf('{SEP.join(['%s'] * len(group))}', {', '.join(group)})" for group in _groups(ours))
        theirs = [pg_field(n, t) for n, _s, t in self.columns]
        self.pg_line = sql.SQL(f" || '{SEP}' || ").join(
            sql.SQL("concat_ws({}, {})").format(sql.Literal(SEP), sql.SQL(", ").join(group)) for group in _groups(theirs))


def _groups(items, size=90):
    return [items[i:i + size] for i in range(0, len(items), size)]


def plan(target, types):
    """A Plan when ``target`` can be hashed by key ranges (one integer key, the same column in
    SQLite's primary key), else None."""
    table = target.source
    if len(target.primary_key) != 1 or len(table.primary_key) != 1:
        return None
    key = target.primary_key[0]
    column = next((c for c in target.columns if c.name == key), None)
    if column is None or column.source != table.primary_key[0] or types.get(key, "").lower() not in INTEGERS:
        return None
    return Plan(target, types, key)


def encodings_agree(sqlite_conn, cur):
    """Both sides hash UTF-8 bytes: the SQLite file's text encoding and the server's."""
    sqlite_enc = sqlite_conn.execute("PRAGMA encoding").fetchone()[0]
    cur.execute("SHOW server_encoding")
    return sqlite_enc.upper() == "UTF-8" and cur.fetchone()[0].upper() in ("UTF8", "UTF-8")


def ranges(sqlite_conn, the_plan, source_rows, rows=None):
    """Key ranges [(lo, hi)] (inclusive; None: unbounded) of about ``rows`` rows each, the
    first and the last open so that together they cover every key (``rows``: CHUNK_ROWS)."""
    rows = rows or CHUNK_ROWS
    key, table = quote_ident(the_plan.source_key), quote_ident(the_plan.target.source.name)
    # Two subqueries: each is one seek, where min() and max() in one SELECT scan the table.
    lo, hi = sqlite_conn.execute(f"SELECT (SELECT min({key}) FROM {table}), (SELECT max({key}) FROM {table})").fetchone()
    if (lo is not None and not isinstance(lo, int)) or (hi is not None and not isinstance(hi, int)):
        return []   # keys that are not integers: no ranges (the caller takes the full path)
    if lo is None or source_rows <= rows:
        return [(None, None)]
    parts = -(-source_rows // rows)
    if hi - lo + 1 <= 4 * source_rows:
        # Dense keys: ranges of equal width, each holding at most ``width`` (about 4 * rows)
        # keys, so memory stays bounded without reading the keys.
        width = max(1, -(-(hi - lo + 1) // parts))
        edges = list(range(lo + width, hi + 1, width))
    else:   # sparse keys: every ``rows``-th key, from one scan of the key's index
        key = quote_ident(the_plan.source_key)
        edges = [k for (k,) in sqlite_conn.execute(
            f"SELECT k FROM (SELECT {key} AS k, row_number() OVER (ORDER BY {key}) AS n "
            f"FROM {quote_ident(the_plan.target.source.name)}) WHERE n % ? = 1 AND n > 1", (rows,))]
        if not all(isinstance(k, int) for k in edges):
            return []
    bounds = [None, *edges]
    return [(a, (b - 1) if b is not None else None) for a, b in zip(bounds, [*edges, None], strict=True)]


def sqlite_where(column, lo, hi):
    """A key range in SQLite: (condition, arguments); ``column`` quoted already."""
    parts, args = [], []
    if lo is not None:
        parts.append(f"{column} >= ?")
        args.append(lo)
    if hi is not None:
        parts.append(f"{column} <= ?")
        args.append(hi)
    return " AND ".join(parts) or "1", args


def pg_where(column, lo, hi):
    """The same range in PostgreSQL (composed SQL with literals; ``column`` a name)."""
    ident = sql.Identifier(column)
    parts = [sql.SQL("{} >= {}").format(ident, sql.Literal(lo))] if lo is not None else []
    if hi is not None:
        parts.append(sql.SQL("{} <= {}").format(ident, sql.Literal(hi)))
    return sql.SQL(" AND ").join(parts) if parts else sql.SQL("true")


def excluded_keys(rejected_keys, source_key):
    """The quarantine's integer keys (JSON text, as ``readback`` spells them), sorted."""
    keys = set()
    for text in rejected_keys:
        value = json.loads(text).get(source_key)
        if isinstance(value, int) and not isinstance(value, bool):
            keys.add(value)
    return sorted(keys)


def _within(keys, lo, hi):
    """The sorted ``keys`` in [lo, hi] (None: open)."""
    start = 0 if lo is None else bisect.bisect_left(keys, lo)
    end = len(keys) if hi is None else bisect.bisect_right(keys, hi)
    return keys[start:end]


def source_hashes(conns, the_plan, spans, excluded=()):
    """[(rows in range, rows hashed, sha256)] of the SQLite side per range, the keys in
    ``excluded`` (sorted) left out; ``conns`` (one snapshot) share the ranges, each in a
    thread of its own."""
    key = quote_ident(the_plan.source_key)
    table = quote_ident(the_plan.target.source.name)
    out = [None] * len(spans)

    def work(conn, indexes):
        for i in indexes:
            where, args = sqlite_where(key, *spans[i])
            line, extra = the_plan.sqlite_line, []
            left_out = _within(excluded, *spans[i])
            if left_out:
                line = f"CASE WHEN {key} IN (SELECT value FROM json_each(?)) THEN NULL ELSE {line} END"
                extra = [json.dumps(left_out)]
            rows, hashed, text = conn.execute(
                f"SELECT count(*), count(line), CAST(group_concat(line, char(10)) AS BLOB) FROM "
                f"(SELECT {line} AS line FROM {table} WHERE {where} ORDER BY {key})", extra + args).fetchone()
            out[i] = (rows, hashed, hashlib.sha256(text or b"").hexdigest())

    _share(conns, len(spans), work)
    return out


def target_hashes(cur, schema, the_plan, spans):
    """[(rows, sha256)] of the PostgreSQL side per range (sha256: 2-3x the speed of md5 where
    the CPU has SHA instructions, on both sides)."""
    cur.execute("SET LOCAL DateStyle = 'ISO, YMD'")
    cur.execute("SET LOCAL bytea_output = 'hex'")
    out = []
    tid = sql.Identifier(schema, the_plan.target.name)
    key = sql.Identifier(the_plan.key)
    for lo, hi in spans:
        # Rows fed in key order by an ordered subquery (PostgreSQL's documented way for
        # string_agg; an order that ever differed would only send the range to the rules).
        cur.execute(sql.SQL("SELECT count(*), encode(sha256(convert_to(coalesce(string_agg(line, {}), ''), 'UTF8')), "
                            "'hex') FROM "
                            "(SELECT {} AS line FROM {} WHERE {} ORDER BY {}) AS s2p_rows").format(
            sql.Literal(EOL), the_plan.pg_line, tid, pg_where(the_plan.key, lo, hi), key))
        out.append(tuple(cur.fetchone()))
    return out


def _share(conns, count, work):
    """Run ``work(conn, indexes)`` for each connection over an interleaved share of
    ``range(count)``; the first connection in this thread."""
    errors = []

    def guarded(conn, indexes):
        try:
            work(conn, indexes)
        except BaseException as exc:   # re-raised in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(conn, range(i, count, len(conns))), daemon=True)
               for i, conn in enumerate(conns) if i]
    for t in threads:
        t.start()
    guarded(conns[0], range(0, count, len(conns)))
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def compare(sqlite_conns, cur, schema, the_plan, source_rows, rejected_keys, rows=None):
    """Hash both sides per key range at once (PostgreSQL in a thread while SQLite reads).
    Returns dict: ranges (how many), spans (the ranges), differing (the ranges whose hashes
    or row counts differ), rows (source rows hashed in the ranges that agree), in_ranges
    (source rows in any range: fewer than the table's means keys outside them), target_rows,
    source/target checksum (md5 over the ranges' hashes, for the report)."""
    spans = ranges(sqlite_conns[0], the_plan, source_rows, rows)
    excluded = excluded_keys(rejected_keys, the_plan.source_key)
    theirs, failed = [], []

    def pg_side():
        try:
            theirs.extend(target_hashes(cur, schema, the_plan, spans))
        except BaseException as exc:   # re-raised below
            failed.append(exc)

    worker = threading.Thread(target=pg_side, daemon=True)
    worker.start()
    try:
        ours = source_hashes(sqlite_conns, the_plan, spans, excluded)
    finally:
        worker.join()
    if failed:
        raise failed[0]
    differing = [span for span, (_n, hashed, a), (count, b) in zip(spans, ours, theirs, strict=True)
                 if a != b or hashed != count]
    agreeing = sum(hashed for (_n, hashed, a), (count, b) in zip(ours, theirs, strict=True)
                   if a == b and hashed == count)
    return dict(ranges=len(spans), spans=spans, differing=differing, rows=agreeing,
                in_ranges=sum(n for n, _h, _a in ours), target_rows=sum(n for n, _b in theirs),
                source_checksum=hashlib.md5("".join(a for _n, _h, a in ours).encode()).hexdigest(),
                target_checksum=hashlib.md5("".join(b for _n, b in theirs).encode()).hexdigest())
