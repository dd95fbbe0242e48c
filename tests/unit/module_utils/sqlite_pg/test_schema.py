"""Schema planning: orphans, drift, indexes, defaults, names."""

import pytest

from sqlite_pg import run
from sqlite_pg.errors import SchemaError
from tests.conftest import fetch, make_sqlite

DDL = """
CREATE TABLE parent (id INTEGER PRIMARY KEY, code TEXT UNIQUE, created DATETIME DEFAULT CURRENT_TIMESTAMP,
                     flag BOOLEAN NOT NULL DEFAULT 0);
CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id) ON DELETE CASCADE,
                    note TEXT DEFAULT 'n/a');
CREATE INDEX ix_child_parent ON child(parent_id);
CREATE INDEX ix_child_expr ON child(lower(note));
CREATE UNIQUE INDEX ix_parent_id ON parent(id);
"""


def _source(path):
    return make_sqlite(path, DDL, {"parent": [(1, "a", "2024-01-01", 1), (2, "b", None, 0)],
                                   "child": [(1, 1, "x"), (2, 2, "y"), (3, 99, "orphan")]})


def test_orphans_error_names_the_rows_and_changes_nothing(pg_db, sqlite_path):
    params = dict(pg_db, source=_source(sqlite_path))
    run.schema(params)
    run.copy(params)
    with pytest.raises(SchemaError, match=r"child\(parent_id\) -> parent: 1 orphan row\(s\), e.g. \['\(99\)'\]"):
        run.schema(params, phase="constraints")
    assert fetch(params, "SELECT count(*) FROM pg_constraint WHERE conrelid = 'child'::regclass") == [(0,)]


@pytest.mark.parametrize("policy, exists", [("not_valid", True), ("skip", False)])
def test_orphan_policies(pg_db, sqlite_path, policy, exists):
    params = dict(pg_db, source=_source(sqlite_path))
    run.schema(params)
    run.copy(params)
    result = run.schema(params, phase="constraints", orphans=policy)
    assert result["orphans"]["child_parent_id_fkey"]["count"] == 1
    assert any("child_parent_id_fkey" in n for n in result["notes"])
    assert fetch(params, "SELECT count(*) FROM pg_constraint WHERE conname = 'child_parent_id_fkey'") == [(int(exists),)]
    assert not run.schema(params, phase="constraints", orphans=policy)["changed"]


def test_constraints_indexes_and_defaults(pg_db, sqlite_path):
    params = dict(pg_db, source=_source(sqlite_path))
    run.schema(params)
    run.copy(params)
    fetch(params, "DELETE FROM child WHERE id = 3 RETURNING id")
    result = run.schema(params, phase="constraints")
    text = "\n".join(result["queries"])
    assert 'CREATE INDEX "ix_child_parent"' in text and "ix_parent_id" not in text   # duplicate of the PK
    assert 'CREATE INDEX "ix_child_expr" ON "public"."child" ((lower("note")))' in text   # an expression index
    assert 'UNIQUE ("code")' in text and "ON DELETE CASCADE" in text
    row = fetch(params, "INSERT INTO parent (code) VALUES ('c') RETURNING flag, created IS NOT NULL, id")
    assert row == [(False, True, 3)]
    assert fetch(params, "INSERT INTO child (parent_id) VALUES (3) RETURNING note") == [("n/a",)]


def test_drift_is_reported_never_altered(pg_db, sqlite_path):
    params = dict(pg_db, source=_source(sqlite_path))
    run.target(params)   # this source's target, where someone changed a table by hand
    fetch(params, "CREATE TABLE parent (id bigint, code integer, created timestamp, flag boolean); SELECT 1")
    with pytest.raises(SchemaError, match="parent.code: target is integer, source maps to text"):
        run.schema(params)
    assert fetch(params, "SELECT to_regclass('child')") == [(None,)]   # nothing was changed


def test_overrides_and_renames(pg_db, sqlite_path):
    params = dict(pg_db, source=_source(sqlite_path), column_types={"parent.code": "varchar(10)"},
                  rename={"child": "children", "child.note": "remark"}, timestamp_type="timestamptz")
    result = run.schema(params)
    assert result["tables"]["parent"]["columns"]["code"] == "character varying(10)"
    assert result["tables"]["parent"]["columns"]["created"] == "timestamp with time zone"
    run.copy(params)
    run.schema(params, phase="constraints", orphans="skip")
    assert fetch(params, "SELECT remark FROM children ORDER BY id") == [("x",), ("y",), ("orphan",)]
    report = run.verify_all(params, orphans="skip")["tables"]
    assert "left out (orphans: skip)" in report["child"]["warnings"][0]


def test_a_role_without_create_rights_is_told_what_to_ask_for(pg_db, pg_cluster, sqlite_path):
    params = dict(pg_db, source=_source(sqlite_path))
    fetch(params, "DROP ROLE IF EXISTS visitor; CREATE ROLE visitor LOGIN PASSWORD 'v'; "
                  "REVOKE CREATE ON SCHEMA public FROM PUBLIC; SELECT 1")
    visitor = dict(params, login_user="visitor", login_unix_socket="", login_host="127.0.0.1",
                   login_password="v", ssl_mode="disable")
    with pytest.raises(SchemaError, match='ask for GRANT CREATE ON SCHEMA "public" TO "visitor"'):
        run.schema(visitor)
    assert fetch(params, "SELECT to_regclass('parent')") == [(None,)]
