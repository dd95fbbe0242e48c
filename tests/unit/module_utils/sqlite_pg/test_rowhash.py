"""Verification's fast path: a hash per key range in SQLite and in PostgreSQL. Its SQLite
spellings must be PostgreSQL's own text of the right value (else a range differs and the
rules judge it), and a codec broken on purpose must still fail verify."""

import datetime
import random
import sqlite3
import uuid

import pytest

from sqlite_pg import convert, rowhash, run
from sqlite_pg.errors import VerifyError
from tests.conftest import fetch, make_sqlite, migrate

# (PostgreSQL type, SQLite value, the PostgreSQL literal of the value it must be stored as)
SPELLED = [
    ("bigint", 0, "0"), ("bigint", -(2**63), str(-(2**63))), ("integer", 42, "42"), ("smallint", None, None),
    ("text", "a|b\nc", "a|b\nc"), ("text", "", ""), ("text", "Ωμέγα ✓", "Ωμέγα ✓"), ("text", 12, "12"),
    ("character varying(5)", "abc", "abc"), ("json", '{"b": 1, "a": [1, 2.50]}', '{"b": 1, "a": [1, 2.50]}'),
    ("boolean", 1, "true"), ("boolean", 0, "false"), ("boolean", "yes", "true"), ("boolean", "OFF", "false"),
    ("boolean", 1.0, "true"),
    ("double precision", 0.1, "0.1"), ("double precision", 1 / 3, repr(1 / 3)), ("double precision", 3.0, "3"),
    ("double precision", 0.30000000000000004, "0.30000000000000004"), ("double precision", 1e16, "1e16"),
    ("double precision", 1e-5, "1e-5"), ("double precision", 123456789012345.6, "123456789012345.6"),
    ("double precision", 2.5e-300, "2.5e-300"), ("double precision", -0.0, "-0"), ("double precision", 0.0, "0"),
    ("double precision", 7, "7"), ("double precision", -1.7976931348623157e308, "-1.7976931348623157e308"),
    ("timestamp without time zone", "2023-01-28 03:19:16.979055", "2023-01-28 03:19:16.979055"),
    ("timestamp without time zone", "2023-01-28 03:19:16.979050", "2023-01-28 03:19:16.97905"),
    ("timestamp without time zone", "2023-01-28 03:19:10.000000", "2023-01-28 03:19:10"),
    ("timestamp without time zone", "2023-01-28T03:19:16.5", "2023-01-28 03:19:16.5"),
    ("timestamp without time zone", "2023-01-28 03:19:16", "2023-01-28 03:19:16"),
    ("timestamp without time zone", "2024-02-29", "2024-02-29 00:00:00"),
    ("timestamp with time zone", "2023-01-28 03:19:16.25", "2023-01-28 03:19:16.25+00"),
    ("date", "2024-02-29", "2024-02-29"), ("date", "2024-02-29 00:00:00", "2024-02-29"),
    ("bytea", b"\x00\xff|", "\\x00ff7c"), ("bytea", "é", "\\xc3a9"),
    ("uuid", "6F1C2A2E-53D9-4B7B-9F3C-1D2E3F4A5B6C", "6f1c2a2e-53d9-4b7b-9f3c-1d2e3f4a5b6c"),
    ("uuid", uuid.UUID(int=5).bytes, str(uuid.UUID(int=5))),
]

# Values the SQL rules leave to the read-back rules: spelled so that no PostgreSQL text matches.
LEFT = [
    ("bigint", " 42"), ("bigint", b"42"), ("text", 0.5), ("text", b"abc"),
    ("boolean", " yes"), ("double precision", "1e3"),
    ("timestamp without time zone", "2023-01-28 03:19:16+02:00"), ("timestamp without time zone", 1700000000),
    ("timestamp without time zone", "2023-01-28 03:19:16.9999999"),
    ("timestamp without time zone", "2023-01-28 03:19:00..0000"), ("timestamp without time zone", "2023-01-28 03:19:1"),
    ("date", "2024-02-29 10:00:00"), ("uuid", "not a uuid"), ("bytea", 5),
]


def _spell(value, pg_type):
    conn = sqlite3.connect(":memory:")
    rowhash.register(conn)
    return conn.execute(f"WITH v(x) AS (SELECT ?) SELECT '' || {rowhash.sqlite_field('x', pg_type)} FROM v",
                        (value,)).fetchone()[0]


