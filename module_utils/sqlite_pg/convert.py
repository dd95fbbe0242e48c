"""How a SQLite value converts for a PostgreSQL column: the one place that decides it.

For each target type a codec gives, as SQLite SQL over a column expression:

- ``field(c)``: the value as a COPY ... CSV field; ``''`` (unquoted) for NULL; SQL NULL
  when the value cannot be stored in the target type;
- ``problem(c)``: NULL when the value converts, else the reason in words.

Each codec has *fast* rules for the canonical forms apps write (an integer in an integer
column, ``YYYY-MM-DD HH:MM:SS.ffffff`` text in a DATETIME column): they pass the value
through with the least work, and PostgreSQL's own parser is the check. Anything else, and
every value of a chunk PostgreSQL refused, goes through the full rules, which check all
that the target would refuse or read differently. A fast rule may only accept a value
that PostgreSQL reads exactly as the full rules would convert it.

The CSV quote character is ``\x01`` rather than ``"``, so text needs no ``replace()``
unless it contains that control character.

SQLite formats every row in SQL, so Python only moves bytes on the fast path. Rare
cases (text in a numeric column, epoch numbers in a date/time column, BLOBs in a text
column) call the small Python functions registered by ``register_functions``; they run
only for those values. Text reaches them as its bytes (``CAST(c AS BLOB)``): text that is
not valid UTF-8 cannot be handed to Python as text, and a helper never raises, so such a
value is refused with a reason like any other. The profile and the copy both use these
codecs, so what the profile predicts is what the copy does.
"""

import datetime
import decimal
import functools
import json
import math
import re

# Reasons, kept as constants so tests and reports can match them.
NULL_IN_NOT_NULL = "NULL in a NOT NULL column"
NUL_IN_TEXT = "text holds a NUL byte (PostgreSQL cannot store it)"
NUL_IN_JSON = "JSON holds a NUL character (\\u0000), which jsonb rejects"
LONE_SURROGATE_IN_JSON = "JSON holds a lone UTF-16 surrogate escape (such as \\ud800), which jsonb rejects"
INVALID_JSON = "not valid JSON"
BLOB_NOT_TEXT = "BLOB is not valid UTF-8 text"
NOT_INTEGER = "not an integer"
EMPTY_IN_NUMBER = "empty string in a numeric column"
NOT_NUMBER = "not a number"
NOT_BOOLEAN = "not a boolean (0/1, true/false, t/f, yes/no, on/off)"
NOT_DATETIME = "not a recognised date/time"
NOT_DATE = "not a date (or a date with a time of day)"
NOT_UUID = "not a UUID"
TIME_OFFSET = ("time of day with a UTC offset in a time without time zone column (folding the offset would "
               "change the time): type the column time with time zone (column_types) to keep it")
JSONB_CHANGES = ("jsonb would change this value (a duplicate object key keeps only the last, -0 loses its sign, "
                 "a number with an exponent and no digits after its point comes back as an integer: 1e+23 as "
                 "100000000000000000000000): type the column json (column_types) to keep it as written")
NUMBER_IN_BLOB = "number in a BLOB column"
BLOB_IN_NUMBER = "BLOB in a numeric or date/time column"
INVALID_UTF8 = "text is not valid UTF-8"

_INT_RANGES = {"smallint": 2**15, "integer": 2**31, "bigint": 2**63}
# numeric without a typmod: PostgreSQL keeps at most this many digits before the decimal
# point, and writes at most this many after it (more is "value overflows numeric format").
NUMERIC_MAX_DIGITS = 131072
NUMERIC_MAX_SCALE = 16383
# real (float4): a double at or beyond these rounds to infinity or to zero in PostgreSQL's
# strtof (FLT_MAX plus half an ulp; half the smallest subnormal), which it refuses.
FLOAT4_OVERFLOW = 3.4028235677973366e38
FLOAT4_UNDERFLOW = 7.006492321624085e-46
DOUBLE_MAX = 1.7976931348623157e308
_HEX = "[0-9a-fA-F]"
_UUID36 = "-".join(_HEX * n for n in (8, 4, 4, 4, 12))
_ISO_DATE = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
_TRUE = ("t", "true", "y", "yes", "on", "1")
_FALSE = ("f", "false", "n", "no", "off", "0")

# Numbers in a date/time column, by magnitude: Unix seconds from 1e8 (1973) up to 1e11,
# milliseconds from 1e11 (1e11 s would be the year 5138); SQLite's own Julian day numbers
# (julianday(): 2,000,000 to 2,600,000 is the years 763 to 2406). Anything else - YYYYMMDD
# integers, small counts - is ambiguous and refused rather than guessed.
EPOCH_MS_THRESHOLD = 10**11
EPOCH_S_MIN = 10**8
JULIAN_RANGE = (2_000_000, 2_600_000)


def sql_str(text):
    return "'" + text.replace("'", "''") + "'"


QUOTE = "\x01"
_Q = sql_str(QUOTE)


def _quoted(expr):
    """CSV quoting: every text field is quoted, so '' stays an empty string and not NULL."""
    return f"({_Q} || replace({expr}, {_Q}, {_Q} || {_Q}) || {_Q})"


def _quoted_fast(expr):
    return f"({_Q} || {expr} || {_Q})"


def _no_quote_char(c):
    return f"instr({c}, {_Q}) = 0"


def _negative_zero(c):
    """-0.0: SQLite keeps its sign but prints it as 0.0; a Python call for zeros only."""
    return f"{c} = 0 AND s2p_signbit({c})"


def float_text(c):
    """A REAL as text that PostgreSQL reads back to the same double: 15 digits when they
    round-trip (readable, for numeric columns), else 21 significant digits (exact); -0.0
    keeps its sign."""
    return (f"CASE WHEN {_negative_zero(c)} THEN '-0.0' WHEN CAST(printf('%!.15g', {c}) AS REAL) = {c} "
            f"THEN printf('%!.15g', {c}) ELSE printf('%!.20e', {c}) END")


def exact_float(c):
    """A REAL as 21 significant digits: exact, and the cheapest exact form SQLite prints
    (-0.0 keeps its sign)."""
    return f"CASE WHEN {_negative_zero(c)} THEN '-0.0' ELSE printf('%!.20e', {c}) END"


