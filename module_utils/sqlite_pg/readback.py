"""Verification's independent path: read each stored value back and judge it against the
SQLite value by rules written here, in Python, that share nothing with the copy's codecs
(``convert``). A codec that changes a value makes the checksums of the copy and of the
codec-converted source agree anyway; this path still sees the difference.

Rows are paired by primary key (the source's keys, read by the same rules, looked up in
the target), or, for a table without one, in load order; quarantined rows are left out by
their recorded keys. Per target type,
what a SQLite value must read back as:

- integers: the same integer (text in PostgreSQL's syntax: ASCII digits, a sign);
- double precision / real: the same double (sign of zero included) / the same float4;
- numeric: the same number; a REAL source reads back as the same double;
- boolean: 0/1 and the spellings true/false, t/f, yes/no, y/n, on/off;
- text: the same text (a number as its text; a BLOB as its UTF-8);
- bytea: the same bytes; json: the same text; jsonb: the same document (object keys in
  any order, every duplicate key and the sign of every zero counted);
- uuid: the same UUID (text in any case, or 16 bytes);
- date, timestamp, timestamptz, time, timetz: the same instant, ISO text with its offset
  applied (timestamp columns) or kept (timetz), fractions rounded half to even to the
  microsecond; epoch numbers by magnitude (``EPOCH_*`` in ``convert``: the documented
  thresholds, not its code);
- interval: integers as a count of the column's unit, date/time text as the difference
  from 1970-01-01.

A value of a type without a rule here (or interval text in PostgreSQL's own syntax) is
counted as unchecked, never as equal.
"""

import datetime
import decimal
import json
import math
import re
import struct
import uuid

from .convert import EPOCH_MS_THRESHOLD, EPOCH_S_MIN, INTERVAL_UNITS, JULIAN_RANGE, raw_json
from .pg import sql
from .rowhash import pg_where, sqlite_where

UNCHECKED = object()   # no rule for this value: not compared
REFUSED = object()     # the rules say PostgreSQL cannot hold it (then the row must be quarantined)

_INTEGER = re.compile(r"[ \t\n\r\v\f]*([+-]?[0-9]+)[ \t\n\r\v\f]*")
_NUMBER = re.compile(r"[ \t\n\r\v\f]*([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)[ \t\n\r\v\f]*")
_MOMENT = re.compile(r"(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d*))?)?)?"
                     r"\s*(Z|z|[+-]\d\d(?::?\d\d)?)?")
_TIME = re.compile(r"(\d\d):(\d\d)(?::(\d\d)(?:\.(\d*))?)?\s*(Z|z|[+-]\d\d(?::?\d\d)?)?")
_TRUE = {"1", "t", "true", "y", "yes", "on"}
_FALSE = {"0", "f", "false", "n", "no", "off"}
_EPOCH = datetime.datetime(1970, 1, 1)
_JULIAN_EPOCH = decimal.Decimal("2440587.5")


def _micros(digits):
    """Fraction digits as microseconds, rounded half to even."""
    if not digits:
        return 0
    return int(decimal.Decimal("0." + digits).scaleb(6).to_integral_value(decimal.ROUND_HALF_EVEN))


def _offset(text):
    if not text or text in ("Z", "z"):
        return datetime.timedelta(0)
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return sign * datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))


def _moment_from_text(text):
    """ISO date/time text as a naive UTC datetime (offset applied), or None."""
    if len(text) in (19, 26) and text[10] in " T" and text[4] == "-" and text[19:20] in ("", "."):
        try:   # the common shapes, by the standard library's parser (no offset, at most six digits)
            moment = datetime.datetime.fromisoformat(text)
            if moment.tzinfo is None:
                return moment
        except ValueError:
            pass
    m = _MOMENT.fullmatch(text.strip())
    if not m:
        return None
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    moment = datetime.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    return moment + datetime.timedelta(microseconds=_micros(fraction)) - _offset(zone)


def _moment_from_number(number):
    value = decimal.Decimal(repr(number)) if isinstance(number, float) else decimal.Decimal(number)
    size = abs(value)
    if JULIAN_RANGE[0] <= size < JULIAN_RANGE[1]:
        seconds = (value - _JULIAN_EPOCH) * 86400
    elif size >= EPOCH_MS_THRESHOLD:
        seconds = value / 1000
    elif size >= EPOCH_S_MIN:
        seconds = value
    else:
        return None
    micros = int((seconds * 1_000_000).to_integral_value(decimal.ROUND_HALF_EVEN))
    return _EPOCH + datetime.timedelta(microseconds=micros)


