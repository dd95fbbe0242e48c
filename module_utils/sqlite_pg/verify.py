"""Prove that PostgreSQL holds what SQLite holds: counts, content checksums, named differences.

A table keyed by one integer column is hashed per key range on both sides at once
(``rowhash``: SQLite spells each source value as PostgreSQL prints the stored one, by rules
that share nothing with the copy's codecs); only the ranges whose hashes differ, and the
columns the hash does not cover, are judged further. Every other table, and a table whose
ranges mostly differ, takes the full path: the source, converted by the same codecs the
copy uses, is streamed into a temporary table of the target's own column types and both
sides are hashed row by row in PostgreSQL from their canonical text (so a SQLite ``1`` and
a PostgreSQL ``true``, or two spellings of one JSON document, agree), then every stored
value is read back and judged by ``readback``'s own rules.

When the checksums differ, ``EXCEPT ALL`` in both directions names the rows, and rows that
differ under the same key are shown column by column. Quarantined rows are accounted for,
not counted as loss. Foreign-key integrity and sequence positions are checked on the target.
"""

import dataclasses
import json
import time

from . import capture, convert, frozen, readback, rowhash
from .connection import snapshot_readers
from .ddl import find_orphans
from .introspect import quote_ident
from .ledger import REJECTS, read_ledger, record_proof
from .pg import psycopg2, sql
from .pgcopy import PARALLEL_READERS, careful_copy, copy_sql, stage, target_codecs
from .source import Feed, SourceTable, parallel_chunks

_TEMP = "_s2p_verify"


def _checksum(cur, relation, columns):
    """(rows, checksum): an order-independent sum of each row's 64-bit hash of its canonical
    text (hashtextextended: PostgreSQL's own hash, much cheaper than md5 per row)."""
    row = sql.SQL("ROW({})::text").format(sql.SQL(", ").join(sql.Identifier(c) for c in columns))
    cur.execute(sql.SQL("SELECT count(*), coalesce(sum(hashtextextended({}, 0)::numeric), 0) FROM {}").format(
        row, relation))
    count, total = cur.fetchone()
    return count, format(int(total) % (1 << 64), "016x")


def _rejected(cur, schema, table):
    cur.execute("SELECT to_regclass(%s)", (sql.Identifier(schema, REJECTS).as_string(cur),))
    if cur.fetchone()[0] is None:
        return 0
    cur.execute(sql.SQL("SELECT count(*) FROM {} WHERE table_name = %s").format(sql.Identifier(schema, REJECTS)),
                (table,))
    return cur.fetchone()[0]


def _rejected_keys(cur, schema, table):
    """The quarantine's source keys of ``table``, as ``readback`` spells them."""
    cur.execute("SELECT to_regclass(%s)", (sql.Identifier(schema, REJECTS).as_string(cur),))
    if cur.fetchone()[0] is None:
        return set()
    cur.execute(sql.SQL("SELECT source_key FROM {} WHERE table_name = %s").format(sql.Identifier(schema, REJECTS)),
                (table,))
    return {json.dumps(key, sort_keys=True) for (key,) in cur.fetchall()}


def _readback_types(columns):
    """{column: catalog type} and {column: interval unit} for ``readback``."""
    types = {c.target: "enum" if isinstance(c.codec, convert.EnumCodec) else c.codec.pg_type for c in columns}
    units = {c.target: c.codec.unit for c in columns if isinstance(c.codec, convert.IntervalCodec)}
    return types, units


def independent_check(sqlite_conn, cur, schema, target, columns, max_diffs, only_keys=None):
    """The stored values read back and judged by ``readback``'s own rules (not the codecs);
    ``only_keys``: (subquery, arguments) of the keys to compare, else every row."""
    types, units = _readback_types(columns)
    return readback.compare(sqlite_conn, cur, target, schema, types,
                            _rejected_keys(cur, schema, target.source.name), max_diffs, units, only_keys=only_keys)


