"""A target belongs to one source: claims, refusals, take-overs, the run lock, schema per host."""

import shutil
import threading

import psycopg2
import pytest

from sqlite_pg import ownership, run
from sqlite_pg.connection import connect_pg
from sqlite_pg.errors import MigrationError
from sqlite_pg.ownership import OwnershipError
from tests.conftest import fetch, make_sqlite, migrate

APP = """
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE ideas (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), text TEXT);
"""


def _source(path, who, users=20):
    rows = {"users": [(u, f"{who} user {u}") for u in range(1, users + 1)],
            "ideas": [(u, u, f"{who} idea {u}") for u in range(1, users + 1)]}
    return make_sqlite(str(path), APP, rows)


@pytest.fixture
def two_hosts(pg_db, tmp_path):
    """Two app hosts' files (same app, different rows), both pointed at one target."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = dict(pg_db, source=_source(tmp_path / "a" / "bot.db", "a"), source_host="app1")
    b = dict(pg_db, source=_source(tmp_path / "b" / "bot.db", "b", users=30), source_host="app2")
    return a, b


def _names(params):
    return [r[0] for r in fetch(params, "SELECT name FROM users ORDER BY id")]


def _owner(params, schema="public"):
    conn = connect_pg(params)
    try:
        with conn.cursor() as cur:
            return ownership.read_owner(cur, schema)
    finally:
        conn.close()


def test_a_second_source_is_refused_before_anything_is_written(two_hosts):
    a, b = two_hosts
    migrate(a)
    owner = _owner(a)
    assert (owner["host"], owner["path"]) == ("app1", a["source"])
    before = _names(a)
    # Preflight (check mode) and every writing call refuse, naming both sources and the way out.
    for call in (lambda: run.target(b, check_mode=True), lambda: run.schema(b, phase="tables"),
                 lambda: run.copy(b, force=True), lambda: run.verify_all(b),
                 lambda: run.capture(b, side="postgresql"), lambda: run.copy_back(b)):
        with pytest.raises(OwnershipError) as refused:
            call()
        text = str(refused.value)
        assert "app1:" + a["source"] in text and "app2:" + b["source"] in text
        assert f"migration_takeover_from={owner['source_id']}" in text and "Nothing was changed" in text
    assert _names(a) == before and _owner(a) == owner
    run.verify_all(a)


def test_the_identity_survives_a_copy_of_the_file(two_hosts, tmp_path):
    a, _b = two_hosts
    migrate(a)
    moved = str(tmp_path / "moved.db")
    shutil.copy(a["source"], moved)   # a restored backup, a file moved to another disk
    again = dict(a, source=moved, source_host="app1-new")
    result = run.target(again)
    assert result["decision"] == "update" and result["changed"]
    assert (_owner(a)["host"], _owner(a)["path"]) == ("app1-new", moved)
    assert run.target(again)["decision"] == "keep"
    run.verify_all(again)


def test_take_over_by_name_copies_every_table_again(two_hosts):
    a, b = two_hosts
    migrate(a)
    old = _owner(a)["source_id"]
    with pytest.raises(OwnershipError):
        migrate(dict(b, takeover_from="not-the-owner"))
    b = dict(b, takeover_from=old)
    assert run.target(b, check_mode=True)["decision"] == "take_over"
    migrate(b)
    assert _names(b) == [f"b user {u}" for u in range(1, 31)]
    owner = _owner(b)
    assert owner["host"] == "app2" and owner["history"][0]["source_id"] == old
    run.verify_all(b)
    # From now on the target is b's: the same setting changes nothing more, a's run is refused.
    assert run.target(b)["decision"] == "keep"
    with pytest.raises(OwnershipError):
        run.verify_all(a)


def test_tables_no_migration_created_are_refused_unless_the_app_owns_them(pg_db, tmp_path):
    source = dict(pg_db, source=_source(tmp_path / "bot.db", "a"), source_host="app1")
    conn = connect_pg(pg_db)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE invoices (id int PRIMARY KEY)")
    conn.commit()
    conn.close()
    with pytest.raises(OwnershipError, match="invoices.*migration_target: existing"):
        run.target(source, check_mode=True)
    with pytest.raises(OwnershipError, match="invoices"):
        run.schema(source, phase="tables")
    assert fetch(pg_db, "SELECT to_regclass('users'), to_regclass('_migration_source')") == [(None, None)]
    # An earlier load of this same file, by a version that kept no record: named, then taken over.
    result = run.target(dict(source, takeover_from=ownership.UNOWNED))
    assert result["decision"] == "take_over"
    migrate(source)
    run.verify_all(source)


def test_an_extensions_own_relations_are_not_foreign_tables(pg_db, tmp_path):
    """roles/postgresql creates pg_stat_statements in every database it manages: its views
    in public are the extension's, not an app's tables, and do not block the load."""
    source = dict(pg_db, source=_source(tmp_path / "bot.db", "a"), source_host="app1")
    fetch(pg_db, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT 1")
    assert fetch(pg_db, "SELECT to_regclass('public.pg_stat_statements') IS NOT NULL") == [(True,)]
    assert run.target(source, check_mode=True)["decision"] == "claim"
    migrate(source)
    run.verify_all(source)


def test_the_apps_own_schema_is_claimed(pg_db, tmp_path):
    source = dict(pg_db, source=_source(tmp_path / "bot.db", "a"), source_host="app1", target="existing")
    conn = connect_pg(pg_db)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL); "
                    "CREATE TABLE ideas (id bigint PRIMARY KEY, user_id bigint REFERENCES users, text text)")
    conn.commit()
    conn.close()
    assert run.target(source)["decision"] == "claim"
    run.copy(source)
    run.verify_all(source)


def test_two_loads_at_once_one_is_refused_never_a_catalog_error(two_hosts):
    outcome = {}

    def load(params):
        try:
            migrate(params)
            outcome[params["source_host"]] = "loaded"
        except OwnershipError as exc:
            outcome[params["source_host"]] = str(exc)
        except Exception as exc:   # the failure this test exists for: a raw catalog error
            outcome[params["source_host"]] = f"unexpected {type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=load, args=(p,)) for p in two_hosts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(v == "loaded" for v in outcome.values()) == [False, True], outcome
    winner = next(p for p in two_hosts if outcome[p["source_host"]] == "loaded")
    loser = next(p for p in two_hosts if p is not winner)
    assert "holds the data of another source" in outcome[loser["source_host"]]
    run.verify_all(winner)


def test_a_run_waits_for_another_run_of_the_same_target_then_is_refused(two_hosts):
    a, _b = two_hosts
    migrate(a)
    other = connect_pg(a)   # another operator's run, mid-copy
    ownership.hold(other, "public")
    try:
        with pytest.raises(OwnershipError, match=r"another run of the migration is writing .*server pid \d+"):
            run.copy(dict(a, lock_wait=1), force=True)
    finally:
        other.close()
    assert run.copy(dict(a, lock_wait=1))["changed"] is False   # released with its connection


def test_one_database_one_schema_per_host(two_hosts):
    a, b = (dict(p, schema=p["source_host"]) for p in two_hosts)
    for params in (a, b):
        migrate(params)
        run.verify_all(params)
    assert [r[0] for r in fetch(a, "SELECT name FROM app2.users ORDER BY id LIMIT 1")] == ["b user 1"]
    assert [r[0] for r in fetch(a, "SELECT name FROM app1.users ORDER BY id LIMIT 1")] == ["a user 1"]
    with pytest.raises(OwnershipError):
        run.verify_all(dict(b, schema="app1"))


def test_the_connection_budget_names_what_to_change(two_hosts):
    a, _b = two_hosts
    result = run.target(a, check_mode=True, connections_needed=10)
    assert result["connections"]["ok"] and result["connections"]["max_connections"] > 10
    assert result["changed"] and result["decision"] == "claim"
    assert fetch(a, "SELECT to_regclass('_migration_source')") == [(None,)]   # check mode wrote nothing
    with pytest.raises(MigrationError, match=r"need 100000\. Raise max_connections to at least \d+"):
        run.target(a, check_mode=True, connections_needed=100000)


def test_a_database_provisioning_will_create_is_a_note_with_missing_ok(two_hosts):
    a, _b = two_hosts
    missing = dict(a, db="not_created_yet")
    result = run.target(missing, check_mode=True, missing_ok=True)
    assert result["decision"] == "not_reachable" and "provision" in result["msg"]
    with pytest.raises(MigrationError, match="not_created_yet"):
        run.target(missing, check_mode=True)


def test_the_record_is_one_row(two_hosts):
    a, _b = two_hosts
    run.target(a)
    conn = connect_pg(a)
    try:
        with conn.cursor() as cur, pytest.raises(psycopg2.errors.UniqueViolation):
            cur.execute("INSERT INTO _migration_source (source_id, host, path) VALUES ('x', 'y', 'z')")
    finally:
        conn.close()
