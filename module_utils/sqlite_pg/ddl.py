"""Plan and apply the PostgreSQL schema for a target model.

Two phases, as a bulk load wants them:

- ``tables``: schema, tables, columns, NOT NULL, defaults, identity columns;
- ``constraints``: primary keys, unique constraints, indexes and foreign keys, built
  after the data is in (faster, and orphans are found before a foreign key is added).

``plan_*`` only reads; ``apply`` runs a plan in one transaction. A rerun on a matching
schema plans nothing. A target column of another type is drift: reported, never altered.
"""

import re
import sqlite3
from dataclasses import dataclass, field

from . import convert
from .errors import SchemaError
from .pg import psycopg2, sql

PHASES = ("tables", "constraints")
ORPHAN_POLICIES = ("error", "not_valid", "skip")


@dataclass
class Plan:
    statements: list = field(default_factory=list)   # psycopg2.sql.Composed, in order
    notes: list = field(default_factory=list)        # what was decided and why, for the operator
    orphans: dict = field(default_factory=dict)      # fk name -> {table, count, sample}
    # statement index -> (schema, table, fk, policy): foreign keys added optimistically; apply()
    # looks for orphans only when PostgreSQL refuses one (the check is the constraint itself).
    foreign_keys: dict = field(default_factory=dict)
    # statement index -> (what it creates, statement to run instead when existing rows break it, or
    # None): translated rules (CHECKs, expression indexes, views) PostgreSQL is the last judge of.
    # One it refuses is named in the notes, never a failed phase.
    tentative: dict = field(default_factory=dict)

    def as_strings(self, conn):
        return [s.as_string(conn) for s in self.statements]


# --- reading the target catalog ---------------------------------------------------------


def existing_columns(cur, schema, table):
    """{column: (format_type, notnull)} of an existing table, or None when it does not exist."""
    cur.execute(
        """SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
             FROM pg_attribute a
             JOIN pg_class c ON c.oid = a.attrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')
              AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum""",
        (schema, table),
    )
    rows = cur.fetchall()
    if not rows:
        cur.execute("SELECT to_regclass(%s)", (sql.Identifier(schema, table).as_string(cur),))
        if cur.fetchone()[0] is None:
            return None
    return {name: (typ, notnull) for name, typ, notnull in rows}


def existing_constraints(cur, schema):
    """Names of constraints and indexes in the schema, with validity for constraints."""
    cur.execute(
        """SELECT con.conname, con.convalidated FROM pg_constraint con
             JOIN pg_namespace n ON n.oid = con.connamespace WHERE n.nspname = %s""",
        (schema,),
    )
    constraints = dict(cur.fetchall())
    cur.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s", (schema,))
    indexes = {r[0] for r in cur.fetchall()}
    return constraints, indexes


def primary_key_of(cur, schema, table):
    cur.execute(
        """SELECT con.conname FROM pg_constraint con
             JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %s AND c.relname = %s AND con.contype = 'p'""",
        (schema, table),
    )
    row = cur.fetchone()
    return row[0] if row else None


# --- phase 1: tables ----------------------------------------------------------------------