def _refused_at_load(cur, schema, target):
    """Rows that convert but PostgreSQL refused at load and the copy quarantined (a child of
    a quarantined parent, refused by its foreign key): out of the converted source, as they
    are out of the target. Returns how many."""
    keys = target.source.primary_key
    if not keys or len(keys) != len(target.primary_key):
        return 0
    pairs = sql.SQL(", ").join(sql.SQL("{}, t.{}").format(sql.Literal(k), sql.Identifier(c))
                               for k, c in zip(keys, target.primary_key, strict=True))
    cur.execute(sql.SQL("DELETE FROM {} t WHERE EXISTS (SELECT 1 FROM {} r WHERE r.table_name = %s "
                        "AND r.source_key = jsonb_build_object({}))").format(
        sql.Identifier(_TEMP), sql.Identifier(schema, REJECTS), pairs), (target.source.name,))
    return cur.rowcount


CHECKS = ("all", "content")


def verify_table(sqlite_conn, pg_conn, target, schema, max_diffs=10, orphans="error", readers=(), checks="all"):
    start = time.monotonic()
    result = dict(table=target.source.name, ok=True, problems=[], differences=[])
    with pg_conn.cursor() as cur:
        columns = target_codecs(cur, schema, target)
        source = SourceTable(sqlite_conn, target.source, columns)
        source_rows, _ = source.stats()
        cur.execute("SET LOCAL work_mem = '64MB'")
        types, _units = _readback_types(columns)
        the_plan = rowhash.plan(target, types) if rowhash.encodings_agree(sqlite_conn, cur) else None
        if the_plan is None or not _by_ranges(sqlite_conn, cur, schema, target, columns, source, source_rows,
                                              the_plan, readers, max_diffs, result):
            _in_full(sqlite_conn, cur, schema, target, columns, source, source_rows, readers, max_diffs, result)
        result["warnings"] = []
        if checks == "all":   # what the app needs of PostgreSQL; after a rollback only content matters
            _app_needs(cur, schema, target, orphans, result)
    pg_conn.rollback()  # drops the temporary table; verification writes nothing
    result["ok"] = not result["problems"]
    result["seconds"] = round(time.monotonic() - start, 3)
    return result


# More ranges differing than this share: the full path is cheaper than judging them one by one.
MAX_DIFFERING_SHARE = 0.25


def _by_ranges(sqlite_conn, cur, schema, target, columns, source, source_rows, the_plan, readers, max_diffs, result):
    """Content by hashes per key range (``rowhash``); the ranges whose hashes differ are
    compared as the full path would (converted source against target, then read back by the
    rules), the columns without a hash read back in every range. False when the full path
    must run instead (rows outside the ranges, or most ranges differ)."""
    conns = [sqlite_conn, *readers]
    for conn in conns:
        rowhash.register(conn)
    name = target.source.name
    rejected_keys = _rejected_keys(cur, schema, name)
    cur.execute("SAVEPOINT s2p_ranges")
    hashed = rowhash.compare(conns, cur, schema, the_plan, source_rows, rejected_keys)
    differing = hashed["differing"]
    if hashed["in_ranges"] != source_rows or len(differing) > max(1, MAX_DIFFERING_SHARE * hashed["ranges"]):
        cur.execute("ROLLBACK TO SAVEPOINT s2p_ranges")
        return False
    rejected = _rejected(cur, schema, name)
    names = [c.target for c in columns]
    types, units = _readback_types(columns)
    result.update(source_rows=source_rows, target_rows=hashed["target_rows"], rejected=rejected,
                  source_checksum=hashed["source_checksum"], target_checksum=hashed["target_checksum"])
    converted = hashed["rows"]
    result["content_ok"] = True
    independent = dict(rows=hashed["rows"], unchecked=0, mismatches=0, differences=[], problems=[])
    src = dst = None
    if differing:
        staged, src, dst = _stage_ranges(cur, source, schema, target, names, the_plan, differing, rejected)
        converted += staged
    _unaccounted(result, source_rows, converted, rejected)
    if differing:
        if src != dst:
            result["content_ok"] = False
            result["problems"].append(f"content differs in {len(differing)} key range(s) of {hashed['ranges']}: "
                                      f"source {src[0]} rows / {src[1]}, target {dst[0]} rows / {dst[1]}")
            result["differences"] = _differences(cur, sql.Identifier(_TEMP), sql.Identifier(_RANGES), names,
                                                 target.primary_key, max_diffs)
        for span in differing:
            readback.compare(sqlite_conn, cur, target, schema, types, rejected_keys, max_diffs, units,
                             key_range=span, out=independent)
    if the_plan.unhashed:
        # Columns without a canonical spelling in SQLite: read back in the ranges that agreed
        # (their rows are counted already, and their keys are known to pair).
        only = {k: types[k] for k in (the_plan.key, *the_plan.unhashed)}
        counted = independent["rows"]
        for span in hashed["spans"]:
            if span not in differing:
                readback.compare(sqlite_conn, cur, target, schema, only, rejected_keys, max_diffs, units,
                                 key_range=span, out=independent)
        independent["rows"] = counted
    result["hashed"] = dict(ranges=hashed["ranges"], differing=len(differing), rows=hashed["rows"],
                            columns=[n for n, _s, _t in the_plan.columns], unhashed=the_plan.unhashed)
    _add_independent(result, independent)
    return True