def time_offset(c):
    """SQL: text that is a time of day followed by a UTC offset ('12:00:00+05:45', '...Z')."""
    return (f"{c} GLOB '[0-2][0-9]:[0-5][0-9]*' AND "
            f"substr(ltrim(ltrim({c}, '0123456789:.'), ' '), 1, 1) IN ('+', '-', 'Z', 'z')")


def jsonb_changes(c):
    """SQL: true when jsonb would change what this valid JSON text means - a duplicate object
    key (jsonb keeps the last), a negative zero (numeric has no -0), or a number with an
    exponent that jsonb prints as an integer (``1e+23`` as ``100000000000000000000000``:
    Python's json, so Django's JSONField, reads a float back as an int, here of another
    value; Python writes every float from 1e16 so). Key order and whitespace are not meaning
    (RFC 8259); other numbers keep their digits in jsonb."""
    # CASE, not AND: SQLite may evaluate both sides of an AND, and these are the costly parts.
    return (f"(CASE WHEN NOT json_valid({c}) THEN 0 "
            f"WHEN instr({c}, '-0') > 0 AND s2p_json_negative_zero({_raw(c)}) THEN 1 "
            # An exponent that is not negative (only those can leave no digits after the point);
            # GLOB with a literal letter first is cheap (0.17 s per 200,000 documents).
            f"WHEN ({c} GLOB '*e[0-9+]*' OR {c} GLOB '*E[0-9+]*') AND s2p_json_exponent_integer({_raw(c)}) "
            "THEN 1 "
            f"WHEN instr({c}, ',') = 0 THEN 0 ELSE s2p_json_duplicate_keys({_raw(c)}) END)")


def _raw(c):
    """Text as its bytes, for the Python helpers: text that is not valid UTF-8 cannot be
    passed to Python as text (the call would fail the whole query)."""
    return f"CAST({c} AS BLOB)"


def _not_utf8(c):
    """The rule for text a numeric helper could not read because it is not valid UTF-8."""
    return (f"typeof({c}) = 'text' AND NOT s2p_utf8({_raw(c)})", None, INVALID_UTF8)


class Codec:
    """Rules are ``(condition, output or None, reason)`` tried in order after the NULL test;
    fast rules are ``(condition, output)`` tried before it on the fast path."""

    text_like = False

    def __init__(self, pg_type, notnull=False):
        self.pg_type = pg_type
        self.notnull = notnull

    def rules(self, c):  # pragma: no cover - every codec defines it
        raise NotImplementedError

    def fast_rules(self, c):
        return []

    def fallback_reason(self, c):
        return sql_str(f"cannot be stored as {self.pg_type}")

    def _careful_rules(self, c):
        rules = self.rules(c)
        if self.text_like:
            # Checked only on the careful path: a Python call per text value.
            rules = [(f"typeof({c}) = 'text' AND NOT s2p_utf8(CAST({c} AS BLOB))", None, INVALID_UTF8)] + rules
        return rules

    def field(self, c, careful=False):
        rules = self._careful_rules(c) if careful else self.rules(c)
        fast = "" if careful else " ".join(f"WHEN {cond} THEN {out}" for cond, out in self.fast_rules(c))
        whens = " ".join(f"WHEN {cond} THEN {out if out is not None else 'NULL'}" for cond, out, _ in rules)
        null = "NULL" if self.notnull else "''"
        return f"CASE {fast} WHEN {c} IS NULL THEN {null} {whens} END"

    def clean(self, c):
        """A cheap condition under which the value certainly converts (speeds up ``problem``)."""
        return None

    def checked_clean(self, c):
        """``clean`` for ``problem(c, text_checked=True)``: only ``text_like`` codecs may rely
        on text being valid UTF-8 without NUL bytes."""
        return self.clean(c)

    def problem(self, c, text_checked=False):
        """``text_checked``: for the profile, which proves per chunk of a column, in Python,
        that its text values are valid UTF-8 without NUL bytes (or does not ask when the codec
        is not ``text_like``): the per-value UTF-8 check is left out and ``checked_clean``
        comes first; every other rule stays."""
        clean = self.checked_clean(c) if text_checked else self.clean(c)
        whens = (f"WHEN {clean} THEN NULL " if clean else "") + " ".join(
            f"WHEN {cond} THEN {'NULL' if out is not None else sql_str(reason)}"
            for cond, out, reason in (self.rules(c) if text_checked else self._careful_rules(c)))
        null = sql_str(NULL_IN_NOT_NULL) if self.notnull else "NULL"
        # typeof(): IS NULL without loading the value, which here costs a malloc per row under
        # SQLite's process-wide allocator lock, fought over by the profile's two threads.
        is_null = f"typeof({c}) = 'null'" if text_checked else f"{c} IS NULL"
        return f"CASE WHEN {is_null} THEN {null} {whens} ELSE {self.fallback_reason(c)} END"


class IntegerCodec(Codec):
    def clean(self, c):
        return self.fast_rules(c)[0][0]

    def fast_rules(self, c):
        if self.pg_type == "bigint":
            return [(f"typeof({c}) = 'integer'", c)]
        limit = _INT_RANGES[self.pg_type]
        return [(f"typeof({c}) = 'integer' AND {c} >= {-limit} AND {c} < {limit}", c)]

    def rules(self, c):
        limit = _INT_RANGES.get(self.pg_type, 2**63)
        in_range = f"{c} >= {-limit} AND {c} <= {limit - 1}"
        oor = f"out of range for {self.pg_type}"
        return [
            (f"typeof({c}) = 'integer' AND {in_range}", f"CAST({c} AS TEXT)", None),
            (f"typeof({c}) = 'integer'", None, oor),
            (f"typeof({c}) = 'real' AND {c} = CAST({c} AS INTEGER) AND {c} >= {-limit} AND {c} < {limit}",
             f"CAST(CAST({c} AS INTEGER) AS TEXT)", None),
            (f"typeof({c}) = 'real'", None, "fractional or out-of-range number in an integer column"),
            (f"typeof({c}) = 'text' AND trim({c}) = ''", None, EMPTY_IN_NUMBER),
            (f"typeof({c}) = 'text' AND s2p_int({_raw(c)}, {limit}) IS NOT NULL", f"s2p_int({_raw(c)}, {limit})",
             None),
            _not_utf8(c),
            (f"typeof({c}) = 'text'", None, NOT_INTEGER),
            (f"typeof({c}) = 'blob'", None, BLOB_IN_NUMBER),
        ]


