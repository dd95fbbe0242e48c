"""The target model: what each selected SQLite table becomes in PostgreSQL.

Built once from the SQLite schema plus the operator's options, then used by the schema
planner, the copy and the verification, so all three agree on names and types.
"""

import hashlib
from dataclasses import dataclass, field

from .convert import float_text
from .errors import SchemaError
from .introspect import quote_ident
from .typemap import census as value_census
from .typemap import choose_type, map_declared, needs_census, normalize_type


@dataclass(frozen=True)
class Options:
    """Plain options shared by the engine's entry points."""

    schema: str = "public"
    include_tables: tuple = ()
    exclude_tables: tuple = ()
    timestamp_type: str = "timestamp without time zone"
    column_types: dict = field(default_factory=dict)    # "table.column" -> PostgreSQL type
    interval_units: dict = field(default_factory=dict)  # "table.column" -> what an integer counts (interval)
    rename: dict = field(default_factory=dict)          # "table" or "table.column" -> new name
    enums: dict = field(default_factory=dict)           # "table.column" -> (ENUM type name, labels)


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

    def column(self, name):
        for col in self.columns:
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
    notes = []
    tnames = _target_names("table", [t.name for t in selected], options.rename, lambda n: n, notes)
    model = {}
    for table in selected:
        model[table.name] = _target_table(sqlite_conn, table, options, tnames[table.name])
        model[table.name].notes[:0] = [n for n in notes if n.startswith(f"table {table.name!r} ")]
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
        if index.origin == "pk":
            continue
        if not index.portable:
            target.notes.append(f"index {index.name!r} uses expressions or a WHERE clause: not created "
                                f"(SQL was: {index.sql})")
            continue
        if index.unique and cols == target.primary_key:
            target.notes.append(f"index {index.name!r} duplicates the primary key: not created")
            continue
        if index.origin == "u":
            target.uniques.append((pg_name(tname, *cols, suffix="key"), cols))
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
    ccolname = {c.source: c.name for c in target.columns}
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
        name=pg_name(target.name, *cols, suffix="fkey"), columns=cols, ref_source=fk.ref_table,
        ref_table=parent.name, ref_columns=ref_target,
        on_delete=_action(fk.on_delete), on_update=_action(fk.on_update),
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
