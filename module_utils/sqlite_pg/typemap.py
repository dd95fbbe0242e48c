"""Declared SQLite type -> PostgreSQL type.

SQLite keeps whatever it is given; the declared type is a hint (its "affinity"). The
mapping starts from the declared name (as SQLAlchemy and hand-written schemas spell it)
and falls back on SQLite's own affinity rules. Columns declared with no type at all are
typed from the storage classes actually present (``typeof()`` census).

PostgreSQL types are written the way ``format_type()`` prints them, so a planned column
can be compared with an existing one as plain strings.
"""

import re

from . import convert
from .errors import SchemaError

_PARAMS = re.compile(r"^\s*([A-Za-z_ ][A-Za-z0-9_ ]*?)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?\s*$")

TIMESTAMP_TYPES = ("timestamp without time zone", "timestamp with time zone")


def map_declared(declared, timestamp_type="timestamp without time zone"):
    """The PostgreSQL type for a declared SQLite type, or None when nothing was declared."""
    text = (declared or "").strip()
    if not text:
        return None
    m = _PARAMS.match(text)
    base = (m.group(1) if m else text).upper().strip()
    p1 = int(m.group(2)) if m and m.group(2) else None
    p2 = int(m.group(3)) if m and m.group(3) else None
    words = base.split()

    if "BOOL" in base:
        return "boolean"
    if "INT" in base:
        # SQLite integers are 64-bit whatever the declared width: bigint never overflows.
        return "bigint"
    if base in ("DATETIME", "TIMESTAMP") or base.startswith("TIMESTAMP"):
        return timestamp_type
    if base == "DATE":
        return "date"
    if base == "TIME":
        return "time without time zone"
    if base in ("JSON", "JSONB"):
        return "jsonb"
    if base in ("UUID", "GUID", "UNIQUEIDENTIFIER"):
        return "uuid"
    if any(w in ("VARCHAR", "VARYING", "NVARCHAR", "CHAR", "CHARACTER", "NCHAR", "VARCHAR2") for w in words):
        return f"character varying({p1})" if p1 else "text"
    if "CHAR" in base or "CLOB" in base or "TEXT" in base or base == "STRING":
        return "text"
    if "BLOB" in base or base in ("BINARY", "VARBINARY", "BYTEA"):
        return "bytea"
    if "REAL" in base or "FLOA" in base or "DOUB" in base:
        return "double precision"
    if base in ("NUMERIC", "DECIMAL", "MONEY", "NUMBER"):
        if p1 and p2 is not None:
            return f"numeric({p1},{p2})"
        if p1:
            return f"numeric({p1},0)"
        return "numeric"
    # An unknown name (SQLite gives it NUMERIC affinity, yet it may hold anything):
    # let the values decide, as for an untyped column.
    return None


# Beyond 2**53 a double no longer holds every integer: 9007199254740993 would become ...992.
DOUBLE_EXACT = 2**53


def map_census(classes):
    """Type an untyped column from the storage classes it holds ({'integer': n, ...}) and the
    census facts (``census``): the type must hold every value exactly. Integers beside
    reals take double precision only while every integer fits 53 bits, else numeric; a
    column whose reals numeric cannot hold (-0.0, infinities) is text."""
    present = {k for k, n in classes.items() if n and k in ("integer", "real", "text", "blob")}
    if not present or "text" in present:
        return "text"
    if present == {"integer"}:
        return "bigint"
    if present == {"real"}:
        return "double precision"
    if present == {"integer", "real"}:
        if not classes.get("wide_integer"):
            return "double precision"
        return "text" if classes.get("special_real") else "numeric"
    if present == {"blob"}:
        return "bytea"
    return "text"


