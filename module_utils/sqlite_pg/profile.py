"""Know the data before moving it: what each column really holds and what the copy will do.

One aggregate scan per table computes, per column, the census of storage classes, how
many values would not convert (by reason, with the same codecs the copy uses, so the
prediction and the copy agree), and the encodings in use (date/time formats, boolean
spellings). Targeted queries follow only where something needs examples.
"""

import time

from . import convert
from .connection import integrity_check
from .ddl import translate_default
from .errors import short_repr
from .introspect import quote_ident

CLASSES = ("null", "integer", "real", "text", "blob")

# Date/time encodings, told apart in SQL: (name, condition on a value c).
DATETIME_FORMATS = (
    ("ISO 'YYYY-MM-DD HH:MM:SS' (space)", "typeof({c}) = 'text' AND length({c}) >= 16 AND substr({c}, 11, 1) = ' '"),
    ("ISO 'YYYY-MM-DDTHH:MM:SS' (T)", "typeof({c}) = 'text' AND length({c}) >= 16 AND substr({c}, 11, 1) = 'T'"),
    ("with fraction of a second", "typeof({c}) = 'text' AND substr({c}, 20, 1) = '.'"),
    ("with UTC offset or Z", "typeof({c}) = 'text' AND length({c}) > 19 AND (substr({c}, -1) = 'Z' OR "
                             "substr({c}, -6, 1) IN ('+', '-') OR substr({c}, -5, 1) IN ('+', '-'))"),
    ("date only 'YYYY-MM-DD'", "typeof({c}) = 'text' AND length({c}) = 10"),
    ("epoch seconds", f"typeof({{c}}) IN ('integer', 'real') AND abs({{c}}) >= {convert.EPOCH_S_MIN} "
                      f"AND abs({{c}}) < {convert.EPOCH_MS_THRESHOLD}"),
    ("epoch milliseconds", f"typeof({{c}}) IN ('integer', 'real') AND abs({{c}}) >= {convert.EPOCH_MS_THRESHOLD}"),
    ("Julian day number", f"typeof({{c}}) IN ('integer', 'real') AND abs({{c}}) >= {convert.JULIAN_RANGE[0]} "
                          f"AND abs({{c}}) < {convert.JULIAN_RANGE[1]}"),
    ("ambiguous number (refused)", f"typeof({{c}}) IN ('integer', 'real') AND abs({{c}}) < {convert.EPOCH_S_MIN} "
                                   f"AND NOT (abs({{c}}) >= {convert.JULIAN_RANGE[0]} "
                                   f"AND abs({{c}}) < {convert.JULIAN_RANGE[1]})"),
)


def profile_table(conn, target, max_examples=5):
    """The profile of one table, from one scan plus targeted queries where problems exist."""
    table = target.source
    q = quote_ident(table.name)
    start = time.monotonic()
    columns = []
    inner, outer = [], ["count(*)"]
    for i, col in enumerate(target.columns):
        c = quote_ident(col.source)
        codec = convert.codec_for(col.pg_type, col.notnull or col.name in target.primary_key)
        inner += [f"typeof({c}) AS t{i}", f"({codec.problem(c)}) AS p{i}"]
        outer += [f"sum(t{i} = '{cls}')" for cls in CLASSES]
        outer.append(f"count(p{i})")
        formats = []
        if col.pg_type.startswith("timestamp") or col.pg_type == "date":
            inner.append(f"{c} AS v{i}")
            formats = [name for name, _ in DATETIME_FORMATS]
            outer += [f"sum({cond.format(c=f'v{i}')})" for _, cond in DATETIME_FORMATS]
        if col.pg_type in ("bigint", "integer"):
            inner.append(f"({c} NOT BETWEEN -2147483648 AND 2147483647 AND typeof({c}) = 'integer') AS big{i}")
            outer.append(f"sum(big{i})")
        columns.append(dict(col=col, codec=codec, formats=formats))
    any_problem = " OR ".join(f"p{i} IS NOT NULL" for i in range(len(target.columns))) or "0"
    outer.append(f"sum({any_problem})")
    # LIMIT -1 keeps SQLite from flattening the subquery, so each expression runs once per row.
    row = conn.execute(f"SELECT {', '.join(outer)} FROM (SELECT {', '.join(inner)} FROM {q} LIMIT -1)").fetchone()
    values = [v or 0 for v in row]
    rows = values.pop(0)
    would_reject = values.pop()
    result_columns = {}
    for entry in columns:
        col = entry["col"]
        census = dict(zip(CLASSES, values[:5], strict=True))
        del values[:5]
        problems = _problem_counts(conn, table, entry["codec"], col) if values[0] else {}
        del values[:1]
        info = dict(declared=table.column(col.source).declared, pg_type=col.pg_type,
                    storage_classes={k: v for k, v in census.items() if v},
                    convert_cleanly=rows - sum(problems.values()), problems=problems)
        if entry["formats"]:
            info["datetime_formats"] = {n: v for n, v in zip(entry["formats"], values[:len(entry["formats"])],
                                                             strict=True) if v}
            del values[:len(entry["formats"])]
        if col.pg_type in ("bigint", "integer"):
            if values[0]:
                info["beyond_int4"] = values[0]
            del values[:1]
        if col.pg_type == "boolean" and census["text"]:
            info["boolean_spellings"] = dict(conn.execute(
                f"SELECT lower(trim({quote_ident(col.source)})), count(*) FROM {q} "
                f"WHERE typeof({quote_ident(col.source)}) = 'text' GROUP BY 1 ORDER BY 2 DESC LIMIT 20").fetchall())
        if problems:
            info["examples"] = _examples(conn, table, col, entry["codec"], max_examples)
        default = table.column(col.source).default
        if default is not None and not col.identity:
            info["default"] = dict(sqlite=default, postgresql=translate_default(default, col.pg_type))
        result_columns[col.source] = info
    return dict(
        rows=rows,
        primary_key=_key_kind(conn, table),
        autoincrement=table.autoincrement,
        columns=result_columns,
        would_reject=would_reject,
        seconds=round(time.monotonic() - start, 3),
    )


