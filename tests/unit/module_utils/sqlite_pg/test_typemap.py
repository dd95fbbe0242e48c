import decimal

import pytest

from sqlite_pg import run
from sqlite_pg.errors import SchemaError
from sqlite_pg.typemap import map_census, map_declared, normalize_type
from tests.conftest import fetch, make_sqlite, migrate


@pytest.mark.parametrize("declared, expected", [
    ("INTEGER", "bigint"), ("int", "bigint"), ("BIGINT", "bigint"), ("TINYINT(1)", "bigint"),
    ("BOOLEAN", "boolean"), ("BOOL", "boolean"),
    ("DATETIME", "timestamp without time zone"), ("TIMESTAMP", "timestamp without time zone"),
    ("DATE", "date"), ("TIME", "time without time zone"),
    ("JSON", "jsonb"), ("BLOB", "bytea"),
    ("FLOAT", "double precision"), ("REAL", "double precision"), ("DOUBLE PRECISION", "double precision"),
    ("VARCHAR(255)", "character varying(255)"), ("NVARCHAR(10)", "character varying(10)"),
    ("CHAR(32)", "character varying(32)"), ("VARCHAR", "text"), ("TEXT", "text"), ("CLOB", "text"),
    ("NUMERIC(10, 2)", "numeric(10,2)"), ("DECIMAL", "numeric"), ("UUID", "uuid"),
    ("", None), ("whatever", None),
])
def test_declared_types_map_to_postgresql(declared, expected):
    assert map_declared(declared) == expected


def test_timestamptz_is_an_option():
    assert map_declared("DATETIME", "timestamp with time zone") == "timestamp with time zone"


@pytest.mark.parametrize("census, expected", [
    ({"integer": 3}, "bigint"), ({"integer": 1, "real": 2}, "double precision"), ({"blob": 1}, "bytea"),
    ({"integer": 1, "text": 1}, "text"), ({}, "text"), ({"null": 4}, "text"),
])
def test_untyped_columns_are_typed_by_their_values(census, expected):
    assert map_census(census) == expected


@pytest.mark.parametrize("given, expected", [
    ("varchar(5)", "character varying(5)"), ("INT8", "bigint"), ("timestamptz", "timestamp with time zone"),
    ("timestamp(3)", "timestamp(3) without time zone"), ("numeric(10, 2)", "numeric(10,2)"), ("text[]", "text[]"),
])
def test_overrides_are_normalised_to_format_type_spelling(given, expected):
    assert normalize_type(given) == expected


def test_override_that_is_not_a_type_is_refused():
    with pytest.raises(SchemaError, match="not a PostgreSQL type name"):
        normalize_type("text; DROP TABLE users")


@pytest.mark.parametrize("census, expected", [
    ({"integer": 2, "real": 1, "wide_integer": 1}, "numeric"),
    ({"integer": 2, "real": 1, "wide_integer": 1, "special_real": 1}, "text"),
    ({"integer": 2, "real": 1, "special_real": 1}, "double precision"),
])
def test_a_type_chosen_from_the_values_holds_every_value(census, expected):
    assert map_census(census) == expected


def test_any_and_untyped_columns_keep_integers_a_double_would_round(pg_db, sqlite_path):
    big = 9007199254740993   # 2**53 + 1: a double holds 9007199254740992
    make_sqlite(sqlite_path, """
        CREATE TABLE s (id INTEGER PRIMARY KEY, a ANY) STRICT;
        CREATE TABLE u (id INTEGER PRIMARY KEY, v, w, small);""",
                {"s": [(1, big), (2, 0.5), (3, -(2**63))],
                 "u": [(1, big, big, 3), (2, 0.25, -0.0, 0.5), (3, None, float("inf"), None)]})
    params = dict(pg_db, source=sqlite_path)
    migrate(params)
    types = dict(fetch(params, "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
                               "WHERE table_name IN ('s', 'u')"))
    assert (types["s.a"], types["u.v"], types["u.w"], types["u.small"]) == (
        "numeric", "numeric", "text", "double precision")
    assert fetch(params, "SELECT a FROM s ORDER BY id") == [(decimal.Decimal(big),), (decimal.Decimal("0.5"),),
                                                            (decimal.Decimal(-(2**63)),)]
    assert fetch(params, "SELECT v, w FROM u ORDER BY id") == [
        (decimal.Decimal(big), str(big)), (decimal.Decimal("0.25"), "-0.0"), (None, "Inf")]
    lines = run.profile(params)["summary"]
    assert "s.a: declared 'ANY', planned numeric: integers beyond 2**53 beside reals: a double would round them, " \
           "numeric holds both exactly" in lines
    run.verify_all(params)