class FloatCodec(Codec):
    def _fits(self, c):
        """For real (float4): a finite double PostgreSQL would not round to infinity or zero
        (a few comparisons; infinities are left to the full rules)."""
        if self.pg_type != "real":
            return ""
        return (f" AND {c} > {-FLOAT4_OVERFLOW!r} AND {c} < {FLOAT4_OVERFLOW!r} "
                f"AND ({c} > {FLOAT4_UNDERFLOW!r} OR {c} < {-FLOAT4_UNDERFLOW!r} OR {c} = 0)")

    def _exact_int(self, c):
        """An integer the type holds exactly: within ±2**53 (double), ±2**24 (real)."""
        limit = 2**24 if self.pg_type == "real" else 2**53
        return f"typeof({c}) = 'integer' AND {c} BETWEEN {-limit} AND {limit}"

    def clean(self, c):
        if self.pg_type != "real":
            return f"typeof({c}) = 'real' OR ({self._exact_int(c)})"
        return (f"({self._exact_int(c)}) OR (typeof({c}) = 'real'{self._fits(c)}) "
                f"OR (typeof({c}) = 'real' AND abs({c}) > {DOUBLE_MAX!r})")

    def fast_rules(self, c):
        return [(f"typeof({c}) = 'real'{self._fits(c)}", exact_float(c)), (self._exact_int(c), c)]

    def rules(self, c):
        width = 4 if self.pg_type == "real" else 8
        oor = f"out of range for {self.pg_type}"
        return [
            (f"typeof({c}) = 'real'{self._fits(c)}", exact_float(c), None),
            (f"typeof({c}) = 'real' AND abs({c}) > {DOUBLE_MAX!r}", exact_float(c), None),   # infinity
            (f"typeof({c}) = 'real'", None, oor),
            (self._exact_int(c), f"CAST({c} AS TEXT)", None),
            (f"typeof({c}) = 'integer'", None, f"integer too large for {self.pg_type} to hold exactly "
                                                 "(it would round it): use numeric or bigint (column_types)"),
            (f"typeof({c}) = 'text' AND trim({c}) = ''", None, EMPTY_IN_NUMBER),
            (f"typeof({c}) = 'text' AND s2p_float({_raw(c)}, {width}) IS NOT NULL", f"s2p_float({_raw(c)}, {width})",
             None),
            _not_utf8(c),
            (f"typeof({c}) = 'text' AND s2p_number({_raw(c)})", None, oor),
            (f"typeof({c}) = 'text'", None, NOT_NUMBER),
            (f"typeof({c}) = 'blob'", None, BLOB_IN_NUMBER),
        ]


class NumericCodec(Codec):
    """numeric, and numeric(p,s): SQLite keeps any number of decimal places in a DECIMAL(p,s)
    column; a value PostgreSQL would round to s places is refused, not silently rounded."""

    def __init__(self, pg_type, notnull=False):
        super().__init__(pg_type, notnull)
        m = re.fullmatch(r"numeric\((\d+),(\d+)\)", pg_type)
        self.scale = int(m.group(2)) if m else None
        # Digits allowed before the decimal point: p - s (PostgreSQL refuses a value of
        # 10**(p-s) or more: "numeric field overflow").
        self.digits = int(m.group(1)) - self.scale if m else None

    def _int_fits(self, c):
        """An integer below 10**(p-s); every 64-bit integer fits 19 digits or more."""
        d = self.digits
        if d is None or d >= 19:
            return ""
        if d <= 0:
            return f" AND {c} = 0"
        return f" AND {c} > {-10**d} AND {c} < {10**d}"

    def clean(self, c):
        return self.fast_rules(c)[0][0]

    def fast_rules(self, c):
        return [(f"typeof({c}) = 'integer'{self._int_fits(c)}", c)]

    def rules(self, c):
        s, d = self.scale, self.digits
        places = f"more decimal places than {self.pg_type} keeps (it would round the value)"
        oor = f"out of range for {self.pg_type}"
        real_fits = f" AND round({c}, {s}) = {c}" if s is not None else ""
        real_range = f" AND abs({c}) < 1e{d}" if d is not None else ""
        finite = f"abs({c}) <= {DOUBLE_MAX!r}"
        # Text: at most s places (else NUMERIC_MAX_SCALE written ones), below 10**(p-s)
        # (else NUMERIC_MAX_DIGITS digits).
        text_scale = s if s is not None else -1
        text_digits = d if d is not None else NUMERIC_MAX_DIGITS
        rules = [
            (f"typeof({c}) = 'integer'{self._int_fits(c)}", f"CAST({c} AS TEXT)", None),
            (f"typeof({c}) = 'integer'", None, oor),
            (f"typeof({c}) = 'real' AND {finite}{real_range}{real_fits}", float_text(c), None),
        ]
        if d is not None:
            rules.append((f"typeof({c}) = 'real' AND {finite} AND NOT abs({c}) < 1e{d}", None, oor))
        if s is not None:
            rules.append((f"typeof({c}) = 'real' AND {finite}", None, places))
        rules += [
            (f"typeof({c}) = 'real'", None, "infinity in a numeric column"),
            (f"typeof({c}) = 'text' AND trim({c}) = ''", None, EMPTY_IN_NUMBER),
            (f"typeof({c}) = 'text' AND s2p_decimal({_raw(c)}, {text_scale}, {text_digits}) IS NOT NULL",
             f"s2p_decimal({_raw(c)}, {text_scale}, {text_digits})", None),
        ]
        if s is not None:
            # Within range, but more places than s: PostgreSQL would round it.
            rules.append((f"typeof({c}) = 'text' AND s2p_decimal({_raw(c)}, -1, {text_digits}) IS NOT NULL",
                          None, places))
        return rules + [
            _not_utf8(c),
            (f"typeof({c}) = 'text' AND s2p_number({_raw(c)})", None, oor),
            (f"typeof({c}) = 'text'", None, NOT_NUMBER),
            (f"typeof({c}) = 'blob'", None, BLOB_IN_NUMBER),
        ]


class BooleanCodec(Codec):
    def clean(self, c):
        return self.fast_rules(c)[0][0]

    def fast_rules(self, c):
        # PostgreSQL reads '0' and '1' as booleans.
        return [(f"typeof({c}) = 'integer' AND {c} IN (0, 1)", c)]

    def rules(self, c):
        true = ", ".join(sql_str(v) for v in _TRUE)
        false = ", ".join(sql_str(v) for v in _FALSE)
        return [
            (f"typeof({c}) IN ('integer', 'real') AND {c} IN (0, 1)", f"CASE WHEN {c} THEN 't' ELSE 'f' END", None),
            (f"typeof({c}) = 'text' AND lower(trim({c})) IN ({true})", "'t'", None),
            (f"typeof({c}) = 'text' AND lower(trim({c})) IN ({false})", "'f'", None),
            ("1", None, NOT_BOOLEAN),
        ]