_RANGES = "s2p_vranges"


def _stage_ranges(cur, source, schema, target, names, the_plan, spans, rejected):
    """The converted source rows of ``spans`` into the temporary table, the target's rows of
    them as a view; returns (converted rows, (rows, checksum) of each side)."""
    cur.execute(sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
        sql.Identifier(_TEMP), sql.SQL(", ").join(sql.Identifier(n) for n in names), sql.Identifier(schema, target.name)))
    key = quote_ident(the_plan.source_key)
    good = 0
    for lo, hi in spans:
        where, args = rowhash.sqlite_where(key, lo, hi)
        keys_sql = f"SELECT {key} FROM {quote_ident(target.source.name)} WHERE {where}"
        _rows, converted, payload = source.changed(keys_sql, args)
        good += converted
        stage(cur, schema, target, names, "s2p_vspan", payload)
        cur.execute(sql.SQL("INSERT INTO {} SELECT * FROM s2p_vspan; DROP TABLE s2p_vspan").format(
            sql.Identifier(_TEMP)))
    if rejected:
        good -= _refused_at_load(cur, schema, target)
    cur.execute(sql.SQL("CREATE TEMP VIEW {} AS SELECT * FROM {} WHERE {}").format(
        sql.Identifier(_RANGES), sql.Identifier(schema, target.name),
        sql.SQL(" OR ").join(sql.SQL("({})").format(rowhash.pg_where(the_plan.key, lo, hi)) for lo, hi in spans)))
    return good, _checksum(cur, sql.Identifier(_TEMP), names), _checksum(cur, sql.Identifier(_RANGES), names)


def _unaccounted(result, source_rows, converted, rejected):
    """Every source row converted or quarantined."""
    if source_rows != converted + rejected:
        result["content_ok"] = False
        result["problems"].append(
            f"{source_rows} source rows, but {converted} convert and {rejected} are quarantined: "
            f"{source_rows - converted - rejected} unaccounted for (rerun sqlite_pg_copy)")


def _add_independent(result, independent):
    """What the independent rules found (it tells when the checksums saw nothing)."""
    result["independent"] = {k: v for k, v in independent.items() if k != "problems"}
    if independent["problems"] and result["content_ok"]:
        # What the checksums could not see: the codecs changed the value on both sides.
        result["content_ok"] = False
        result["problems"].extend(independent["problems"])
        result["differences"].extend(independent["differences"])


