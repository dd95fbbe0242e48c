import pytest

from sqlite_pg.ddl import translate_default

TS = "timestamp without time zone"


@pytest.mark.parametrize("default, pg_type, expected", [
    (None, "text", None),
    ("NULL", "text", None),
    ("CURRENT_TIMESTAMP", TS, "(CURRENT_TIMESTAMP AT TIME ZONE 'UTC')"),
    ("CURRENT_TIMESTAMP", "timestamp with time zone", "CURRENT_TIMESTAMP"),
    ("(datetime('now'))", TS, "(CURRENT_TIMESTAMP AT TIME ZONE 'UTC')"),
    ("datetime('now', 'localtime')", TS, "LOCALTIMESTAMP"),
    ("(strftime('%Y-%m-%d %H:%M:%f', 'now'))", TS, "(CURRENT_TIMESTAMP AT TIME ZONE 'UTC')"),
    ("CURRENT_DATE", "date", "((CURRENT_TIMESTAMP AT TIME ZONE 'UTC'))::date"),
    ("CURRENT_TIMESTAMP", "text", "to_char((CURRENT_TIMESTAMP AT TIME ZONE 'UTC'), 'YYYY-MM-DD HH24:MI:SS')"),
    ("0", "boolean", "false"), ("1", "boolean", "true"), ("'t'", "boolean", "true"),
    ("42", "bigint", "42"), ("-1.5", "double precision", "-1.5"), ("7", "text", "'7'"),
    ("'it''s'", "text", "'it''s'"),
    ("X'00ff'", "bytea", "'\\x00ff'::bytea"),
    ("(random())", "bigint", None),
])
def test_defaults_translate_or_are_left_out(default, pg_type, expected):
    assert translate_default(default, pg_type) == expected


def test_a_numeric_default_on_a_datetime_column_follows_the_value_rules(pg_db, sqlite_path):
    """pgloader's `stamps` shape: DEFAULT 0 on DATETIME stopped the whole schema. A default is
    a value: 0 is refused by the date/time rules (too small for an epoch), so it is left out
    with a note; an epoch default becomes the timestamp the copy would write; every table is
    created and the rows go through."""
    from sqlite_pg import run
    from tests.conftest import fetch, make_sqlite

    make_sqlite(sqlite_path, "CREATE TABLE stamps (id INTEGER PRIMARY KEY, StartTime DATETIME DEFAULT 0, "
                             "EndTime DATETIME DEFAULT 1700000000, Price INTEGER DEFAULT 'abc');"
                             "CREATE TABLE other (id INTEGER PRIMARY KEY);"
                             "INSERT INTO stamps (id) VALUES (1); INSERT INTO other VALUES (1);")
    params = dict(pg_db, source=sqlite_path)
    profiled = run.profile(params)
    assert any(line.startswith("stamps.StartTime: default 0 is refused by the value rules") and
               line.endswith("left out") for line in profiled["summary"])
    result = run.schema(params, phase="tables")
    notes = "\n".join(result["notes"])
    assert "stamps.StartTime: SQLite default 0 is refused by the value rules" in notes
    assert "not a recognised date/time" in notes
    # A default PostgreSQL itself refuses for the type is left out too, with its reason.
    assert "stamps.Price: SQLite default 'abc' PostgreSQL refuses it for bigint" in notes
    defaults = dict(fetch(params, "SELECT column_name, column_default FROM information_schema.columns "
                                  "WHERE table_name = 'stamps'"))
    assert defaults["StartTime"] is None and defaults["Price"] is None
    assert defaults["EndTime"].startswith("'2023-11-14 22:13:20")
    assert fetch(params, "SELECT to_regclass('public.other') IS NOT NULL") == [(True,)]
    copied = run.copy(params, on_error="quarantine")
    assert copied["rejected"] == 1   # the row holds 0 in StartTime: refused by the same rule, named
    run.schema(params, phase="constraints")
    run.verify_all(params)


@pytest.mark.parametrize("default, pg_type, expected", [
    ("0", TS, None),
    ("1700000000", TS, "'2023-11-14 22:13:20.000000'"),
    ("'2020-01-02T03:04:05Z'", "timestamp with time zone", "'2020-01-02 03:04:05+00'"),
    ("'2020-01-01'", "date", "'2020-01-01'"),
    ("'not a uuid'", "uuid", None),
])
def test_literal_defaults_convert_as_values_do(default, pg_type, expected):
    assert translate_default(default, pg_type) == expected
