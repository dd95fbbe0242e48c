"""How a SQLite column spells its values, so a rollback writes each value back the same way.

SQLite stores date/times, booleans and uuids as the app wrote them, and apps differ: Django
writes ``2024-01-01 00:00:00`` (a fraction only when it is not zero), SQLAlchemy
``2024-01-01 00:00:00.000000``, a JavaScript app ``2024-01-01T00:00:00.000Z``; booleans are
0/1 or ``'true'``; a uuid has 32 hex digits or 36 characters. Apps compare that text (an ORM's
exact lookup binds the value in its own spelling), so a row written back in another spelling
is the same value but is no longer found.

The rule: a rollback writes each value in the spelling its column already uses in the SQLite
file. ``learn`` reads it from the column's values with one query (the most recent
``SAMPLE_ROWS`` non-NULL values by rowid: what the app writes now); ``decide`` turns those
counts into a ``Spelling`` (pure, one aspect at a time); ``to_sqlite`` writes a value read
from PostgreSQL in it. Only the spelling follows the column, never the value: each spelling
is one the copy's codecs read back as the same value, so verification proves it.

Each aspect is decided on its own. An aspect the sampled values disagree on, or that no
value shows (an empty column, numbers where text is looked for), takes the default,
``DEFAULT``: SQLAlchemy's spelling (space, six fraction digits always, no offset; 0/1; the
uuid as the declared type says; decimals as numbers).
"""

import datetime
import decimal
import json
import re
import uuid
from dataclasses import dataclass, replace

from .convert import EPOCH_MS_THRESHOLD, EPOCH_S_MIN, INTERVAL_UNITS, epoch_text
from .introspect import quote_ident

SAMPLE_ROWS = 10_000

# Offset suffixes a date/time column may use, as SQL GLOB patterns of what follows the
# seconds (and fraction); '' is none.
OFFSET_FORMS = (("Z", "Z"), ("+00:00", "[+-][0-9][0-9]:[0-9][0-9]"), ("+0000", "[+-][0-9][0-9][0-9][0-9]"),
                ("+00", "[+-][0-9][0-9]"))
# Boolean words, true then false, each in the case the column uses.
BOOLEAN_PAIRS = (("true", "false"), ("t", "f"), ("yes", "no"), ("y", "n"), ("on", "off"), ("1", "0"))


@dataclass(frozen=True)
class Spelling:
    """How a column writes its values. Date/times: ``shape`` ('date': date only, while the
    time is midnight; 'datetime': always with a time; 'epoch_s', 'epoch_ms', 'epoch_s_real':
    Unix time as an integer of seconds or milliseconds, or a real of seconds; '': as the
    value's type says),
    ``separator`` (' ' or 'T'), ``fraction`` ('always', or 'nonzero': whole seconds without
    one), ``digits`` (fraction digits, when the value has no more), ``offset`` (suffix for
    UTC: '', 'Z', '+00:00', '+0000', '+00'). Booleans: ``true``/``false``. Uuids: ``uuid``
    ('hex', 'dashed', 'bytes'; '' as the declared type says) and ``upper``. Decimals:
    ``number_text`` (written as text, as the column holds them). JSON read from jsonb:
    ``json_compact`` (no space after ``:`` and ``,``), ``json_ascii`` (non-ASCII escaped as
    ``\\uXXXX``, as Python's ``json.dumps`` writes it by default)."""

    shape: str = ""
    separator: str = " "
    fraction: str = "always"
    digits: int = 6
    offset: str = ""
    true: object = 1
    false: object = 0
    uuid: str = ""
    upper: bool = False
    number_text: bool = False
    json_compact: bool = False
    json_ascii: bool = False


DEFAULT = Spelling()


