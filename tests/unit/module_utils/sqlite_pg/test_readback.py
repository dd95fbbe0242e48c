"""Verification's independent path: a codec broken on purpose changes values in the copy and
in the codec-converted source alike; reading the values back by rules of their own catches it."""

import datetime
import random
import sqlite3
import uuid

import pytest

from sqlite_pg import convert, readback, run
from sqlite_pg.errors import VerifyError
from tests.conftest import fetch, make_sqlite, migrate

WIDE = """
CREATE TABLE w (
  id INTEGER PRIMARY KEY, i BIGINT, f FLOAT, d DECIMAL(10,2), b BOOLEAN, s TEXT, v VARCHAR(8), raw BLOB,
  doc JSON, u UUID, day DATE, at DATETIME, tm TIME, anything
);
"""
ROWS = [
    (1, 1, 0.1, "12.50", 1, "tab\there", "abc", b"\x00\xff", '{"b": 1, "a": [1, 2.50]}',
     "6f1c2a2e-53d9-4b7b-9f3c-1d2e3f4a5b6c", "2024-01-02", "2024-01-02T03:04:05.5+02:00", "12:30", -0.0),
    (2, "+42", "1e3", 7, "yes", 12, "Ωμέγα", "text", "[]", uuid.UUID(int=5).bytes, 1704067200,
     1700000000123, "23:59:59.9999999", 9007199254740993),
    (3, -(2**63), 1e-300, 0.5, "off", 0.30000000000000004, None, None, "-1.5e3", uuid.UUID(int=0xabcdef).hex, None,
     "9999-12-31 23:59:59.999999", None, "text"),
    (4, 2, 2, 2, 0, "", "", b"", '"\\u00e9"', None, "2024-02-29 00:00:00", 2460310.5, "00:00:00", None),
]


def test_every_kind_of_value_is_read_back_and_judged(pg_db, sqlite_path):
    make_sqlite(sqlite_path, WIDE, {"w": ROWS})
    params = dict(pg_db, source=sqlite_path)
    migrate(params)
    report = run.verify_all(params)["tables"]["w"]
    assert report["independent"]["rows"] == 4 and report["independent"]["mismatches"] == 0
    assert report["independent"]["unchecked"] == 0   # every value had a rule


def test_a_codec_broken_on_purpose_fails_verify(pg_db, sqlite_path, monkeypatch):
    make_sqlite(sqlite_path, "CREATE TABLE m (id INTEGER PRIMARY KEY, x FLOAT, s TEXT);",
                {"m": [(1, 0.1234567890123, "a"), (2, 2.5, "b")]})
    params = dict(pg_db, source=sqlite_path)
    # The float codec now prints six significant digits: a precision bug in the copy...
    monkeypatch.setattr(convert, "exact_float", lambda c: f"printf('%!.5e', {c})")
    migrate(params)
    assert fetch(params, "SELECT x FROM m ORDER BY id") == [(0.123457,), (2.5,)]
    # ...that the codec-converted source agrees with (same codec), but the values read back do not.
    with pytest.raises(VerifyError) as err:
        run.verify_all(params)
    text = str(err.value)
    assert "read back" in text and "{'id': 1}" in text and "0.1234567890123" in text and "0.123457" in text
    assert err.value.report["m"]["independent"]["mismatches"] == 1


def test_pythons_number_syntax_let_back_in_fails_verify(pg_db, sqlite_path, monkeypatch):
    make_sqlite(sqlite_path, "CREATE TABLE n (id INTEGER PRIMARY KEY, i BIGINT);", {"n": [(1, "1_000"), (2, 5)]})
    params = dict(pg_db, source=sqlite_path)
    # The bug of issue 16, put back: int() reads '1_000' as 1000.
    monkeypatch.setattr(convert, "pg_number_text", lambda raw, encoding="utf-8", integer=False: raw.decode(encoding))
    migrate(params)
    assert fetch(params, "SELECT i FROM n ORDER BY id") == [(1000,), (5,)]
    with pytest.raises(VerifyError, match=r"read back.*\n.*'id': 1.*'1_000'.*1000"):
        run.verify_all(params)


def test_quarantined_rows_are_left_out_by_their_keys(pg_db, sqlite_path):
    make_sqlite(sqlite_path, "CREATE TABLE q (id INTEGER PRIMARY KEY, i BIGINT, at DATETIME);",
                {"q": [(1, 1, "2024-01-01"), (2, "abc", "2024-01-01"), (3, 3, "not a date")]})
    params = dict(pg_db, source=sqlite_path)
    migrate(params, on_error="quarantine")
    report = run.verify_all(params)["tables"]["q"]
    assert report["rejected"] == 2
    assert (report["independent"]["rows"], report["independent"]["mismatches"]) == (1, 0)