def _moment(value):
    if isinstance(value, str):
        return _moment_from_text(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _moment_from_number(value)
    return None


def _time_of_day(text):
    """'HH:MM[:SS[.f]]' with an optional offset: (microseconds since midnight, offset)."""
    m = _TIME.fullmatch(text.strip())
    if not m:
        return None
    hour, minute, second, fraction, zone = m.groups()
    total = ((int(hour) * 60 + int(minute)) * 60 + int(second or 0)) * 1_000_000 + _micros(fraction)
    return total, (_offset(zone) if zone else None)


def _json(text):
    """A JSON document for comparison: objects as key-sorted pairs (duplicates kept),
    numbers as (sign, value)."""
    def number(t):
        d = decimal.Decimal(t)
        return ("n", d.is_signed(), abs(d))

    def obj(pairs):
        return ("o", tuple(sorted(pairs, key=lambda kv: kv[0])))

    decoder = json.JSONDecoder(parse_int=number, parse_float=number, object_pairs_hook=obj,
                               parse_constant=lambda t: ("c", t))
    return decoder.decode(text)


def expected(pg_type, value, unit="microseconds"):
    """What the target holds for a SQLite ``value`` in a column of ``pg_type``, in the form
    ``same`` compares; UNCHECKED or REFUSED."""
    if value is None:
        return None
    t = pg_type.lower()
    kind = type(value)
    if t in ("bigint", "integer", "smallint"):
        if kind is int:
            return value
        if kind is float:
            return int(value) if value.is_integer() else REFUSED
        if kind is str:
            m = _INTEGER.fullmatch(value)
            return int(m.group(1)) if m else REFUSED
        return REFUSED
    if t in ("double precision", "real") or t.startswith("numeric"):
        if kind is str:
            m = _NUMBER.fullmatch(value)
            if not m:
                return REFUSED if value.strip().lower().lstrip("+-") not in ("inf", "infinity", "nan") else UNCHECKED
            return ("text", decimal.Decimal(m.group(1)))
        if kind in (int, float):
            return (kind.__name__, value)
        return REFUSED
    if t == "boolean":
        text = str(value).strip().lower() if kind is not bytes else None
        if kind is float and value in (0.0, 1.0):
            text = str(int(value))
        return True if text in _TRUE else False if text in _FALSE else REFUSED
    if t == "bytea":
        return value if kind is bytes else value.encode("utf-8") if kind is str else REFUSED
    if t in ("json", "jsonb"):
        if kind is str:
            return ("doc", value)
        return ("float", value) if kind is float else ("number", value) if kind is int else REFUSED
    if t == "uuid":
        try:
            return uuid.UUID(bytes=value) if kind is bytes else uuid.UUID(value)
        except (ValueError, TypeError, AttributeError):
            return REFUSED
    if t == "date":
        moment = _moment(value)
        return moment.date() if moment and moment.time() == datetime.time(0) else REFUSED
    if t.startswith("timestamp"):
        moment = _moment(value)
        return moment if moment else REFUSED
    if t.startswith("time"):
        read = _time_of_day(value) if kind is str else None
        return read if read else REFUSED
    if t == "interval":
        if kind in (int, float):
            micros = decimal.Decimal(repr(value) if kind is float else value) * INTERVAL_UNITS[unit]
            return datetime.timedelta(microseconds=int(micros)) if micros == int(micros) else REFUSED
        moment = _moment_from_text(value) if kind is str else None
        return moment - _EPOCH if moment else UNCHECKED
    if t == "enum":
        return str(value) if kind is str else REFUSED
    if t in ("text", "citext") or t.startswith("character"):
        if kind is bytes:
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                return REFUSED
        if kind is float:
            return ("float", value)
        return str(value)
    return UNCHECKED


def _same_float(a, b):
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))


