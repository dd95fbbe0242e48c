"""Entry points the Ansible modules call: plain option dicts in, plain result dicts out.

Each opens both ends, builds the target model once, calls the engine and closes what it
opened. Errors are the typed ones from ``errors``; nothing here prints or exits.
"""

import contextlib
import dataclasses

from . import copy as copier
from . import ddl, introspect, ledger, ownership, verify
from . import profile as profiler
from .connection import connect_pg, open_sqlite, require_utf8
from .convert import INTERVAL_UNITS
from .errors import ConnectError, MigrationError, ProfileError, SchemaError, VerifyError, faults
from .existing import bind_existing
from .model import Options, build_model, plan_views

TIMESTAMP_TYPES = {"timestamp": "timestamp without time zone", "timestamptz": "timestamp with time zone"}


def _interval_units(units):
    wrong = {k: v for k, v in units.items() if v not in INTERVAL_UNITS}
    if wrong:
        raise SchemaError(f"interval_units: {wrong} - each unit must be one of {', '.join(INTERVAL_UNITS)}")
    return dict(units)


def options_from(params):
    ts = params.get("timestamp_type") or "timestamp"
    if ts not in TIMESTAMP_TYPES:
        raise SchemaError(f"timestamp_type must be one of {', '.join(TIMESTAMP_TYPES)}")
    enums = {}
    if params.get("models"):
        from .app_models import enum_columns

        enums = enum_columns(params["models"], params.get("app_path"))
    return Options(
        schema=params.get("schema") or "public",
        include_tables=tuple(params.get("include_tables") or ()),
        exclude_tables=tuple(params.get("exclude_tables") or ()),
        timestamp_type=TIMESTAMP_TYPES[ts],
        column_types=dict(params.get("column_types") or {}),
        interval_units=_interval_units(params.get("interval_units") or {}),
        rename=dict(params.get("rename") or {}),
        enums=enums,
        nocase=params.get("nocase") or "citext",
        generated_columns=params.get("generated_columns") or "stored",
    )


def _own_target(params, pg_conn, schema, sqlite_conn, writes, check_mode):
    """Refuse a target another source holds. A writing call also claims an unowned one (or
    takes one over, as ``takeover_from`` says) and holds the target's run lock while it
    writes; reading calls and plans only look."""
    source = ownership.describe(params, sqlite_conn)
    if writes:
        decided = ownership.settle(pg_conn, schema, source, params["source"], params.get("target") or "create",
                                   params.get("takeover_from") or "", check_mode)
        if not check_mode:
            ownership.hold(pg_conn, schema, params.get("lock_wait") or 60)
        return decided
    with pg_conn.cursor() as cur:
        decided = ownership.plan(cur, schema, source, params.get("target") or "create", params.get("takeover_from"))
    pg_conn.rollback()
    if decided.action == "refuse" and decided.owner is not None:
        raise ownership.OwnershipError(decided.message)
    return decided


@contextlib.contextmanager
def opened(params, writes=False, check_mode=False, choose_types=True):
    """(sqlite connection, PostgreSQL connection, source schema, target model, options).

    With ``target: existing`` the model is bound to the tables the app created. ``writes``:
    the call changes the target (see ``_own_target``). ``choose_types=False``: the call
    converts by the catalog's types, so JSON and TIME columns are not scanned to choose them."""
    options = dataclasses.replace(options_from(params), choose_types=choose_types)
    sqlite_conn = open_sqlite(params["source"])
    try:
        with faults(params["source"]):
            require_utf8(sqlite_conn, params["source"])
            schema = introspect.read_schema(sqlite_conn)
            model = build_model(sqlite_conn, schema, options)
            pg_conn = connect_pg(params)
            try:
                _own_target(params, pg_conn, options.schema, sqlite_conn, writes, check_mode)
                if params.get("target", "create") == "existing":
                    model, notes = _bind_existing(params, pg_conn, model, options)
                    schema.notes = notes
                yield sqlite_conn, pg_conn, schema, model, options
            finally:
                pg_conn.close()
    finally:
        sqlite_conn.close()


def _bind_existing(params, pg_conn, model, options):
    with pg_conn.cursor() as cur:
        bound = bind_existing(cur, model, options.schema, params.get("exclude_columns") or (),
                              params.get("column_defaults"))
    pg_conn.rollback()
    return bound


