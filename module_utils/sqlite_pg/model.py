"""The target model: what each selected SQLite table becomes in PostgreSQL.

Built once from the SQLite schema plus the operator's options, then used by the schema
planner, the copy and the verification, so all three agree on names and types.
"""

import hashlib
from dataclasses import dataclass, field

from .convert import float_text
from .errors import SchemaError
from .introspect import quote_ident
from .sqlexpr import EXPR_WORDS, Untranslatable, closing, quote_pg, split_top, tokenize, translate_expr
from .typemap import census as value_census
from .typemap import choose_type, map_declared, needs_census, normalize_type

# How a COLLATE NOCASE column is kept (option ``nocase``): a case-insensitive ICU collation,
# the citext type, or only its uniqueness by a unique index on lower() (docs/design.md).
NOCASE_MODES = ("collation", "citext", "lower_index")
GENERATED_MODES = ("stored", "plain")
NOCASE_COLLATION = "nocase"
_TEXT_TYPES = ("text", "character varying", "character")


@dataclass(frozen=True)
class Options:
    """Plain options shared by the engine's entry points."""

    schema: str = "public"
    include_tables: tuple = ()
    exclude_tables: tuple = ()
    timestamp_type: str = "timestamp without time zone"
    column_types: dict = field(default_factory=dict)    # "table.column" -> PostgreSQL type
    interval_units: dict = field(default_factory=dict)  # "table.column" -> what an integer counts (interval)
    choose_types: bool = True   # scan JSON and TIME columns for json / timetz (the schema and the profile do)
    rename: dict = field(default_factory=dict)          # "table" or "table.column" -> new name
    enums: dict = field(default_factory=dict)           # "table.column" -> (ENUM type name, labels)
    nocase: str = "citext"                              # one of NOCASE_MODES
    generated_columns: str = "stored"                   # one of GENERATED_MODES


@dataclass
class TargetColumn:
    name: str            # name in PostgreSQL
    source: str          # name in SQLite
    pg_type: str
    notnull: bool
    default: str | None  # SQLite default text (translated by ddl)
    identity: bool = False
    enum: tuple | None = None   # (type name, labels) when the column is a PostgreSQL ENUM
    interval_unit: str = "microseconds"   # what an integer counts, should the column be an interval
    nocase: str = ""     # how its COLLATE NOCASE is kept: 'collation' or 'citext' ('' when not)
    generated: str = ""  # PostgreSQL expression of a GENERATED ALWAYS ... STORED column


@dataclass
class TargetTable:
    name: str
    source: object       # introspect.Table
    columns: list
    primary_key: tuple   # target column names
    uniques: list = field(default_factory=list)       # (constraint name, columns)
    indexes: list = field(default_factory=list)       # (index name, columns, descending, unique)
    foreign_keys: list = field(default_factory=list)  # dicts: name, columns, ref_table, ref_columns, ...
    notes: list = field(default_factory=list)
    fill: dict = field(default_factory=dict)          # target-only column -> SQL expression (target: existing)
    checks: list = field(default_factory=list)        # (constraint name, PostgreSQL expression)
    generated: list = field(default_factory=list)     # (position among all columns, TargetColumn): not copied
    expr_indexes: list = field(default_factory=list)  # (name, unique, [term SQL], WHERE SQL or None)

    def column(self, name):
        for col in self.columns + [g for _pos, g in self.generated]:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def identity(self):
        return next((c for c in self.columns if c.identity), None)


def pg_name(*parts, suffix=""):
    """A PostgreSQL identifier for a derived object (constraint, index), at most 63 bytes.

    Longer names are cut and given a short hash, so two long names never collide.
    """
    base = "_".join(parts) + (f"_{suffix}" if suffix else "")
    if len(base.encode()) <= 63:
        return base
    digest = hashlib.md5(base.encode()).hexdigest()[:8]  # noqa: S324 - a name, not security
    cut = base.encode()[:54].decode("utf-8", "ignore")
    return f"{cut}_{digest}"


