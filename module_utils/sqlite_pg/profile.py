"""Know the data before moving it: what each column really holds and what the copy will do.

One scan per table computes, per column, the census of storage classes, which values would
not convert (with the same codecs the copy uses, so the prediction and the copy agree), and
the encodings in use (date/time formats, boolean spellings). Targeted queries follow only
where something needs reasons or examples.

The scan packs what it learns of a row into one or a few integers (a *signature*: per
column its storage class, whether it would convert, its date/time format) and counts rows
per signature with GROUP BY: one sort instead of dozens of aggregates per row. Whether text
is valid UTF-8 without NUL bytes is checked in Python for a whole chunk of a column at
once, not per value; only a column whose chunk fails is checked value by value there.
Tables are scanned in rowid ranges on two connections to one snapshot (the copy's two
reader threads), beside the integrity check and the orphan queries.
"""

import threading
import time
from collections import Counter

from . import convert
from .connection import integrity_check, snapshot_readers
from .ddl import convert_default
from .errors import short_repr
from .introspect import quote_ident
from .typemap import map_declared, needs_census, why_chosen

CLASSES = ("null", "integer", "real", "text", "blob")
_CLASS_CODE = dict(null=0, integer=1, real=2, text=3, blob=4)

# Date/time encodings, told apart in SQL: (name, storage classes, condition on a value v of
# those classes; l is length(v), a is abs(v) as a REAL, which cannot overflow as abs(-2**63) does).
_NUMBER = ("integer", "real")
DATETIME_FORMATS = (
    ("ISO 'YYYY-MM-DD HH:MM:SS' (space)", ("text",), "{l} >= 16 AND substr({v}, 11, 1) = ' '"),
    ("ISO 'YYYY-MM-DDTHH:MM:SS' (T)", ("text",), "{l} >= 16 AND substr({v}, 11, 1) = 'T'"),
    ("with fraction of a second", ("text",), "substr({v}, 20, 1) = '.'"),
    ("with UTC offset or Z", ("text",), "{l} > 19 AND (substr({v}, -1) = 'Z' OR "
                                        "substr({v}, -6, 1) IN ('+', '-') OR substr({v}, -5, 1) IN ('+', '-'))"),
    ("date only 'YYYY-MM-DD'", ("text",), "{l} = 10"),
    ("epoch seconds", _NUMBER, f"{{a}} >= {convert.EPOCH_S_MIN} AND {{a}} < {convert.EPOCH_MS_THRESHOLD}"),
    ("epoch milliseconds", _NUMBER, f"{{a}} >= {convert.EPOCH_MS_THRESHOLD}"),
    ("Julian day number", _NUMBER, f"{{a}} >= {convert.JULIAN_RANGE[0]} AND {{a}} < {convert.JULIAN_RANGE[1]}"),
    ("ambiguous number (refused)", _NUMBER, f"{{a}} < {convert.EPOCH_S_MIN} AND NOT ({{a}} >= "
                                            f"{convert.JULIAN_RANGE[0]} AND {{a}} < {convert.JULIAN_RANGE[1]})"),
)
# The forms apps write, matched by one GLOB each: a pattern fixes all that the conditions
# above read (the length, the 11th and 20th characters, the last six when longer than 19),
# so its formats are known without them. GLOB, length() and substr() count characters alike
# and stop at a NUL.
DATETIME_SHORTCUTS = (
    ("????-??-?? ??:??:??.[0-9][0-9][0-9][0-9][0-9][0-9]",
     ("ISO 'YYYY-MM-DD HH:MM:SS' (space)", "with fraction of a second")),
    ("????-??-?? ??:??:??", ("ISO 'YYYY-MM-DD HH:MM:SS' (space)",)),
)

_MAX_CHUNK_ROWS = 50_000
_CHUNK_TEXT_BYTES = 4 << 20   # text joined per column and chunk for the UTF-8 check
_RANGE_ROWS = 50_000          # rowid ranges handed out to the readers
_SIG_BITS = 62
_MAX_OUTPUTS = 1000           # counts per query (SQLite allows 2000 result columns)