def family(pg_type, declared=""):
    """Which spelling a column of ``pg_type`` (declared ``declared`` in SQLite) has to learn:
    'moment' (timestamps, dates, an interval kept as the epoch plus the duration), 'time',
    'boolean', 'uuid', 'number', 'json' (jsonb, which PostgreSQL prints its own way), or None
    (its values go back in one spelling)."""
    base = pg_type.split("(")[0].strip()
    if base.startswith("timestamp") or base == "date":
        return "moment"
    if base.startswith("time"):
        return "time"
    if base == "interval":
        return "moment" if ("DATE" in declared.upper() or "TIME" in declared.upper()) else None
    return {"boolean": "boolean", "uuid": "uuid", "numeric": "number", "jsonb": "json"}.get(base)


def _count(cond):
    return f"coalesce(sum({cond}), 0)"


def _magnitude(low, high):
    """``low <= abs(v) < high`` without abs(), which fails on the least 64-bit integer."""
    return f"(v >= {low} AND v < {high} OR v <= -{low} AND v > -{high})"


def census_sql(kind):
    """The select list (over a column ``v``) whose row ``decide`` reads, as (names, SQL)."""
    text = "typeof(v) = 'text'"
    if kind in ("moment", "time"):
        at = 20 if kind == "moment" else 9        # where a fraction's '.' stands, after the seconds
        shape = "'????-??-??[ T]??:??:??*'" if kind == "moment" else "'??:??:??*'"
        full = f"{text} AND v GLOB {shape}"
        tail = f"substr(v, {at + 1})"
        digits = f"substr({tail}, 1, length({tail}) - length(ltrim({tail}, '0123456789')))"
        frac = f"{full} AND substr(v, {at}, 1) = '.'"
        rest = f"ltrim(substr(v, {at}), '.0123456789')"
        parts = [("values", "count(*)"), ("text", _count(text)),
                 ("dates", _count(f"{text} AND v GLOB '????-??-??'")), ("full", _count(full)),
                 ("tee", _count(f"{full} AND substr(v, 11, 1) = 'T'")), ("fraction", _count(frac)),
                 ("zero", _count(f"{frac} AND ltrim({digits}, '0') = ''")),
                 ("min_digits", f"min(CASE WHEN {frac} THEN length({digits}) END)"),
                 ("max_digits", f"max(CASE WHEN {frac} THEN length({digits}) END)"),
                 ("offset_", _count(f"{full} AND {rest} = ''"))]
        parts += [(f"offset_{form}", _count(f"{full} AND {rest} GLOB '{glob}'")) for form, glob in OFFSET_FORMS]
        # Numbers the copy reads as Unix time (convert.EPOCH_*): seconds or milliseconds.
        seconds = _magnitude(EPOCH_S_MIN, EPOCH_MS_THRESHOLD)
        parts += [("epoch_s", _count(f"typeof(v) = 'integer' AND {seconds}")),
                  ("epoch_s_real", _count(f"typeof(v) = 'real' AND {seconds}")),
                  ("epoch_ms", _count(f"typeof(v) = 'integer' AND "
                                      f"{_magnitude(EPOCH_MS_THRESHOLD, EPOCH_MS_THRESHOLD * 1000)}"))]
    elif kind == "boolean":
        words = ", ".join(f"'{w}'" for pair in BOOLEAN_PAIRS for w in pair)
        trues = ", ".join(f"'{t}'" for t, _f in BOOLEAN_PAIRS)
        falses = ", ".join(f"'{f}'" for _t, f in BOOLEAN_PAIRS)
        parts = [("values", "count(*)"), ("text", _count(f"{text} AND lower(v) IN ({words})"))]
        for name, which in (("true", trues), ("false", falses)):
            cond = f"{text} AND lower(v) IN ({which})"
            parts += [(f"min_{name}", f"min(CASE WHEN {cond} THEN v END)"),
                      (f"max_{name}", f"max(CASE WHEN {cond} THEN v END)")]
    elif kind == "uuid":
        parts = [("values", "count(*)"), ("hex", _count(f"{text} AND length(v) = 32")),
                 ("dashed", _count(f"{text} AND length(v) = 36")),
                 ("bytes", _count("typeof(v) = 'blob' AND length(v) = 16")),
                 ("upper", _count(f"{text} AND v GLOB '*[A-F]*'")), ("lower", _count(f"{text} AND v GLOB '*[a-f]*'"))]
    elif kind == "number":
        parts = [("values", "count(*)"), ("text", _count(text))]
    elif kind == "json":
        # An escape of a character past ASCII (\u0080 and up); a character past ASCII as itself.
        escaped = " OR ".join(f"v GLOB '*\\u{g}*'" for g in (
            "00[89a-fA-F][0-9a-fA-F]", "0[1-9a-fA-F][0-9a-fA-F][0-9a-fA-F]",
            "[1-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F]"))
        parts = [("values", "count(*)"), ("text", _count(text)),
                 ("colon", _count(f"{text} AND instr(v, '\":') > 0")),
                 ("colon_spaced", _count(f"{text} AND instr(v, '\": ') > 0")),
                 ("comma", _count(f"{text} AND instr(v, ',') > 0")),
                 ("comma_spaced", _count(f"{text} AND instr(v, ', ') > 0")),
                 ("escaped", _count(f"{text} AND ({escaped})")),
                 ("raw", _count(f"{text} AND length(CAST(v AS BLOB)) != length(v)"))]
    else:
        raise ValueError(kind)
    return [n for n, _s in parts], ", ".join(s for _n, s in parts)