class TextCodec(Codec):
    """text, varchar(n), char(n), and any type PostgreSQL parses from text itself."""

    text_like = True

    def __init__(self, pg_type, notnull=False, max_length=None):
        super().__init__(pg_type, notnull)
        self.max_length = max_length

    def fast_rules(self, c):
        # NUL bytes, invalid UTF-8 and over-long values: PostgreSQL refuses them, and the
        # careful path then names them.
        return [(f"typeof({c}) = 'text' AND {_no_quote_char(c)}", _quoted_fast(c))]

    def checked_clean(self, c):
        # Without NUL bytes, the first rule only asks for the length.
        fits = f" AND length({c}) <= {self.max_length}" if self.max_length else ""
        return f"typeof({c}) = 'text'{fits}"

    def rules(self, c):
        no_nul = f"instr(CAST({c} AS BLOB), x'00') = 0"
        limit = self.max_length
        fits = f" AND length({c}) <= {limit}" if limit else ""
        rules = [(f"typeof({c}) = 'text' AND {no_nul}{fits}", _quoted(c), None),
                 (f"typeof({c}) = 'text' AND NOT {no_nul}", None, NUL_IN_TEXT)]
        if limit:
            rules.append((f"typeof({c}) = 'text'", None, f"longer than {limit} characters"))
        rules += [
            (f"typeof({c}) = 'integer'", f"CAST({c} AS TEXT)", None),
            (f"typeof({c}) = 'real'", float_text(c), None),
            (f"typeof({c}) = 'blob' AND s2p_blob_text({c}, {limit or 0}) IS NOT NULL",
             f"s2p_blob_text({c}, {limit or 0})", None),
            (f"typeof({c}) = 'blob'", None, BLOB_NOT_TEXT + " (or holds NUL, or is too long)"),
        ]
        return rules


class EnumCodec(Codec):
    """A PostgreSQL ENUM: SQLAlchemy stores the enum *names* in SQLite, which are the labels."""

    text_like = True

    def __init__(self, pg_type, notnull=False, labels=()):
        super().__init__(pg_type, notnull)
        self.labels = tuple(labels)

    def fast_rules(self, c):
        return [(f"typeof({c}) = 'text' AND {_no_quote_char(c)}", _quoted_fast(c))]

    def rules(self, c):
        labels = ", ".join(sql_str(v) for v in self.labels) or "NULL"
        return [(f"typeof({c}) = 'text' AND {c} IN ({labels})", _quoted(c), None),
                ("1", None, f"not a label of {self.type_name} ({', '.join(self.labels)})")]

    @property
    def type_name(self):
        """The type's name without schema or quotes: the catalog's format_type() (the copy)
        qualifies it when its schema is not on the search path, the model (the profile) does not."""
        return self.pg_type.split(".")[-1].strip('"')


class ByteaCodec(Codec):
    def rules(self, c):
        return [
            (f"typeof({c}) IN ('blob', 'text')", f"'\\x' || hex({c})", None),
            ("1", None, NUMBER_IN_BLOB),
        ]


class JsonCodec(Codec):
    text_like = True

    def fast_rules(self, c):
        if self.pg_type == "json":
            return []
        # PostgreSQL's JSON parser checks validity and \u0000; refused chunks take the careful path.
        return [(f"typeof({c}) = 'text' AND {_no_quote_char(c)} AND NOT {jsonb_changes(c)}", _quoted_fast(c))]

    def rules(self, c):
        keeps = [] if self.pg_type == "json" else [
            (f"typeof({c}) = 'text' AND {jsonb_changes(c)}", None, JSONB_CHANGES),
            (f"typeof({c}) = 'real' AND {_negative_zero(c)}", None, JSONB_CHANGES)]
        return [
            (f"typeof({c}) = 'text' AND instr(CAST({c} AS BLOB), x'00') > 0", None, NUL_IN_TEXT),
            (f"typeof({c}) = 'text' AND NOT json_valid({c})", None, INVALID_JSON),
            (f"typeof({c}) = 'text' AND instr({c}, '\\u0000') > 0", None, NUL_IN_JSON),
            *keeps,
            *([(f"typeof({c}) = 'text' AND instr({c}, '\\u') > 0 AND s2p_lone_surrogate({_raw(c)}) = 1", None,
                 LONE_SURROGATE_IN_JSON)] if self.pg_type == "jsonb" else []),
            (f"typeof({c}) = 'text'", _quoted(c), None),
            (f"typeof({c}) = 'integer'", f"CAST({c} AS TEXT)", None),
            (f"typeof({c}) = 'real' AND abs({c}) <= 1.7976931348623157e308", exact_float(c), None),
            ("1", None, INVALID_JSON),
        ]


class UuidCodec(Codec):
    def rules(self, c):
        return [
            (f"typeof({c}) = 'text' AND ({c} GLOB '{_UUID36}' OR {c} GLOB '{_HEX * 32}')", c, None),
            (f"typeof({c}) = 'blob' AND length({c}) = 16", f"lower(hex({c}))", None),
            ("1", None, NOT_UUID),
        ]


INTERVAL_UNITS = {"microseconds": 1, "milliseconds": 1000, "seconds": 1_000_000}
INTERVAL_NUMBER_TEXT = "a number as text in an interval column: its unit is unknown"
INTERVAL_NOT_WHOLE = "not a whole number of microseconds"
INTERVAL_OUT_OF_RANGE = "out of range for interval"


