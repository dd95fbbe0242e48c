"""Data-only into a schema the app created itself (``target: existing``).

The guide's own route: the app runs ``Base.metadata.create_all`` (or ``alembic upgrade
head``) on PostgreSQL and the data is loaded into that schema. Nothing is created. SQLite
tables and columns are matched to the existing ones by name (exactly, then ignoring case,
reported); each value is converted by the real column type; tables only the app has
(``alembic_version``) are left alone; columns only the target has keep their server default
or get an operator-given SQL expression; tables load parents first by the target's own
foreign keys.
"""

from .errors import SchemaError
from .model import TargetColumn
from .pg import sql

TARGET_MODES = ("create", "existing")


def _catalog(cur, schema):
    cur.execute(
        """SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  a.atthasdef OR a.attidentity <> '', t.typtype = 'e', a.attgenerated <> ''
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             JOIN pg_type t ON t.oid = a.atttypid
            WHERE n.nspname = %s AND c.relkind IN ('r', 'p')
            ORDER BY c.relname, a.attnum""", (schema,))
    tables = {}
    for table, column, typ, notnull, has_default, is_enum, generated in cur.fetchall():
        tables.setdefault(table, {})[column] = dict(type=typ, notnull=notnull, default=has_default, enum=is_enum,
                                                    generated=generated)
    cur.execute(
        """SELECT c.relname, p.relname FROM pg_constraint k
             JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE k.contype = 'f' AND n.nspname = %s""", (schema,))
    parents = {}
    for child, parent in cur.fetchall():
        parents.setdefault(child, set()).add(parent)
    return tables, parents


def _match(name, names, what, notes):
    if name in names:
        return name
    folded = [n for n in names if n.lower() == name.lower()]
    if len(folded) == 1:
        notes.append(f"{what} {name!r} matched {folded[0]!r} ignoring case")
        return folded[0]
    return None


def bind_existing(cur, model, schema, exclude_columns=(), column_defaults=None):
    """Rewrite the model onto the existing tables; returns (model in load order, notes)."""
    column_defaults = dict(column_defaults or {})
    tables, parents = _catalog(cur, schema)
    notes, errors = [], []
    bound = {}
    for source_name, target in model.items():
        tname = _match(target.name, tables, "table", notes)
        if tname is None:
            errors.append(f"table {source_name!r} has no table in schema {schema!r}")
            continue
        catalog = tables[tname]
        columns, computed = [], set()
        # SQLite's generated columns too: the app's table may hold them as plain columns.
        for col in target.columns + [g for _pos, g in target.generated]:
            key = f"{source_name}.{col.source}"
            if key in exclude_columns:
                notes.append(f"column {key} excluded")
                continue
            cname = _match(col.name, catalog, f"column {source_name}.", notes)
            if cname is None:
                errors.append(f"column {key} has no column in {schema}.{tname} (exclude it with exclude_columns)")
                continue
            info = catalog[cname]
            if info["generated"]:
                computed.add(cname)
                notes.append(f"column {key}: generated in {schema}.{tname}, computed there (not copied)")
                continue
            columns.append(TargetColumn(cname, col.source, info["type"], info["notnull"], None,
                                        interval_unit=col.interval_unit))
        mapped = {c.name for c in columns} | computed
        extra = {}
        for cname, info in catalog.items():
            if cname in mapped:
                continue
            expr = column_defaults.get(f"{tname}.{cname}") or column_defaults.get(f"{source_name}.{cname}")
            if expr:
                extra[cname] = expr
                notes.append(f"{tname}.{cname}: not in SQLite, filled with {expr}")
            elif info["notnull"] and not info["default"]:
                errors.append(f"{tname}.{cname} is NOT NULL without a default and SQLite has no such column: "
                              "give it an expression in column_defaults")
            else:
                notes.append(f"{tname}.{cname}: not in SQLite, left to its default")
        cur.execute("SELECT has_table_privilege(current_user, %s, 'SELECT, INSERT, TRUNCATE')",
                    (sql.Identifier(schema, tname).as_string(cur),))
        if not cur.fetchone()[0]:
            errors.append(f"the migration role may not SELECT, INSERT and TRUNCATE {schema}.{tname}: ask for "
                          f'GRANT SELECT, INSERT, TRUNCATE ON "{schema}"."{tname}" TO the migration role')
        target.name = tname
        target.columns = columns
        # The source's key, by the app's column names: it tells rows apart for catch-up and
        # for naming differences (the app's own constraints are its business).
        by_source = {c.source: c.name for c in columns}
        source_key = target.source.primary_key
        target.primary_key = tuple(by_source[k] for k in source_key) if all(k in by_source for k in source_key) \
            else ()
        target.uniques, target.indexes, target.foreign_keys = [], [], []
        target.fill = extra
        target.generated, target.checks, target.expr_indexes = [], [], []
        bound[source_name] = target
    if errors:
        raise SchemaError("the existing schema cannot take the SQLite data: " + "; ".join(errors))
    return _parents_first(bound, parents), notes


def _parents_first(bound, parents):
    by_target = {t.name: name for name, t in bound.items()}
    order, seen = [], set()

    def visit(name, stack):
        if name in seen or name in stack:
            return
        stack.add(name)
        for parent in sorted(parents.get(bound[name].name, ())):
            if parent in by_target and by_target[parent] != name:
                visit(by_target[parent], stack)
        stack.discard(name)
        seen.add(name)
        order.append(name)

    for name in bound:
        visit(name, set())
    return {name: bound[name] for name in order}