def plan_tables(pg_conn, model, schema):
    plan = Plan()
    with pg_conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
        if cur.fetchone() is None:
            plan.statements.append(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        drift = []
        _plan_enums(cur, plan, schema, model, drift)
        citext = _plan_nocase(cur, plan, schema, model)
        for target in model.values():
            plan.notes.extend(f"{target.name}: {n}" for n in target.notes)
            current = existing_columns(cur, schema, target.name)
            if current is None:
                _probe_generated(cur, target)
                refused = refused_defaults(cur, target)
                plan.statements.append(create_table_sql(schema, target, plan.notes, refused, citext))
                continue
            for col in target.columns:
                if col.name not in current:
                    drift.append(f"{target.name}.{col.name}: missing in the target (planned {col.pg_type})")
                elif current[col.name][0] != col.pg_type and not (
                        col.enum and current[col.name][0].split(".")[-1].strip('"') == col.enum[0]) and not (
                        col.nocase == "citext" and current[col.name][0].split(".")[-1] == "citext"):
                    drift.append(f"{target.name}.{col.name}: target is {current[col.name][0]}, "
                                 f"source maps to {col.pg_type}")
            extra = sorted(set(current) - {c.name for c in all_columns(target)})
            if extra:
                plan.notes.append(f"{target.name}: target-only columns left to their defaults: {', '.join(extra)}")
        if drift:
            raise SchemaError("the target schema differs from the source (drift, nothing was changed): "
                              + "; ".join(drift))
        if plan.statements:
            check_create_privileges(cur, schema, creates_schema=any(
                s.as_string(cur).startswith("CREATE SCHEMA") for s in plan.statements))
    return plan


def check_create_privileges(cur, schema, creates_schema):
    """Least privilege: the migration role needs to own (or create in) the target schema,
    nothing more. Say exactly what to ask the provider for, before anything is written."""
    cur.execute("SELECT current_user, current_database()")
    user, db = cur.fetchone()
    if creates_schema:
        cur.execute("SELECT has_database_privilege(current_user, current_database(), 'CREATE')")
        if not cur.fetchone()[0]:
            raise SchemaError(f"role {user!r} cannot create schema {schema!r} in database {db!r}: ask for "
                              f'GRANT CREATE ON DATABASE "{db}" TO "{user}" (or create the schema for it)')
        return
    cur.execute("SELECT has_schema_privilege(current_user, %s, 'CREATE')", (schema,))
    if not cur.fetchone()[0]:
        raise SchemaError(f"role {user!r} cannot create tables in schema {schema!r}: ask for "
                          f'GRANT CREATE ON SCHEMA "{schema}" TO "{user}", or ALTER SCHEMA "{schema}" OWNER TO "{user}"')


def _plan_enums(cur, plan, schema, model, drift):
    """CREATE TYPE ... AS ENUM for the app's native enums; other labels on an existing type are drift."""
    wanted = {}
    for target in model.values():
        for col in target.columns:
            if col.enum:
                wanted.setdefault(col.enum[0], col.enum[1])
    for name, labels in wanted.items():
        cur.execute("""SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) FROM pg_type t
                         JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_enum e ON e.enumtypid = t.oid
                        WHERE n.nspname = %s AND t.typname = %s""", (schema, name))
        current = cur.fetchone()[0]
        if current is None:
            plan.statements.append(sql.SQL("CREATE TYPE {} AS ENUM ({})").format(
                sql.Identifier(schema, name), sql.SQL(", ").join(sql.Literal(v) for v in labels)))
        elif tuple(current) != tuple(labels):
            drift.append(f"enum type {name}: target labels {current}, the models say {list(labels)}")


NOCASE_COLLATION_SQL = ("CREATE COLLATION IF NOT EXISTS {} "
                        "(provider = icu, locale = 'und-u-ks-level2', deterministic = false)")


def _plan_nocase(cur, plan, schema, model):
    """What COLLATE NOCASE columns need first: the case-insensitive collation, or the citext
    extension. Returns the citext type (composed) when a column uses it."""
    from .model import NOCASE_COLLATION

    modes = {c.nocase for t in model.values() for c in all_columns(t) if c.nocase}
    citext = None
    if "collation" in modes:
        cur.execute("SELECT EXISTS (SELECT 1 FROM pg_collation WHERE collprovider = 'i')")
        if not cur.fetchone()[0]:
            raise SchemaError("this PostgreSQL server was built without ICU, so it has no case-insensitive "
                              "collation for the COLLATE NOCASE columns: set nocase to citext or lower_index")
        cur.execute("""SELECT 1 FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace
                        WHERE n.nspname = %s AND c.collname = %s""", (schema, NOCASE_COLLATION))
        if cur.fetchone() is None:
            plan.statements.append(sql.SQL(NOCASE_COLLATION_SQL).format(sql.Identifier(schema, NOCASE_COLLATION)))
    if "citext" in modes:
        cur.execute("""SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                        WHERE e.extname = 'citext'""")
        row = cur.fetchone()
        if row is None:
            cur.execute("SELECT has_database_privilege(current_user, current_database(), 'CREATE'), current_user")
            allowed, user = cur.fetchone()
            if not allowed:
                raise SchemaError(f"nocase: citext needs the citext extension, and role {user!r} cannot create it: "
                                  "ask for CREATE EXTENSION citext in this database, or set nocase to collation")
            plan.statements.append(sql.SQL("CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA {}").format(
                sql.Identifier(schema)))
        citext = sql.Identifier(row[0] if row else schema, "citext")
    return citext


def all_columns(target):
    """Every column of the target table in source order: the copied ones and the generated ones."""
    columns = list(target.columns)
    for pos, col in sorted(target.generated, key=lambda g: g[0]):
        columns.insert(pos, col)
    return columns


def _probe_generated(cur, target):
    """A generated column PostgreSQL refuses (a type it cannot combine, a function that is not
    immutable) is found before anything is created, with what to do."""
    if not target.generated:
        return
    # The table's columns with their plain types (the collation, enums and citext may not exist yet).
    parts = []
    for col in all_columns(target):
        piece = sql.SQL("{} {}").format(sql.Identifier(col.name), sql.SQL("text" if col.enum else col.pg_type))
        if col.generated:
            piece = sql.SQL("{} GENERATED ALWAYS AS ({}) STORED").format(piece, sql.SQL(col.generated))
        parts.append(piece)
    cur.execute("SAVEPOINT s2p_probe")
    try:
        cur.execute(sql.SQL("CREATE TEMPORARY TABLE s2p_generated_probe ({})").format(sql.SQL(", ").join(parts)))
    except psycopg2.OperationalError:
        raise
    except psycopg2.errors.InsufficientPrivilege:
        pass   # no TEMP right: the CREATE TABLE itself is the check
    except psycopg2.Error as exc:
        cur.execute("ROLLBACK TO SAVEPOINT s2p_probe")
        names = ", ".join(f"{c.name} AS ({c.generated})" for _pos, c in target.generated)
        raise SchemaError(f"table {target.name!r}: PostgreSQL refuses the generated column(s) {names}: "
                          f"{str(exc.diag.message_primary or exc).strip()}. Set generated_columns: plain to copy "
                          "their values as plain columns") from None
    cur.execute("ROLLBACK TO SAVEPOINT s2p_probe")


def _column_type(schema, col, citext=None):
    if col.enum:
        return sql.Identifier(schema, col.enum[0])
    if col.nocase == "citext" and citext is not None:
        return citext
    return sql.SQL(col.pg_type)


def refused_defaults(cur, target):
    """{column: PostgreSQL's reason} for translated defaults PostgreSQL would refuse for the
    column's type (tried on a temporary table in a savepoint): such a default is left out
    with a note, never allowed to stop the whole schema."""
    refused = {}
    for col in target.columns:
        default = None if col.identity or col.enum else translate_default(col.default, col.pg_type)
        if default is None:
            continue
        cur.execute("SAVEPOINT s2p_default")
        try:
            cur.execute(sql.SQL("CREATE TEMPORARY TABLE s2p_default_check (c {} DEFAULT {})").format(
                sql.SQL(col.pg_type), sql.SQL(default)))
        except psycopg2.errors.InsufficientPrivilege:
            pass   # no TEMP right: the CREATE TABLE itself is the check
        except psycopg2.Error as exc:
            refused[col.name] = " ".join((exc.diag.message_primary or str(exc)).split())
        cur.execute("ROLLBACK TO SAVEPOINT s2p_default")
        cur.execute("RELEASE SAVEPOINT s2p_default")
    return refused


def create_table_sql(schema, target, notes, refused=None, citext=None):
    from .model import NOCASE_COLLATION

    parts = []
    refused = refused or {}
    for col in all_columns(target):
        piece = sql.SQL("{} {}").format(sql.Identifier(col.name), _column_type(schema, col, citext))
        if col.nocase == "collation":
            piece = sql.SQL("{} COLLATE {}").format(piece, sql.Identifier(schema, NOCASE_COLLATION))
        if col.generated:
            piece = sql.SQL("{} GENERATED ALWAYS AS ({}) STORED").format(piece, sql.SQL(col.generated))
        elif col.identity:
            piece = sql.SQL("{} GENERATED BY DEFAULT AS IDENTITY").format(piece)
        else:
            default, why = convert_default(col.default, col.pg_type)
            if col.name in refused:
                default, why = None, f"PostgreSQL refuses it for {col.pg_type} ({refused[col.name]})"
            if default is not None:
                piece = sql.SQL("{} DEFAULT {}").format(piece, sql.SQL(default))
            elif col.default is not None and col.default.upper() != "NULL":
                notes.append(f"{target.name}.{col.name}: SQLite default {col.default} "
                             f"{why or 'has no PostgreSQL equivalent'}; left without a default")
        if col.notnull:
            piece = sql.SQL("{} NOT NULL").format(piece)
        parts.append(piece)
    return sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(schema, target.name), sql.SQL(", ").join(parts))