def _facts(declared_type, c):
    """(name, condition) pairs the census counts for a column planned as ``declared_type``
    (None: untyped, typed from its values)."""
    if declared_type is None:
        return [(cls, f"typeof({c}) = '{cls}'") for cls in ("integer", "real", "text", "blob")] + [
            ("wide_integer", f"typeof({c}) = 'integer' AND ({c} > {DOUBLE_EXACT} OR {c} < {-DOUBLE_EXACT})"),
            # CASE: abs(-2**63) overflows, and SQLite may evaluate both sides of an AND.
            ("special_real", f"CASE WHEN typeof({c}) = 'real' THEN {c} > {convert.DOUBLE_MAX!r} OR "
                             f"{c} < {-convert.DOUBLE_MAX!r} OR ({c} = 0 AND s2p_signbit({c})) ELSE 0 END"),
        ]
    if declared_type == "jsonb":
        return [("jsonb_changes", f"typeof({c}) = 'text' AND {convert.jsonb_changes(c)}")]
    if declared_type == "time without time zone":
        return [("time_offset", f"typeof({c}) = 'text' AND {convert.time_offset(c)}")]
    return []


def needs_census(declared_type):
    """Whether the values choose the type of a column whose declared type maps to this."""
    return declared_type in (None, "jsonb", "time without time zone")


def census(conn, table, columns):
    """{column: {fact: count}} for ``columns`` ({name: mapped declared type or None}) of
    ``table`` (its quoted name), in one scan."""
    parts, names = [], []
    for name, declared_type in columns.items():
        c = '"' + name.replace('"', '""') + '"'
        for fact, cond in _facts(declared_type, c):
            parts.append(f"sum({cond})")
            names.append((name, fact))
    if not parts:
        return {}
    convert.register_functions(conn)
    row = conn.execute(f"SELECT {', '.join(parts)} FROM {table}").fetchone()
    out = {name: {} for name in columns}
    for (name, fact), n in zip(names, row, strict=True):
        out[name][fact] = n or 0
    return out


def why_chosen(declared_type, chosen):
    """Why the values chose ``chosen`` over the declared type's mapping, in words; None
    when they did not."""
    if declared_type == chosen or chosen is None:
        return None
    if declared_type == "jsonb":
        return ("jsonb would change some values (a duplicate object key, a -0, a number with an exponent read "
                "back as an integer): json keeps them as written")
    if declared_type == "time without time zone":
        return "some values carry a UTC offset: time with time zone keeps it"
    if chosen == "numeric":
        return "integers beyond 2**53 beside reals: a double would round them, numeric holds both exactly"
    return "typed from the values it holds"


def choose_type(declared_type, facts):
    """The PostgreSQL type for a column from its mapped declared type and its census: JSON
    that jsonb would change is typed json (kept as written); a TIME column with UTC offsets
    is typed time with time zone (the offsets kept); untyped columns by ``map_census``."""
    facts = facts or {}
    if declared_type is None:
        return map_census(facts)
    if declared_type == "jsonb" and facts.get("jsonb_changes"):
        return "json"
    if declared_type == "time without time zone" and facts.get("time_offset"):
        return "time with time zone"
    return declared_type


_ALIASES = {
    "int": "integer", "int4": "integer", "int8": "bigint", "int2": "smallint",
    "float8": "double precision", "float": "double precision", "float4": "real",
    "bool": "boolean", "decimal": "numeric", "varchar": "character varying",
    "char": "character", "bpchar": "character", "timestamptz": "timestamp with time zone",
    "timestamp": "timestamp without time zone", "time": "time without time zone",
    "timetz": "time with time zone",
}


def normalize_type(pg_type, column="?"):
    """A user-given PostgreSQL type in ``format_type()`` spelling (``varchar(5)`` ->
    ``character varying(5)``). Refuses anything that is not a plain type name, since the
    text ends up in DDL."""
    text = " ".join((pg_type or "").lower().split())
    m = re.fullmatch(r"([a-z_][a-z0-9_ ]*?)\s*(\(\s*\d+\s*(?:,\s*\d+\s*)?\))?(\[\])?", text)
    if not m:
        raise SchemaError(f"type for column {column!r} is not a PostgreSQL type name: {pg_type!r}")
    base, params, array = m.group(1), (m.group(2) or "").replace(" ", ""), m.group(3) or ""
    base = _ALIASES.get(base, base)
    if params and base.startswith("timestamp") or params and base.startswith("time "):
        head, _, zone = base.partition(" ")
        return f"{head}{params} {zone}{array}"
    return f"{base}{params}{array}"