@pytest.mark.parametrize(("pg_type", "value", "stored"), SPELLED)
def test_sqlite_spells_the_value_as_postgresql_prints_it(pg_conn, pg_type, value, stored):
    with pg_conn.cursor() as cur:
        cur.execute("SET extra_float_digits = 1; SET DateStyle = 'ISO, YMD'; SET TimeZone = 'Europe/Paris'")
        cur.execute(f"CREATE TEMP TABLE v (x {pg_type})")
        cur.execute("INSERT INTO v VALUES (%s)", (stored,))
        cur.execute(f"SELECT {rowhash.pg_field('x', pg_type).as_string(cur)} FROM v")
        printed = cur.fetchone()[0]
    assert _spell(value, pg_type) == printed


@pytest.mark.parametrize(("pg_type", "value"), LEFT)
def test_spellings_without_a_rule_here_cannot_agree(pg_type, value):
    assert "\x01" in _spell(value, pg_type)


def test_a_real_in_an_integer_column_keeps_a_spelling_no_integer_has():
    assert _spell(3.0, "bigint") == "3.0" and _spell(-1e20, "bigint") == "-1.0e+20"


WIDE = ("CREATE TABLE w (id INTEGER PRIMARY KEY, n BIGINT, f FLOAT, b BOOLEAN, s TEXT, at DATETIME, day DATE, "
        "raw BLOB, d DECIMAL(10,2), tm TIME)")


def _rows(seed, n):
    rnd = random.Random(seed)
    out = []
    for i in range(1, n + 1):
        at = datetime.datetime(2020, 1, 1) + datetime.timedelta(seconds=rnd.randint(0, 10**8),
                                                                microseconds=rnd.choice([0, rnd.randint(0, 999999)]))
        out.append((i, rnd.randint(-2**63, 2**63 - 1), rnd.choice([rnd.uniform(-1e6, 1e6), rnd.random() / 7, 0.0, 5.0]),
                    rnd.randint(0, 1), rnd.choice(["", "x|y", "a\nb", "Ω" * rnd.randint(0, 5), None]),
                    at.isoformat(sep=rnd.choice(" T")), at.date().isoformat(), bytes(rnd.randbytes(3)),
                    rnd.choice([rnd.randint(-999, 999), "12.50"]), f"{rnd.randint(0, 23):02d}:30"))
    return out


def test_random_rows_agree_range_by_range(pg_db, sqlite_path, monkeypatch):
    monkeypatch.setattr(rowhash, "CHUNK_ROWS", 500)
    make_sqlite(sqlite_path, WIDE, {"w": _rows(1, 5000)})
    params = dict(pg_db, source=sqlite_path)
    migrate(params)
    report = run.verify_all(params)["tables"]["w"]
    hashed = report["hashed"]
    assert hashed["ranges"] >= 10 and hashed["differing"] == 0 and hashed["rows"] == 5000
    assert set(hashed["unhashed"]) == {"d", "tm"}   # numeric and time: read back by the rules
    assert report["independent"] == dict(rows=5000, unchecked=0, mismatches=0, differences=[])
    assert report["source_checksum"] == report["target_checksum"]


def test_a_changed_value_fails_only_its_range_and_is_named(pg_db, sqlite_path, monkeypatch):
    monkeypatch.setattr(rowhash, "CHUNK_ROWS", 500)
    make_sqlite(sqlite_path, WIDE, {"w": _rows(2, 5000)})
    params = dict(pg_db, source=sqlite_path)
    migrate(params)
    fetch(params, "UPDATE w SET at = at + interval '1 microsecond' WHERE id = 1234 RETURNING id")
    with pytest.raises(VerifyError) as err:
        run.verify_all(params)
    report = err.value.report["w"]
    assert report["hashed"]["differing"] == 1
    assert [d["key"] for d in report["differences"]] == [{"id": 1234}]


def test_a_broken_timestamp_codec_fails_the_hashed_path(pg_db, sqlite_path, monkeypatch):
    monkeypatch.setattr(rowhash, "CHUNK_ROWS", 100)
    make_sqlite(sqlite_path, "CREATE TABLE e (id INTEGER PRIMARY KEY, at DATETIME);",
                {"e": [(i, f"2024-01-01 10:00:{i % 60:02d}.5") for i in range(1, 301)]})
    params = dict(pg_db, source=sqlite_path)
    temporal = convert.TemporalCodec.rules   # every timestamp an hour late, on both paths of the copy
    monkeypatch.setattr(convert.TemporalCodec, "rules", lambda self, c: [
        (cond, f"datetime({out}, '+1 hour')" if out is not None else None, why) for cond, out, why in temporal(self, c)])
    monkeypatch.setattr(convert.TemporalCodec, "fast_rules", lambda self, c: [])
    migrate(params)
    with pytest.raises(VerifyError, match=r"read back, 300 value") as err:
        run.verify_all(params)
    report = err.value.report["e"]
    assert report.get("hashed") is None   # every range differed: judged by the full path, as before
    assert report["differences"][0]["columns"]["at"]["source"] == "2024-01-01 10:00:01.5"