def test_a_codec_broken_after_the_proof_fails_the_short_path_at_cutover(pg_db, sqlite_path, monkeypatch):
    make_sqlite(sqlite_path, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);",
                {"users": [(i, f"u{i}") for i in range(1, 101)]})
    params = dict(pg_db, source=sqlite_path)
    run.capture(params)
    run.schema(params, phase="tables")
    run.copy(params, passes=2, prove=True)
    run.schema(params, phase="constraints")
    # From here on the text codec upper-cases what it converts (the careful path's rules, which
    # the catch-up and the short path's source side both use).
    rules = convert.TextCodec.rules
    monkeypatch.setattr(convert.TextCodec, "rules", lambda self, c: [
        (cond, f"upper({out})" if out is not None else None, why) for cond, out, why in rules(self, c)])
    app = sqlite3.connect(sqlite_path)   # the app writes after the proof
    app.execute("UPDATE users SET name = 'renamed' WHERE id = 3")
    app.commit()
    app.close()
    run.copy(params)
    assert fetch(params, "SELECT name FROM users WHERE id = 3") == [("RENAMED",)]
    with pytest.raises(VerifyError, match="users: read back, 1 value") as err:
        run.verify_all(params, since_proof=True)
    users = err.value.report["users"]
    assert users["path"] == "proof + changes"
    assert users["differences"] == [dict(kind="differs when read back", key={"id": 3},
                                         columns={"name": dict(source="renamed", target="RENAMED")})]


def _random_rows(seed, n):
    """Values of every shape the rules know, and some they refuse, at random."""
    rnd = random.Random(seed)
    rows = []
    for i in range(1, n + 1):
        digits = rnd.randint(0, 9)
        fraction = "." + "".join(rnd.choice("0123456789") for _ in range(digits)) if digits else ""
        at = (f"{rnd.randint(1, 9999):04d}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
              f"{rnd.choice(' T')}{rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}{fraction}"
              f"{rnd.choice(['', '', 'Z', '+05:45', '-03:00'])}")
        number = rnd.choice([rnd.randint(-2**63, 2**63 - 1), rnd.uniform(-1e6, 1e6), -0.0, 0.0, 2**53 + rnd.randint(0, 9),
                             rnd.choice([" 42 ", "1_000", "+7", "1e3", "٣", "0x10", "-0"])])
        tm = f"{rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}{fraction}"
        rows.append((i, at, number, number, tm, "ok"))
    return rows


def test_random_values_read_back_the_same_on_the_fast_and_the_careful_path(pg_db, sqlite_path):
    rows = _random_rows(16, 3000)
    make_sqlite(sqlite_path, "CREATE TABLE r (id INTEGER PRIMARY KEY, at DATETIME, x FLOAT, n BIGINT, tm TIME, s TEXT);",
                {"r": rows})
    params = dict(pg_db, source=sqlite_path)
    first = migrate(params, on_error="quarantine")
    report = run.verify_all(params)["tables"]["r"]   # the read-back rules agree with every stored value
    assert report["independent"]["rows"] == 3000 - first["tables"]["r"]["rejected"] > 2000
    assert report["independent"]["unchecked"] == 0
    fast = fetch(params, "SELECT * FROM r ORDER BY id")
    conn = sqlite3.connect(sqlite_path)   # one row with a NUL byte: the whole table takes the careful path
    conn.execute("INSERT INTO r VALUES (3001, '2024-01-01', 1, 1, '10:00', 'nul' || char(0))")
    conn.commit()
    conn.close()
    second = migrate(params, on_error="quarantine")
    assert second["tables"]["r"]["rejected"] == first["tables"]["r"]["rejected"] + 1
    assert fetch(params, "SELECT * FROM r ORDER BY id") == fast
    run.verify_all(params)


def _random_json(rnd, depth=0):
    kind = rnd.choice(["obj", "arr", "num", "str", "lit"] if depth < 3 else ["num", "str", "lit"])
    if kind == "obj":
        keys = [rnd.choice(["a", "b", "é", "k\\u0061", "ka"]) for _ in range(rnd.randint(0, 4))]
        return "{" + ", ".join(f'"{k}": {_random_json(rnd, depth + 1)}' for k in keys) + "}"
    if kind == "arr":
        return "[" + ",".join(_random_json(rnd, depth + 1) for _ in range(rnd.randint(0, 3))) + "]"
    if kind == "num":
        return rnd.choice(["-0", "-0.0", "0", "1e2", "1.50", "-12", "123456789012345678901234567890", "2.5E-3"])
    if kind == "str":
        return rnd.choice(['"x"', '"-0"', '"a,b"', '"\\"q\\": 1"', '""'])
    return rnd.choice(["true", "false", "null"])


