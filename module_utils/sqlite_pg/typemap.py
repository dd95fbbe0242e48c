"""Declared SQLite type -> PostgreSQL type.

SQLite keeps whatever it is given; the declared type is a hint (its "affinity"). The
mapping starts from the declared name (as SQLAlchemy and hand-written schemas spell it)
and falls back on SQLite's own affinity rules. Columns declared with no type at all are
typed from the storage classes actually present (``typeof()`` census).

PostgreSQL types are written the way ``format_type()`` prints them, so a planned column
can be compared with an existing one as plain strings.
"""

import re

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


def map_census(classes):
    """Type an untyped column from the storage classes it holds ({'integer': n, ...})."""
    present = {k for k, n in classes.items() if n and k != "null"}
    if not present or "text" in present:
        return "text"
    if present == {"integer"}:
        return "bigint"
    if present <= {"integer", "real"}:
        return "double precision"
    if present == {"blob"}:
        return "bytea"
    return "text"


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