def schema(params, phase="tables", orphans="error", check_mode=False):
    """Create (or, in check mode, plan) the PostgreSQL schema for one phase."""
    if orphans not in ddl.ORPHAN_POLICIES:
        raise SchemaError(f"orphans must be one of {', '.join(ddl.ORPHAN_POLICIES)}")
    phases = ddl.PHASES if phase == "all" else (phase,)
    if params.get("target", "create") == "existing":
        phases = ()   # the app owns the schema: nothing is created, the binding is checked
    with opened(params, writes=True, check_mode=check_mode) as (sqlite_conn, pg_conn, source, model, options):
        queries, notes, orphan_report = [], list(getattr(source, "notes", [])), {}
        views, view_notes = plan_views(source, model, options) if "constraints" in phases else ([], [])
        notes.extend(view_notes)
        if "tables" in phases:
            notes.extend(f"trigger {name!r} not migrated: its logic belongs to the app or must be rewritten in "
                         "PL/pgSQL" for name in source.triggers)
        for one in phases:
            plan = ddl.plan(pg_conn, model, options.schema, one, orphans, look_for_orphans=check_mode, views=views)
            pg_conn.rollback()
            if check_mode:
                queries.extend(plan.as_strings(pg_conn))
            elif plan.statements:
                queries.extend(ddl.apply(pg_conn, plan))
            notes.extend(plan.notes)
            orphan_report.update(plan.orphans)
        return dict(
            changed=bool(queries),
            queries=queries,
            notes=notes,
            orphans=orphan_report,
            tables={t.source.name: dict(name=t.name, columns={c.source: c.pg_type for c in t.columns},
                                        primary_key=list(t.primary_key))
                    for t in model.values()},
            views=source.views,
            triggers=source.triggers,
            not_migrated=source.skipped,
        )


def copy(params, on_error="error", force=False, check_mode=False, progress_file=None, passes=1, max_lag=0,
         prove=False, read_from="auto", snapshot_dir=None):
    """Copy every selected table; returns per-table results and totals. With
    ``progress_file``, progress is written there as the copy goes (see ``progress``).

    ``passes`` > 1: while the app writes, pass again (each on a new snapshot, replaying what
    the change log gathered meanwhile) until a pass brought at most ``max_lag`` changed keys
    or rows; the last pass's result per table is returned, ``passes`` says how many ran.

    ``prove``: after the last pass, on its snapshot, every table is proven equal to the
    source and that capture position recorded (``verify.prove``: in full, or by what changed
    since an earlier proof), so that cutover verifies only what changed since
    (``verify_all(since_proof=True)``). ``prove="forward"``: only the tables already proven
    are proven again (by their difference); the others are left as they are.

    ``read_from``: where each pass reads (``backup.plan_reading``): in a rollback-journal
    file a page copy in ``snapshot_dir``, so the app's writes are not held for the pass."""
    from .backup import plan_reading, reading
    from .progress import ProgressFile

    progress = ProgressFile(progress_file) if progress_file and not check_mode else None
    changed, done, proof = False, 0, None
    with opened(params, writes=True, check_mode=check_mode, choose_types=False) as (sqlite_conn, pg_conn, source, model, options):
        plan = plan_reading(sqlite_conn, read_from)
        read = plan.as_dict()   # check mode reads the file itself (counts only) and says what a run would do
        while True:
            # With prove, the last pass is one more (a short catch-up): the proof runs on its snapshot.
            more = prove and not check_mode and (done + 1 >= passes)
            on_snapshot = None
            if more:
                def on_snapshot(readers, position):
                    return verify.prove(readers[0], pg_conn, model, options.schema, readers, position,
                                        forward_only=prove == "forward")
            with (contextlib.nullcontext((sqlite_conn, read)) if check_mode
                  else reading(sqlite_conn, plan, snapshot_dir)) as (snapshot, taken):
                results = copier.copy_tables(snapshot, pg_conn, model, options.schema, on_error=on_error,
                                             progress=progress, force=force and done == 0, check_mode=check_mode,
                                             on_snapshot=on_snapshot)
            if "lock_seconds" in taken:   # the longest of the passes' page copies
                taken["lock_seconds"] = max(taken["lock_seconds"], read.get("lock_seconds", 0))
            read = taken
            if on_snapshot is not None:
                results, proof = results
            done += 1
            if not check_mode:
                copier.prune_capture_log(params["source"], sqlite_conn, pg_conn, options.schema)
            changed = changed or any(r.status != "in_sync" for r in results)
            lag = sum(r.replayed if r.status == "caught_up" else r.rows for r in results if r.status != "in_sync")
            if proof is not None or check_mode or (not prove and (done >= passes or lag <= max_lag)):
                break
            if prove and lag <= max_lag:
                passes = done + 1   # caught up: the next pass is the last, and proves
    tables = {r.table: r.as_dict() for r in results}
    if proof is not None:
        for r in proof:
            tables[r["table"]]["proof"] = {k: r.get(k) for k in ("content_ok", "proven_at", "path", "problems",
                                                                 "seconds", "source_checksum", "target_checksum")}
    return dict(
        passes=done,
        lag=lag,
        changed=changed,
        notes=list(getattr(source, "notes", [])),
        read=read,
        tables=tables,
        rows=sum(r.rows for r in results),
        rejected=sum(r.rejected for r in results),
    )