class IntervalCodec(Codec):
    """interval. An integer (or a whole real) is a count of ``unit`` (``INTERVAL_UNITS``;
    microseconds by default: Django's DurationField on SQLite); date/time text is the
    difference from 1970-01-01 00:00:00 (SQLAlchemy's Interval on SQLite stores the epoch
    plus the duration); other text is read by PostgreSQL's interval syntax ('1 day 02:00',
    'P1DT2H'), except a bare number, whose unit is unknown. Written as days and seconds, as
    a Python timedelta holds the duration (``interval_text``), never read as seconds."""

    def __init__(self, pg_type, notnull=False, unit="microseconds"):
        super().__init__(pg_type, notnull)
        self.unit = unit

    def rules(self, c):
        factor = INTERVAL_UNITS[self.unit]
        number = f"s2p_interval({c}, {factor})"
        text = f"s2p_interval_text({_raw(c)})"
        return [
            (f"typeof({c}) IN ('integer', 'real') AND {number} IS NOT NULL", number, None),
            (f"typeof({c}) = 'real' AND {c} != CAST({c} AS INTEGER)", None, INTERVAL_NOT_WHOLE),
            (f"typeof({c}) IN ('integer', 'real')", None, INTERVAL_OUT_OF_RANGE),
            (f"typeof({c}) = 'text' AND {c} GLOB '{_ISO_DATE}[ T][0-2][0-9]:*' AND {text} IS NOT NULL", text, None),
            (f"typeof({c}) = 'text' AND s2p_number({_raw(c)})", None, INTERVAL_NUMBER_TEXT),
            (f"typeof({c}) = 'text' AND trim({c}) != '' AND instr(CAST({c} AS BLOB), x'00') = 0 "
             f"AND {c} NOT GLOB '{_ISO_DATE}*'", _quoted(c), None),
            ("1", None, "not an interval"),
        ]


# PostgreSQL's interval keeps its time part in 64-bit microseconds.
_INTERVAL_MAX = 2**63 - 1


def interval_text(micros):
    """A signed count of microseconds as interval input, in days and seconds as Python's
    timedelta holds it (and as psycopg2 writes one): an app writing the same duration
    through its ORM on PostgreSQL stores the very same interval."""
    if not -_INTERVAL_MAX <= micros <= _INTERVAL_MAX:
        return None
    delta = datetime.timedelta(microseconds=micros)
    return f"{delta.days} days {delta.seconds}.{delta.microseconds:06d} seconds"


def _interval(number, factor):
    value = decimal.Decimal(repr(number) if isinstance(number, float) else number) * factor
    return interval_text(int(value)) if value == value.to_integral_value() else None