def decide(kind, counts):
    """The column's ``Spelling`` from ``census_sql``'s counts (a dict by name). Pure."""
    if not counts.get("values"):
        return DEFAULT
    if kind in ("moment", "time"):
        return _decide_moment(counts)
    if kind == "boolean":
        return _decide_boolean(counts)
    if kind == "uuid":
        n = counts["values"]
        form = next((f for f in ("hex", "dashed", "bytes") if counts[f] == n), "")
        return Spelling(uuid=form, upper=form in ("hex", "dashed") and counts["upper"] > 0 and not counts["lower"])
    if kind == "number":
        return Spelling(number_text=counts["text"] == counts["values"])
    if kind == "json":
        # PostgreSQL prints jsonb with ', ' and ': ' and non-ASCII as itself (Python's spacing).
        compact = bool(counts["colon"] or counts["comma"]) and not (counts["colon_spaced"] or counts["comma_spaced"])
        return Spelling(json_compact=compact, json_ascii=bool(counts["escaped"]) and not counts["raw"])
    return DEFAULT


def _decide_moment(c):
    text, full = c["text"], c["full"]
    if not text:
        # Numbers: Unix time in the column's one unit (an integer of seconds or milliseconds,
        # or a real of seconds); a mix, Julian days or others: written as text, as before.
        epoch = next((form for form in ("epoch_s", "epoch_ms", "epoch_s_real") if c.get(form) == c["values"]), "")
        return Spelling(shape=epoch) if epoch else DEFAULT
    shape = "date" if c["dates"] == text else "datetime" if full == text else ""
    if not full:
        return Spelling(shape=shape)
    separator = "T" if c["tee"] == full else " "
    with_fraction, zero = c["fraction"], c["zero"]
    # Whole seconds without a fraction and never a zero one: the fraction is written only when
    # it is not zero (Django, Python's str()). Every value with one: always. Both: mixed.
    fraction = "nonzero" if with_fraction < full and not zero else "always"
    digits = c["min_digits"] if with_fraction and c["min_digits"] == c["max_digits"] else 6
    offset = next((form for form in ("", *(f for f, _g in OFFSET_FORMS)) if c[f"offset_{form}"] == full), "")
    return Spelling(shape=shape, separator=separator, fraction=fraction, digits=digits or 6, offset=offset)


def _decide_boolean(c):
    if c["text"] != c["values"]:
        return DEFAULT                       # numbers, or a mix: 0/1
    true = c["min_true"] if c["min_true"] == c["max_true"] else None
    false = c["min_false"] if c["min_false"] == c["max_false"] else None
    if (c["min_true"] is not None and true is None) or (c["min_false"] is not None and false is None):
        return DEFAULT                       # two spellings of one truth value
    pair = next(((t, f) for t, f in BOOLEAN_PAIRS if (true or "").lower() == t or (false or "").lower() == f), None)
    if pair is None:
        return DEFAULT
    if true is None:
        true = _same_case(pair[0], false)
    if false is None:
        false = _same_case(pair[1], true)
    if (true.lower(), false.lower()) != pair:
        return DEFAULT                       # 'true' with 'n': no single pair
    return Spelling(true=true, false=false)