def _in_full(sqlite_conn, cur, schema, target, columns, source, source_rows, readers, max_diffs, result):
    """The whole table: the converted source streamed into a temporary table and hashed
    against the target, then every stored value read back by the independent rules."""
    names = [c.target for c in columns]
    tid = sql.Identifier(schema, target.name)
    cur.execute(sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
        sql.Identifier(_TEMP), sql.SQL(", ").join(sql.Identifier(n) for n in names), tid))
    cur.execute("SAVEPOINT s2p_verify")
    feed = Feed(parallel_chunks(source, [sqlite_conn, *readers], source_rows))
    try:
        cur.copy_expert(copy_sql("pg_temp", _TEMP, columns), feed, size=1 << 20)
        converted = feed.rows
    except psycopg2.Error:
        converted = None
    finally:
        feed.close()   # the reader thread must stop before anything else reads SQLite
    if converted is None:
        cur.execute("ROLLBACK TO SAVEPOINT s2p_verify")
        converted, _, _, _ = careful_copy(cur, source, "pg_temp", dataclasses.replace(target, name=_TEMP), columns)
    rejected = _rejected(cur, schema, target.source.name)
    if rejected:
        converted -= _refused_at_load(cur, schema, target)
    src_count, src_sum = _checksum(cur, sql.Identifier(_TEMP), names)
    dst_count, dst_sum = _checksum(cur, tid, names)
    result.update(source_rows=source_rows, target_rows=dst_count, rejected=rejected,
                  source_checksum=src_sum, target_checksum=dst_sum)
    result["content_ok"] = True
    _unaccounted(result, source_rows, converted, rejected)
    if (src_count, src_sum) != (dst_count, dst_sum):
        result["content_ok"] = False
        result["problems"].append(f"content differs: source {src_count} rows / {src_sum}, "
                                  f"target {dst_count} rows / {dst_sum}")
        result["differences"] = _differences(cur, sql.Identifier(_TEMP), tid, names, target.primary_key, max_diffs)
    _add_independent(result, independent_check(sqlite_conn, cur, schema, target, columns, max_diffs))


def _app_needs(cur, schema, target, orphans, result):
    """Beyond the rows: foreign keys (orphans under the operator's policy are warnings),
    sequences past max(id), keys, indexes and statistics; into ``result``."""
    missing_fks, orphaned = _foreign_key_problems(cur, schema, target, orphans)
    result["problems"].extend(missing_fks)
    result["warnings"] = orphaned  # the operator's choice (orphans: not_valid or skip)
    result["problems"].extend(_sequence_problems(cur, schema, target))
    result["problems"].extend(_readiness_problems(cur, schema, target))


def _differences(cur, src, dst, names, key, limit):
    cols = sql.SQL(", ").join(sql.Identifier(n) for n in names)
    out = {}
    for side, a, b in (("missing_in_target", src, dst), ("unexpected_in_target", dst, src)):
        cur.execute(sql.SQL("SELECT {} FROM (SELECT {} FROM {} EXCEPT ALL SELECT {} FROM {}) d LIMIT %s").format(
            cols, cols, a, cols, b), (limit,))
        out[side] = [dict(zip(names, map(_show, r), strict=True)) for r in cur.fetchall()]
    diffs = []
    if key:
        theirs = {tuple(r[k] for k in key): r for r in out["unexpected_in_target"]}
        for row in out["missing_in_target"]:
            other = theirs.pop(tuple(row[k] for k in key), None)
            if other is None:
                diffs.append(dict(kind="missing in target", key={k: row[k] for k in key}, row=row))
                continue
            changed = {c: dict(source=row[c], target=other[c]) for c in names if row[c] != other[c]}
            diffs.append(dict(kind="differs", key={k: row[k] for k in key}, columns=changed))
        diffs.extend(dict(kind="not in source", key={k: r[k] for k in key}, row=r) for r in theirs.values())
    else:
        diffs.extend(dict(kind="missing in target", row=r) for r in out["missing_in_target"])
        diffs.extend(dict(kind="not in source", row=r) for r in out["unexpected_in_target"])
    return diffs[:limit]