def same(pg_type, want, got):
    """Whether the value read back (``got``, as psycopg2 returns it; json, jsonb, time and
    timetz as text) is what the rules expect (``want``)."""
    if want is None or got is None:
        return want is None and got is None
    t = pg_type.lower()
    if t in ("double precision", "real") or t.startswith("numeric"):
        source, number = want
        if t.startswith("numeric"):
            return float(got) == number if source == "float" else decimal.Decimal(got) == number
        if source == "int":
            return got == number   # exactly: a float equals an int only when it holds it
        if t == "real":
            try:
                return struct.pack("f", float(number)) == struct.pack("f", got)
            except OverflowError:
                return False
        return _same_float(float(number), got)
    if t == "bytea":
        return bytes(got) == want
    if t in ("json", "jsonb"):
        form, value = want
        try:
            if form == "float":
                return _same_float(float(got), value)
            if form == "number":
                return json.loads(got) == value
            return got == value if t == "json" else _json(got) == _json(value)
        except ValueError:
            return False
    if t == "uuid":
        return uuid.UUID(str(got)) == want
    if t.startswith("timestamp") and "with time zone" in t:
        return got.astimezone(datetime.UTC).replace(tzinfo=None) == want
    if t.startswith("time") and not t.startswith("timestamp"):
        read = _time_of_day(got)
        if read is None:
            return False
        if "with time zone" in t:
            return read[0] == want[0] and read[1] == (want[1] or datetime.timedelta(0))
        return read[0] == want[0] and want[1] is None
    if isinstance(want, tuple) and want[0] == "float":
        try:
            return _same_float(float(got), want[1])
        except ValueError:
            return False
    if t.startswith("character(") and isinstance(got, str):
        return got.rstrip(" ") == want.rstrip(" ")
    return got == want


def _select(name, pg_type):
    t = pg_type.lower()
    ident = sql.Identifier(name)
    if t in ("json", "jsonb") or (t.startswith("time") and not t.startswith("timestamp")):
        return sql.SQL("{}::text").format(ident)
    return ident


def _key_of(raw):
    return json.dumps({k: raw_json(v) for k, v in raw.items()}, sort_keys=True)


