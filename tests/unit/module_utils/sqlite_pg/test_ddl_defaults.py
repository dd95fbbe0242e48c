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