def _show(value):
    """Values shown in a report: JSON-friendly and truncated."""
    if isinstance(value, (bytes, memoryview)):
        value = "\\x" + bytes(value).hex()
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _foreign_key_problems(cur, schema, target, policy):
    """(problems, warnings): a missing foreign key is a problem unless the operator chose to skip
    foreign keys with orphans; orphans under a NOT VALID constraint are reported."""
    problems, warnings = [], []
    for fk in target.foreign_keys:
        cur.execute("SELECT convalidated FROM pg_constraint WHERE conname = %s AND conrelid = %s::regclass",
                    (fk["name"], sql.Identifier(schema, target.name).as_string(cur)))
        row = cur.fetchone()
        if row is None:
            orphans = find_orphans(cur, schema, target.name, fk)
            if policy == "skip" and orphans["count"]:
                warnings.append(f"foreign key {fk['name']} left out (orphans: skip): {orphans['count']} "
                                f"orphan row(s), e.g. {orphans['sample']}")
            else:
                problems.append(f"foreign key {fk['name']} is missing on the target")
            continue
        if not row[0]:
            orphans = find_orphans(cur, schema, target.name, fk)
            if orphans["count"]:
                warnings.append(f"foreign key {fk['name']} is NOT VALID with {orphans['count']} orphan row(s), "
                                f"e.g. {orphans['sample']}")
    return problems, warnings


def _readiness_problems(cur, schema, target):
    """What the app needs beyond the rows: every key and index of the source present and
    valid, foreign-key columns covered by an index, statistics gathered after the load."""
    problems = []
    rel = sql.Identifier(schema, target.name).as_string(cur)
    cur.execute("SELECT conname, contype, convalidated FROM pg_constraint WHERE conrelid = %s::regclass", (rel,))
    constraints = {name: (kind, valid) for name, kind, valid in cur.fetchall()}
    cur.execute("""SELECT i.relname, x.indisvalid,
                          ARRAY(SELECT a.attname::text FROM unnest(x.indkey) WITH ORDINALITY k(n, o)
                                JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n ORDER BY k.o)
                     FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = %s::regclass""",
                (rel,))
    indexes = {name: (valid, tuple(cols)) for name, valid, cols in cur.fetchall()}
    if target.primary_key and not any(k == "p" for k, _ in constraints.values()):
        problems.append("primary key is missing")
    for name, _cols in target.uniques:
        if name not in constraints:
            problems.append(f"unique constraint {name} is missing")
    for name, _cols, _desc, _unique in target.indexes:
        if name not in indexes:
            problems.append(f"index {name} is missing")
        elif not indexes[name][0]:
            problems.append(f"index {name} is not valid (a failed concurrent build?)")
    covered = [cols for _valid, cols in indexes.values()]
    for fk in target.foreign_keys:
        cols = tuple(fk["columns"])
        if fk["name"] in constraints and not any(c[:len(cols)] == cols for c in covered):
            problems.append(f"foreign key {fk['name']} ({', '.join(cols)}) is not covered by an index")
    # Crash recovery (a server restart) resets pg_stat_user_tables but keeps what ANALYZE
    # wrote: the statistics (pg_statistic, read through pg_stats) and, for an empty table,
    # which has none, reltuples = 0 (-1 until a table is first analyzed or vacuumed).
    cur.execute(sql.SQL("SELECT s.last_analyze IS NOT NULL OR s.last_autoanalyze IS NOT NULL "
                        "OR EXISTS (SELECT 1 FROM pg_stats WHERE schemaname = %s AND tablename = %s) "
                        "OR (c.reltuples = 0 AND NOT EXISTS (SELECT 1 FROM {})) "
                        "FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
                        "WHERE s.relid = %s::regclass").format(
        sql.Identifier(schema, target.name)), (schema, target.name, rel))
    row = cur.fetchone()
    if row is not None and not row[0]:
        problems.append("statistics were never gathered (ANALYZE has not run since the load)")
    return problems


def _sequence_problems(cur, schema, target):
    problems = []
    rel = sql.Identifier(schema, target.name).as_string(cur)
    for col in target.columns:
        cur.execute("SELECT pg_get_serial_sequence(%s, %s)", (rel, col.name))
        seq = cur.fetchone()[0]
        if not seq:
            continue
        cur.execute(sql.SQL("SELECT (SELECT max({}) FROM {}), last_value, is_called FROM {}").format(
            sql.Identifier(col.name), sql.Identifier(schema, target.name), sql.SQL(seq)))
        top, last, called = cur.fetchone()
        next_value = last + 1 if called else last
        if top is not None and next_value <= top:
            problems.append(f"sequence {seq} would hand out {next_value}, but max({col.name}) is {top}")
    return problems


