import pytest

from sqlite_pg.errors import SchemaError
from sqlite_pg.typemap import map_census, map_declared, normalize_type


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
