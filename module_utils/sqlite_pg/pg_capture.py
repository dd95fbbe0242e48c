"""Change capture on the PostgreSQL side, for the rollback window after cutover.

Installed at cutover before the app starts on PostgreSQL: one row trigger per migrated
table records the primary key (as JSON, by target column name) of every row the app
inserts, updates or deletes in ``_migration_changes``. A rollback then brings back into
SQLite only the rows those keys name (``copy_back.replay_changes``) instead of comparing and
rewriting whole tables; verification afterwards proves both sides equal, and any table
still different is rewritten in full.

The trigger function is SECURITY DEFINER (owned by the migration's role) so an app role
with only DML rights can still write the log. Not seen: TRUNCATE, and tables written with
triggers disabled; verification catches both.
"""

import time

from .errors import MigrationError
from .pg import psycopg2, sql

LOG = "_migration_changes"
FUNCTION = "_migration_log_change"
TRIGGER = "_migration_capture"

_FUNCTION_BODY = """
DECLARE
  old_key jsonb;
  new_key jsonb;
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    SELECT coalesce(jsonb_object_agg(k, to_jsonb(OLD) -> k), '{{}}') INTO old_key FROM unnest(TG_ARGV[1:]) AS k;
    INSERT INTO {log} (table_name, key) VALUES (TG_ARGV[0], old_key);
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    SELECT coalesce(jsonb_object_agg(k, to_jsonb(NEW) -> k), '{{}}') INTO new_key FROM unnest(TG_ARGV[1:]) AS k;
    IF new_key IS DISTINCT FROM old_key THEN
      INSERT INTO {log} (table_name, key) VALUES (TG_ARGV[0], new_key);
    END IF;
  END IF;
  RETURN NULL;
END
"""


def _installed(cur, schema, model):
    """(log exists, function exists, {source table: trigger exists})."""
    cur.execute("SELECT to_regclass(%s), to_regprocedure(%s)",
                (sql.Identifier(schema, LOG).as_string(cur), sql.Identifier(schema, FUNCTION).as_string(cur) + "()"))
    log, function = cur.fetchone()
    triggers = {}
    for target in model.values():
        cur.execute("SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass(%s) AND tgname = %s)",
                    (sql.Identifier(schema, target.name).as_string(cur), TRIGGER))
        triggers[target.source.name] = cur.fetchone()[0]
    return log is not None, function is not None, triggers


def plan_install(cur, schema, model):
    log, function, triggers = _installed(cur, schema, model)
    statements = []
    if not log:
        statements.append(sql.SQL("CREATE TABLE {} (seq bigserial PRIMARY KEY, table_name text NOT NULL, "
                                  "key jsonb NOT NULL, logged_at timestamptz NOT NULL DEFAULT now())")
                          .format(sql.Identifier(schema, LOG)))
    elif not any(triggers.values()):
        # A new rollback window: what an earlier one logged is history.
        statements.append(sql.SQL("TRUNCATE {}").format(sql.Identifier(schema, LOG)))
    if not function:
        body = _FUNCTION_BODY.format(log=sql.Identifier(schema, LOG).as_string(cur))
        statements.append(sql.SQL("CREATE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER "
                                  "SET search_path = pg_catalog, pg_temp AS {}")
                          .format(sql.Identifier(schema, FUNCTION), sql.Literal(body)))
    for target in model.values():
        if triggers[target.source.name]:
            continue
        args = [target.source.name, *target.primary_key]
        statements.append(sql.SQL("CREATE TRIGGER {} AFTER INSERT OR UPDATE OR DELETE ON {} FOR EACH ROW "
                                  "EXECUTE FUNCTION {}({})").format(
            sql.Identifier(TRIGGER), sql.Identifier(schema, target.name), sql.Identifier(schema, FUNCTION),
            sql.SQL(", ").join(map(sql.Literal, args))))
    return statements


def plan_remove(cur, schema, model=None):
    """Every capture trigger in the schema (found in the catalog: the SQLite file, and so the
    model, may already be gone at decommission), then function and log."""
    log, function, _triggers = _installed(cur, schema, {})
    cur.execute("SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND t.tgname = %s "
                "ORDER BY c.relname", (schema, TRIGGER))
    statements = [sql.SQL("DROP TRIGGER {} ON {}").format(sql.Identifier(TRIGGER), sql.Identifier(schema, name))
                  for (name,) in cur.fetchall()]
    if function:
        statements.append(sql.SQL("DROP FUNCTION {}() CASCADE").format(sql.Identifier(schema, FUNCTION)))
    if log:
        statements.append(sql.SQL("DROP TABLE {}").format(sql.Identifier(schema, LOG)))
    return statements


def apply(pg_conn, schema, model, state="present", check_mode=False, lock_timeout="5s", attempts=5):
    """Install or remove; returns the statements as text (run unless check mode).

    Each statement is its own transaction with a lock timeout, retried: at decommission the
    app is running, and one transaction over every table's trigger would hold the first
    table's lock while waiting for the next (and could deadlock with the app's own writes).
    """
    with pg_conn.cursor() as cur:
        plan = plan_install if state == "present" else plan_remove
        statements = plan(cur, schema, model)
        texts = [s.as_string(cur) for s in statements]
    pg_conn.rollback()
    if check_mode:
        return texts
    for stmt, text in zip(statements, texts, strict=True):
        for attempt in range(attempts):
            try:
                with pg_conn.cursor() as cur:
                    cur.execute("SET LOCAL lock_timeout = %s", (lock_timeout,))
                    cur.execute(stmt)
                pg_conn.commit()
                break
            except (psycopg2.errors.LockNotAvailable, psycopg2.errors.DeadlockDetected):
                pg_conn.rollback()
                if attempt == attempts - 1:
                    raise MigrationError(f"change capture on PostgreSQL: the app's locks did not let {text!r} "
                                         f"through in {attempts} tries; rerun when the app is quieter") from None
                time.sleep(1 + attempt)
            except psycopg2.errors.InsufficientPrivilege as exc:
                pg_conn.rollback()
                raise MigrationError(f"change capture on PostgreSQL needs the migration role to own the tables "
                                     f"or hold TRIGGER on them ({exc.diag.message_primary}): ask for GRANT TRIGGER "
                                     f"ON ALL TABLES IN SCHEMA \"{schema}\" TO the migration role, or set "
                                     f"migration_capture: false") from None
            except psycopg2.Error as exc:
                pg_conn.rollback()
                raise MigrationError(f"change capture on PostgreSQL: {text!r} failed: "
                                     f"{(exc.diag.message_primary or str(exc)).strip()}") from None
    return texts


def logged(cur, schema, model):
    """{source table: distinct keys logged} when every table's trigger is in place, else None
    (then the rollback compares whole tables instead)."""
    log, function, triggers = _installed(cur, schema, model)
    if not (log and function and all(triggers.values())):
        return None
    cur.execute(sql.SQL("SELECT table_name, count(DISTINCT key) FROM {} GROUP BY table_name")
                .format(sql.Identifier(schema, LOG)))
    counts = dict(cur.fetchall())
    return {t.source.name: counts.get(t.source.name, 0) for t in model.values()}