_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
_UTC_NOW = "(CURRENT_TIMESTAMP AT TIME ZONE 'UTC')"
_NOW_FORMS = {
    "current_timestamp": "timestamp",
    "datetime('now')": "timestamp",
    "datetime(\"now\")": "timestamp",
    "strftime('%y-%m-%d%h:%m:%s','now')": "timestamp",
    "strftime('%y-%m-%d%h:%m:%f','now')": "timestamp",
    "strftime('%y-%m-%dt%h:%m:%fz','now')": "timestamp",
    "datetime('now','localtime')": "local",
    "current_date": "date",
    "date('now')": "date",
    "current_time": "time",
    "time('now')": "time",
}


def translate_default(default, pg_type):
    """A SQLite column default as PostgreSQL SQL for ``pg_type``, or None when there is no
    faithful equivalent. SQLite's CURRENT_TIMESTAMP and datetime('now') are UTC."""
    return convert_default(default, pg_type)[0]


# Types whose literal defaults are converted by the value rules (convert.py), as a value
# stored in the column would be: a number in a date/time column is an epoch or refused.
_BY_VALUE_RULES = ("timestamp", "date", "time", "uuid", "jsonb", "json")


def convert_default(default, pg_type):
    """(PostgreSQL SQL or None, why not or None) for a SQLite column default."""
    text = (default or "").strip()
    while text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    literal = bool(_NUMBER.match(text) or re.fullmatch(r"'(?:[^']|'')*'", text, re.DOTALL))
    if literal and pg_type.startswith(_BY_VALUE_RULES):
        return _by_value_rules(text, pg_type)
    return _translate(default, pg_type), None