def verify_changes(sqlite_conn, pg_conn, target, schema, since, upto, max_diffs=10, orphans="error", checks="all"):
    """The difference since a proof: the rows whose keys the capture log names in (since,
    upto] are compared on both sides (content checksums, and no row left in the target under a
    key that is gone), the whole table's row count is checked against the source's, and
    keys, indexes and sequences as in ``verify_table``.

    With the proof that the target equalled the source at ``since`` and a capture log without
    a gap since, this proves equality at ``upto`` (docs/design.md, "Cutover"). ``checks``:
    "content" leaves out keys, indexes and sequences (a proof before the constraints phase).
    """
    start = time.monotonic()
    result = dict(table=target.source.name, ok=True, problems=[], differences=[], path="proof + changes",
                  proven_at=since)
    keys_sql, args = capture.logged_keys_sql(target.source, since, upto)
    with pg_conn.cursor() as cur:
        columns = target_codecs(cur, schema, target)
        names = [c.target for c in columns]
        keys = list(target.primary_key)
        source = SourceTable(sqlite_conn, target.source, columns)
        source_rows, _ = source.stats()
        _logged, good, payload = source.changed(keys_sql, args)
        gone_count, gone = source.gone(keys_sql, args)
        stage(cur, schema, target, names, "s2p_vchanged", payload)
        stage(cur, schema, target, keys, "s2p_vgone", gone)
        tid = sql.Identifier(schema, target.name)
        match = sql.SQL(" AND ").join(sql.SQL("t.{0} = s.{0}").format(sql.Identifier(k)) for k in keys)
        cur.execute(sql.SQL("CREATE TEMP VIEW s2p_vtarget AS SELECT t.* FROM {} AS t WHERE EXISTS "
                            "(SELECT 1 FROM s2p_vchanged AS s WHERE {})").format(tid, match))
        src_count, src_sum = _checksum(cur, sql.Identifier("s2p_vchanged"), names)
        dst_count, dst_sum = _checksum(cur, sql.Identifier("s2p_vtarget"), names)
        cur.execute(sql.SQL("SELECT count(*) FROM {} AS t WHERE EXISTS (SELECT 1 FROM s2p_vgone AS s WHERE {})").format(
            tid, match))
        left_behind = cur.fetchone()[0]
        counted = frozen.take(("postgresql", schema, target.name, upto))
        if counted is None:
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(tid))
            counted = cur.fetchone()[0], _rejected(cur, schema, target.source.name)
        target_rows, rejected = counted
        # Checksums of the changed rows only (the whole table's were compared at the proof).
        result.update(source_rows=source_rows, target_rows=target_rows, rejected=rejected, changes=good + gone_count,
                      changes_source_checksum=src_sum, changes_target_checksum=dst_sum)
        result["content_ok"] = True
        if (src_count, src_sum) != (dst_count, dst_sum) or left_behind:
            result["content_ok"] = False
            result["problems"].append(f"the {good + gone_count} row(s) changed since the proof differ: source {src_count} "
                                      f"rows / {src_sum}, target {dst_count} rows / {dst_sum}, {left_behind} row(s) "
                                      "still in the target under keys gone from the source")
            result["differences"] = _differences(cur, sql.Identifier("s2p_vchanged"), sql.Identifier("s2p_vtarget"),
                                                 names, target.primary_key, max_diffs)
        if source_rows != target_rows + rejected:
            result["content_ok"] = False
            result["problems"].append(f"{source_rows} source rows, but {target_rows} in the target and {rejected} "
                                      f"quarantined: {source_rows - target_rows - rejected} unaccounted for")
        independent = independent_check(sqlite_conn, cur, schema, target, columns, max_diffs, (keys_sql, args))
        result["independent"] = {k: v for k, v in independent.items() if k != "problems"}
        if independent["problems"] and result["content_ok"]:
            result["content_ok"] = False
            result["problems"].extend(independent["problems"])
            result["differences"].extend(independent["differences"])
        if checks == "all":
            _app_needs(cur, schema, target, orphans, result)
    pg_conn.rollback()   # drops the staged rows; verification writes nothing
    result["ok"] = not result["problems"]
    result["seconds"] = round(time.monotonic() - start, 3)
    return result