# Column names PostgreSQL reserves for every table (oid stopped being one in PostgreSQL 12).
SYSTEM_COLUMNS = ("tableoid", "xmin", "cmin", "xmax", "cmax", "ctid")
MAX_NAME_BYTES = 63


def pg_truncate(name):
    """``name`` as PostgreSQL stores it: cut to 63 bytes at a character boundary, the way the
    server cuts every identifier it reads (so the app's own queries, spelling the long name,
    reach the column)."""
    raw = name.encode()
    return name if len(raw) <= MAX_NAME_BYTES else raw[:MAX_NAME_BYTES].decode("utf-8", "ignore")


def _target_names(kind, sources, rename, key, notes):
    """{source name: PostgreSQL name} for tables (or one table's columns): renamed as the
    operator says, else cut as PostgreSQL cuts. Two names that meet, and a column named
    like a system column, are refused before anything is written."""
    out = {}
    for name in sources:
        wanted = rename.get(key(name))
        if wanted is not None:
            if len(wanted.encode()) > MAX_NAME_BYTES:
                raise SchemaError(f"rename {key(name)!r}: {wanted!r} is longer than PostgreSQL's 63 bytes")
            out[name] = wanted
            continue
        out[name] = pg_truncate(name)
        if out[name] != name:
            notes.append(f"{kind} {name!r} is longer than PostgreSQL's 63 bytes: named {out[name]!r} "
                         "(PostgreSQL cuts the app's own spelling the same way)")
    seen = {}
    for name, target in out.items():
        if kind == "column" and target in SYSTEM_COLUMNS:
            raise SchemaError(
                f"{key(name)!r}: {target!r} is a PostgreSQL system column name, which no table can have (the "
                f"app's queries would read the system column instead): name it with the rename option "
                f"(rename: {{{key(name)!r}: '{target}_'}}) and change the app to match")
        if target in seen:
            raise SchemaError(
                f"{kind}s {key(seen[target])!r} and {key(name)!r} both become {target!r} in PostgreSQL (63 bytes "
                f"at most): give one another name with the rename option (rename: {{{key(name)!r}: '...'}})")
        seen[target] = name
    return out


def build_model(sqlite_conn, schema, options):
    """TargetTables for the selected tables, keyed by SQLite name, in a load order that puts
    parents before children where the foreign keys allow it."""
    selected = schema.select(options.include_tables, options.exclude_tables)
    names = {t.name for t in selected}
    if options.nocase not in NOCASE_MODES:
        raise SchemaError(f"nocase must be one of {', '.join(NOCASE_MODES)}")
    if options.generated_columns not in GENERATED_MODES:
        raise SchemaError(f"generated_columns must be one of {', '.join(GENERATED_MODES)}")
    notes = []
    tnames = _target_names("table", [t.name for t in selected], options.rename, lambda n: n, notes)
    model = {}
    for table in selected:
        model[table.name] = _target_table(sqlite_conn, table, options, tnames[table.name])
        model[table.name].notes[:0] = [n for n in notes if n.startswith(f"table {table.name!r} ")]
        _add_rules(model[table.name], table, options)
    for table in selected:
        target = model[table.name]
        for fk in table.foreign_keys:
            _add_foreign_key(target, fk, model, names, schema)
    return {name: model[name] for name in load_order(model)}


def load_order(model):
    """Parents before children; cycles keep source order."""
    order, seen = [], set()

    def visit(name, stack):
        if name in seen or name in stack:
            return
        stack.add(name)
        for fk in model[name].foreign_keys:
            if fk["ref_source"] in model and fk["ref_source"] != name:
                visit(fk["ref_source"], stack)
        stack.discard(name)
        seen.add(name)
        order.append(name)

    for name in model:
        visit(name, set())
    return order


