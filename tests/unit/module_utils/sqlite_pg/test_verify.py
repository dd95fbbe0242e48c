"""Verification must catch what a row count cannot, and name the rows."""

import json

import pytest

from sqlite_pg import run
from sqlite_pg.errors import VerifyError
from tests.conftest import fetch, make_sqlite, migrate

DDL = """
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, active BOOLEAN, score FLOAT, meta JSON);
CREATE TABLE ideas (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), text TEXT);
"""


@pytest.fixture
def migrated(pg_db, sqlite_path):
    make_sqlite(sqlite_path, DDL, {
        "users": [(i, f"u{i}", i % 2, i / 7, json.dumps({"k": i, "a": 1})) for i in range(1, 301)],
        "ideas": [(i, i % 300 + 1, f"idea {i}") for i in range(1, 1001)],
    })
    params = dict(pg_db, source=sqlite_path)
    migrate(params)
    return params


def test_equal_sides_pass_with_matching_checksums(migrated):
    report = run.verify_all(migrated)["tables"]
    assert report["users"]["source_checksum"] == report["users"]["target_checksum"]
    assert report["users"]["target_rows"] == 300 and report["ideas"]["target_rows"] == 1000


def test_a_changed_value_is_named_with_both_sides(migrated):
    fetch(migrated, "UPDATE users SET name = 'changed' WHERE id = 42 RETURNING id")
    with pytest.raises(VerifyError) as err:
        run.verify_all(migrated)
    diff = err.value.report["users"]["differences"]
    assert diff == [dict(kind="differs", key={"id": 42}, columns={"name": {"source": "u42", "target": "changed"}})]
    assert "users" in str(err.value) and "ideas" not in str(err.value).split("\n")[0].split(":")[1:]


def test_same_count_but_different_rows_is_caught(migrated):
    # A row count check (the guide's) passes here; the content check must not.
    fetch(migrated, "DELETE FROM ideas WHERE id = 7 RETURNING id")
    fetch(migrated, "INSERT INTO ideas VALUES (5000, 1, 'intruder') RETURNING id")
    with pytest.raises(VerifyError) as err:
        run.verify_all(migrated)
    kinds = {(d["kind"], d["key"]["id"]) for d in err.value.report["ideas"]["differences"]}
    assert kinds == {("missing in target", 7), ("not in source", 5000)}
    assert err.value.report["ideas"]["source_rows"] == err.value.report["ideas"]["target_rows"]


def test_jsonb_and_boolean_spellings_compare_as_values(migrated):
    # jsonb reorders keys and 0/1 became false/true: still equal.
    assert fetch(migrated, "SELECT meta::text, active FROM users WHERE id = 1") == [('{"a": 1, "k": 1}', True)]
    run.verify_all(migrated)


def test_sequence_behind_max_id_fails(migrated):
    fetch(migrated, "SELECT setval(pg_get_serial_sequence('users', 'id'), 5)")
    with pytest.raises(VerifyError, match="sequence .* would hand out 6, but max\\(id\\) is 300"):
        run.verify_all(migrated)


def test_missing_foreign_key_fails(migrated):
    fetch(migrated, "ALTER TABLE ideas DROP CONSTRAINT ideas_user_id_fkey; SELECT 1")
    with pytest.raises(VerifyError, match="foreign key ideas_user_id_fkey is missing"):
        run.verify_all(migrated)


def test_rows_added_to_the_source_after_the_copy_are_unaccounted(migrated, sqlite_path):
    import sqlite3

    conn = sqlite3.connect(sqlite_path)
    conn.execute("INSERT INTO ideas VALUES (2000, 1, 'late write')")
    conn.commit()
    conn.close()
    with pytest.raises(VerifyError) as err:
        run.verify_all(migrated)
    assert err.value.report["ideas"]["differences"][0]["key"] == {"id": 2000}


def test_fk_columns_get_an_index_and_the_gate_checks_readiness(migrated):
    # ideas.user_id had no index in SQLite: the migration added one.
    assert fetch(migrated, "SELECT indexname FROM pg_indexes WHERE tablename = 'ideas' ORDER BY 1") == [
        ("ideas_pkey",), ("ideas_user_id_idx",)]
    fetch(migrated, "DROP INDEX ideas_user_id_idx; SELECT 1")
    with pytest.raises(VerifyError, match="ideas_user_id_fkey \\(user_id\\) is not covered by an index"):
        run.verify_all(migrated)


def test_missing_primary_key_fails_the_gate(migrated):
    fetch(migrated, "ALTER TABLE ideas DROP CONSTRAINT ideas_pkey; SELECT 1")
    with pytest.raises(VerifyError, match="primary key is missing"):
        run.verify_all(migrated)


def test_stale_statistics_fail_the_gate(pg_db, sqlite_path):
    make_sqlite(sqlite_path, DDL, {"users": [(1, "a", 1, 0.5, None)], "ideas": []})
    params = dict(pg_db, source=sqlite_path)
    migrate(params)
    # A table loaded by hand, never analyzed: what the gate is for.
    fetch(params, "DROP TABLE ideas; CREATE TABLE ideas (id bigint PRIMARY KEY, user_id bigint REFERENCES users(id), "
                  "text text); CREATE INDEX ON ideas(user_id); SELECT 1")
    with pytest.raises(VerifyError, match="statistics were never gathered"):
        run.verify_all(params)


def test_statistics_survive_a_server_crash_restart(sqlite_path):
    """Crash recovery resets pg_stat_user_tables (last_analyze), but the statistics ANALYZE
    wrote are still there: verify passes after the restart, without a new copy."""
    from tests.pg_cluster import Cluster

    cluster = Cluster().start()
    try:
        make_sqlite(sqlite_path, DDL, {"users": [(i, f"u{i}", 1, 0.5, None) for i in range(1, 51)], "ideas": []})
        params = dict(cluster.params("postgres"), source=sqlite_path)
        migrate(params)
        run.verify_all(params)
        fetch(params, "CHECKPOINT; SELECT 1")
        cluster.crash_restart()
        assert fetch(params, "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'users'") == [(None,)]
        report = run.verify_all(params)
        assert report["tables"]["users"]["ok"] and report["tables"]["ideas"]["ok"]
    finally:
        cluster.stop()
