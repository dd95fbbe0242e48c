"""Catch-up: bring the PostgreSQL copy up to date with the rows the capture log names.

For every table whose keys were logged since its last pass (see ``capture``), in one
PostgreSQL transaction for all of them:

1. parents first: the logged rows that exist in SQLite and convert are staged by COPY into
   a temporary table, updated in place where the key exists and inserted where not;
2. children first: the logged keys whose row is gone from SQLite (or no longer converts)
   are deleted;
3. rejects of the logged keys are replaced by what the rows give now (``on_error``), the
   sequences are moved past the new maximum, and the ledger records the new capture point.

Updating in place (not delete and insert) keeps ``ON DELETE CASCADE`` children intact, and
needs no unique constraint, so a catch-up works before and after the constraints phase.
If PostgreSQL refuses any of it, nothing is kept and the caller copies those tables in full.
"""

import json
import time

from psycopg2 import sql

from . import capture, convert
from .copy import REJECTS, TableResult, _Bytes, _fill_defaults, _quarantine, _set_sequence, record_ledger
from .errors import DataError


def _stage(cur, schema, target, columns, name, payload):
    """A temporary table with ``columns`` of the target's types, filled from COPY text."""
    cur.execute(sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
        sql.Identifier(name), sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        sql.Identifier(schema, target.name)))
    if payload:
        cur.copy_expert(sql.SQL("COPY {} FROM STDIN WITH (FORMAT csv, QUOTE E'\\x01')").format(
            sql.Identifier(name)), _Bytes(payload))


def _key_match(left, right, keys):
    return sql.SQL(" AND ").join(
        sql.SQL("{}.{} = {}.{}").format(sql.Identifier(left), sql.Identifier(k), sql.Identifier(right),
                                        sql.Identifier(k)) for k in keys)


def _upsert(cur, schema, target, columns, staged):
    tid = sql.Identifier(schema, target.name)
    names = [c.target for c in columns]
    keys = list(target.primary_key)
    others = [n for n in names if n not in keys]
    updated = 0
    if others:
        cur.execute(sql.SQL("UPDATE {} AS t SET {} FROM {} AS s WHERE {}").format(
            tid, sql.SQL(", ").join(sql.SQL("{} = s.{}").format(sql.Identifier(n), sql.Identifier(n)) for n in others),
            sql.Identifier(staged), _key_match("t", "s", keys)))
        updated = cur.rowcount
    cur.execute(sql.SQL("INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE SELECT {} FROM {} AS s "
                        "WHERE NOT EXISTS (SELECT 1 FROM {} AS t WHERE {})").format(
        tid, sql.SQL(", ").join(map(sql.Identifier, names)),
        sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(n)) for n in names),
        sql.Identifier(staged), tid, _key_match("t", "s", keys)))
    return updated, cur.rowcount


def _delete_gone(cur, schema, target, staged):
    tid = sql.Identifier(schema, target.name)
    cur.execute(sql.SQL("DELETE FROM {} AS t USING {} AS g WHERE {}").format(
        tid, sql.Identifier(staged), _key_match("t", "g", list(target.primary_key))))
    return cur.rowcount


def _forget_rejects(cur, schema, table, keys):
    """Drop earlier rejects of the logged keys: the rows are judged again as they are now."""
    rejects = sql.Identifier(schema, REJECTS)
    cur.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE table_name = %s)").format(rejects), (table.name,))
    if not cur.fetchone()[0]:
        return
    names = list(table.primary_key)
    docs = [json.dumps({k: convert.raw_json(v) for k, v in zip(names, key, strict=True)}) for key in keys]
    cur.execute(sql.SQL("DELETE FROM {} WHERE table_name = %s AND source_key = ANY(%s::jsonb[])").format(rejects),
                (table.name, docs))


def replay(sqlite_conn, pg_conn, work, schema, upto, on_error="error", progress=None):
    """Apply the logged changes for ``work``: [(target, columns, source, since)] in load order.

    Returns {table name: dict(updated, inserted, deleted, rejected, seconds)}. Commits; on a
    PostgreSQL error rolls back and raises it (the caller then copies those tables in full).
    """
    start = time.monotonic()
    done = {}
    with pg_conn.cursor() as cur:
        restore = []
        for i, (target, columns, source, since) in enumerate(work):
            keys_sql, args = capture.logged_keys_sql(target.source, since, upto)
            rows, good, payload = source.changed(keys_sql, args)
            restore += _fill_defaults(cur, schema, target)
            _stage(cur, schema, target, [c.target for c in columns], f"s2p_rows_{i}", payload)
            updated, inserted = _upsert(cur, schema, target, columns, f"s2p_rows_{i}")
            result = TableResult(target.source.name, "caught_up")
            keys = [tuple(r) for r in sqlite_conn.execute(keys_sql, args)]
            _forget_rejects(cur, schema, target.source, keys)
            if rows != good:
                for key, reasons, raw in source.changed_bad_rows(keys_sql, args):
                    if on_error == "error":
                        column, reason = next(iter(reasons.items()))
                        raise DataError(target.source.name, key, column, raw.get(column), reason)
                    _quarantine(cur, schema, target.source.name, key, reasons, raw, result)
            done[target.source.name] = dict(updated=updated, inserted=inserted, deleted=0, keys=len(keys),
                                            rejected=result.rejected, reasons=result.reasons)
        for i, (target, _columns, source, _since) in reversed(list(enumerate(work))):
            keys_sql, args = capture.logged_keys_sql(target.source, _since, upto)
            _count, payload = source.gone(keys_sql, args)
            _stage(cur, schema, target, list(target.primary_key), f"s2p_gone_{i}", payload)
            done[target.source.name]["deleted"] = _delete_gone(cur, schema, target, f"s2p_gone_{i}")
        for stmt in restore:
            cur.execute(stmt)
        for target, _columns, source, _since in work:
            _set_sequence(cur, schema, target, sqlite_conn)
            source_rows, max_rowid = source.stats()
            rows, rejected = _counts(cur, schema, target)
            entry = done[target.source.name]
            entry.update(rows=rows, source_rows=source_rows, total_rejected=rejected)
            entry["seconds"] = time.monotonic() - start
            record_ledger(cur, schema, target.source.name, source_rows, max_rowid, rows, rejected, 0,
                          entry["seconds"], upto)
    pg_conn.commit()
    if progress:
        for name, entry in done.items():
            progress.update(name, entry["rows"], entry["source_rows"], "caught_up")
    return done


def _counts(cur, schema, target):
    cur.execute(sql.SQL("SELECT (SELECT count(*) FROM {}), (SELECT count(*) FROM {} WHERE table_name = %s)").format(
        sql.Identifier(schema, target.name), sql.Identifier(schema, REJECTS)), (target.source.name,))
    return cur.fetchone()