def compare(sqlite_conn, cur, target, schema, types, rejected_keys, limit=10, units=None, chunk=2000,
            only_keys=None, key_range=None, out=None):
    """Pair every source row (but the quarantined) with its target row by primary key and
    judge each value by the rules above. ``types``: {target column: its catalog type};
    ``rejected_keys``: the quarantine's source keys (JSON text); ``only_keys``: (a subquery
    of primary keys, its arguments) to compare those rows only; ``key_range``: (lo, hi),
    inclusive, None for open, of a table keyed by one integer column: the rows of that range
    on both sides; ``out``: a result to add to. Returns a dict: rows compared, values
    unchecked, differences (at most ``limit``), problems."""
    units = units or {}
    out = out if out is not None else dict(rows=0, unchecked=0, mismatches=0, differences=[], problems=[])
    if not target.primary_key:
        if only_keys is None and target.source.has_rowid:
            _compare_in_order(sqlite_conn, cur, target, schema, types, rejected_keys, limit, units, out)
        else:
            out["skipped"] = "no primary key: rows cannot be paired"
        return out
    table = target.source
    cols = [c for c in target.columns if c.name in types]
    key_cols = [target.column(k) for k in target.primary_key]
    src_key_names = table.primary_key or ("rowid",)
    raws = ", ".join('"' + c.source.replace('"', '""') + '"' for c in cols)
    keysel = ", ".join('"' + k.replace('"', '""') + '"' if k != "rowid" else "rowid" for k in src_key_names)
    order = keysel if table.primary_key else "rowid"
    where, args = "", []
    if only_keys is not None:
        pk = ", ".join('"' + k.replace('"', '""') + '"' for k in table.primary_key)
        where, args = f" WHERE ({pk}) IN ({only_keys[0]})", list(only_keys[1])
    elif key_range is not None:
        cond, args = sqlite_where('"' + key_cols[0].source.replace('"', '""') + '"', *key_range)
        where = f" WHERE {cond}"
    rows = sqlite_conn.execute(f'SELECT {keysel}, {raws} FROM "{table.name.replace(chr(34), chr(34) * 2)}"'
                               f"{where} ORDER BY {order}", args)
    nkeys = len(src_key_names)
    tid = sql.Identifier(schema, target.name)
    select = sql.SQL(", ").join(_select(c.name, types[c.name]) for c in cols)
    key_idx = [cols.index(k) for k in key_cols]
    checks = [_checker(types[c.name], units.get(c.name, "microseconds")) for c in cols]
    matched = 0
    while True:
        batch = rows.fetchmany(chunk)
        if not batch:
            break
        wanted = []
        for row in batch:
            if rejected_keys and _key_of(dict(zip(src_key_names, row[:nkeys], strict=True))) in rejected_keys:
                continue
            values = row[nkeys:]
            wanted.append((values, tuple(expected(types[k.name], values[i], units.get(k.name, "microseconds"))
                                         for k, i in zip(key_cols, key_idx, strict=True))))
        usable = [k for _v, k in wanted if all(_key_value(x) is not None for x in k)]
        found = {}
        if usable:
            arrays = [[_key_value(k[j]) for k in usable] for j in range(len(key_cols))]
            integers = types[key_cols[0].name] in ("bigint", "integer", "smallint")
            # One range scan of the index when the keys are dense (a whole table's chunk); sparse
            # keys (the rows changed since a proof: old ones and new ones at the top) are looked
            # up one by one, or the range would read the whole table.
            if len(key_cols) == 1 and integers and max(arrays[0]) - min(arrays[0]) < 4 * len(arrays[0]):
                cur.execute(sql.SQL("SELECT {} FROM {} WHERE {} BETWEEN %s AND %s").format(
                    select, tid, sql.Identifier(key_cols[0].name)), (min(arrays[0]), max(arrays[0])))
            elif len(key_cols) == 1:   # an index scan over the array
                cur.execute(sql.SQL("SELECT {} FROM {} WHERE {} = ANY(%s::{}[])").format(
                    select, tid, sql.Identifier(key_cols[0].name), sql.SQL(types[key_cols[0].name])), arrays)
            else:
                cur.execute(sql.SQL("SELECT {} FROM {} WHERE ({}) IN (SELECT * FROM unnest({}))").format(
                    select, tid, sql.SQL(", ").join(sql.Identifier(k.name) for k in key_cols),
                    sql.SQL(", ").join(sql.SQL("%s::{}[]").format(sql.SQL(types[k.name])) for k in key_cols)), arrays)
            for got in cur.fetchall():
                found[tuple(_norm_key(types[k.name], got[i]) for k, i in zip(key_cols, key_idx, strict=True))] = got
        for values, key in wanted:
            out["rows"] += 1
            got = found.get(tuple(_key_value(x) for x in key))
            if got is None:
                shown_key = {k.name: _show(values[i]) for k, i in zip(key_cols, key_idx, strict=True)}
                _note(out, limit, dict(kind="missing in target when read back", key=shown_key))
                continue
            matched += 1
            for i in _differing(checks, values, got, out):
                shown_key = {k.name: _show(values[j]) for k, j in zip(key_cols, key_idx, strict=True)}
                _note(out, limit, dict(kind="differs when read back", key=shown_key,
                                       columns={cols[i].name: dict(source=_show(values[i]), target=_show(got[i]))}))
    extra = 0
    if only_keys is None:
        span = sql.SQL(" WHERE ") + pg_where(key_cols[0].name, *key_range) if key_range else sql.SQL("")
        cur.execute(sql.SQL("SELECT count(*) FROM {}{}").format(tid, span))
        extra = cur.fetchone()[0] - matched
    if extra:
        _note(out, limit, dict(kind="not in source when read back", row=f"{extra} target row(s) match no source row"))
    problem = (f"read back, {out['mismatches']} value(s) or row(s) differ from the source by the independent "
               "rules (a conversion changed them)")
    out["problems"] = [problem] if out["differences"] else []
    return out


def _differing(checks, values, got, out):
    """The positions whose value read back is not the source's by the rules, one by one
    (lazily: a caller may stop at the first); values without a rule are counted unchecked."""
    for i, (check, v, g) in enumerate(zip(checks, values, got, strict=True)):
        # The value read back is the very value SQLite holds: nothing to judge (a zero still
        # has its sign looked at).
        if type(v) is type(g) and v == g and (v or type(v) is not float):
            continue
        verdict = check(v, g)
        if verdict is UNCHECKED:
            out["unchecked"] += 1
        elif not verdict:
            yield i


_BOOLEAN = {**{k: True for k in _TRUE}, **{k: False for k in _FALSE}}


# Rows of a table without a key that do not pair in order, matched by the rules at most.
MAX_UNORDERED = 1000


