"""The target model: what each selected SQLite table becomes in PostgreSQL.

Built once from the SQLite schema plus the operator's options, then used by the schema
planner, the copy and the verification, so all three agree on names and types.
"""

import hashlib
from dataclasses import dataclass, field

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


def build_model(sqlite_conn, schema, options):
    """TargetTables for the selected tables, keyed by SQLite name, in a load order that puts
    parents before children where the foreign keys allow it."""
    selected = schema.select(options.include_tables, options.exclude_tables)
    names = {t.name for t in selected}
    model = {}
    for table in selected:
        model[table.name] = _target_table(sqlite_conn, table, options)
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


def _target_table(sqlite_conn, table, options):
    rename = options.rename
    tname = rename.get(table.name, table.name)
    colname = {c.name: rename.get(f"{table.name}.{c.name}", c.name) for c in table.columns}
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
    target = TargetTable(tname, table, columns, tuple(colname[c] for c in table.primary_key))
    if len({c.name for c in columns}) != len(columns):
        raise SchemaError(f"table {table.name!r}: two columns map to the same PostgreSQL name")
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
            target.indexes.append((index.name, cols, index.descending, index.unique))
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
    target.foreign_keys.append(dict(
        name=pg_name(target.name, *cols, suffix="fkey"), columns=cols, ref_source=fk.ref_table,
        ref_table=parent.name, ref_columns=ref_target,
        on_delete=_action(fk.on_delete), on_update=_action(fk.on_update),
    ))


def _action(text):
    text = (text or "NO ACTION").upper()
    return text if text in ("CASCADE", "SET NULL", "SET DEFAULT", "RESTRICT", "NO ACTION") else "NO ACTION"
