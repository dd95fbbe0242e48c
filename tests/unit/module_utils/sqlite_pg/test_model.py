"""Names and keys PostgreSQL cannot take as SQLite has them: a documented rule, or a refusal
up front that names the ``rename`` option - never a DuplicateColumn halfway through."""

import pytest

from sqlite_pg import run
from sqlite_pg.errors import SchemaError
from tests.conftest import fetch, make_sqlite, migrate

LONG = "c" * 70   # 70 bytes: PostgreSQL keeps 63


def test_a_long_name_is_cut_as_postgresql_cuts_the_apps_own_queries(pg_db, sqlite_path):
    table = "t" * 64 + "_events"
    make_sqlite(sqlite_path, f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, {LONG}1 INT, short INT);"
                             f"CREATE INDEX {'i' * 70} ON {table} (short);",
                {table: [(1, 10, 20), (2, 11, 21)]})
    params = dict(pg_db, source=sqlite_path)
    result = run.schema(params, phase="tables")
    assert any("is longer than PostgreSQL's 63 bytes: named" in n for n in result["notes"])
    migrate(params)
    run.verify_all(params)
    # The app spells the long names; PostgreSQL cuts them the same way and finds the rows.
    assert fetch(params, f"SELECT {LONG}1 FROM {table} ORDER BY id") == [(10,), (11,)]
    assert fetch(params, "SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'iiii%'") == [(1,)]


def test_two_long_names_that_meet_are_refused_up_front_naming_rename(pg_db, sqlite_path):
    make_sqlite(sqlite_path, f"CREATE TABLE t (id INTEGER PRIMARY KEY, {LONG}1 INT, {LONG}2 INT);"
                             "CREATE TABLE other (id INTEGER PRIMARY KEY);", {"t": [(1, 2, 3)]})
    params = dict(pg_db, source=sqlite_path)
    for phase in (lambda: run.profile(params), lambda: run.schema(params, phase="tables")):
        with pytest.raises(SchemaError) as err:
            phase()
        assert f"columns 't.{LONG}1' and 't.{LONG}2' both become 'ccc" in str(err.value)
        assert "rename option" in str(err.value)
    assert fetch(params, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]
    # As told: one renamed, and everything goes through exactly.
    params["rename"] = {f"t.{LONG}2": "c_second"}
    migrate(params)
    run.verify_all(params)
    assert fetch(params, "SELECT c_second FROM t") == [(3,)]


def test_a_system_column_name_is_refused_up_front_naming_rename(pg_db, sqlite_path):
    make_sqlite(sqlite_path, "CREATE TABLE t (id INTEGER PRIMARY KEY, xmin REAL); CREATE TABLE u (id INTEGER "
                             "PRIMARY KEY);", {"t": [(1, 2.5)], "u": [(1,)]})
    params = dict(pg_db, source=sqlite_path)
    with pytest.raises(SchemaError) as err:
        run.schema(params, phase="tables")
    assert "'t.xmin': 'xmin' is a PostgreSQL system column name" in str(err.value)
    assert "rename: {'t.xmin': 'xmin_'}" in str(err.value)
    params["rename"] = {"t.xmin": "xmin_"}
    migrate(params)
    run.verify_all(params)
    assert fetch(params, "SELECT xmin_ FROM t") == [(2.5,)]


def test_a_foreign_key_across_mapped_types_is_left_out_with_a_note(pg_db, sqlite_path):
    script = ("CREATE TABLE u (id INTEGER PRIMARY KEY, tg VARCHAR(64) UNIQUE);"
              "CREATE TABLE r (id INTEGER PRIMARY KEY, tg INTEGER REFERENCES u(tg));")
    make_sqlite(sqlite_path, script, {"u": [(1, "5"), (2, "abc")], "r": [(1, 5), (2, None)]})
    params = dict(pg_db, source=sqlite_path)
    assert any("u.tg is character varying(64); not created" in n for n in run.profile(params)["notes"])
    result = run.schema(params, phase="tables")
    assert any("column 'tg' is bigint but u.tg is character varying(64); not created" in n and
               "column_types {'r.tg': 'character varying(64)'}" in n for n in result["notes"])
    migrate(params)
    report = run.verify_all(params)
    assert report["tables"]["r"]["ok"] and fetch(params, "SELECT tg FROM r ORDER BY id") == [(5,), (None,)]
    assert fetch(params, "SELECT count(*) FROM pg_constraint WHERE contype = 'f'") == [(0,)]


def test_the_note_s_advice_keeps_the_foreign_key(pg_db, sqlite_path):
    make_sqlite(sqlite_path, "CREATE TABLE u (id INTEGER PRIMARY KEY, tg VARCHAR(64) UNIQUE);"
                             "CREATE TABLE r (id INTEGER PRIMARY KEY, tg INTEGER REFERENCES u(tg));",
                {"u": [(1, "5")], "r": [(1, 5)]})
    params = dict(pg_db, source=sqlite_path, column_types={"r.tg": "varchar(64)"})
    migrate(params)
    run.verify_all(params)
    assert fetch(params, "SELECT tg FROM r") == [("5",)]
    assert fetch(params, "SELECT conname FROM pg_constraint WHERE contype = 'f'") == [("r_tg_fkey",)]


def test_an_untyped_key_holding_1_and_text_1_is_refused_not_merged(pg_db, sqlite_path):
    make_sqlite(sqlite_path, "CREATE TABLE kv (k PRIMARY KEY, v); INSERT INTO kv VALUES (1, 'a'), ('1', 'b'), "
                             "(2, 'c'), ('x', 'd');")
    params = dict(pg_db, source=sqlite_path)
    for phase in (lambda: run.profile(params), lambda: run.schema(params, phase="tables")):
        with pytest.raises(SchemaError) as err:
            phase()
        assert ("table 'kv': key (k) is spelled two ways in 1 case(s) that SQLite keeps apart but PostgreSQL "
                "would store as one text, e.g. 1 (integer) and '1' (text)") in str(err.value)
    assert fetch(params, "SELECT to_regclass('public.kv')") == [(None,)]


def test_an_untyped_key_of_distinct_mixed_values_goes_through(pg_db, sqlite_path):
    make_sqlite(sqlite_path, "CREATE TABLE kv (k PRIMARY KEY, v UNIQUE); INSERT INTO kv VALUES (1, 'a'), ('x', 'b'), "
                             "(2, NULL), (3, NULL), (4, 5);")
    params = dict(pg_db, source=sqlite_path)
    migrate(params)
    run.verify_all(params)
    assert fetch(params, "SELECT k, v FROM kv ORDER BY k") == [("1", "a"), ("2", None), ("3", None), ("4", "5"),
                                                               ("x", "b")]


def test_two_long_table_names_that_meet_are_refused(pg_db, sqlite_path):
    make_sqlite(sqlite_path, f"CREATE TABLE {LONG}_a (id INTEGER PRIMARY KEY); CREATE TABLE {LONG}_b (id INTEGER "
                             "PRIMARY KEY);")
    with pytest.raises(SchemaError, match=f"tables '{LONG}_a' and '{LONG}_b' both become .* rename option"):
        run.schema(dict(pg_db, source=sqlite_path), phase="tables")