def test_random_json_and_untyped_values_read_back_the_same(pg_db, sqlite_path):
    rnd = random.Random(7)
    rows = [(i, _random_json(rnd), _random_json(rnd),
             rnd.choice([rnd.randint(-2**63, 2**63 - 1), rnd.uniform(-1, 1), -0.0, "t", b"\x01", None]))
            for i in range(1, 1501)]
    rows.append((1501, '{"plain": [1, 2]}', '{"a": 1}', 1))
    make_sqlite(sqlite_path, "CREATE TABLE j (id INTEGER PRIMARY KEY, doc JSON, other JSON, anything);"
                             "CREATE TABLE jb (id INTEGER PRIMARY KEY, doc JSON);",
                {"j": rows, "jb": [(i, doc) for i, doc, _, _ in rows]})
    # jb is told to be jsonb: what jsonb would change is refused, the rest is read back the same.
    params = dict(pg_db, source=sqlite_path, column_types={"jb.doc": "jsonb"})
    result = migrate(params, on_error="quarantine")
    assert result["tables"]["j"]["rejected"] == 0
    assert set(result["tables"]["jb"]["reasons"]) == {convert.JSONB_CHANGES}
    assert 100 < result["tables"]["jb"]["rejected"] < 1400
    report = run.verify_all(params)["tables"]
    assert report["j"]["independent"]["rows"] == 1501 and report["j"]["independent"]["unchecked"] == 0
    assert report["jb"]["independent"]["rows"] == 1501 - result["tables"]["jb"]["rejected"]
    assert fetch(params, "SELECT doc::text, other::text FROM j WHERE id = 1501") == [('{"plain": [1, 2]}', '{"a": 1}')]


def test_jsonb_normalising_without_the_check_fails_verify(pg_db, sqlite_path, monkeypatch):
    make_sqlite(sqlite_path, "CREATE TABLE j (id INTEGER PRIMARY KEY, doc JSON);",
                {"j": [(1, '{"a": 1, "a": 2}'), (2, '{"x": -0.0}'), (3, '{"b": 1, "a": [1, 2]}')]})
    params = dict(pg_db, source=sqlite_path)
    monkeypatch.setattr(convert, "jsonb_changes", lambda c: "0")   # the check of issue 16, taken out
    migrate(params)
    assert fetch(params, "SELECT doc::text FROM j ORDER BY id") == [('{"a": 2}',), ('{"x": 0.0}',),
                                                                   ('{"a": [1, 2], "b": 1}',)]
    with pytest.raises(VerifyError) as err:
        run.verify_all(params)
    differs = err.value.report["j"]["differences"]
    assert [d["key"] for d in differs] == [{"id": 1}, {"id": 2}]   # key order alone is not a change


def test_a_table_without_a_key_is_read_back_in_order(pg_db, sqlite_path, monkeypatch):
    make_sqlite(sqlite_path, "CREATE TABLE tags (name TEXT, n, at DATETIME);",
                {"tags": [("x", 1, "2024-01-01 10:00:00"), ("x", 1, "2024-01-01 10:00:00"), ("y", 2.5, None),
                          ("z", "bad\x00", None)]})
    params = dict(pg_db, source=sqlite_path)
    migrate(params, on_error="quarantine")
    report = run.verify_all(params)["tables"]["tags"]
    assert (report["independent"]["rows"], report["independent"]["mismatches"]) == (3, 0)
    fetch(params, "UPDATE tags SET n = n WHERE name = 'x' RETURNING 1")   # new row versions: another order
    assert run.verify_all(params)["tables"]["tags"]["independent"]["mismatches"] == 0   # reordered: matched by rule
    # A broken codec (every timestamp an hour late) shows, though the table has no key.
    temporal = convert.TemporalCodec.rules
    monkeypatch.setattr(convert.TemporalCodec, "rules", lambda self, c: [
        (cond, f"datetime({out}, '+1 hour')" if out is not None else None, why) for cond, out, why in temporal(self, c)])
    monkeypatch.setattr(convert.TemporalCodec, "fast_rules", lambda self, c: [])
    run.copy(params, on_error="quarantine", force=True)
    assert fetch(params, "SELECT DISTINCT at FROM tags WHERE name = 'x'") == [
        (datetime.datetime(2024, 1, 1, 11, 0),)]
    with pytest.raises(VerifyError, match=r"read back, 4 row.*\n.*missing in target when read back.*10:00:00"):
        run.verify_all(params)


def test_changed_keys_far_apart_are_read_back_without_the_rows_between(pg_db, sqlite_path):
    """The rows changed since a proof: old keys low, new ones high. Reading them back must not
    cost the whole table (at cutover it would make the freeze grow with the database)."""
    make_sqlite(sqlite_path, "CREATE TABLE r (id INTEGER PRIMARY KEY, s TEXT);",
                {"r": [(i, f"v{i}") for i in range(1, 20_001)]})
    params = dict(pg_db, source=sqlite_path)
    migrate(params)
    with run.opened(params) as (sqlite_conn, pg_conn, _source, model, _options), pg_conn.cursor() as cur:
        out = readback.compare(sqlite_conn, cur, model["r"], "public", {"id": "bigint", "s": "text"}, set(),
                               only_keys=("SELECT 2 UNION ALL SELECT 19999", []))
        cur.execute("SELECT coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0) FROM pg_stat_xact_user_tables "
                    "WHERE relname = 'r'")
        rows_read = cur.fetchone()[0]
        pg_conn.rollback()
    assert out["rows"] == 2 and not out["differences"], out
    assert rows_read <= 10, f"{rows_read} rows read to check 2"