def _same_case(word, like):
    if like.isupper():
        return word.upper()
    if like[:1].isupper():
        return word.capitalize()
    return word


def learn(conn, table, column, kind, rows=SAMPLE_ROWS):
    """The spelling of ``column`` of ``table`` (an introspect.Table), from its most recent
    ``rows`` non-NULL values (by rowid; the first ones in a WITHOUT ROWID table)."""
    names, select = census_sql(kind)
    col = quote_ident(column)
    order = " ORDER BY rowid DESC" if table.has_rowid else ""
    row = conn.execute(f"SELECT {select} FROM (SELECT {col} AS v FROM {quote_ident(table.name)} "
                       f"WHERE {col} IS NOT NULL{order} LIMIT {int(rows)})").fetchone()
    return decide(kind, dict(zip(names, row, strict=True)))


def learn_columns(conn, table, pg_types):
    """``{source column: Spelling}`` for the columns named in ``pg_types`` (source column ->
    the target's catalog type); columns with one spelling get ``DEFAULT`` without a query."""
    out = {}
    for name, pg_type in pg_types.items():
        declared = table.column(name).declared
        kind = family(pg_type, declared)
        out[name] = learn(conn, table, name, kind) if kind else DEFAULT
        if kind == "uuid" and not out[name].uuid:
            # Nothing learned: as the declared type says (Django's char(32): 32 hex digits).
            out[name] = replace(out[name], uuid="hex" if "32" in declared else "dashed")
    return out


_EPOCH = datetime.datetime(1970, 1, 1)


def to_sqlite(value, declared="", unit="microseconds", spelling=DEFAULT):
    """A value read from PostgreSQL, in the form the app's SQLite file uses (``spelling``,
    the column's; ``DEFAULT`` is SQLAlchemy's). An interval goes back as the copy read it:
    the epoch plus the duration in a date/time column (SQLAlchemy's Interval), else a count
    of ``unit`` (Django's DurationField: microseconds)."""
    if isinstance(value, bool):
        return spelling.true if value else spelling.false
    if isinstance(value, str) and spelling.uuid:
        value = uuid.UUID(value)   # psycopg2 reads a uuid as text unless register_uuid() ran (Django runs it)
    if isinstance(value, str) and (spelling.json_compact or spelling.json_ascii):
        return spell_json(value, spelling)
    if value is None or isinstance(value, (int, float, str, bytes)):
        return value
    if isinstance(value, datetime.timedelta):
        if "DATE" in declared.upper() or "TIME" in declared.upper():
            if spelling.shape.startswith("epoch"):
                # Numbers in an interval's column are counts of ``unit`` to the copy, not Unix time.
                spelling = replace(spelling, shape="")
            return spell_moment(_EPOCH + value, spelling)
        micros = (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds
        whole, part = divmod(micros, INTERVAL_UNITS[unit])
        return whole if not part else micros / INTERVAL_UNITS[unit]
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.UTC).replace(tzinfo=None)
        return spell_moment(value, spelling)
    if isinstance(value, datetime.date):
        if spelling.shape == "datetime" or spelling.shape.startswith("epoch"):
            return spell_moment(datetime.datetime.combine(value, datetime.time()), spelling)
        return value.isoformat()
    if isinstance(value, datetime.time):
        return spell_time(value, spelling)
    if isinstance(value, decimal.Decimal):
        if spelling.number_text and value.is_finite():
            return format(value, "f")
        if value.as_tuple().exponent >= 0 and -2**63 <= value < 2**63:
            return int(value)   # written without a point: an integer (a double would round past 2**53)
        return int(value) if value == value.to_integral_value() and "INT" in declared.upper() else float(value)
    if isinstance(value, memoryview):
        return value.tobytes()
    if isinstance(value, uuid.UUID):
        return spell_uuid(value, declared, spelling)
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def spell_moment(moment, spelling=DEFAULT):
    """A naive (UTC) datetime as ``spelling`` writes it. Years below 1000 keep four digits."""
    if spelling.shape.startswith("epoch"):
        number = _epoch_number(moment, spelling.shape)
        if number is not None:
            return number
        spelling = DEFAULT   # outside the numbers the copy reads as Unix time: ISO text, which it reads
    if spelling.shape == "date" and moment.time() == datetime.time():
        return moment.date().isoformat()
    text = moment.isoformat(sep=spelling.separator, timespec="seconds")
    return text + _fraction(moment.microsecond, spelling) + _utc_suffix(spelling.offset)