def _target_table(sqlite_conn, table, options, tname):
    name_notes = []
    colname = _target_names("column", [c.name for c in table.columns], options.rename,
                            lambda n: f"{table.name}.{n}", name_notes)
    census = value_census(sqlite_conn, quote_ident(table.name), {
        c.name: map_declared(c.declared, options.timestamp_type) for c in table.columns
        if f"{table.name}.{c.name}" not in options.column_types and f"{table.name}.{c.name}" not in options.enums
        and needs_census(map_declared(c.declared, options.timestamp_type))
        and (options.choose_types or map_declared(c.declared, options.timestamp_type) is None)
    })
    alias = table.rowid_alias
    columns = []
    for col in table.columns:
        key = f"{table.name}.{col.name}"
        enum = options.enums.get(key)
        if enum:
            pg_type = enum[0]
        elif key in options.column_types:
            pg_type = normalize_type(options.column_types[key], key)
        else:
            pg_type = choose_type(map_declared(col.declared, options.timestamp_type), census.get(col.name))
        identity = col.name == alias and pg_type in ("bigint", "integer")
        columns.append(TargetColumn(colname[col.name], col.name, pg_type,
                                    col.notnull or bool(col.pk_position), col.default, identity, enum,
                                    options.interval_units.get(key, "microseconds")))
    target = TargetTable(tname, table, columns, tuple(colname[c] for c in table.primary_key), notes=name_notes)
    _refuse_merged_keys(sqlite_conn, table, columns, census)
    for c in columns:
        if c.pg_type != map_declared(table.column(c.source).declared, options.timestamp_type) and \
                f"{table.name}.{c.source}" not in options.column_types and not c.enum:
            target.notes.append(f"column {c.source!r} declared {table.column(c.source).declared!r}: "
                                f"typed {c.pg_type} from the values it holds")
    for index in table.indexes:
        cols = tuple(colname[c] for c in index.columns)
        if index.unique and index.portable:
            _lower_unique(target, table, index, cols, options)
        if index.origin == "pk":
            continue
        if not index.portable or not all(
                coll == (table.column(c).collation or "BINARY")
                for c, coll in zip(index.columns, index.collations or ("BINARY",) * len(cols), strict=True)):
            _expression_index(target, table, index)
            continue
        if index.unique and cols == target.primary_key:
            target.notes.append(f"index {index.name!r} duplicates the primary key: not created")
            continue
        if index.origin == "u":
            written = {tuple(n.lower() for n in c): name for c, name in table.unique_names}
            name = pg_name(written.get(tuple(c.lower() for c in index.columns), "")) or pg_name(tname, *cols,
                                                                                              suffix="key")
            target.uniques.append((name, cols))
        else:
            iname = pg_name(index.name)
            if iname != index.name:
                target.notes.append(f"index {index.name!r} is longer than PostgreSQL's 63 bytes: named {iname!r}")
            target.indexes.append((iname, cols, index.descending, index.unique))
    # A plain index on exactly the primary key column is redundant (SQLAlchemy's index=True on id).
    kept = []
    for idx in target.indexes:
        if not idx[3] and idx[1] == target.primary_key:
            target.notes.append(f"index {idx[0]!r} duplicates the primary key: not created")
        else:
            kept.append(idx)
    target.indexes = kept
    return target


def _lower_unique(target, table, index, cols, options):
    """nocase: lower_index - a unique key over NOCASE columns also gets a unique index on lower()."""
    nocase = [table.column(c).collation == "NOCASE" and _is_text(target.column(pc).pg_type)
              for c, pc in zip(index.columns, cols, strict=True)]
    if options.nocase != "lower_index" or not any(nocase):
        return
    terms = [f"lower({quote_pg(c)})" if n else quote_pg(c) for c, n in zip(cols, nocase, strict=True)]
    target.expr_indexes.append((pg_name(target.name, *cols, suffix="lower_key"), True, terms, None))


