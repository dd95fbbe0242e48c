"""The profile tells the truth about a messy file, and the copy does what it predicted."""

import sqlite3

import pytest

from sqlite_pg import convert, run
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


# --- the profile's shortcuts against the full rules -------------------------------------------

STAMPS = ("2024-01-01 10:00:00.123456", "2024-02-29 23:59:59", "2023-02-29 10:00:00", "2024-02-30 10:00:00.5",
          "2024-12-31T23:59:59.9999+00:00", "2024-06-01 12:00:00-05:30", "2024-01-01 24:00:00", "0000-01-01 00:00:00",
          "-0001-01-01 00:00:00", "9999-12-31 23:59:59.999999", "2024-01-01", "2024-04-31", "2024-01-01 10:00:00Z",
          "2024-01-01 10:00:00.12345z", "2024-01-01 10:00", "10:00:00.5")
OTHERS = ("", " ", "t", "No", "yes ", "{}", '{"a": "\\u0000"}', "[1", "12", " 7 ", "1e3", "nan", "3.14159", "ab",
          "1.0e+300", "1e999", "-1e-400", "123.5", "999.995", "-0", "Infinity", "1e999999999999999999", "0.0001",
          "abcd", "é", "\x01", "123e4567-e89b-12d3-a456-426614174000", "123E4567E89B12D3A456426614174000", "a")
NUMBERS = (0, 1, 2, -1, 2**31, -2**31 - 1, 2**40, 2**63 - 1, -2**63, 20240101, 1700000000, 1700000000123, 2460310,
           0.0, 1.0, 1.5, -2.5, 2460310.5, 1.7e9, 1e300, float("inf"), 3.5e38, 1e-46, 1e-40, 999.99, 1000)
BLOBS = (b"", b"\x00", b"abc", b"\xff", bytes(range(16)), "é".encode())
BROKEN = (b"\xff", b"abc\xc3", b"\xed\xa0\x80", b"\xe0\x80\x80", b"\x80", b"ok\x00nul", b"2024-01-01\x00 10:00:00")
PG_TYPES = ("bigint", "integer", "smallint", "double precision", "real", "numeric", "numeric(5,2)", "numeric(3,3)",
            "numeric(20,0)", "boolean", "text",
            "character varying(3)", "character(2)", "jsonb", "json", "uuid", "bytea", "timestamp without time zone",
            "timestamp with time zone", "date", "time without time zone", "interval")


def _zoo():
    """Values near every edge of the rules: stamps with a character replaced, inserted or cut
    anywhere, and text, numbers, BLOBs and broken text of every kind."""
    values = set(OTHERS)
    for stamp in STAMPS:
        for i in range(len(stamp) + 1):
            values.add(stamp[:i])
            for ch in "09 -T:.Z+\x00é":
                values.update((stamp[:i] + ch + stamp[i + 1:], stamp[:i] + ch + stamp[i:]))
        values.add(stamp + "  ")
    return sorted(values) + list(NUMBERS) + list(BLOBS) + [None]


@pytest.fixture(scope="module")
def zoo():
    conn = sqlite3.connect(":memory:")
    from sqlite_pg import convert, profile

    convert.register_functions(conn)
    conn.execute("CREATE TABLE z (v)")
    conn.executemany("INSERT INTO z VALUES (?)", [(v,) for v in _zoo()])
    conn.execute("CREATE TABLE zr (v TEXT COLLATE RTRIM)")   # a collation must not fool a shortcut
    conn.execute("INSERT INTO zr SELECT v FROM z")
    conn.execute("CREATE TABLE zn (v DATETIME)")   # NUMERIC affinity: comparisons with text constants change
    conn.execute("INSERT INTO zn SELECT v FROM z")
    conn.execute("CREATE TABLE zb (v)")
    conn.executemany("INSERT INTO zb VALUES (CAST(? AS TEXT))", [(b,) for b in BROKEN])
    conn.create_function("s2p_text_ok", 1, profile._text_ok)
    yield conn
    conn.close()