def spell_time(clock, spelling=DEFAULT):
    """A time of day as ``spelling`` writes it; one with an offset keeps it (in the column's
    form of offset, ``+HH:MM`` by default)."""
    text = clock.replace(microsecond=0, tzinfo=None).isoformat(timespec="seconds")
    text += _fraction(clock.microsecond, spelling)
    offset = clock.utcoffset()
    if offset is None:
        return text
    if not offset and spelling.offset:
        return text + _utc_suffix(spelling.offset)
    sign = "-" if offset < datetime.timedelta(0) else "+"
    minutes = abs(offset) // datetime.timedelta(minutes=1)
    hours, minutes = divmod(minutes, 60)
    if spelling.offset == "+0000":
        return f"{text}{sign}{hours:02d}{minutes:02d}"
    if spelling.offset == "+00" and not minutes:
        return f"{text}{sign}{hours:02d}"
    return f"{text}{sign}{hours:02d}:{minutes:02d}"


def _epoch_number(moment, shape):
    """Unix time of a naive (UTC) datetime in the column's unit: an integer where it holds the
    value exactly, else a real (a fraction a whole-seconds column cannot hold is kept, not
    cut). None when the copy would not read that number back as exactly ``moment``
    (``convert.epoch_text``): before 1973, past the year 5138, or a fraction no double holds
    to the microsecond (past about 2255)."""
    micros = (moment - _EPOCH) // datetime.timedelta(microseconds=1)
    unit = 1000 if shape == "epoch_ms" else 1_000_000
    whole, part = divmod(micros, unit)
    number = whole if shape != "epoch_s_real" and not part else micros / unit
    return number if epoch_text(number, "timestamp") == moment.isoformat(sep=" ", timespec="microseconds") else None


def _fraction(micros, spelling):
    if not micros and spelling.fraction == "nonzero":
        return ""
    digits = f"{micros:06d}"
    want = spelling.digits
    if want < 6 and not digits[want:].strip("0"):
        return "." + digits[:want]
    return "." + digits + "0" * max(0, want - 6)


def _utc_suffix(form):
    return form   # UTC in the column's form: '', 'Z', '+00:00', '+0000' or '+00'


_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\s+|[^"\s]+')


def spell_json(text, spelling=DEFAULT):
    """JSON text as PostgreSQL prints jsonb, respaced (``json_compact``) and escaped
    (``json_ascii``) token by token: no value is parsed again, so none can change."""
    out = []
    for token in _JSON_TOKEN.findall(text):
        if token[0] == '"':
            if spelling.json_ascii:
                token = "".join(c if ord(c) < 0x7f else _json_escape(c) for c in token)
        elif token.isspace() and spelling.json_compact:
            continue
        out.append(token)
    return "".join(out)


def _json_escape(char):
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xd800 + (code >> 10):04x}\\u{0xdc00 + (code & 0x3ff):04x}"


def spell_uuid(value, declared="", spelling=DEFAULT):
    form = spelling.uuid or ("hex" if "32" in declared else "dashed")
    if form == "bytes":
        return value.bytes
    text = value.hex if form == "hex" else str(value)
    return text.upper() if spelling.upper else text