def _problem_counts(conn, table, codec, col):
    """Reasons and their counts for a column known to have problems (a targeted scan)."""
    c = quote_ident(col.source)
    return dict(conn.execute(f"SELECT p, count(*) FROM (SELECT ({codec.problem(c)}) AS p FROM "
                             f"{quote_ident(table.name)} LIMIT -1) WHERE p IS NOT NULL GROUP BY p ORDER BY 2 DESC"))


def _examples(conn, table, col, codec, limit):
    c = quote_ident(col.source)
    keys = list(table.primary_key) or ["rowid"]
    key_sql = ", ".join(quote_ident(k) if k != "rowid" else "rowid" for k in keys)
    out = []
    for row in conn.execute(f"SELECT {key_sql}, {c}, ({codec.problem(c)}) AS p FROM {quote_ident(table.name)} "
                            f"WHERE p IS NOT NULL LIMIT {int(limit)}"):
        key = dict(zip(keys, row[:len(keys)], strict=True))
        out.append(dict(key=key, value=short_repr(convert.raw_json(row[len(keys)])), reason=row[-1]))
    return out


def _key_kind(conn, table):
    if table.without_rowid:
        return dict(kind="WITHOUT ROWID", columns=list(table.primary_key))
    if table.rowid_alias:
        return dict(kind="rowid alias (INTEGER PRIMARY KEY)", columns=list(table.primary_key))
    if table.primary_key:
        kind = "composite" if len(table.primary_key) > 1 else "single column"
        return dict(kind=kind, columns=list(table.primary_key))
    cols = ", ".join(quote_ident(c) for c in table.column_names)
    dupes = conn.execute(f"SELECT coalesce(sum(s2p_n - 1), 0) FROM (SELECT count(*) AS s2p_n FROM {quote_ident(table.name)} "
                         f"GROUP BY {cols} HAVING count(*) > 1)").fetchone()[0]
    return dict(kind="none", columns=[], duplicate_rows=dupes)


def orphans(conn, model):
    """Per foreign key of the model, rows of the SQLite child that name no parent row."""
    out = {}
    for target in model.values():
        table = target.source
        for fk in table.foreign_keys:
            if fk.ref_table not in model:
                continue
            parent = model[fk.ref_table].source
            ref = fk.ref_columns or parent.primary_key
            if len(ref) != len(fk.columns):
                continue
            notnull = " AND ".join(f"c.{quote_ident(col)} IS NOT NULL" for col in fk.columns)
            match = " AND ".join(f"p.{quote_ident(r)} = c.{quote_ident(col)}"
                                 for col, r in zip(fk.columns, ref, strict=True))
            count = conn.execute(f"SELECT count(*) FROM {quote_ident(table.name)} c WHERE {notnull} AND NOT EXISTS "
                                 f"(SELECT 1 FROM {quote_ident(parent.name)} p WHERE {match})").fetchone()[0]
            out[f"{table.name}({', '.join(fk.columns)}) -> {parent.name}({', '.join(ref)})"] = count
    return out


def summary(tables, fk_orphans, on_error="error"):
    """Plain lines an operator can act on."""
    lines = []
    for name, info in tables.items():
        for col, cinfo in info["columns"].items():
            for reason, n in cinfo["problems"].items():
                then = ("they go to _migration_rejects" if on_error == "quarantine"
                        else "the copy stops at the first (set on_error=quarantine to set them aside)")
                lines.append(f"{name}.{col}: {n} value(s): {reason}; {then}")
            classes = cinfo["storage_classes"]
            if len([k for k in classes if k != "null"]) > 1:
                lines.append(f"{name}.{col}: mixed storage classes {classes} (declared {cinfo['declared']!r}, "
                             f"planned {cinfo['pg_type']})")
            if cinfo.get("datetime_formats", {}).get("epoch milliseconds"):
                lines.append(f"{name}.{col}: {cinfo['datetime_formats']['epoch milliseconds']} epoch "
                             "millisecond value(s), converted by magnitude")
            default = cinfo.get("default")
            if default and default["postgresql"] is None and default["sqlite"].upper() != "NULL":
                lines.append(f"{name}.{col}: default {default['sqlite']} has no PostgreSQL equivalent")
        if info["primary_key"]["kind"] == "none" and info["primary_key"].get("duplicate_rows"):
            lines.append(f"{name}: no primary key and {info['primary_key']['duplicate_rows']} duplicate row(s); "
                         "all are copied")
    for fk, n in fk_orphans.items():
        if n:
            lines.append(f"{fk}: {n} orphan row(s); choose orphans=error|not_valid|skip")
    return lines


def profile(conn, model, max_examples=5, check_integrity=True, on_error="error"):
    convert.register_functions(conn)
    conn.execute("BEGIN")
    try:
        problems = integrity_check(conn) if check_integrity else []
        tables = {name: profile_table(conn, target, max_examples) for name, target in model.items()}
        fk_orphans = orphans(conn, model)
    finally:
        conn.execute("ROLLBACK")
    return dict(
        integrity=problems or ["ok"],
        tables=tables,
        orphans=fk_orphans,
        would_reject=sum(t["would_reject"] for t in tables.values()),
        summary=summary(tables, fk_orphans, on_error),
    )