@pytest.mark.parametrize("pg_type", PG_TYPES)
def test_checked_problems_equal_the_full_rules(zoo, pg_type):
    """What the profile evaluates per value (text proven valid per chunk) says what the
    codec's full rules say, for every value the proof covers."""
    from sqlite_pg import convert

    codecs = [convert.codec_for(pg_type, notnull) for notnull in (False, True)]
    if pg_type == "text":
        codecs.append(convert.codec_for("e", enum_labels=("a", "t")))
    for table in ("z", "zr", "zb", "zn"):
        for codec in codecs:
            # No Python helper may fail on a value (broken text, 1e300 as text in a numeric(p,s)):
            # every value gets an answer, and the field and the reason agree.
            sql = (f"SELECT typeof(v) || ' ' || hex(v), ({codec.problem('v', text_checked=True)}), ({codec.problem('v')}), "
                   f"typeof(v) <> 'text' OR s2p_text_ok(CAST(v AS BLOB)) >= 0, ({codec.field('v', careful=True)}) IS NULL "
                   f"FROM {table}")
            rows = zoo.execute(sql).fetchall()
            assert [r[:3] for r in rows if (r[2] is not None) != r[4]] == [], (table, codec.pg_type)
            covered = [r for r in rows if r[3] or not codec.text_like]
            assert len(covered) > 500 or table == "zb"
            assert [r[:3] for r in covered if r[1] != r[2]] == [], (table, codec.pg_type)


def test_datetime_shortcuts_agree_with_the_full_conditions(zoo):
    from sqlite_pg import profile

    conds = ", ".join(f"typeof(v) IN ({', '.join(repr(c) for c in classes)}) AND ({profile._format_sql(cond, 'v')})"
                      for _, classes, cond in profile.DATETIME_FORMATS)
    names = [name for name, _, _ in profile.DATETIME_FORMATS]
    for pattern, hits in profile.DATETIME_SHORTCUTS:
        rows = zoo.execute(f"SELECT hex(v), {conds} FROM z WHERE v GLOB '{pattern}'").fetchall()
        assert len(rows) > 5
        for value, *flags in rows:
            assert {n for n, f in zip(names, flags, strict=True) if f} == set(hits), value