def _interval_text(raw, encoding="utf-8"):
    moment = datetime.datetime.fromisoformat(_text(raw, encoding).strip())
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.UTC).replace(tzinfo=None)
    delta = moment - _EPOCH0
    return interval_text((delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds)


def _after_year0(c):
    """Text that starts with a year from 0001 on (no '-' sign, not 0000): GLOB, as cheap as
    it gets when the first character is 1-9. (Not ``c >= '0001'``: that would take the
    column's affinity, NUMERIC for DATETIME, and any text is greater than the number 1.)"""
    return f"({c} GLOB '[1-9]*' OR ({c} GLOB '0*' AND {c} NOT GLOB '0000*'))"


class TemporalCodec(Codec):
    """timestamp, timestamptz, date and time.

    Text in ISO 8601 (``T`` or space, optional seconds, fraction, ``Z`` or offset) is
    normalised by SQLite's own date functions: offsets are folded into UTC. A fraction is
    kept to the microsecond; digits past it are rounded half to even (``round_fraction``),
    as PostgreSQL rounds. Numbers are told apart by magnitude (``EPOCH_*``): Unix seconds,
    milliseconds, or SQLite Julian day numbers. Values are written in UTC; timestamptz
    gets ``+00``. A time of day keeps its UTC offset in ``time with time zone`` and is
    refused in ``time without time zone`` (folding it would change the time).
    """

    def __init__(self, pg_type, notnull=False):
        super().__init__(pg_type, notnull)
        base = pg_type.split("(")[0]
        self.kind = ("date" if pg_type == "date" else
                     "timestamptz" if base.startswith("timestamp") and "with time zone" in pg_type else
                     "timestamp" if base.startswith("timestamp") else
                     "timetz" if "with time zone" in pg_type else "time")
        # timestamp(3), time(0): PostgreSQL would round a value to that many fraction digits.
        m = re.search(r"\((\d)\)", pg_type)
        self.precision = int(m.group(1)) if m and int(m.group(1)) < 6 and self.kind != "date" else None

    def _fits_precision(self, rules):
        """Refuse, before each accepting rule, a value with more fraction digits than the
        type's precision keeps (as numeric(p,s) does), rather than let PostgreSQL round it."""
        if self.precision is None:
            return rules
        start = 10 if self.kind in ("time", "timetz") else 21
        p = self.precision
        reason = f"more fraction digits than {self.pg_type} keeps (it would round the value)"
        out = []
        for cond, value, why in rules:
            if value is not None:
                out.append((f"{cond} AND substr({value}, {start - 1}, 1) = '.' AND "
                            f"substr({value}, {start + p}, {6 - p}) GLOB '*[1-9]*'", None, reason))
            out.append((cond, value, why))
        return out

    def fast_rules(self, c):
        if self.precision is not None:
            return []
        # Years 1000-9999 first (a GLOB that also tests the first digit costs nothing more);
        # then 0001-0999: PostgreSQL has no year 0000.
        year0 = f"{c} NOT GLOB '0000*'"
        if self.kind == "date":
            day = "-[01][0-9]-[0-3][0-9]"
            return [(f"typeof({c}) = 'text' AND ({c} GLOB '[1-9][0-9][0-9][0-9]{day}' OR "
                     f"({c} GLOB '0[0-9][0-9][0-9]{day}' AND {year0}))", c)]
        if self.kind in ("time", "timetz"):
            return []
        # 'YYYY-MM-DD HH:MM:SS' or with six fraction digits (what SQLAlchemy and Python
        # write): no offset to fold. '?' is much cheaper than '[0-9]' in GLOB; a non-digit
        # there is refused by PostgreSQL, which sends the chunk down the careful path.
        zone = " || '+00'" if self.kind == "timestamptz" else ""
        # The cheap shape test first, then digits where '?' stood (no leap second, no sign).
        digits = (f"typeof({c}) = 'text' AND substr({c}, 6, 14) GLOB "
                  "'[01][0-9]-[0-3][0-9][ T][0-2][0-9]:[0-5][0-9]:[0-5][0-9]'")
        rules = []
        for shape, year in (("[1-9][0-9][0-9][0-9]-??-??[ T]??:??:??", ""),
                            ("0[0-9][0-9][0-9]-??-??[ T]??:??:??", f" AND {year0}")):
            rules += [(f"({c} GLOB '{shape}.{'[0-9]' * 6}' OR {c} GLOB '{shape}') AND {digits}{year}",
                       f"{c}{zone}"),
                      # 1-5 fraction digits, still no offset: PostgreSQL reads them exactly.
                      (f"{c} GLOB '{shape}.[0-9]*' AND length({c}) < 26 AND substr({c}, 21) NOT GLOB '*[^0-9]*' "
                       f"AND {digits}{year}", f"{c}{zone}")]
        return rules

    def checked_clean(self, c):
        # Text that starts with the date SQLite prints back for it, normalised by '+0 days'
        # (without a modifier 2024-02-30 passes through): then the ISO rule holds, in one
        # call instead of its GLOB, date() and datetime(). Years print as four digits; a
        # leading '-' (a year before 0) and the year 0000 fail _after_year0. BINARY: the
        # column's own collation (RTRIM) could ignore what follows the date.
        if self.kind == "date":
            return f"typeof({c}) = 'text' AND {_after_year0(c)} AND date({c}, '+0 days') = {c} COLLATE BINARY"
        if self.kind in ("time", "timetz") or self.precision is not None:
            return None
        # At most six fraction digits: more are rounded by the rules.
        return (f"typeof({c}) = 'text' AND {_after_year0(c)} AND datetime({c}, '+0 days') = substr({c}, 1, 19) "
                f"AND length({c}) <= 26")

    def rules(self, c):
        kind = sql_str(self.kind)
        # SQLite's date() passes 2024-02-30 through; a '+0 days' modifier normalises it, so an
        # impossible date no longer equals itself. PostgreSQL has no year 0000 (nor before).
        iso = (f"typeof({c}) = 'text' AND {c} GLOB '{_ISO_DATE}*' AND {c} NOT GLOB '0000*' "
               f"AND date(substr({c}, 1, 10), '+0 days') = substr({c}, 1, 10)")
        if self.kind == "date":
            text_rules = [
                (f"{iso} AND length({c}) = 10", c, None),
                (f"{iso} AND substr({c}, 11) GLOB '[ T]00:00*' AND time({c}) = '00:00:00' "
                 f"AND trim(substr({c}, 20), '.0') = ''", f"substr({c}, 1, 10)", None),
            ]
        elif self.kind in ("time", "timetz"):
            # The time part (digits, ':' and '.'), then what follows it: an offset or nothing.
            rest = f"ltrim({c}, '0123456789:.')"
            part = f"substr({c}, 1, length({c}) - length({rest}))"
            offset = f"ltrim({rest}, ' ')"
            value = _with_fraction(f"time({_without_fraction(part, 10)})", part, 10, "time")
            shape = f"typeof({c}) = 'text' AND {c} GLOB '[0-2][0-9]:[0-5][0-9]*' AND time({_without_fraction(part, 10)}) IS NOT NULL"
            zone_ok = (f"({offset} = '' OR {offset} IN ('Z', 'z') OR {offset} GLOB '[+-][0-1][0-9]:[0-5][0-9]' "
                       f"OR {offset} GLOB '[+-][0-1][0-9]')")
            if self.kind == "time":
                text_rules = [(f"{shape} AND {offset} = '' AND {value} IS NOT NULL", value, None),
                              (f"{shape} AND {zone_ok} AND {offset} != ''", None, TIME_OFFSET)]
            else:
                zone = f"CASE WHEN {offset} IN ('', 'Z', 'z') THEN '+00' ELSE {offset} END"
                text_rules = [(f"{shape} AND {zone_ok} AND {value} IS NOT NULL", f"({value} || {zone})", None)]
        else:
            zone = " || '+00'" if self.kind == "timestamptz" else ""
            # datetime() of the text without its fraction (a fraction of .9999995 or more would
            # round 9999-12-31 23:59:59 past the last day SQLite knows, to NULL); the fraction
            # is taken from the text itself.
            whole = _without_fraction(c, 21)
            value = _with_fraction(f"datetime({whole})", c, 21, "timestamp")
            text_rules = [(f"{iso} AND {value} IS NOT NULL", f"({value}{zone})", None)]
        return self._fits_precision(text_rules + [
            (f"typeof({c}) IN ('integer', 'real') AND s2p_epoch({c}, {kind}) IS NOT NULL",
             f"s2p_epoch({c}, {kind})", None)]) + [
            (f"typeof({c}) = 'blob'", None, BLOB_IN_NUMBER),
            ("1", None, NOT_DATE if self.kind == "date" else NOT_DATETIME),
        ]


def _digits_from(c, start):
    """The run of digits in text ``c`` from character ``start`` on (SQL)."""
    tail = f"substr({c}, {start})"
    return f"substr({tail}, 1, length({tail}) - length(ltrim({tail}, '0123456789')))"


def _without_fraction(c, start):
    """Text ``c`` without the fraction digits that start at ``start`` (after a '.')."""
    return (f"(CASE WHEN substr({c}, {start - 1}, 1) = '.' THEN substr({c}, 1, {start - 2}) || "
            f"ltrim(substr({c}, {start}), '0123456789') ELSE {c} END)")


def _with_fraction(base, c, start, kind):
    """``base`` (whole seconds) with the fraction of ``c`` that starts at ``start``: up to six
    digits kept, more rounded half to even by ``round_fraction`` (NULL past year 9999)."""
    d = _digits_from(c, start)
    # Up to six digits (the common case, cheaply): CAST stops at the first non-digit.
    six = f"substr(substr(CAST(CAST('1' || substr({c}, {start}, 6) AS INTEGER) AS TEXT), 2) || '000000', 1, 6)"
    return (f"(CASE WHEN substr({c}, {start - 1}, 1) != '.' THEN {base} "
            f"WHEN substr({c}, {start + 6}, 1) NOT GLOB '[0-9]' THEN {base} || '.' || {six} "
            f"WHEN rtrim(substr({d}, 7), '0') = '' THEN {base} || '.' || substr({d}, 1, 6) "
            f"ELSE s2p_round_fraction({base}, {d}, '{kind}') END)")


def round_fraction(base, digits, kind):
    """``base`` ('YYYY-MM-DD HH:MM:SS', or 'HH:MM:SS' for a time) plus the fraction
    ``digits`` rounded to the microsecond, half to even, carrying into the seconds (a time
    of day may reach 24:00:00, as in PostgreSQL); None past the year 9999."""
    micros = int(decimal.Decimal("0." + digits).scaleb(6).to_integral_value(decimal.ROUND_HALF_EVEN))
    if kind == "time":
        hours, minutes, seconds = (int(p) for p in base.split(":"))
        total = ((hours * 60 + minutes) * 60 + seconds) * 1_000_000 + micros
        if total > 24 * 3600 * 1_000_000:
            return None
        seconds, micros = divmod(total, 1_000_000)
        return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{micros:06d}"
    moment = datetime.datetime.fromisoformat(base) + datetime.timedelta(microseconds=micros)
    return moment.isoformat(sep=" ", timespec="microseconds")


def codec_for(pg_type, notnull=False, enum_labels=None, interval_unit="microseconds"):
    """The codec for a column of ``pg_type`` (``format_type()`` spelling); ``interval_unit``:
    what an integer in an interval column counts."""
    t = pg_type.lower()
    if enum_labels is not None:
        return EnumCodec(pg_type, notnull, enum_labels)
    if t in _INT_RANGES:
        return IntegerCodec(t, notnull)
    if t in ("double precision", "real"):
        return FloatCodec(t, notnull)
    if t.startswith("numeric"):
        return NumericCodec(t, notnull)
    if t == "boolean":
        return BooleanCodec(t, notnull)
    if t == "bytea":
        return ByteaCodec(t, notnull)
    if t in ("json", "jsonb"):
        return JsonCodec(t, notnull)
    if t == "uuid":
        return UuidCodec(t, notnull)
    if t == "interval":
        return IntervalCodec(t, notnull, interval_unit)
    if t == "date" or t.startswith("timestamp") or t.startswith("time"):
        return TemporalCodec(t, notnull)
    m = re.fullmatch(r"character(?: varying)?\((\d+)\)", t)
    return TextCodec(t, notnull, int(m.group(1)) if m else None)


# --- Python helpers for the rare cases, registered on the SQLite connection ---------------


def _never_raises(func):
    """A helper that fails on a value returns NULL (the rules then give the reason): an
    exception would fail the whole query, not just the value."""
    @functools.wraps(func)
    def safe(*args):
        try:
            return func(*args)
        except (ValueError, ArithmeticError, TypeError, AttributeError, MemoryError):
            return None
    return safe


def _text(raw, encoding="utf-8"):
    """Text from the bytes a rule passes (CAST(c AS BLOB): the database's encoding); str as is."""
    return raw.decode(encoding) if isinstance(raw, bytes) else raw


# PostgreSQL's number syntax, not Python's: ASCII digits only (no '1_000', no '１２３' or
# '٣'), the whitespace C's isspace() knows around it; int()/float()/Decimal() accept more.
PG_SPACE = " \t\n\r\v\f"
_PG_INT = re.compile(r"[+-]?[0-9]+")
_PG_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_PG_SPECIAL = ("nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity")


def pg_number_text(raw, encoding="utf-8", integer=False):
    """The text of a number as PostgreSQL's input functions read it, without the whitespace
    they skip; ValueError for anything they refuse (or read otherwise) that Python accepts."""
    text = _text(raw, encoding).strip(PG_SPACE)
    if (_PG_INT if integer else _PG_NUMBER).fullmatch(text) or (not integer and text.lower() in _PG_SPECIAL):
        return text
    raise ValueError(f"not a number in PostgreSQL's syntax: {text!r}")


def _to_int(raw, limit, encoding="utf-8"):
    value = int(pg_number_text(raw, encoding, integer=True))
    return str(value) if -limit <= value < limit else None


def _spells_infinity(text):
    return text.lstrip("+-").lower() in ("inf", "infinity")


def _to_float(raw, width=8, encoding="utf-8"):
    """A double (width 8) or real (width 4) PostgreSQL reads back as Python does: None for
    what it refuses, overflow to infinity or underflow to zero (an infinity or NaN that is
    spelled out is kept)."""
    text = pg_number_text(raw, encoding)
    value = float(text)
    if math.isnan(value):
        return "nan" if text.lower() == "nan" else None
    if math.isinf(value):
        return repr(value) if _spells_infinity(text) else None
    if value == 0:
        return repr(value) if decimal.Decimal(text).is_zero() else None   # underflow
    if width == 4 and not FLOAT4_UNDERFLOW < abs(value) < FLOAT4_OVERFLOW:
        return None
    return repr(value)


def _places(value):
    """Decimal places a finite Decimal needs (trailing zeros do not count)."""
    _sign, digits, exponent = value.as_tuple()
    zeros = len(digits) - len(bytes(digits).rstrip(b"\x00"))
    return 0 if zeros == len(digits) else max(0, -(exponent + zeros))


def _to_decimal(raw, scale=-1, digits=NUMERIC_MAX_DIGITS, encoding="utf-8"):
    """Decimal text, normalised; None when not a finite number, when it has (scale >= 0)
    more significant decimal places than ``scale``, or when PostgreSQL would refuse it:
    ``digits`` or more digits before the point (numeric(p,s): p - s), more than
    NUMERIC_MAX_SCALE written after it."""
    value = decimal.Decimal(pg_number_text(raw, encoding))
    if not value.is_finite():
        return None
    if not value.is_zero() and value.adjusted() >= min(digits, NUMERIC_MAX_DIGITS):
        return None
    if -value.as_tuple().exponent > NUMERIC_MAX_SCALE:
        return None
    if scale >= 0 and _places(value) > scale:
        return None
    return format(value, "f")


def _is_number(raw, encoding="utf-8"):
    """Whether the text is a finite number of any size (for the reason "out of range")."""
    return decimal.Decimal(pg_number_text(raw, encoding)).is_finite()


def _valid_utf8(raw):
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    except AttributeError:  # NULL
        return None
    return True


def _blob_text(blob, limit):
    try:
        text = bytes(blob).decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\x00" in text or (limit and len(text) > limit):
        return None
    return QUOTE + text.replace(QUOTE, QUOTE + QUOTE) + QUOTE


_JSON_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|.)", re.S)