def _compare_in_order(sqlite_conn, cur, target, schema, types, rejected_keys, limit, units, out):
    """A table without a key: the copy loads it whole, in rowid order, so its rows are paired
    in that order (the target's by ctid). Rows that do not pair so (the target was reordered)
    are matched by the rules among themselves; what stays unmatched differs."""
    table = target.source
    cols = [c for c in target.columns if c.name in types]
    checks = [_checker(types[c.name], units.get(c.name, "microseconds")) for c in cols]
    raws = ", ".join('"' + c.source.replace('"', '""') + '"' for c in cols)
    taken = {n.lower() for n in table.column_names}
    rowid = next((n for n in ("rowid", "_rowid_", "oid") if n not in taken), None)
    if rowid is None:
        out["skipped"] = "no primary key, and no rowid to order by"
        return
    source = sqlite_conn.execute(f'SELECT {rowid}, {raws} FROM "{table.name.replace(chr(34), chr(34) * 2)}" '
                                 f"ORDER BY {rowid}")
    source = (row[1:] for row in source if not (rejected_keys and _key_of({"rowid": row[0]}) in rejected_keys))
    select = sql.SQL(", ").join(_select(c.name, types[c.name]) for c in cols)
    ordered = cur.connection.cursor(name="s2p_readback")   # server-side: bounded memory
    ordered.itersize = 5000
    ordered.execute(sql.SQL("SELECT {} FROM {} ORDER BY ctid").format(select, sql.Identifier(schema, target.name)))
    target_rows = iter(ordered)

    def equal(values, got):
        return next(_differing(checks, values, got, out), None) is None

    lonely_source, lonely_target = [], []
    for values in source:
        out["rows"] += 1
        got = next(target_rows, None)
        if got is None or not equal(values, got):
            lonely_source.append(values)
            if got is not None:
                lonely_target.append(got)
    lonely_target.extend(target_rows)
    ordered.close()
    if len(lonely_source) > MAX_UNORDERED or len(lonely_target) > MAX_UNORDERED:
        _note(out, limit, dict(kind="differs when read back", row=f"{len(lonely_source)} source row(s) do not "
                                                                    "pair with the target's in order"))
    else:
        for values in lonely_source:
            hit = next((k for k, got in enumerate(lonely_target) if equal(values, got)), None)
            if hit is None:
                _note(out, limit, dict(kind="missing in target when read back",
                                       row={c.name: _show(v) for c, v in zip(cols, values, strict=True)}))
            else:
                lonely_target.pop(hit)
        for got in lonely_target:
            _note(out, limit, dict(kind="not in source when read back",
                                   row={c.name: _show(g) for c, g in zip(cols, got, strict=True)}))
    if out["differences"]:
        out["problems"].append(f"read back, {out['mismatches']} row(s) of a table without a key differ from the "
                               "source by the independent rules (a conversion changed them)")


def _checker(pg_type, unit):
    """check(source value, value read back) -> True, False or UNCHECKED, for one column
    (the common types by a shortcut of the same rules)."""
    t = pg_type.lower()
    if t == "timestamp without time zone":
        def check_timestamp(value, got):
            return _moment(value) == got
        return check_timestamp
    if t == "boolean":
        def check_boolean(value, got):
            if type(value) is int:
                return _BOOLEAN.get(str(value)) is got
            return same(t, expected(t, value), got)
        return check_boolean
    if t == "jsonb":
        def check_jsonb(value, got):
            if type(value) is str:
                try:
                    return _json(got) == _json(value)
                except ValueError:
                    return False
            return same(t, expected(t, value), got)
        return check_jsonb

    def check(value, got):
        want = expected(pg_type, value, unit)
        if want is UNCHECKED or want is REFUSED:
            return want is UNCHECKED and UNCHECKED
        return same(pg_type, want, got)
    return check


def _key_value(x):
    """A key as psycopg2 adapts it, for the lookup; None when the rules found none."""
    if x is None or x is UNCHECKED or x is REFUSED:
        return None
    if isinstance(x, tuple):
        return x[1]
    if isinstance(x, uuid.UUID):
        return str(x)
    return x


def _norm_key(pg_type, value):
    if pg_type.lower() == "uuid":
        return str(uuid.UUID(str(value)))
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        return value.astimezone(datetime.UTC).replace(tzinfo=None)
    return value


def _note(out, limit, diff):
    out["mismatches"] += 1
    if len(out["differences"]) < limit:
        out["differences"].append(diff)


def _show(value):
    if isinstance(value, (bytes, memoryview)):
        return "\\x" + bytes(value).hex()
    if isinstance(value, float):
        return repr(value)
    if value is None or isinstance(value, (bool, int)):
        return value
    text = str(value)
    return text if len(text) <= 200 else text[:197] + "..."
