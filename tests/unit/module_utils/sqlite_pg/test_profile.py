"""The profile tells the truth about a messy file, and the copy does what it predicted."""

import sqlite3

import pytest

from sqlite_pg import run
from sqlite_pg.errors import ProfileError
from tests.conftest import fetch, make_sqlite, migrate

MESSY = """
CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, active BOOLEAN DEFAULT 1,
                    joined DATETIME DEFAULT CURRENT_TIMESTAMP, meta JSON, note VARCHAR(8),
                    stamp TEXT DEFAULT (strftime('%s', 'now')));
CREATE TABLE analyses (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), tokens_used INTEGER,
                       payload BLOB, at DATETIME);
CREATE TABLE log (line TEXT, n);
"""


def _messy(path):
    make_sqlite(path, MESSY, {
        "users": [
            (1, "ann", 1, "2024-01-01 10:00:00", '{"a": 1}', "ok", None),
            (2, "bob", "t", "2024-01-01T10:00:00.250Z", "[1,2]", "ok", None),
            (3, "cy", "yes", 1700000000, "{bad", "ok", None),
            (4, "dee", 0, 1700000000123, '{"x": "\\u0000"}', "much too long", None),
            (5, "eve\x00", 2, "2024-02-30 10:00:00", None, None, None),
            (6, "fay", "false", "2024-06-01 12:00:00+02:00", None, None, None),
        ],
        "analyses": [
            (1, 1, 100, b"\x00\x01", "2024-05-01"),
            (2, 9, "", "text in blob", "2024-05-01 08:00"),      # orphan user 9, '' in INTEGER
            (3, 2, "12x", None, None),                           # text in INTEGER
            (4, 3, 3000000000, None, None),                      # beyond int4, fine in bigint
        ],
        "log": [("a", 1), ("a", 1), ("b", 2.5)],
    })
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO log VALUES (CAST(x'ff' AS TEXT), 3)")
    conn.commit()
    conn.close()
    return path


def test_profile_lists_each_oddity_with_counts(sqlite_path):
    report = run.profile(dict(source=_messy(sqlite_path)), on_error="quarantine")
    users = report["tables"]["users"]
    assert users["rows"] == 6 and users["autoincrement"]
    assert users["primary_key"]["kind"] == "rowid alias (INTEGER PRIMARY KEY)"
    active = users["columns"]["active"]
    assert active["storage_classes"] == {"integer": 3, "text": 3}
    assert active["boolean_spellings"] == {"t": 1, "yes": 1, "false": 1}
    assert active["problems"] == {"not a boolean (0/1, true/false, t/f, yes/no, on/off)": 1}
    joined = users["columns"]["joined"]
    assert joined["datetime_formats"]["epoch seconds"] == 1 and joined["datetime_formats"]["epoch milliseconds"] == 1
    assert joined["datetime_formats"]["with UTC offset or Z"] == 2
    assert joined["datetime_formats"]["ISO 'YYYY-MM-DDTHH:MM:SS' (T)"] == 1
    assert joined["problems"] == {"not a recognised date/time": 1}   # 2024-02-30
    assert joined["default"] == {"sqlite": "CURRENT_TIMESTAMP",
                                 "postgresql": "(CURRENT_TIMESTAMP AT TIME ZONE 'UTC')"}
    assert users["columns"]["stamp"]["default"]["postgresql"] is None
    assert users["columns"]["meta"]["problems"] == {"not valid JSON": 1,
                                                    "JSON holds a NUL character (\\u0000), which jsonb rejects": 1}
    assert users["columns"]["note"]["problems"] == {"longer than 8 characters": 1}
    assert users["columns"]["name"]["problems"] == {"text holds a NUL byte (PostgreSQL cannot store it)": 1}
    assert users["columns"]["name"]["examples"][0]["key"] == {"id": 5}
    analyses = report["tables"]["analyses"]
    assert analyses["columns"]["tokens_used"]["problems"] == {"empty string in a numeric column": 1,
                                                              "not an integer": 1}
    assert analyses["columns"]["tokens_used"]["beyond_int4"] == 1
    assert analyses["columns"]["payload"]["storage_classes"] == {"blob": 1, "text": 1, "null": 2}
    log = report["tables"]["log"]
    assert log["primary_key"] == {"kind": "none", "columns": [], "duplicate_rows": 1}
    assert log["columns"]["line"]["problems"] == {"text is not valid UTF-8": 1}
    assert report["orphans"] == {"analyses(user_id) -> users(id)": 1}
    assert report["would_reject"] == 3 + 2 + 1
    text = "\n".join(report["summary"])
    assert "analyses.tokens_used: 1 value(s): not an integer; they go to _migration_rejects" in text
    assert "analyses(user_id) -> users(id): 1 orphan row(s)" in text
    assert "log: no primary key and 1 duplicate row(s)" in text


def test_copy_quarantines_exactly_what_the_profile_predicted(pg_db, sqlite_path):
    params = dict(pg_db, source=_messy(sqlite_path))
    report = run.profile(params)
    result = migrate(params, on_error="quarantine", orphans="not_valid")
    for table, info in report["tables"].items():
        assert result["tables"][table]["rejected"] == info["would_reject"], table
        predicted = {}
        for column in info["columns"].values():
            for reason, n in column["problems"].items():
                predicted[reason] = predicted.get(reason, 0) + n
        assert result["tables"][table]["reasons"] == predicted, table
    keys = fetch(params, "SELECT table_name, source_key->>'id' FROM _migration_rejects WHERE table_name = 'users' "
                         "ORDER BY 2")
    assert keys == [("users", "3"), ("users", "4"), ("users", "5")]
    run.verify_all(params)


def test_max_rejects_fails_with_the_summary(sqlite_path):
    with pytest.raises(ProfileError, match="6 row\\(s\\) would not convert \\(max_rejects is 0\\)"):
        run.profile(dict(source=_messy(sqlite_path)), max_rejects=0)


def test_corrupt_file_fails_the_profile(tmp_path):
    path = str(tmp_path / "c.db")
    make_sqlite(path, "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT); CREATE INDEX ix ON t(s);",
                {"t": [(i, "x" * 300) for i in range(3000)]})
    with open(path, "r+b") as fh:
        fh.seek(4096 * 30)
        fh.write(b"\x00\xff" * 2048)
    with pytest.raises(Exception, match="integrity_check failed|corrupt|malformed"):
        run.profile(dict(source=path))
