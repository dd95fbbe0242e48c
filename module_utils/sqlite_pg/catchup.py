"""Catch-up: bring the PostgreSQL copy up to date with the rows the capture log names.

For every table whose keys were logged since its last pass (see ``capture``), in one
PostgreSQL transaction for all of them:

1. children first: the logged keys whose row is gone from SQLite (or no longer converts)
   are deleted, so a unique value or a parent they held is free again;
2. parents first: the logged rows that exist in SQLite and convert are staged by COPY into
   a temporary table, inserted where the key is new, then updated in place where it was
   there (a row may now point at a row inserted just before);
3. tables without a key to go by are emptied and loaded again within the same transaction;
4. rejects of the logged keys are replaced by what the rows give now (``on_error``), the
   sequences are moved past the new maximum, and the ledger records the new capture point.

Updating in place (not delete and insert) keeps ``ON DELETE CASCADE`` children intact, and
needs no unique constraint, so a catch-up works before and after the constraints phase.
If PostgreSQL refuses any of it, nothing is kept and the caller copies those tables in full.
"""

import json
import time

from . import capture, convert, frozen
from .errors import DataError
from .ledger import REJECTS, record_ledger
from .pg import sql
from .pgcopy import TableResult, fill_defaults, quarantine, set_sequence, stage


def _key_match(left, right, keys):
    return sql.SQL(" AND ").join(
        sql.SQL("{}.{} = {}.{}").format(sql.Identifier(left), sql.Identifier(k), sql.Identifier(right),
                                        sql.Identifier(k)) for k in keys)


def _upsert(cur, schema, target, columns, staged):
    """Insert the staged rows whose key is new, then update the others; (inserted, updated)."""
    tid = sql.Identifier(schema, target.name)
    names = [c.target for c in columns]
    keys = list(target.primary_key)
    others = [n for n in names if n not in keys]
    new = sql.SQL(" WHERE NOT EXISTS (SELECT 1 FROM {} AS t WHERE {})").format(tid, _key_match("t", "s", keys)) \
        if keys else sql.SQL("")
    cur.execute(sql.SQL("INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE SELECT {} FROM {} AS s{}").format(
        tid, sql.SQL(", ").join(map(sql.Identifier, names)),
        sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(n)) for n in names), sql.Identifier(staged), new))
    inserted = cur.rowcount
    updated = 0
    if keys and others:
        # The rows just inserted are updated too (to the same values): counted out below. No
        # "changed only" filter: json has no equality operator.
        cur.execute(sql.SQL("UPDATE {} AS t SET {} FROM {} AS s WHERE {}").format(
            tid, sql.SQL(", ").join(sql.SQL("{} = s.{}").format(sql.Identifier(n), sql.Identifier(n)) for n in others),
            sql.Identifier(staged), _key_match("t", "s", keys)))
        updated = cur.rowcount - inserted
    return inserted, updated


def _delete_gone(cur, schema, target, staged):
    tid = sql.Identifier(schema, target.name)
    cur.execute(sql.SQL("DELETE FROM {} AS t USING {} AS g WHERE {}").format(
        tid, sql.Identifier(staged), _key_match("t", "g", list(target.primary_key))))
    return cur.rowcount


def _forget_rejects(cur, schema, table, keys, everything=False):
    """Drop earlier rejects of the logged keys (or all of the table's): the rows are judged
    again as they are now."""
    rejects = sql.Identifier(schema, REJECTS)
    cur.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE table_name = %s)").format(rejects), (table.name,))
    if not cur.fetchone()[0]:
        return
    if everything:
        cur.execute(sql.SQL("DELETE FROM {} WHERE table_name = %s").format(rejects), (table.name,))
        return
    names = list(table.primary_key)
    docs = [json.dumps({k: convert.raw_json(v) for k, v in zip(names, key, strict=True)}) for key in keys]
    cur.execute(sql.SQL("DELETE FROM {} WHERE table_name = %s AND source_key = ANY(%s::jsonb[])").format(rejects),
                (table.name, docs))