def _by_value_rules(literal, pg_type):
    """A literal default converted exactly as the copy converts the value it stands for."""
    conn = sqlite3.connect(":memory:")
    try:
        convert.register_functions(conn)
        codec = convert.codec_for(pg_type)
        field, problem = conn.execute(f"SELECT {codec.field('c', careful=True)}, {codec.problem('c')} "
                                      f"FROM (SELECT {literal} AS c)").fetchone()
    except sqlite3.Error as exc:
        return None, f"cannot be read as a value ({exc})"
    finally:
        conn.close()
    if problem is not None or field is None:
        return None, f"is refused by the value rules for {pg_type} ({problem or 'cannot be stored'})"
    if field.startswith(convert.QUOTE) and field.endswith(convert.QUOTE) and len(field) > 1:
        field = field[1:-1].replace(convert.QUOTE * 2, convert.QUOTE)
    return convert.sql_str(field), None


def _translate(default, pg_type):
    if default is None:
        return None
    text = default.strip()
    while text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    low = re.sub(r"\s+", "", text.lower())
    if text.upper() == "NULL":
        return None
    if low in _NOW_FORMS:
        kind = _NOW_FORMS[low]
        if kind == "local":
            return "LOCALTIMESTAMP" if pg_type.startswith("timestamp") else None
        if pg_type == "timestamp with time zone":
            return "CURRENT_TIMESTAMP" if kind == "timestamp" else None
        if pg_type.startswith("timestamp") and kind == "timestamp":
            return _UTC_NOW
        if pg_type == "date" and kind in ("date", "timestamp"):
            return f"({_UTC_NOW})::date"
        if pg_type.startswith("time ") and kind in ("time",):
            return f"({_UTC_NOW})::time"
        if pg_type in ("text",) or pg_type.startswith("character"):
            fmt = {"timestamp": "YYYY-MM-DD HH24:MI:SS", "date": "YYYY-MM-DD", "time": "HH24:MI:SS"}[kind]
            return f"to_char({_UTC_NOW}, '{fmt}')"
        return None
    if pg_type == "boolean":
        mapping = {"0": "false", "1": "true", "'0'": "false", "'1'": "true", "true": "true", "false": "false",
                   "'t'": "true", "'f'": "false", "'true'": "true", "'false'": "false"}
        return mapping.get(text.lower())
    if _NUMBER.match(text):
        return text if not pg_type.startswith(("text", "character")) else f"'{text}'"
    if text.upper() in ("TRUE", "FALSE"):
        return {"TRUE": "1", "FALSE": "0"}[text.upper()] if pg_type in ("bigint", "integer") else text.lower()
    if re.fullmatch(r"'(?:[^']|'')*'", text, re.DOTALL):
        if "\x00" in text:
            return None
        if pg_type == "bytea":
            return None
        return text
    if re.fullmatch(r"[xX]'[0-9a-fA-F]*'", text) and pg_type == "bytea":
        return f"'\\x{text[2:-1]}'::bytea"
    return None