def _text_ok(blob):
    """Bytes of a chunk's text values joined by newlines, negative (-1 - bytes) when one of
    them holds a NUL byte or is not valid UTF-8 (a newline cannot complete or hide a broken
    sequence, so the join is valid exactly when every value is)."""
    if blob is None:
        return 0
    ok = b"\x00" not in blob and (blob.isascii() or convert._valid_utf8(blob))
    return len(blob) if ok else -1 - len(blob)


def _format_sql(cond, c):
    return cond.format(v=c, l=f"length({c})", a=f"abs(CAST({c} AS REAL))")


class _Column:
    """One column's part of the scan: its field in the signature and how to read it back."""

    def __init__(self, index, col, codec, chunked):
        self.index = index
        self.col = col
        self.codec = codec
        self.c = quote_ident(col.source)
        self.temporal = col.pg_type.startswith("timestamp") or col.pg_type == "date"
        self.integer = col.pg_type in ("bigint", "integer")
        # Checked chunk by chunk in Python; the codec's own per-value check (a Python call per
        # value) only where a chunk fails, or where there is no rowid to cut chunks by.
        self.checked = codec.text_like and chunked
        # class (3 bits), would not convert (1), then the formats (5) or beyond int4 (1)
        self.bits = 9 if self.temporal else 5 if self.integer else 4

    def field(self, text_checked):
        """The column's field of the signature, as SQL."""
        c = self.c
        extra = {}
        if self.integer:
            extra["integer"] = f" + 16 * ({c} NOT BETWEEN -2147483648 AND 2147483647)"
        if self.temporal:
            for classes in (("text",), _NUMBER):
                conds = [cond for _, cls, cond in DATETIME_FORMATS if cls == classes]
                flags = " + ".join(f"({_format_sql(cond, c)}) * {1 << k}" for k, cond in enumerate(conds))
                if classes == ("text",):
                    names = [n for n, cls, _ in DATETIME_FORMATS if cls == classes]
                    short = " ".join(f"WHEN {c} GLOB '{pattern}' THEN {sum(1 << names.index(n) for n in hits)}"
                                     for pattern, hits in DATETIME_SHORTCUTS)
                    flags = f"CASE {short} ELSE {flags} END"
                for cls in classes:
                    extra[cls] = f" + 16 * ({flags})"
        whens = " ".join(f"WHEN '{cls}' THEN {_CLASS_CODE[cls]}{extra.get(cls, '')}"
                         for cls in ("text", "integer", "null", "real"))
        problem = self.codec.problem(c, text_checked=text_checked)
        return f"CASE typeof({c}) {whens} ELSE {_CLASS_CODE['blob']} END + 8 * (({problem}) IS NOT NULL)"


