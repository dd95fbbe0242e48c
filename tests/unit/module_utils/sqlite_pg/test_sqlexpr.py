"""The conservative SQLite -> PostgreSQL expression translation: what translates, and why the rest does not."""

import pytest

from sqlite_pg.sqlexpr import Untranslatable, tokenize, translate_expr

COLUMNS = {"age": "age", "email": "Email", "first": "first", "last": "last", "flag": "flag"}


@pytest.mark.parametrize("sqlite, postgres", [
    ("age >= 0", '"age" >= 0'),
    ("AGE == 0 OR age IS NULL", '"age" = 0 OR "age" IS NULL'),
    ("age != 1 AND age NOT NULL AND NOT age ISNULL", '"age" <> 1 AND "age" IS NOT NULL AND NOT "age" ISNULL'),
    ('"first" <> [last]', '"first" <> "last"'),
    ("email IN ('a', 'it''s')", "\"Email\" IN ('a', 'it''s')"),        # renamed column, quotes kept
    ("age BETWEEN 1 AND 1.5e2", '"age" BETWEEN 1 AND 1.5e2'),
    ("length(trim(email)) > 0", 'length(trim("Email")) > 0'),
    ("ifnull(age, 0) * 2 + 1 > 0", 'coalesce("age", 0) * 2 + 1 > 0'),
    ("CASE WHEN age > 1 THEN 'x' ELSE first || last END IS NOT NULL",
     "CASE WHEN \"age\" > 1 THEN 'x' ELSE \"first\" || \"last\" END IS NOT NULL"),
    ("lower(email) = email -- a comment", 'lower("Email") = "Email"'),
])
def test_translates(sqlite, postgres):
    assert translate_expr(tokenize(sqlite), COLUMNS) == postgres


@pytest.mark.parametrize("sqlite, why", [
    ("age / 2 > 1", "'/' divides integers"),
    ("age % 2 = 0", "'%'"),
    ("email LIKE '%@%'", "LIKE ignores ASCII case only"),
    ("email GLOB '*@*'", "GLOB"),
    ("typeof(age) = 'integer'", "function typeof()"),
    ("CAST(age AS TEXT) <> ''", "CAST"),
    ("age IS flag", "null-safe equality"),
    ('"nosuch" = 1', '"nosuch" is not a column'),           # SQLite would read it as the string 'nosuch'
    ("email = x'00'", "blob literal"),
    ("age > 0x10", "hexadecimal"),
    ("age > ?", "parameter"),
    ("age > (SELECT 1)", "subquery"),
    ("created < CURRENT_TIMESTAMP", "the clock"),
    ("email = 'a' COLLATE NOCASE", "COLLATE"),
])
def test_refuses_with_the_reason(sqlite, why):
    with pytest.raises(Untranslatable, match=why.replace("(", r"\(").replace(")", r"\)")):
        translate_expr(tokenize(sqlite), COLUMNS | {"created": "created"})