# --- phase 2: constraints, indexes, foreign keys ----------------------------------------


def plan_constraints(pg_conn, model, schema, orphans="error", sample=5, look_for_orphans=True, missing_ok=False,
                     views=()):
    """Keys, indexes (including one for every foreign key no index covers), CHECKs, foreign
    keys, then the translated ``views`` ([(name, SELECT)], see ``model.plan_views``).

    With ``look_for_orphans`` (check mode) orphans are counted now; otherwise the foreign
    key is simply added and ``apply`` counts them only if PostgreSQL refuses it.
    """
    plan = Plan()
    with pg_conn.cursor() as cur:
        constraints, indexes = existing_constraints(cur, schema)
        missing = set()
        for target in model.values():
            if existing_columns(cur, schema, target.name) is None:
                if not missing_ok:
                    raise SchemaError(f"table {target.name!r} does not exist in the target: run phase 'tables' first")
                missing.add(target.name)
                plan.notes.append(f"{target.name}: keys, indexes and foreign keys are planned once the table exists")
                continue
            tid = sql.Identifier(schema, target.name)
            if target.primary_key and primary_key_of(cur, schema, target.name) is None:
                plan.statements.append(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY ({})").format(
                    tid, sql.Identifier(_pk_name(target)), _idents(target.primary_key)))
            for name, cols in target.uniques:
                if name not in constraints and name not in indexes:
                    plan.statements.append(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} UNIQUE ({})").format(
                        tid, sql.Identifier(name), _idents(cols)))
            for name, cols, desc, unique in target.indexes + fk_indexes(target, plan.notes):
                if name not in indexes:
                    keys = sql.SQL(", ").join(
                        sql.SQL("{}{}").format(sql.Identifier(c), sql.SQL(" DESC" if d else ""))
                        for c, d in zip(cols, desc, strict=True))
                    plan.statements.append(sql.SQL("CREATE {}INDEX {} ON {} ({})").format(
                        sql.SQL("UNIQUE " if unique else ""), sql.Identifier(name), tid, keys))
            for name, unique, terms, where in target.expr_indexes:
                if name not in indexes:
                    _tentative(plan, f"{target.name}: index {name}", sql.SQL("CREATE {}INDEX {} ON {} ({}){}").format(
                        sql.SQL("UNIQUE " if unique else ""), sql.Identifier(name), tid, sql.SQL(", ".join(terms)),
                        sql.SQL(f" WHERE {where}" if where else "")))
            for name, expr in target.checks:
                if name not in constraints:
                    check = sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK ({})").format(
                        tid, sql.Identifier(name), sql.SQL(expr))
                    _tentative(plan, f"{target.name}: CHECK {name} ({expr})", check,
                               sql.SQL("{} NOT VALID").format(check))
        for target in model.values():
            for fk in target.foreign_keys:
                if target.name in missing or fk["ref_table"] in missing:
                    continue
                _plan_foreign_key(cur, plan, schema, target, fk, constraints, orphans, sample, look_for_orphans)
        if views:
            cur.execute("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = %s AND c.relkind IN ('v', 'm')", (schema,))
            present = {r[0] for r in cur.fetchall()}
            for name, select in views:
                if name not in present:
                    _tentative(plan, f"view {name}", sql.SQL("CREATE VIEW {} AS {}").format(
                        sql.Identifier(schema, name), sql.SQL(select)))
    return plan