def _lone_surrogate(raw):
    """1 when JSON text has a ``\\uD800``-``\\uDFFF`` escape that is not half of a pair
    (high then low, adjacent), which jsonb refuses; else 0."""
    pending = None   # where a high surrogate's escape ended
    for m in _JSON_ESCAPE.finditer(_text(raw)):
        code = int(m.group(1), 16) if m.group(1) else None
        if pending is not None:
            if code is None or not 0xDC00 <= code <= 0xDFFF or m.start() != pending:
                return 1
            pending = None
        elif code is not None and 0xD800 <= code <= 0xDBFF:
            pending = m.end()
        elif code is not None and 0xDC00 <= code <= 0xDFFF:
            return 1
    return 0 if pending is None else 1


_EPOCH0 = datetime.datetime(1970, 1, 1)


def epoch_text(number, kind):
    """A number in a date/time column (Unix seconds or milliseconds, or a Julian day number,
    told apart by magnitude) in the target's text form; None when it is none of them. The
    copy's reading (``s2p_epoch``); a rollback checks its numbers against it (spelling.py)."""
    try:
        value = decimal.Decimal(repr(number) if isinstance(number, float) else number)
        if not value.is_finite():
            return None
        magnitude = abs(value)
        if JULIAN_RANGE[0] <= magnitude < JULIAN_RANGE[1]:
            value = (value - decimal.Decimal("2440587.5")) * 86400
        elif magnitude >= EPOCH_MS_THRESHOLD:
            value = value / 1000
        elif magnitude < EPOCH_S_MIN:
            return None
        micros = int((value * 1_000_000).to_integral_value(decimal.ROUND_HALF_EVEN))
        moment = _EPOCH0 + datetime.timedelta(microseconds=micros)
    except (OverflowError, decimal.InvalidOperation, ValueError):
        return None
    if kind == "date":
        return moment.date().isoformat() if moment.time() == datetime.time(0) else None
    if kind == "time":
        return None
    text = moment.isoformat(sep=" ", timespec="microseconds")
    return text + "+00" if kind == "timestamptz" else text