def replay(sqlite_conn, pg_conn, work, schema, upto, on_error="error", progress=None):
    """Apply the logged changes for ``work``: [(target, columns, source, since, whole)] in load
    order; ``whole`` tables (no key to go by) are emptied and loaded again in the same transaction.

    Returns {table name: dict(updated, inserted, deleted, keys, rows, ...)}. Commits; on a
    PostgreSQL error rolls back and raises it (the caller then copies those tables in full).
    """
    start = time.monotonic()
    done = {}
    with pg_conn.cursor() as cur:
        restore = []
        # Children first: rows that left SQLite (or stopped converting) leave the target, so a
        # unique value or a parent they held is free for what is inserted next.
        for i, (target, _columns, source, since, whole) in reversed(list(enumerate(work))):
            tid = sql.Identifier(schema, target.name)
            if whole:
                cur.execute(sql.SQL("DELETE FROM {}").format(tid))
                deleted = cur.rowcount
            else:
                keys_sql, args = capture.logged_keys_sql(target.source, since, upto)
                _count, payload = source.gone(keys_sql, args)
                stage(cur, schema, target, list(target.primary_key), f"s2p_gone_{i}", payload)
                deleted = _delete_gone(cur, schema, target, f"s2p_gone_{i}")
            done[target.source.name] = dict(deleted=deleted)
        # Parents first: new rows, then changed ones (a row may now point at a new one).
        for i, (target, columns, source, since, whole) in enumerate(work):
            if whole:
                keys_sql, args, keys = None, [], []
                rows, good, payload = source.changed(None, [])
            else:
                keys_sql, args = capture.logged_keys_sql(target.source, since, upto)
                rows, good, payload = source.changed(keys_sql, args)
                keys = [tuple(r) for r in sqlite_conn.execute(keys_sql, args)]
            restore += fill_defaults(cur, schema, target)
            stage(cur, schema, target, [c.target for c in columns], f"s2p_rows_{i}", payload)
            inserted, updated = _upsert(cur, schema, target, columns, f"s2p_rows_{i}")
            result = TableResult(target.source.name, "caught_up")
            _forget_rejects(cur, schema, target.source, keys, everything=whole)
            if rows != good:
                for key, reasons, raw in source.changed_bad_rows(keys_sql, args):
                    if on_error == "error":
                        column, reason = next(iter(reasons.items()))
                        raise DataError(target.source.name, key, column, raw.get(column), reason)
                    quarantine(cur, schema, target.source.name, key, reasons, raw, result)
            done[target.source.name].update(updated=updated, inserted=inserted, keys=len(keys) if keys_sql else rows,
                                            rejected=result.rejected, reasons=result.reasons)
        for stmt in restore:
            cur.execute(stmt)
        for target, _columns, source, _since, _whole in work:
            set_sequence(cur, schema, target, sqlite_conn)
            source_rows, max_rowid = source.stats()
            rows, rejected = _counts(cur, schema, target)
            # For the verification that follows inside cutover's freeze (frozen.py).
            frozen.leave(("postgresql", schema, target.name, upto), (rows, rejected))
            entry = done[target.source.name]
            entry.update(rows=rows, source_rows=source_rows, total_rejected=rejected)
            entry["seconds"] = time.monotonic() - start
            # Every source row is in the target or in the rejects, or something went unlogged
            # (a row INSERT OR REPLACE removed for a UNIQUE conflict fires no trigger): then the
            # ledger is left so that the table is copied in full next.
            entry["accounted"] = source_rows == rows + rejected
            record_ledger(cur, schema, target.source.name, source_rows, max_rowid,
                          rows if entry["accounted"] else -1, rejected, 0, entry["seconds"], upto,
                          keep_proof=entry["accounted"])
    pg_conn.commit()
    if progress:
        for name, entry in done.items():
            progress.update(name, entry["rows"], entry["source_rows"], "caught_up")
    return done


def _counts(cur, schema, target):
    cur.execute(sql.SQL("SELECT (SELECT count(*) FROM {}), (SELECT count(*) FROM {} WHERE table_name = %s)").format(
        sql.Identifier(schema, target.name), sql.Identifier(schema, REJECTS)), (target.source.name,))
    return cur.fetchone()