def _tentative(plan, what, statement, instead=None):
    plan.tentative[len(plan.statements)] = (what, instead)
    plan.statements.append(statement)


def fk_indexes(target, notes=None):
    """Indexes for foreign-key columns that no key or index of the table covers (the guide's
    "Index Optimization": ideas.user_id, analyses.user_id). A covering index starts with
    the foreign key's columns."""
    from .model import pg_name

    covering = [target.primary_key] + [u[1] for u in target.uniques] + [i[1] for i in target.indexes]
    out = []
    for fk in target.foreign_keys:
        cols = tuple(fk["columns"])
        if any(tuple(c[:len(cols)]) == cols for c in covering):
            continue
        name = pg_name(target.name, *cols, suffix="idx")
        out.append((name, cols, (False,) * len(cols), False))
        covering.append(cols)
        if notes is not None:
            notes.append(f"index {name} added: foreign key ({', '.join(cols)}) had no index")
    return out


_DEFERRABLE = {"deferred": " DEFERRABLE INITIALLY DEFERRED", "immediate": " DEFERRABLE INITIALLY IMMEDIATE"}


def _fk_sql(schema, target, fk, not_valid=False):
    return sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}) "
                   "ON UPDATE {} ON DELETE {}{}{}").format(
        sql.Identifier(schema, target.name), sql.Identifier(fk["name"]), _idents(fk["columns"]),
        sql.Identifier(schema, fk["ref_table"]), _idents(fk["ref_columns"]),
        sql.SQL(fk["on_update"]), sql.SQL(fk["on_delete"]), sql.SQL(_DEFERRABLE.get(fk.get("deferrable"), "")),
        sql.SQL(" NOT VALID" if not_valid else ""))


def _plan_foreign_key(cur, plan, schema, target, fk, constraints, policy, sample, look_for_orphans=True):
    name = fk["name"]
    if name in constraints:
        if not constraints[name] and policy != "not_valid":
            plan.notes.append(f"foreign key {name} exists but is NOT VALID")
        return
    if not look_for_orphans:
        plan.foreign_keys[len(plan.statements)] = (schema, target, fk, policy)
        plan.statements.append(_fk_sql(schema, target, fk))
        return
    found = find_orphans(cur, schema, target.name, fk, sample)
    if found["count"]:
        if not _orphan_policy(plan, target, fk, found, policy):
            return
        plan.statements.append(_fk_sql(schema, target, fk, not_valid=True))
    else:
        plan.statements.append(_fk_sql(schema, target, fk))


def _orphan_policy(plan, target, fk, found, policy):
    """Apply the orphan policy; True when the key is to be added NOT VALID."""
    name = fk["name"]
    plan.orphans[name] = found
    desc = (f"{target.name}({', '.join(fk['columns'])}) -> {fk['ref_table']}: {found['count']} orphan "
            f"row(s), e.g. {found['sample']}")
    if policy == "error":
        raise SchemaError(f"foreign key {name}: {desc}. Fix the data, or set orphans to "
                          "'not_valid' (constraint added, existing rows not checked) or 'skip'")
    if policy == "skip":
        plan.notes.append(f"foreign key {name} not created: {desc}")
        return False
    plan.notes.append(f"foreign key {name} added NOT VALID: {desc}")
    return True


def find_orphans(cur, schema, table, fk, sample=5):
    """Child rows whose foreign key names no parent row (MATCH SIMPLE: NULLs are not orphans)."""
    child = sql.Identifier(schema, table)
    parent = sql.Identifier(schema, fk["ref_table"])
    notnull = sql.SQL(" AND ").join(sql.SQL("c.{} IS NOT NULL").format(sql.Identifier(col)) for col in fk["columns"])
    match = sql.SQL(" AND ").join(
        sql.SQL("p.{} = c.{}").format(sql.Identifier(r), sql.Identifier(col))
        for col, r in zip(fk["columns"], fk["ref_columns"], strict=True))
    cols = _idents(fk["columns"], prefix="c")
    cur.execute(sql.SQL("SELECT count(*), (array_agg(ROW({})::text))[1:%s] FROM {} c WHERE {} AND NOT EXISTS "
                        "(SELECT 1 FROM {} p WHERE {})").format(cols, child, notnull, parent, match), (sample,))
    count, rows = cur.fetchone()
    return dict(table=table, columns=list(fk["columns"]), count=count, sample=rows or [])