def _is_text(pg_type):
    return pg_type.startswith(_TEXT_TYPES)


def _columns_map(target, table):
    return {c.lower(): target_name for c, target_name in
            ((col.name, _target_name(target, col.name)) for col in table.columns)}


def _target_name(target, source):
    for col in target.columns + [g for _pos, g in target.generated]:
        if col.source == source:
            return col.name
    return None


def _expression_index(target, table, index):
    """CREATE [UNIQUE] INDEX with expressions, a WHERE clause or per-term collations, when
    every part translates; else named in the notes."""
    try:
        tokens = tokenize(index.sql or "")
        on = next(i for i, t in enumerate(tokens) if t.is_word("ON"))
        start = on + 2
        if start >= len(tokens) or not tokens[start].is_op("("):
            raise Untranslatable("the indexed terms cannot be read")
        end = closing(tokens, start)
        columns = _columns_map(target, table)
        terms = [_index_term(term, columns) for term in split_top(tokens[start + 1:end])]
        where = None
        rest = tokens[end + 1:]
        if rest:
            if not rest[0].is_word("WHERE"):
                raise Untranslatable(f"{rest[0].text} after the indexed terms")
            where = translate_expr(rest[1:], columns)
    except (Untranslatable, StopIteration) as exc:
        target.notes.append(f"index {index.name!r} not created: {exc or 'its SQL cannot be read'} "
                            f"(SQL was: {index.sql})")
        return
    target.expr_indexes.append((pg_name(index.name), index.unique, terms, where))


def _index_term(term, columns):
    order = ""
    if term and term[-1].is_word("ASC", "DESC"):
        order, term = " " + term[-1].value, term[:-1]
    collation = ""
    if len(term) > 2 and term[-2].is_word("COLLATE"):
        collation, term = term[-1].value.upper(), term[:-2]
    expr = translate_expr(term, columns)
    if not (len(term) == 1 and term[0].kind in ("word", "name")):
        expr = f"({expr})"
    if collation == "NOCASE":
        return f"lower({expr}){order}"
    if collation == "BINARY":
        return f'{expr} COLLATE "C"{order}'
    if collation:
        raise Untranslatable(f"collation {collation}")
    return expr + order


def _add_rules(target, table, options):
    """CHECKs, generated columns and COLLATE of one table: translated, or named in its notes."""
    if table.unreadable:
        target.notes.append(f"its CREATE TABLE text could not be read ({table.unreadable}): CHECK, COLLATE, "
                            "DEFERRABLE, constraint names and generated expressions are not translated")
    # Generated columns first: the other rules may name them.
    columns = list(target.columns)
    plain = {c.lower(): _target_name(target, c) for c in table.column_names if not table.column(c).generated}
    for pos, col in enumerate(columns):
        source = table.column(col.source)
        if not source.generated:
            continue
        if options.generated_columns == "plain":
            target.notes.append(f"generated column {col.source!r} (AS {source.expression}): a plain column holding "
                                "the copied values (generated_columns: plain)")
            continue
        try:
            col.generated = translate_expr(tokenize(source.expression), plain)
        except Untranslatable as exc:
            target.notes.append(f"generated column {col.source!r} (AS {source.expression}) not translated ({exc}): "
                                "a plain column holding the copied values; the app must now compute it")
            continue
        col.identity = False
        target.generated.append((pos, col))
    target.columns = [c for c in target.columns if not c.generated]
    for col in target.columns + [g for _pos, g in target.generated]:
        collation = table.column(col.source).collation
        if collation in ("", "BINARY"):
            continue
        if collation != "NOCASE" or not _is_text(col.pg_type):
            target.notes.append(f"column {col.source!r} COLLATE {collation}: not translated (compared as written)")
            continue
        if options.nocase == "lower_index":
            target.notes.append(f"column {col.source!r} COLLATE NOCASE (nocase: lower_index): compared case-"
                                "sensitively in PostgreSQL; its unique keys hold on lower()")
        else:
            col.nocase = options.nocase
    _add_checks(target, table)