def sqlite_writes(sqlite_conn, pg_conn, model, schema):
    """{table: changes the SQLite log holds after the table's last copy or catch-up}: writes
    the app made to SQLite that the target does not have."""
    from . import capture as capturer

    with pg_conn.cursor() as cur:
        done = ledger.read_ledger(cur, schema)
    pg_conn.rollback()
    if capturer.position(sqlite_conn)[0] is None:
        return {}
    written = {name: capturer.pending(sqlite_conn, target.source.name, done[name].capture_seq, 1 << 62)
               for name, target in model.items() if done.get(name) and done[name].capture_seq is not None}
    return {name: n for name, n in written.items() if n}


def check_moved(params, wait=0):
    """After cutover: fail when, ``wait`` seconds on, SQLite holds writes after the final copy
    (the app did not follow DATABASE_URL, or another process writes the file)."""
    import time

    time.sleep(max(0, wait))
    with opened(params, choose_types=False) as (sqlite_conn, pg_conn, _source, model, options):
        written = sqlite_writes(sqlite_conn, pg_conn, model, options.schema)
    if written:
        raise MigrationError(
            "the app still writes to SQLite after cutover (" + ", ".join(
                f"{n} change(s) to {t}" for t, n in sorted(written.items())) + "): it did not follow DATABASE_URL "
            "(a hard-coded sqlite:/// URL?), or another process writes the file. Those writes are in SQLite only")
    return dict(changed=False, tables={}, rows=0, waited=wait)


def verify_all(params, max_diffs=10, orphans="error", checks="all", since_proof=False, read_from="auto",
               snapshot_dir=None):
    """Verify every selected table; raises VerifyError (with the report) when any differs.
    ``checks="content"``: rows only, not keys, indexes, statistics and sequences.
    ``since_proof``: tables proven at an earlier capture position are verified by what
    changed since (each table's ``path`` says which way it was verified).
    ``read_from``, ``snapshot_dir``: where the source is read, as for ``copy``."""
    from .backup import plan_reading, reading

    if checks not in verify.CHECKS:
        raise VerifyError(f"checks must be one of {', '.join(verify.CHECKS)}", {})
    with opened(params, choose_types=False) as (sqlite_conn, pg_conn, _source, model, options), \
            reading(sqlite_conn, plan_reading(sqlite_conn, read_from), snapshot_dir) as (snapshot, read):
        results = verify.verify_tables(snapshot, pg_conn, model, options.schema, max_diffs, orphans, checks,
                                       since_proof)
    report = {r["table"]: r for r in results}
    failed = [r for r in results if not r["ok"]]
    if failed:
        lines = []
        for r in failed:
            lines.append(f"{r['table']}: " + "; ".join(r["problems"]))
            for d in r["differences"][:max_diffs]:
                lines.append(f"  {r['table']} {d.get('kind')}: key={d.get('key')} "
                             f"{d.get('columns') or d.get('row')}")
        raise VerifyError(f"{len(failed)} of {len(results)} table(s) differ:\n" + "\n".join(lines), report)
    return dict(changed=False, tables=report, rows=sum(r["target_rows"] for r in results), read=read)