def _pk_name(target):
    from .model import pg_name

    return pg_name(getattr(target.source, "pk_name", "") or f"{target.name}_pkey")


def _idents(names, prefix=None):
    if prefix:
        return sql.SQL(", ").join(sql.SQL("{}.{}").format(sql.Identifier(prefix), sql.Identifier(n)) for n in names)
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


def plan(pg_conn, model, schema, phase, orphans="error", look_for_orphans=True, views=()):
    """The plan for one phase, or both ('all'; constraints planned against an empty target
    cannot see orphans, so 'all' is meant for schemas without data)."""
    if phase == "tables":
        return plan_tables(pg_conn, model, schema)
    if phase == "constraints":
        # Planning ahead (check mode) before the tables exist notes them instead of failing.
        return plan_constraints(pg_conn, model, schema, orphans, look_for_orphans=look_for_orphans,
                                missing_ok=look_for_orphans, views=views)
    raise SchemaError(f"unknown phase {phase!r}: use one of {', '.join(PHASES)}")


def _apply_tentative(cur, pg_conn, stmt, plan_, what, instead):
    """Run a translated rule in a savepoint: one PostgreSQL refuses is named in the notes, and
    one the rows already there break is added as ``instead`` (NOT VALID: new rows are checked,
    as SQLite checks only what is written). Returns the statements that took effect."""
    cur.execute("SAVEPOINT s2p_rule")
    try:
        cur.execute(stmt)
        cur.execute("RELEASE SAVEPOINT s2p_rule")
        return [stmt.as_string(pg_conn)]
    except psycopg2.OperationalError:
        raise
    except psycopg2.Error as exc:
        cur.execute("ROLLBACK TO SAVEPOINT s2p_rule")
        reason = str(exc.diag.message_primary or exc).strip()
        if isinstance(exc, psycopg2.errors.CheckViolation) and instead is not None:
            cur.execute(instead)
            cur.execute("RELEASE SAVEPOINT s2p_rule")
            plan_.notes.append(f"{what}: added NOT VALID, rows already in the table break it ({reason}); "
                               "new and changed rows are checked")
            return [instead.as_string(pg_conn)]
        cur.execute("RELEASE SAVEPOINT s2p_rule")
        plan_.notes.append(f"{what}: not created, PostgreSQL refused the translation ({reason})")
        return []


def apply(pg_conn, plan_, tracer=None):
    """Run a plan in one transaction; ``tracer`` receives each statement's text.

    A foreign key PostgreSQL refuses for orphan rows is handled by the plan's orphan policy:
    the orphans are counted and named, then the key is added NOT VALID, left out, or the
    whole plan fails (nothing is changed). Returns the statements that took effect."""
    done = []
    try:
        with pg_conn.cursor() as cur:
            for i, stmt in enumerate(plan_.statements):
                if tracer:
                    tracer(stmt.as_string(pg_conn))
                if i in plan_.tentative:
                    done.extend(_apply_tentative(cur, pg_conn, stmt, plan_, *plan_.tentative[i]))
                    continue
                if i not in plan_.foreign_keys:
                    cur.execute(stmt)
                    done.append(stmt.as_string(pg_conn))
                    continue
                schema, target, fk, policy = plan_.foreign_keys[i]
                cur.execute("SAVEPOINT s2p_fk")
                try:
                    cur.execute(stmt)
                    done.append(stmt.as_string(pg_conn))
                except psycopg2.errors.ForeignKeyViolation:
                    cur.execute("ROLLBACK TO SAVEPOINT s2p_fk")
                    found = find_orphans(cur, schema, target.name, fk)
                    if _orphan_policy(plan_, target, fk, found, policy):
                        not_valid = _fk_sql(schema, target, fk, not_valid=True)
                        cur.execute(not_valid)
                        done.append(not_valid.as_string(pg_conn))
                cur.execute("RELEASE SAVEPOINT s2p_fk")
        pg_conn.commit()
    except Exception:
        pg_conn.rollback()
        raise
    return done