def _add_checks(target, table):
    columns = _columns_map(target, table)
    used = set()
    for check in table.checks:
        tokens = tokenize(check.sql)
        where = f"CHECK ({check.sql})" + (f" on column {check.column!r}" if check.column else "")
        if _boolean_check(tokens, target, columns) or _json_check(tokens, target, columns):
            continue   # SQLAlchemy's Boolean CHECK (x IN (0, 1)), Django's JSON_VALID(x): the type holds it
        try:
            expr = translate_expr(tokens, columns)
        except Untranslatable as exc:
            target.notes.append(f"{where} not translated ({exc}): not created")
            continue
        name = pg_name(check.name) if check.name else pg_name(target.name, *((columns[check.column.lower()],) if check.column else ()),
                                     suffix="check")
        base, n = name, 0
        while name in used:
            n += 1
            name = f"{base}{n}"
        used.add(name)
        target.checks.append((name, expr))


def _boolean_check(tokens, target, columns):
    text = [t.text for t in tokens]
    if len(tokens) != 7 or text[1].upper() != "IN" or text[2:] not in (["(", "0", ",", "1", ")"],
                                                                         ["(", "1", ",", "0", ")"]):
        return False
    name = columns.get((tokens[0].value if tokens[0].kind == "name" else tokens[0].text).lower())
    return name is not None and any(c.name == name and c.pg_type == "boolean" for c in target.columns)


def _json_check(tokens, target, columns):
    """Django's JSONField CHECK ((JSON_VALID(x) OR x IS NULL)) on a column that is json/jsonb in PostgreSQL."""
    while len(tokens) > 2 and tokens[0].is_op("(") and tokens[-1].is_op(")"):
        tokens = tokens[1:-1]
    if len(tokens) not in (4, 8) or not tokens[0].is_word("JSON_VALID") or not tokens[1].is_op("(") \
            or not tokens[3].is_op(")"):
        return False
    name = tokens[2].value if tokens[2].kind == "name" else tokens[2].text
    if len(tokens) == 8 and not (tokens[4].is_word("OR") and tokens[5].text == tokens[2].text
                                 and tokens[6].is_word("IS") and tokens[7].is_word("NULL")):
        return False
    pg = columns.get(name.lower())
    return pg is not None and any(c.name == pg and c.pg_type in ("json", "jsonb") for c in target.columns)


def _add_foreign_key(target, fk, model, names, schema):
    if fk.ref_table not in names:
        why = "is not migrated" if fk.ref_table in schema.tables else "does not exist in the SQLite file"
        target.notes.append(f"foreign key ({', '.join(fk.columns)}) -> {fk.ref_table}: parent table {why}; "
                            "not created")
        return
    parent = model[fk.ref_table]
    ref_cols = fk.ref_columns or parent.source.primary_key
    if len(ref_cols) != len(fk.columns):
        target.notes.append(f"foreign key ({', '.join(fk.columns)}) -> {fk.ref_table}: column count differs; "
                            "not created")
        return
    pcolname = {c.source: c.name for c in parent.columns}
    ref_target = tuple(pcolname.get(c, c) for c in ref_cols)
    unique_sets = [parent.primary_key] + [u[1] for u in parent.uniques] + \
        [i[1] for i in parent.indexes if i[3]]
    if ref_target not in unique_sets:
        target.notes.append(f"foreign key ({', '.join(fk.columns)}) -> {fk.ref_table}({', '.join(ref_cols)}): "
                            "parent columns are not unique; not created")
        return
    ccolname = {c.source: c.name for c in target.columns + [g for _pos, g in target.generated]}
    cols = tuple(ccolname[c] for c in fk.columns)
    mismatch = [(c, r) for c, r in zip(cols, ref_target, strict=True)
                if _key_family(target.column(c).pg_type) != _key_family(parent.column(r).pg_type)]
    if mismatch:
        # SQLite compares such keys after converting one side; PostgreSQL has no equality
        # between them, so the constraint cannot exist (nor can verify check it).
        child, ref = mismatch[0]
        target.notes.append(
            f"foreign key ({', '.join(fk.columns)}) -> {fk.ref_table}({', '.join(ref_cols)}): column {child!r} is "
            f"{target.column(child).pg_type} but {parent.name}.{ref} is {parent.column(ref).pg_type}; not created "
            f"(to keep it, give both one type: column_types {{'{target.source.name}.{target.column(child).source}': "
            f"'{parent.column(ref).pg_type}'}})")
        return
    target.foreign_keys.append(dict(
        name=pg_name(fk.name) if fk.name else pg_name(target.name, *cols, suffix="fkey"), columns=cols, ref_source=fk.ref_table,
        ref_table=parent.name, ref_columns=ref_target,
        on_delete=_action(fk.on_delete), on_update=_action(fk.on_update), deferrable=fk.deferrable,
    ))