def profile(params, max_examples=5, check_integrity=True, on_error="error", max_rejects=None, read_from="auto",
            snapshot_dir=None):
    """Profile the source; raises DataProfileError over ``max_rejects``. Reads SQLite only,
    and with ``target: existing`` (and ``db``) the app's column types from PostgreSQL.
    ``read_from``, ``snapshot_dir``: where the source is read, as for ``copy``; ``read`` in
    the result says which way the copy will take (preflight shows it)."""
    from .backup import plan_reading, reading

    options = options_from(params)
    sqlite_conn = open_sqlite(params["source"])
    try:
        with faults(params["source"]):
            require_utf8(sqlite_conn, params["source"])
            with reading(sqlite_conn, plan_reading(sqlite_conn, read_from), snapshot_dir) as (snapshot, read):
                model = build_model(snapshot, introspect.read_schema(snapshot), options)
                notes = [f"{t.name}: {n}" for t in model.values() for n in t.notes]
                unbound = None
                if params.get("target") == "existing" and params.get("db"):
                    # Predict against the app's own column types, as the copy will write them.
                    try:
                        pg_conn = connect_pg(params)
                        try:
                            model, bound = _bind_existing(params, pg_conn, model, options)
                            notes += bound
                        finally:
                            pg_conn.close()
                    except (ConnectError, SchemaError) as exc:
                        unbound = (f"target: existing, but the app's tables could not be read ({exc}): predicted "
                                   "against the types the migration would create, not the app's")
                result = profiler.profile(snapshot, model, max_examples, check_integrity, on_error)
            result["notes"] = notes
            if unbound:
                notes.append(unbound)
                result["summary"].append(unbound)
    finally:
        sqlite_conn.close()
    result["changed"] = False
    result["read"] = read
    if result["integrity"] != ["ok"]:
        raise ProfileError(f"SQLite integrity_check failed: {'; '.join(result['integrity'][:5])}", result)
    if max_rejects is not None and result["would_reject"] > max_rejects:
        raise ProfileError(f"{result['would_reject']} row(s) would not convert (max_rejects is {max_rejects}):\n"
                           + "\n".join(result["summary"]), result)
    return result


def copy_back(params, check_mode=False, sqlite_untouched=False):
    """Rollback's data path: the rows PostgreSQL's change capture names are brought back
    (when it ran since cutover), then tables that still differ are rewritten from PostgreSQL.

    ``sqlite_untouched`` (a cutover that failed just after the app started): when the SQLite
    log holds changes after the final copy, the app wrote there and not (only) to PostgreSQL:
    with nothing logged on PostgreSQL SQLite is kept as it is; with both, nothing is changed
    and the call fails (which side is right is the operator's call)."""
    from . import copy_back as back
    from . import pg_capture

    with opened(params, writes=True, check_mode=check_mode, choose_types=False) as (sqlite_conn, pg_conn, _source, model, options):
        results = {}
        with pg_conn.cursor() as cur:
            logged = pg_capture.logged(cur, options.schema, model)
        pg_conn.rollback()
        if sqlite_untouched:
            written = sqlite_writes(sqlite_conn, pg_conn, model, options.schema)
            if written and (logged is None or any(logged.values())):
                on_pg = "unknown (no change capture there)" if logged is None else ", ".join(
                    f"{n} to {t}" for t, n in sorted(logged.items()) if n)
                raise MigrationError(
                    "the app wrote to SQLite after the final copy (" + ", ".join(
                        f"{n} change(s) to {t}" for t, n in sorted(written.items())) + f"), and on PostgreSQL: {on_pg}. "
                    "Nothing was changed; the app is stopped. It did not follow DATABASE_URL for all of its writes: "
                    "decide which side to keep")
            if written:
                return dict(changed=False, sqlite_ahead=written, tables={
                    name: dict(table=name, status="kept_in_sqlite") for name in model})
        if logged:
            changed = {name: target for name, target in model.items() if logged[name]}
            # Row by row only where a key reads back from PostgreSQL exactly as SQLite holds
            # it (integers, text); the others are rewritten whole in the same transaction.
            replay = {name for name, target in changed.items() if back.exact_key(target)}
            if changed:
                for r in _copy_back_into(params["source"], pg_conn, changed, options.schema, check_mode, replay):
                    results[r["table"]] = r
        checked = verify.verify_tables(sqlite_conn, pg_conn, model, options.schema)
        # Only content decides: an unindexed foreign key is verify's business, not rollback's.
        differ = {r["table"] for r in checked if not r["content_ok"]}
        if check_mode:
            differ -= set(results)   # already planned above; the plan wrote nothing
        todo = {name: target for name, target in model.items() if name in differ}
        for r in checked:
            if r["table"] not in differ:
                results.setdefault(r["table"], dict(table=r["table"], status="in_sync",
                                                    postgresql_rows=r["target_rows"]))
        if todo:
            try:
                for r in _copy_back_into(params["source"], pg_conn, todo, options.schema, check_mode):
                    results[r["table"]] = r
            except MigrationError as exc:
                replayed = sorted(n for n, r in results.items() if r["status"] == "replayed_back")
                if replayed:
                    raise MigrationError(f"{exc} (the rows changed on PostgreSQL were already brought back into "
                                         f"{', '.join(replayed)}: a rerun continues from there)") from None
                raise
    return dict(changed=any(r["status"] != "in_sync" for r in results.values()), tables=results)