# UTF-16 files are refused before the profile runs (connection.require_utf8).
@pytest.mark.parametrize("encoding", ["UTF-8"])
def test_chunked_scan_counts_exactly_what_per_value_queries_count(sqlite_path, monkeypatch, encoding):
    """Tiny ranges and chunks, a few bits per signature, counts in Python or in SQL, a table
    without rowid: the same numbers as plain per-value queries with the codecs' full rules."""
    from sqlite_pg import convert, profile

    values = _zoo()
    rows = []
    for i in range(3000):
        v = values[(i * 7) % len(values)]
        rows.append((i + 1, v, values[(i * 13) % len(values)], v, v, v, v, v, v, v, f"u{i}"))
    ddl = ("id INTEGER PRIMARY KEY, s TEXT, at DATETIME, d DATE, n INTEGER, b BOOLEAN, f FLOAT, j JSON, vc VARCHAR(3), "
           "x, u TEXT")
    make_sqlite(sqlite_path, f"PRAGMA encoding = '{encoding}'; CREATE TABLE t ({ddl}); "
                             f"CREATE TABLE w ({ddl}) WITHOUT ROWID", {"t": rows})
    conn = sqlite3.connect(sqlite_path)
    conn.executemany("UPDATE t SET s = CAST(? AS TEXT), vc = CAST(? AS TEXT), at = CAST(? AS TEXT) WHERE id = ?",
                     [(b, b, b, 100 + 300 * k) for k, b in enumerate(BROKEN)])
    # Two halves of one character in neighbouring rows: each is broken, joined they are not.
    conn.executemany("UPDATE t SET u = CAST(? AS TEXT) WHERE id = ?", [(b"ab\xc3", 2601), (b"\xa9z", 2602)])
    conn.execute("INSERT INTO w SELECT * FROM t")
    conn.commit()
    convert.register_functions(conn)
    cols = ("s", "at", "d", "n", "b", "f", "j", "vc", "x", "u")
    types = dict(s="text", at="timestamp without time zone", d="date", n="bigint", b="boolean", f="double precision",
                 j="jsonb", vc="character varying(3)", x="text", u="text")
    problems = {c: f"({convert.codec_for(types[c]).problem(c)})" for c in cols}
    expect_reject = conn.execute(f"SELECT count(*) FROM t WHERE {' OR '.join(f'{p} IS NOT NULL' for p in problems.values())}"
                                 ).fetchone()[0]
    expect = {}
    for c in cols:
        census = dict(conn.execute(f"SELECT typeof({c}), count(*) FROM t GROUP BY 1"))
        reasons = dict(conn.execute(f"SELECT p, count(*) FROM (SELECT {problems[c]} AS p FROM t) WHERE p IS NOT NULL "
                                    "GROUP BY p"))
        expect[c] = dict(census=census, problems=reasons)
    formats = dict(zip([n for n, _, _ in profile.DATETIME_FORMATS], conn.execute("SELECT " + ", ".join(
        f"sum(typeof(at) IN ({', '.join(repr(k) for k in classes)}) AND ({profile._format_sql(cond, 'at')}))"
        for _, classes, cond in profile.DATETIME_FORMATS) + " FROM t").fetchone(), strict=True))
    big = conn.execute("SELECT count(*) FROM t WHERE typeof(n) = 'integer' AND n NOT BETWEEN -2147483648 AND 2147483647"
                       ).fetchone()[0]
    conn.close()
    assert expect_reject > 100 and expect["s"]["problems"]["text is not valid UTF-8"] >= 4
    assert expect["u"]["problems"] == {"text is not valid UTF-8": 2} or encoding != "UTF-8"
    for outputs, ranges, chunk, bits in ((1000, 400, 1 << 10, 62), (0, 1000, 300, 9), (1000, 50_000, 4 << 20, 20)):
        monkeypatch.setattr(profile, "_MAX_OUTPUTS", outputs)
        monkeypatch.setattr(profile, "_RANGE_ROWS", ranges)
        monkeypatch.setattr(profile, "_CHUNK_TEXT_BYTES", chunk)
        monkeypatch.setattr(profile, "_SIG_BITS", bits)
        report = run.profile(dict(source=sqlite_path, column_types={f"{t}.{c}": types[c] for c in cols for t in "tw"}))
        for t in report["tables"].values():
            assert t["rows"] == 3000 and t["would_reject"] == expect_reject
            for c in cols:
                assert t["columns"][c]["storage_classes"] == expect[c]["census"], c
                assert t["columns"][c]["problems"] == expect[c]["problems"], c
            assert t["columns"]["at"]["datetime_formats"] == {k: v for k, v in formats.items() if v}
            assert t["columns"]["n"].get("beyond_int4", 0) == big


