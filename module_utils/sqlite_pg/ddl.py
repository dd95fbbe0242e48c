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

import psycopg2
import psycopg2.errors
from psycopg2 import sql

from . import convert
from .errors import SchemaError

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
        for target in model.values():
            plan.notes.extend(f"{target.name}: {n}" for n in target.notes)
            current = existing_columns(cur, schema, target.name)
            if current is None:
                refused = refused_defaults(cur, target)
                plan.statements.append(create_table_sql(schema, target, plan.notes, refused))
                continue
            for col in target.columns:
                if col.name not in current:
                    drift.append(f"{target.name}.{col.name}: missing in the target (planned {col.pg_type})")
                elif current[col.name][0] != col.pg_type and not (
                        col.enum and current[col.name][0].split(".")[-1].strip('"') == col.enum[0]):
                    drift.append(f"{target.name}.{col.name}: target is {current[col.name][0]}, "
                                 f"source maps to {col.pg_type}")
            extra = sorted(set(current) - {c.name for c in target.columns})
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


def _column_type(schema, col):
    if col.enum:
        return sql.Identifier(schema, col.enum[0])
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


def create_table_sql(schema, target, notes, refused=None):
    parts = []
    refused = refused or {}
    for col in target.columns:
        piece = sql.SQL("{} {}").format(sql.Identifier(col.name), _column_type(schema, col))
        if col.identity:
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


def plan_constraints(pg_conn, model, schema, orphans="error", sample=5, look_for_orphans=True, missing_ok=False):
    """Keys, indexes (including one for every foreign key no index covers) and foreign keys.

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
        for target in model.values():
            for fk in target.foreign_keys:
                if target.name in missing or fk["ref_table"] in missing:
                    continue
                _plan_foreign_key(cur, plan, schema, target, fk, constraints, orphans, sample, look_for_orphans)
    return plan


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


def _fk_sql(schema, target, fk, not_valid=False):
    return sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}) "
                   "ON UPDATE {} ON DELETE {}{}").format(
        sql.Identifier(schema, target.name), sql.Identifier(fk["name"]), _idents(fk["columns"]),
        sql.Identifier(schema, fk["ref_table"]), _idents(fk["ref_columns"]),
        sql.SQL(fk["on_update"]), sql.SQL(fk["on_delete"]), sql.SQL(" NOT VALID" if not_valid else ""))


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

    return pg_name(target.name, suffix="pkey")


def _idents(names, prefix=None):
    if prefix:
        return sql.SQL(", ").join(sql.SQL("{}.{}").format(sql.Identifier(prefix), sql.Identifier(n)) for n in names)
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


def plan(pg_conn, model, schema, phase, orphans="error", look_for_orphans=True):
    """The plan for one phase, or both ('all'; constraints planned against an empty target
    cannot see orphans, so 'all' is meant for schemas without data)."""
    if phase == "tables":
        return plan_tables(pg_conn, model, schema)
    if phase == "constraints":
        # Planning ahead (check mode) before the tables exist notes them instead of failing.
        return plan_constraints(pg_conn, model, schema, orphans, look_for_orphans=look_for_orphans,
                                missing_ok=look_for_orphans)
    raise SchemaError(f"unknown phase {phase!r}: use one of {', '.join(PHASES)}")


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