def _signbit(number):
    return isinstance(number, float) and math.copysign(1.0, number) < 0


# Every string of a valid JSON text, in order, and whether a ':' follows it (then it is a key):
# scanning from the start, each match begins at an opening quote.
_JSON_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"(\s*:)?')


def _json_duplicate_keys(raw, encoding="utf-8"):
    """Whether an object of a valid JSON text has a key twice. Key texts all distinct (and
    without escapes, which can spell one key two ways) answer it without parsing."""
    text = _text(raw, encoding)
    keys = [s for s, colon in _JSON_STRING.findall(text) if colon]
    if len(set(keys)) == len(keys) and not any("\\" in k for k in keys):
        return False
    found = []

    def pairs_hook(pairs):
        if len({k for k, _ in pairs}) != len(pairs):
            found.append(pairs)
        return None

    json.loads(text, object_pairs_hook=pairs_hook)
    return bool(found)


def _json_negative_zero(raw, encoding="utf-8"):
    """Whether a JSON text holds a number that is a negative zero (-0, -0.0, -0e5)."""
    found = []

    def number(text, parse):
        if text.startswith("-") and not decimal.Decimal(text):
            found.append(text)
        return parse(text)

    json.loads(_text(raw, encoding), parse_int=lambda t: number(t, int), parse_float=lambda t: number(t, float))
    return bool(found)


def _json_exponent_integer(raw, encoding="utf-8"):
    """Whether a JSON text holds a number with an exponent that jsonb prints without a
    decimal point (its scale, digits after the point less the exponent, is 0 or less):
    ``1e+23``, ``1.5e1``; not ``1.5e-7`` (``0.00000015``) nor ``2.50e1`` (``25.0``)."""
    found = []

    def number(text):
        if text.lower().count("e") and decimal.Decimal(text).as_tuple().exponent >= 0:
            found.append(text)
        return 0

    json.loads(_text(raw, encoding), parse_float=number)
    return bool(found)


_ENCODINGS = {"UTF-8": "utf-8", "UTF-16le": "utf-16-le", "UTF-16be": "utf-16-be"}


def register_functions(conn):
    """Register the helpers above on a SQLite connection (deterministic, so SQLite may cache).

    The numeric helpers get text as CAST(c AS BLOB), the bytes in the file's encoding."""
    encoding = _ENCODINGS.get(conn.execute("PRAGMA encoding").fetchone()[0], "utf-8")
    conn.create_function("s2p_int", 2, _never_raises(lambda raw, limit: _to_int(raw, limit, encoding)),
                         deterministic=True)
    conn.create_function("s2p_float", 2, _never_raises(lambda raw, width: _to_float(raw, width, encoding)),
                         deterministic=True)
    conn.create_function("s2p_decimal", 3, _never_raises(
        lambda raw, scale, digits: _to_decimal(raw, scale, digits, encoding)), deterministic=True)
    conn.create_function("s2p_number", 1, _never_raises(lambda raw: _is_number(raw, encoding)), deterministic=True)
    conn.create_function("s2p_blob_text", 2, _never_raises(_blob_text), deterministic=True)
    conn.create_function("s2p_epoch", 2, _never_raises(epoch_text), deterministic=True)
    conn.create_function("s2p_utf8", 1, _valid_utf8, deterministic=True)
    conn.create_function("s2p_signbit", 1, _signbit, deterministic=True)
    conn.create_function("s2p_interval", 2, _never_raises(_interval), deterministic=True)
    conn.create_function("s2p_interval_text", 1, _never_raises(lambda raw: _interval_text(raw, encoding)),
                         deterministic=True)
    conn.create_function("s2p_round_fraction", 3, _never_raises(round_fraction), deterministic=True)
    conn.create_function("s2p_json_duplicate_keys", 1, _never_raises(
        lambda raw: _json_duplicate_keys(raw, encoding)), deterministic=True)
    conn.create_function("s2p_json_negative_zero", 1, _never_raises(
        lambda raw: _json_negative_zero(raw, encoding)), deterministic=True)
    conn.create_function("s2p_json_exponent_integer", 1, _never_raises(
        lambda raw: _json_exponent_integer(raw, encoding)), deterministic=True)
    conn.create_function("s2p_lone_surrogate", 1, _never_raises(_lone_surrogate), deterministic=True)


def raw_json(value):
    """A source value as JSON for the rejects table, without losing what it was."""
    if isinstance(value, bytes):
        return {"blob_hex": value.hex()}
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return {"invalid_utf8_hex": value.encode("utf-8", "surrogateescape").hex()}
        if "\x00" in value:
            return {"text_with_nul": value.replace("\x00", "\\u0000")}
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return {"real": repr(value)}
    return value


def dumps_raw(values):
    return json.dumps({k: raw_json(v) for k, v in values.items()}, ensure_ascii=True)