def _copy_back_into(path, pg_conn, tables, schema, check_mode, replay=()):
    import sqlite3

    from . import copy_back as back

    writer = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        return back.copy_back(writer, pg_conn, tables, schema, check_mode, replay)
    finally:
        writer.close()


def capture(params, state="present", check_mode=False, side="sqlite"):
    """Install (``present``) or remove (``absent``) change capture in the SQLite file, or
    (``side="postgresql"``) on the target's tables for the rollback window."""
    from . import capture as capturer

    if side == "postgresql":
        from . import pg_capture

        if state == "absent":   # from the catalog alone: the SQLite file may be gone already
            pg_conn = connect_pg(params)
            try:
                _own_target(params, pg_conn, params.get("schema") or "public", None, True, check_mode)
                statements = pg_capture.apply(pg_conn, params.get("schema") or "public", None, state, check_mode)
            finally:
                pg_conn.close()
            return dict(changed=bool(statements), statements=statements, tables=[], log_rows=None)
        with opened(params, writes=True, check_mode=check_mode, choose_types=False) as (_sqlite_conn, pg_conn, _source, model, options):
            statements = pg_capture.apply(pg_conn, options.schema, model, state, check_mode)
        return dict(changed=bool(statements), statements=statements, tables=sorted(model), log_rows=None)
    options = options_from(params)
    sqlite_conn = open_sqlite(params["source"])
    try:
        if state == "present":
            model = build_model(sqlite_conn, introspect.read_schema(sqlite_conn), options)
            statements = capturer.install(params["source"], sqlite_conn, model, check_mode)
            tables = sorted(model)
        else:
            statements = capturer.remove(params["source"], sqlite_conn, check_mode)
            tables = []
        position, _tracked = capturer.position(sqlite_conn)
        pending = 0
        if position is not None:
            pending = sqlite_conn.execute(f"SELECT count(*) FROM {introspect.quote_ident(capturer.LOG)}").fetchone()[0]
    finally:
        sqlite_conn.close()
    return dict(changed=bool(statements), statements=statements, tables=tables, log_rows=pending)


def target(params, check_mode=False, connections_needed=0, missing_ok=False):
    """Settle who owns the target (plan in check mode, claim otherwise) and whether the
    server's connections hold the fleet's pools. ``missing_ok``: a server or database that
    provisioning has yet to create is a note, not a failure."""
    from . import budget

    sqlite_conn = open_sqlite(params["source"])
    try:
        require_utf8(sqlite_conn, params["source"])
        try:
            pg_conn = connect_pg(params)
        except ConnectError as exc:
            if not missing_ok:
                raise
            return dict(changed=False, decision="not_reachable", owner=None, connections=None,
                        msg=f"{exc} - nothing to check yet: the provision phase creates it")
        try:
            decided = _own_target(params, pg_conn, params.get("schema") or "public", sqlite_conn, True, check_mode)
            with pg_conn.cursor() as cur:
                connections = budget.check(cur, connections_needed)
            pg_conn.rollback()
        finally:
            pg_conn.close()
    finally:
        sqlite_conn.close()
    if not connections["ok"]:
        raise MigrationError(connections["msg"])
    return dict(changed=decided.action not in ("keep", "refuse"), decision=decided.action, msg=decided.message,
                owner=decided.owner, connections=connections)