def test_a_busy_writer_leaves_the_profile_to_one_connection_with_the_same_report(sqlite_path):
    _messy(sqlite_path)

    def report():
        out = run.profile(dict(source=sqlite_path), on_error="quarantine")
        for table in out["tables"].values():
            table.pop("seconds")
        return out

    both = report()
    writer = sqlite3.connect(sqlite_path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")   # no second snapshot reader can be lined up
    try:
        assert report() == both
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_enum_labels_from_the_models_are_predicted_as_the_copy_refuses_them(pg_db, sqlite_path, monkeypatch):
    """The profile knows the ENUM labels from the models, as the copy knows them from the catalog."""
    from sqlite_pg import app_models

    monkeypatch.setattr(app_models, "enum_columns", lambda spec, app_path=None: {"job.status": ("jobstatus", (
        "QUEUED", "DONE"))})
    make_sqlite(sqlite_path, "CREATE TABLE job (id INTEGER PRIMARY KEY, status VARCHAR(10), note TEXT);",
                {"job": [(1, "QUEUED", "a"), (2, "DONE", "b"), (3, "queued", "c"), (4, "LOST", "d"), (5, None, "e")]})
    params = dict(pg_db, source=sqlite_path, models="app.models:Base")
    report = run.profile(params)["tables"]["job"]
    reason = "not a label of jobstatus (QUEUED, DONE)"
    assert report["columns"]["status"]["problems"] == {reason: 2}
    assert report["would_reject"] == 2
    result = migrate(params, on_error="quarantine")["tables"]["job"]
    assert (result["rows"], result["rejected"], result["reasons"]) == (3, 2, {reason: 2})
    assert fetch(params, "SELECT id, status::text FROM job ORDER BY id") == [(1, "QUEUED"), (2, "DONE"), (5, None)]


def test_a_key_that_is_not_utf8_and_lone_json_surrogates_are_named_not_crashed_on(pg_db, sqlite_path):
    """A text key that is not valid UTF-8 came back in the examples as a str Ansible refuses
    to carry ("Refusing to deserialize an invalid UTF8 string"): now as its bytes. A JSON
    "\\ud800" (lone surrogate escape, which jsonb refuses) is predicted, as the copy rejects it;
    a proper pair and an escaped backslash are not."""
    import json

    make_sqlite(sqlite_path, "CREATE TABLE t (k TEXT PRIMARY KEY, j JSONB);"
                             "INSERT INTO t VALUES (CAST(X'ff41' AS TEXT), '{}'), ('hi', '{\"a\": \"\\ud800\"}'), "
                             "('lo', '\"\\udc00\"'), ('pair', '\"\\ud83d\\ude00\"'), ('esc', '[\"\\\\ud800\"]');")
    params = dict(pg_db, source=sqlite_path)
    result = run.profile(params, on_error="quarantine")
    json.dumps(result, ensure_ascii=False).encode("utf-8")   # strict UTF-8: what Ansible carries
    columns = result["tables"]["t"]["columns"]
    assert columns["k"]["examples"][0]["key"] == {"k": {"invalid_utf8_hex": "ff41"}}
    assert columns["j"]["problems"] == {convert.LONE_SURROGATE_IN_JSON: 2}
    assert result["would_reject"] == 3
    run.schema(params, phase="tables")
    copied = run.copy(params, on_error="quarantine")
    assert copied["rejected"] == 3
    assert fetch(params, "SELECT k, j::text FROM t ORDER BY k") == [("esc", '["\\\\ud800"]'), ("pair", '"😀"')]


def test_the_profile_predicts_against_the_apps_own_types(pg_db, sqlite_path):
    """target: existing: 3,000,000,000 headed for the app's integer column is predicted as a
    reject (it was would_reject: 0 against the bigint the migration would create), as the
    copy then rejects it."""
    make_sqlite(sqlite_path, "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER);", {"t": [(1, 3_000_000_000), (2, 7)]})
    fetch(pg_db, "CREATE TABLE t (id integer PRIMARY KEY, n integer); SELECT 1")
    params = dict(pg_db, source=sqlite_path, target="existing")
    result = run.profile(params, on_error="quarantine")
    assert result["would_reject"] == 1
    assert result["tables"]["t"]["columns"]["n"]["problems"] == {"out of range for integer": 1}
    with pytest.raises(ProfileError, match="1 row"):
        run.profile(params, max_rejects=0)
    copied = run.copy(params, on_error="quarantine")
    assert copied["rejected"] == 1 and fetch(params, "SELECT id, n FROM t") == [(2, 7)]


def test_without_the_apps_tables_the_profile_says_what_it_predicted_against(pg_db, sqlite_path):
    make_sqlite(sqlite_path, "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER);", {"t": [(1, 3_000_000_000)]})
    result = run.profile(dict(pg_db, source=sqlite_path, target="existing"))
    assert result["would_reject"] == 0
    assert any(line.startswith("target: existing, but the app's tables could not be read (") and
               line.endswith("predicted against the types the migration would create, not the app's")
               for line in result["summary"])