def test_a_broken_codec_in_one_range_is_judged_there(pg_db, sqlite_path, monkeypatch):
    monkeypatch.setattr(rowhash, "CHUNK_ROWS", 100)
    rows = [(i, i / 8) for i in range(1, 1001)]
    rows[500] = (501, 0.1234567890123)
    make_sqlite(sqlite_path, "CREATE TABLE m (id INTEGER PRIMARY KEY, x FLOAT);", {"m": rows})
    params = dict(pg_db, source=sqlite_path)
    # Six significant digits: only 0.1234567890123 changes (every i / 8 has fewer).
    monkeypatch.setattr(convert, "exact_float", lambda c: f"printf('%!.5e', {c})")
    migrate(params)
    with pytest.raises(VerifyError, match=r"read back, 1 value") as err:
        run.verify_all(params)
    report = err.value.report["m"]
    assert report["hashed"]["differing"] == 1
    assert report["differences"] == [dict(kind="differs when read back", key={"id": 501},
                                          columns={"x": dict(source="0.1234567890123", target="0.123457")})]


def test_quarantined_rows_are_left_out_of_the_ranges(pg_db, sqlite_path, monkeypatch):
    monkeypatch.setattr(rowhash, "CHUNK_ROWS", 100)
    rows = [(i, i, "2024-01-01") for i in range(1, 1001)]
    rows[10], rows[700] = (11, "abc", "2024-01-01"), (701, 701, "not a date")
    make_sqlite(sqlite_path, "CREATE TABLE q (id INTEGER PRIMARY KEY, i BIGINT, at DATETIME);", {"q": rows})
    params = dict(pg_db, source=sqlite_path)
    migrate(params, on_error="quarantine")
    report = run.verify_all(params)["tables"]["q"]
    assert report["rejected"] == 2 and report["hashed"]["differing"] == 0
    assert report["independent"]["rows"] == 998


def test_spellings_left_to_the_rules_pass_there(pg_db, sqlite_path, monkeypatch):
    monkeypatch.setattr(rowhash, "CHUNK_ROWS", 100)
    rows = [(i, f"2024-01-01 10:00:{i % 60:02d}") for i in range(1, 1001)]
    rows[42] = (43, "2024-01-01T12:00:00+02:00")   # an offset: no SQL spelling, the rules apply it
    make_sqlite(sqlite_path, "CREATE TABLE o (id INTEGER PRIMARY KEY, at DATETIME);", {"o": rows})
    params = dict(pg_db, source=sqlite_path)
    migrate(params)
    report = run.verify_all(params)["tables"]["o"]
    assert report["ok"] and report["hashed"]["differing"] == 1 and report["independent"]["rows"] == 1000


def test_sparse_keys_are_cut_by_position(pg_db, sqlite_path, monkeypatch):
    monkeypatch.setattr(rowhash, "CHUNK_ROWS", 100)
    keys = [i * 1000 for i in range(1, 1000)] + [2**62]
    make_sqlite(sqlite_path, "CREATE TABLE s (id INTEGER PRIMARY KEY, v TEXT);", {"s": [(k, f"v{k}") for k in keys]})
    params = dict(pg_db, source=sqlite_path)
    migrate(params)
    report = run.verify_all(params)["tables"]["s"]
    assert report["hashed"]["ranges"] == 10 and report["hashed"]["differing"] == 0
    fetch(params, "UPDATE s SET v = 'changed' WHERE id = 2^62 RETURNING id")
    with pytest.raises(VerifyError) as err:
        run.verify_all(params)
    assert err.value.report["s"]["hashed"]["differing"] == 1
    assert [d["key"] for d in err.value.report["s"]["differences"]] == [{"id": 2**62}]


def test_a_table_wider_than_one_call_takes(pg_db, sqlite_path):
    names = [f"c{i}" for i in range(150)]
    make_sqlite(sqlite_path, f"CREATE TABLE wide (id INTEGER PRIMARY KEY, {', '.join(n + ' TEXT' for n in names)});",
                {"wide": [(r, *(f"{r}|{i}" for i in range(150))) for r in range(1, 21)]})
    params = dict(pg_db, source=sqlite_path)
    migrate(params)
    report = run.verify_all(params)["tables"]["wide"]
    assert report["hashed"]["differing"] == 0 and len(report["hashed"]["columns"]) == 151
    fetch(params, "UPDATE wide SET c149 = 'x' WHERE id = 7 RETURNING id")
    with pytest.raises(VerifyError) as err:
        run.verify_all(params)
    assert [d["key"] for d in err.value.report["wide"]["differences"]] == [{"id": 7}]