def _key_family(pg_type):
    """Types a foreign key can join in PostgreSQL (one btree operator family)."""
    base = pg_type.split("(")[0].strip()
    if base in ("text", "character varying", "character"):
        return "text"
    if base in ("bigint", "integer", "smallint"):
        return "integer"
    if base in ("double precision", "real"):
        return "float"
    return base


def _action(text):
    text = (text or "NO ACTION").upper()
    return text if text in ("CASCADE", "SET NULL", "SET DEFAULT", "RESTRICT", "NO ACTION") else "NO ACTION"


def _refuse_merged_keys(sqlite_conn, table, columns, census):
    """An untyped key column holding text and numbers (``1`` and ``'1'``) becomes text: keys
    SQLite keeps apart would become one, and the key could not be built. Refused up front,
    naming them, rather than merged."""
    mixed = {c.source for c in columns if c.pg_type == "text" and
             sum(1 for n in census.get(c.source, {}).values() if n) > 1}
    for cols in [table.primary_key] + [i.columns for i in table.indexes if i.unique and i.columns]:
        if not cols or not mixed & set(cols):
            continue
        as_text = ", ".join(f"CASE typeof({quote_ident(c)}) WHEN 'real' THEN {float_text(quote_ident(c))} "
                            f"ELSE CAST({quote_ident(c)} AS TEXT) END" for c in cols)
        spelled = " || ', ' || ".join(f"quote({quote_ident(c)}) || ' (' || typeof({quote_ident(c)}) || ')'"
                                      for c in cols)
        present = " AND ".join(f"{quote_ident(c)} IS NOT NULL" for c in cols)   # NULLs never meet in a key
        rows = sqlite_conn.execute(
            f"SELECT group_concat({spelled}, ' and '), count(*) OVER () FROM {quote_ident(table.name)} "
            f"WHERE {present} GROUP BY {as_text} HAVING count(*) > 1 LIMIT 3").fetchall()
        if rows:
            raise SchemaError(
                f"table {table.name!r}: key ({', '.join(cols)}) is spelled two ways in {rows[0][1]} case(s) that "
                f"SQLite keeps apart but PostgreSQL would store as one text, e.g. {'; '.join(r[0] for r in rows)}: "
                "nothing was "
                "written. Make each key one spelling in SQLite (the app stores it two ways), or leave the table "
                "out (exclude_tables)")


# --- views ----------------------------------------------------------------------------------

_VIEW_WORDS = EXPR_WORDS | frozenset({
    "SELECT", "DISTINCT", "ALL", "FROM", "WHERE", "GROUP", "BY", "HAVING", "ORDER", "ASC", "DESC", "LIMIT",
    "OFFSET", "AS", "JOIN", "INNER", "LEFT", "OUTER", "CROSS", "ON", "UNION", "EXCEPT", "INTERSECT", "EXISTS",
    "AND", "OR", "NOT", "NULL", "IN", "BETWEEN", "CASE", "WHEN", "THEN", "ELSE", "END", "ISNULL", "NOTNULL",
    "TRUE", "FALSE"})