class _TablePlan:
    """The scan of one table: signature SQL, rowid ranges, and the counts they add up to."""

    def __init__(self, target, utf8_db):
        table = target.source
        self.target = target
        self.q = quote_ident(table.name)
        self.key = None
        if table.has_rowid:
            taken = {n.lower() for n in table.column_names}
            self.key = next((n for n in ("rowid", "_rowid_", "oid") if n not in taken), None)
        # CAST(... AS BLOB) of text in a UTF-16 file is not the UTF-8 that group_concat joins.
        chunked = self.key is not None and utf8_db
        # An ENUM column's labels from the model, as the copy takes them from the catalog.
        self.columns = [_Column(i, col, convert.codec_for(col.pg_type, col.notnull or col.name in target.primary_key,
                                                          col.enum[1] if col.enum else None, col.interval_unit),
                                chunked) for i, col in enumerate(target.columns)]
        # Pack the fields into as few integers as fit.
        groups, used, place = [[]], 0, []
        for entry in self.columns:
            if used + entry.bits > _SIG_BITS and groups[-1]:
                groups.append([])
                used = 0
            place.append((len(groups) - 1, used))
            groups[-1].append((entry, used))
            used += entry.bits
        self.groups = groups
        # What is counted: (what, slot, shift, mask, value) for the rows whose field, masked,
        # equals value; formats of numbers count twice (integer, real) under one name.
        self.outputs = [(("rows",), None, 0, 0, 0), (("reject",), None, 0, 0, 0)]
        self.problem_masks = [0] * len(groups)
        for entry, (slot, shift) in zip(self.columns, place, strict=True):
            i = entry.index
            self.problem_masks[slot] |= 8 << shift
            self.outputs += [((i, "census", cls), slot, shift, 7, code) for cls, code in _CLASS_CODE.items()]
            self.outputs.append(((i, "problems"), slot, shift, 8, 8))
            if entry.integer:
                self.outputs.append(((i, "beyond_int4"), slot, shift, 16, 16))
            if entry.temporal:
                for cls, code in _CLASS_CODE.items():
                    names = [n for n, classes, _ in DATETIME_FORMATS if cls in classes]
                    self.outputs += [((i, "format", name), slot, shift, 7 | 16 << k, code | 16 << k)
                                     for k, name in enumerate(names)]
        self.checked = [e.index for e in self.columns if e.checked]
        self._sql = {}
        self.totals = Counter()
        self.duplicates = None   # rows that repeat another, for a table without a key
        self.details = {}        # (column index, what) -> result of a targeted query
        self.seconds = 0.0
        self.lock = threading.Lock()

    def sig_sql(self, unchecked):
        """The counts over a key range ({where}); ``unchecked``: columns whose text failed the chunk check."""
        if unchecked not in self._sql:
            sigs = []
            for n, group in enumerate(self.groups):
                parts = [f"({e.field(not e.codec.text_like or (e.checked and e.index not in unchecked))}) "
                         f"* {1 << shift}" for e, shift in group]
                sigs.append(f"{' + '.join(parts)} AS s{n}")
            names = ", ".join(f"s{n}" for n in range(len(sigs)))
            grouped = (f"SELECT {names}, count(*) AS n FROM (SELECT {', '.join(sigs)} FROM {self.q} "
                       f"WHERE {{where}} LIMIT -1) GROUP BY {names}")
            if len(self.outputs) > _MAX_OUTPUTS:
                self._sql[unchecked] = grouped   # counted in Python (below)
            else:
                # Counted over the groups, not the rows: few groups, little work, whatever the width.
                sums = []
                for what, slot, shift, mask, value in self.outputs:
                    if what == ("rows",):
                        sums.append("sum(n)")
                    elif what == ("reject",):
                        any_bad = " OR ".join(f"(s{k} & {m}) != 0" for k, m in enumerate(self.problem_masks))
                        sums.append(f"sum(n * ({any_bad}))")
                    else:
                        sums.append(f"sum(n * (((s{slot} >> {shift}) & {mask}) = {value}))")
                self._sql[unchecked] = f"SELECT {', '.join(sums)} FROM ({grouped})"
        return self._sql[unchecked]

    def _count(self, conn, unchecked, lo, hi):
        where, args = self.where(lo, hi)
        rows = conn.execute(self.sig_sql(unchecked).format(where=where), args).fetchall()
        counts = Counter()
        if len(self.outputs) <= _MAX_OUTPUTS:
            for (what, *_), v in zip(self.outputs, rows[0], strict=True):
                counts[what] += v or 0
            return counts
        for *sig, n in rows:
            for what, slot, shift, mask, value in self.outputs:
                if what == ("rows",):
                    hit = True
                elif what == ("reject",):
                    hit = any(s & m for s, m in zip(sig, self.problem_masks, strict=True))
                else:
                    hit = (sig[slot] >> shift) & mask == value
                if hit:
                    counts[what] += n
        return counts

    def where(self, lo, hi):
        parts, args = [], []
        if lo is not None:
            parts.append(f"{self.key} > ?")
            args.append(lo)
        if hi is not None:
            parts.append(f"{self.key} <= ?")
            args.append(hi)
        return " AND ".join(parts) or "1", args

    def ranges(self, conn, rows):
        """Rowid ranges (lo, hi] of about _RANGE_ROWS rows each, if rowids are dense."""
        if self.key is None or rows <= _RANGE_ROWS:
            return [(None, None)]
        # Two subqueries: each is one seek, where min() and max() in one SELECT scan the table.
        low, high = conn.execute(f"SELECT (SELECT min({self.key}) FROM {self.q}), "
                                 f"(SELECT max({self.key}) FROM {self.q})").fetchone()
        n = min(rows // _RANGE_ROWS, 256)
        edges = [low - 1 + (high - low + 1) * i // n for i in range(n + 1)]
        edges[0], edges[-1] = None, None
        return list(zip(edges[:-1], edges[1:], strict=True))

    def scan(self, conn, lo, hi):
        """Count the rows with keys in (lo, hi]."""
        begin = time.monotonic()
        if not self.checked:
            counts = self._count(conn, frozenset(), lo, hi)
        else:
            counts = Counter()
            k = self.key
            joined = ", ".join(f"s2p_text_ok(CAST(group_concat({c}, char(10)) FILTER (WHERE typeof({c}) = 'text') "
                               "AS BLOB))" for c in (self.columns[i].c for i in self.checked))
            start, limit = lo, 256
            while True:
                # A chunk of up to ``limit`` rows, its end found first (a walk over the keys, no
                # values): its text checked in Python, then counted.
                where, args = self.where(start, hi)
                row = conn.execute(f"SELECT max({k}), count(*), {joined} FROM {self.q} WHERE {where} AND {k} <= "
                                   f"coalesce((SELECT {k} FROM {self.q} WHERE {where} ORDER BY {k} LIMIT 1 OFFSET ?), "
                                   f"{2**63 - 1})", args + args + [limit - 1]).fetchone()
                end, rows, sizes = row[0], row[1], row[2:]
                if not rows:
                    break
                unchecked = frozenset(i for i, size in zip(self.checked, sizes, strict=True) if size < 0)
                counts.update(self._count(conn, unchecked, start, end))
                if rows < limit or end == hi:
                    break
                start = end
                grow = _CHUNK_TEXT_BYTES * rows // max(*(abs(size) for size in sizes), 1)
                limit = max(1, min(_MAX_CHUNK_ROWS, limit * 4, grow))
        with self.lock:
            self.totals.update(counts)
            self.seconds += time.monotonic() - begin


def _detail_tasks(plan, max_examples):
    """The targeted queries a scanned table needs: reasons and examples where values would
    not convert, the spellings of booleans stored as text."""
    table, details, tasks = plan.target.source, plan.details, []
    for entry in plan.columns:
        i, col, codec, c = entry.index, entry.col, entry.codec, entry.c
        if plan.totals[i, "problems"]:
            tasks.append(lambda conn, i=i, col=col, codec=codec: details.__setitem__(
                (i, "problems"), _problem_counts(conn, table, codec, col)))
            tasks.append(lambda conn, i=i, col=col, codec=codec: details.__setitem__(
                (i, "examples"), _examples(conn, table, col, codec, max_examples)))
        if col.pg_type == "boolean" and plan.totals[i, "census", "text"]:
            tasks.append(lambda conn, i=i, c=c: details.__setitem__((i, "spellings"), dict(conn.execute(
                f"SELECT lower(trim({c})), count(*) FROM {plan.q} "
                f"WHERE typeof({c}) = 'text' GROUP BY 1 ORDER BY 2 DESC LIMIT 20").fetchall())))
    return tasks


def _finish_table(plan):
    """The profile of one scanned table, from its counts and targeted queries."""
    target = plan.target
    table = target.source
    totals = plan.totals
    rows = totals["rows",]
    result_columns = {}
    for entry in plan.columns:
        col, i = entry.col, entry.index
        census = {cls: totals[i, "census", cls] for cls in CLASSES}
        problems = plan.details.get((i, "problems"), {})
        info = dict(declared=table.column(col.source).declared, pg_type=col.pg_type,
                    storage_classes={k: v for k, v in census.items() if v},
                    convert_cleanly=rows - sum(problems.values()), problems=problems)
        declared_type = map_declared(info["declared"])
        why = why_chosen(declared_type, col.pg_type) if needs_census(declared_type) else None
        if why and why != "typed from the values it holds":
            info["type_choice"] = why
        if entry.temporal:
            info["datetime_formats"] = {n: totals[i, "format", n] for n, _, _ in DATETIME_FORMATS
                                        if totals[i, "format", n]}
        if entry.integer and totals[i, "beyond_int4"]:
            info["beyond_int4"] = totals[i, "beyond_int4"]
        if (i, "spellings") in plan.details:
            info["boolean_spellings"] = plan.details[i, "spellings"]
        if problems:
            info["examples"] = plan.details[i, "examples"]
        default = table.column(col.source).default
        if default is not None and not col.identity:
            translated, why = convert_default(default, col.pg_type)
            info["default"] = dict(sqlite=default, postgresql=translated)
            if why:
                info["default"]["why_not"] = why
        result_columns[col.source] = info
    return dict(
        rows=rows,
        primary_key=_key_kind(table, plan.duplicates),
        autoincrement=table.autoincrement,
        columns=result_columns,
        would_reject=totals["reject",],
        seconds=round(plan.seconds, 3),   # its queries' time, though they overlap others
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
        key = {k: convert.raw_json(v) for k, v in zip(keys, row[:len(keys)], strict=True)}
        out.append(dict(key=key, value=short_repr(convert.raw_json(row[len(keys)])), reason=row[-1]))
    return out


def _key_kind(table, duplicates):
    if table.without_rowid:
        return dict(kind="WITHOUT ROWID", columns=list(table.primary_key))
    if table.rowid_alias:
        return dict(kind="rowid alias (INTEGER PRIMARY KEY)", columns=list(table.primary_key))
    if table.primary_key:
        kind = "composite" if len(table.primary_key) > 1 else "single column"
        return dict(kind=kind, columns=list(table.primary_key))
    return dict(kind="none", columns=[], duplicate_rows=duplicates)


def _duplicate_rows(conn, table):
    cols = ", ".join(quote_ident(c) for c in table.column_names)
    return conn.execute(f"SELECT coalesce(sum(s2p_n - 1), 0) FROM (SELECT count(*) AS s2p_n FROM {quote_ident(table.name)} "
                        f"GROUP BY {cols} HAVING count(*) > 1)").fetchone()[0]


def _orphan_queries(model):
    """(label, query) per foreign key of the model whose parent is in the model."""
    out = []
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
            out.append((f"{table.name}({', '.join(fk.columns)}) -> {parent.name}({', '.join(ref)})",
                        f"SELECT count(*) FROM {quote_ident(table.name)} c WHERE {notnull} AND NOT EXISTS "
                        f"(SELECT 1 FROM {quote_ident(parent.name)} p WHERE {match})"))
    return out


def orphans(conn, model):
    """Per foreign key of the model, rows of the SQLite child that name no parent row."""
    return {label: conn.execute(sql).fetchone()[0] for label, sql in _orphan_queries(model)}


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
            if cinfo.get("type_choice"):
                lines.append(f"{name}.{col}: declared {cinfo['declared']!r}, planned {cinfo['pg_type']}: "
                             f"{cinfo['type_choice']}")
            if cinfo.get("datetime_formats", {}).get("epoch milliseconds"):
                lines.append(f"{name}.{col}: {cinfo['datetime_formats']['epoch milliseconds']} epoch "
                             "millisecond value(s), converted by magnitude")
            default = cinfo.get("default")
            if default and default["postgresql"] is None and default["sqlite"].upper() != "NULL":
                lines.append(f"{name}.{col}: default {default['sqlite']} "
                             f"{default.get('why_not') or 'has no PostgreSQL equivalent'}; left out")
        if info["primary_key"]["kind"] == "none" and info["primary_key"].get("duplicate_rows"):
            lines.append(f"{name}: no primary key and {info['primary_key']['duplicate_rows']} duplicate row(s); "
                         "all are copied")
    for fk, n in fk_orphans.items():
        if n:
            lines.append(f"{fk}: {n} orphan row(s); choose orphans=error|not_valid|skip")
    return lines


def _timed(plan, task):
    def run(conn):
        begin = time.monotonic()
        task(conn)
        with plan.lock:
            plan.seconds += time.monotonic() - begin
    return run


def _run_tasks(conns, tasks):
    """Run ``tasks`` (callables taking a connection), in order, one thread per connection;
    sqlite3 lets go of the GIL while SQLite works, so the readers share the cores."""
    if len(conns) == 1:
        for task in tasks:
            task(conns[0])
        return
    pending = iter(tasks)
    lock = threading.Lock()
    errors = []

    def work(conn):
        while not errors:
            with lock:
                task = next(pending, None)
            if task is None:
                return
            try:
                task(conn)
            except BaseException as exc:  # raised in the calling thread below
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(conn,), daemon=True) for conn in conns]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def profile(conn, model, max_examples=5, check_integrity=True, on_error="error"):
    # One snapshot, read by two connections where the file allows it (as the copy does); a
    # writer busy for longer than 2 s leaves the profile to one connection rather than waiting.
    readers = snapshot_readers(conn, 1, timeout=2.0)
    try:
        utf8_db = conn.execute("PRAGMA encoding").fetchone()[0] == "UTF-8"
        for reader in readers:
            convert.register_functions(reader)
            reader.create_function("s2p_text_ok", 1, _text_ok, deterministic=True)
        out = {}
        plans = {name: _TablePlan(target, utf8_db) for name, target in model.items()}
        sizes = {name: conn.execute(f"SELECT count(*) FROM {plan.q}").fetchone()[0] for name, plan in plans.items()}
        tasks = []
        if check_integrity:
            tasks.append(lambda c: out.__setitem__("integrity", integrity_check(c)))
        for name, plan in plans.items():
            for lo, hi in plan.ranges(conn, sizes[name]):
                tasks.append(lambda c, plan=plan, lo=lo, hi=hi: plan.scan(c, lo, hi))
            table = plan.target.source
            if not (table.without_rowid or table.primary_key):
                tasks.append(lambda c, plan=plan: setattr(plan, "duplicates", _duplicate_rows(c, plan.target.source)))
        fk_queries = _orphan_queries(model)
        for label, sql in fk_queries:
            tasks.append(lambda c, label=label, sql=sql: out.__setitem__(label, c.execute(sql).fetchone()[0]))
        _run_tasks(readers, tasks)
        _run_tasks(readers, [_timed(plan, task) for plan in plans.values() for task in _detail_tasks(plan, max_examples)])
        tables = {name: _finish_table(plan) for name, plan in plans.items()}
        problems = out.get("integrity", [])
        fk_orphans = {label: out[label] for label, _ in fk_queries}
    finally:
        for reader in readers:
            reader.execute("ROLLBACK")
        for reader in readers[1:]:
            reader.close()
    return dict(
        integrity=problems or ["ok"],
        tables=tables,
        orphans=fk_orphans,
        would_reject=sum(t["would_reject"] for t in tables.values()),
        summary=summary(tables, fk_orphans, on_error),
    )