def proof_for(sqlite_conn, ledger, target, position, tracked):
    """The position at which ``target`` was proven equal to the source, when the difference
    since then can be verified from the capture log; else None (verify the whole table)."""
    done = ledger.get(target.source.name)
    if position is None or target.source.name not in tracked or not done or not target.primary_key:
        return None
    proven, caught_up = done.proven_seq, done.capture_seq
    if proven is None or caught_up is None or proven > position or caught_up > position:
        return None   # no proof, or the copy is from another snapshot
    if caught_up < position and capture.pending(sqlite_conn, target.source.name, caught_up, position):
        return None   # the copy is behind this snapshot (the app still writes?)
    # (A copy behind with nothing logged since - a table the app left alone - is at this snapshot.)
    if capture.unkeyed(sqlite_conn, target.source, proven, position):
        return None   # a gap in the log (capture re-created, a NULL key): nothing is known
    return proven


def verify_tables(sqlite_conn, pg_conn, model, schema, max_diffs=10, orphans="error", checks="all",
                  since_proof=False):
    """Verify every table of the model from one consistent snapshot of the source.

    ``since_proof``: a table proven equal at an earlier capture position (``prove``) is
    verified by its changes since (``verify_changes``), the others in full."""
    with pg_conn.cursor() as cur:
        # The source's rows are staged in a temporary table; let it live in memory (this must
        # be set before the session's first temporary table).
        cur.execute("SET temp_buffers = '256MB'")
        ledger = read_ledger(cur, schema) if since_proof else {}
    pg_conn.commit()
    readers = snapshot_readers(sqlite_conn, PARALLEL_READERS - 1)
    for reader in readers:
        convert.register_functions(reader)
    try:
        position, tracked = capture.position(sqlite_conn) if since_proof else (None, set())
        results = []
        for target in model.values():
            proven = proof_for(sqlite_conn, ledger, target, position, tracked) if checks == "all" else None
            if proven is not None:
                results.append(verify_changes(sqlite_conn, pg_conn, target, schema, proven, position, max_diffs,
                                              orphans))
            else:
                results.append(dict(verify_table(sqlite_conn, pg_conn, target, schema, max_diffs, orphans,
                                                 readers[1:], checks), path="full"))
        return results
    finally:
        for reader in readers:
            reader.execute("ROLLBACK")
        for reader in readers[1:]:
            reader.close()


def prove(sqlite_conn, pg_conn, model, schema, readers, position, max_diffs=10, orphans="error", forward_only=False):
    """On the snapshot a copy just brought the target to (``readers``, capture ``position``):
    prove every table equal there, and record in the ledger each one proven.

    A table already proven at an earlier position, with a complete log since, is proven by
    its difference (``verify_changes``): the proof rolls forward, and its cost follows the
    writes since, not the table's size. The others are verified in full, or, with
    ``forward_only``, left alone (cutover verifies them in full inside the freeze anyway)."""
    with pg_conn.cursor() as cur:
        ledger = read_ledger(cur, schema)
    pg_conn.commit()
    tracked = capture.position(sqlite_conn)[1] if position is not None else set()
    results = []
    for target in model.values():
        proven = proof_for(sqlite_conn, ledger, target, position, tracked)
        if proven is not None:
            result = verify_changes(sqlite_conn, pg_conn, target, schema, proven, position, max_diffs, orphans,
                                    "content")
        elif forward_only:
            continue
        else:
            result = dict(verify_table(sqlite_conn, pg_conn, target, schema, max_diffs, orphans, readers[1:], "content"),
                          path="full")
        if result["content_ok"] and position is not None:
            with pg_conn.cursor() as cur:
                result["proven_at"] = position if record_proof(cur, schema, target.source.name, position) else None
            pg_conn.commit()
        results.append(result)
    return results