_VIEW_FUNCTIONS = {"lower": "lower", "upper": "upper", "length": "length", "abs": "abs", "trim": "trim",
                   "coalesce": "coalesce", "ifnull": "coalesce", "count": "count", "sum": "sum", "min": "min",
                   "max": "max"}
_VIEW_OPS = {"=": "=", "==": "=", "!=": "<>", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">=",
             "+": "+", "-": "-", "*": "*", "||": "||", "(": "(", ")": ")", ",": ",", ".": "."}
_FROM_ENDS = {"WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "UNION", "EXCEPT", "INTERSECT", "ON"}


def plan_views(schema, model, options):
    """[(view name, PostgreSQL SELECT)] for the SQLite views whose SQL translates (in creation
    order, so a view may use an earlier one), and notes naming the others."""
    tables = {name.lower(): target for name, target in model.items()}
    columns = {}
    for target in model.values():
        for col in target.columns + [g for _pos, g in target.generated]:
            columns.setdefault(col.source.lower(), set()).add(col.name)
    views, notes, known = [], [], {}
    for name, text in schema.view_sql.items():
        try:
            select = _view_select(text, tables, known, columns, options.schema)
        except (Untranslatable, StopIteration) as exc:
            notes.append(f"view {name!r} not created: {exc or 'its SQL cannot be read'} (SQL was: {text})")
            continue
        views.append((name, select))
        known[name.lower()] = name
    return views, notes


def _view_select(text, tables, views, columns, schema):
    tokens = tokenize(text)
    start = next(i for i, t in enumerate(tokens) if t.is_word("AS")) + 1
    if tokens[start - 2].is_op(")"):
        raise Untranslatable("a column list after the view's name")
    body = tokens[start:]
    if body and body[-1].is_op(";"):
        body = body[:-1]
    table_at = _table_positions(body)
    spelling = {}

    def name_of(i, tok):
        word = tok.value if tok.kind == "name" else tok.text
        prev = body[i - 1] if i else None
        nxt = body[i + 1] if i + 1 < len(body) else None
        if i in table_at:
            if word.lower() in tables:
                return f"{quote_pg(schema)}.{quote_pg(tables[word.lower()].name)}"
            if word.lower() in views:
                return f"{quote_pg(schema)}.{quote_pg(views[word.lower()])}"
            raise Untranslatable(f"{word} is not a migrated table or view")
        if nxt is not None and nxt.is_op(".") and word.lower() in tables:
            return quote_pg(tables[word.lower()].name)
        found = columns.get(word.lower())
        if found and (prev is None or not prev.is_word("AS")):
            if len(found) > 1:
                raise Untranslatable(f"column {word} is renamed differently in two tables")
            return quote_pg(next(iter(found)))
        return quote_pg(spelling.setdefault(word.lower(), word))

    return translate_expr(body, {}, _VIEW_FUNCTIONS, _VIEW_WORDS, _VIEW_OPS, name_of)


def _table_positions(body):
    """Indexes of the tokens that name a table: after FROM or JOIN, or after a comma in a FROM list."""
    positions, in_from, depth = set(), {}, 0
    for i, tok in enumerate(body):
        if tok.is_op("("):
            depth += 1
        elif tok.is_op(")"):
            in_from.pop(depth, None)
            depth -= 1
        elif tok.is_word("FROM", "JOIN"):
            in_from[depth] = True
            positions.add(i + 1)
        elif tok.kind == "word" and tok.value in _FROM_ENDS:
            in_from[depth] = False
        elif tok.is_op(",") and in_from.get(depth):
            positions.add(i + 1)
    return {p for p in positions if p < len(body) and body[p].kind in ("word", "name")}
