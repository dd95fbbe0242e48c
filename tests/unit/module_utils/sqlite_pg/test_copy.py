"""The copy against a real PostgreSQL, from real SQLite files full of what long-lived apps leave behind."""

import datetime
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from sqlite_pg import run
from sqlite_pg.connection import connect_pg
from sqlite_pg.errors import DataError
from tests.conftest import fetch, make_sqlite, migrate

MESSY = """
CREATE TABLE t (
  id INTEGER PRIMARY KEY, flag BOOLEAN, at DATETIME, day DATE, doc JSON, x FLOAT, n BIGINT,
  s TEXT, b BLOB, v VARCHAR(5), price DECIMAL(10,2)
);
"""

UTC = datetime.datetime


def test_values_convert_exactly(pg_db, sqlite_path):
    rows = [
        (1, 0, "2024-01-02 03:04:05", "2024-01-02", '{"b": 1, "a": [1, 2]}', 0.1, 2**40,
         "tab\there", b"\x00\x01\xff", "abc", 12.5),
        (2, 1, "2024-01-02T03:04:05.5", "2024-01-02 00:00:00", "null", 1e308, -(2**63),
         "new\nline\r\n", "text in blob", "", 3),
        (3, "t", "2024-01-02 03:04:05.123456", None, "[]", -0.5, 2**63 - 1, 'back\\slash \\N "q", ;', None,
         "Ωμέγα", "7.25"),
        (4, "false", "2024-01-02T03:04:05+02:00", None, '"\\u00e9"', 3, 3.0, "", None, None, None),
        (5, "YES", "2024-01-02 03:04:05Z", None, None, "2.5", None, "🚀 emoji", None, None, None),
        (6, "off", 1700000000, None, None, 0.30000000000000004, None, None, None, None, None),
        (7, None, 1700000000123, None, None, 1e-300, None, None, None, None, None),
        (8, None, "2024-01-02", None, None, None, None, None, None, None, None),
    ]
    make_sqlite(sqlite_path, MESSY, {"t": rows})
    params = dict(pg_db, source=sqlite_path)
    result = migrate(params)
    assert result["rows"] == 8 and result["rejected"] == 0
    got = {r[0]: r[1:] for r in fetch(params, "SELECT * FROM t ORDER BY id")}
    assert [got[i][0] for i in range(1, 9)] == [False, True, True, False, True, False, None, None]
    assert got[1][1] == UTC(2024, 1, 2, 3, 4, 5)
    assert got[2][1] == UTC(2024, 1, 2, 3, 4, 5, 500000)
    assert got[3][1] == UTC(2024, 1, 2, 3, 4, 5, 123456)
    assert got[4][1] == UTC(2024, 1, 2, 1, 4, 5)          # +02:00 folded into UTC
    assert got[5][1] == UTC(2024, 1, 2, 3, 4, 5)
    assert got[6][1] == UTC(2023, 11, 14, 22, 13, 20)      # epoch seconds
    assert got[7][1] == UTC(2023, 11, 14, 22, 13, 20, 123000)  # epoch milliseconds
    assert got[8][1] == UTC(2024, 1, 2)
    assert got[1][2] == got[2][2] == datetime.date(2024, 1, 2)
    assert got[1][3] == {"b": 1, "a": [1, 2]} and got[2][3] is None and got[3][3] == [] and got[4][3] == "é"
    assert fetch(params, "SELECT doc IS NULL, doc = 'null'::jsonb FROM t WHERE id = 2") == [(False, True)]
    assert [got[i][4] for i in range(1, 8)] == [0.1, 1e308, -0.5, 3.0, 2.5, 0.30000000000000004, 1e-300]
    assert [got[i][5] for i in range(1, 5)] == [2**40, -(2**63), 2**63 - 1, 3]
    assert got[1][6] == "tab\there" and got[2][6] == "new\nline\r\n" and got[3][6] == 'back\\slash \\N "q", ;'
    assert got[4][6] == "" and got[5][6] == "🚀 emoji" and got[6][6] is None
    assert bytes(got[1][7]) == b"\x00\x01\xff" and bytes(got[2][7]) == b"text in blob"
    assert got[2][8] == "" and got[3][8] == "Ωμέγα"
    assert [str(got[i][9]) for i in (1, 2, 3)] == ["12.50", "3.00", "7.25"]
    run.verify_all(params)


BAD = [
    (1, "ok", 1, "2024-01-01", '{"a": 1}', "fine"),
    (2, "nul\x00byte", 1, "2024-01-01", "{}", "fine"),
    (3, "ok", "", "2024-01-01", "{}", "fine"),                # '' in an integer column
    (4, "ok", "abc", "2024-01-01", "{}", "fine"),             # text in an integer column
    (5, "ok", 1, "not a date", "{}", "fine"),
    (6, "ok", 1, "2024-01-01", "{bad json", "fine"),
    (7, "ok", 1, "2024-01-01", '{"a": "\\u0000"}', "fine"),   # jsonb rejects \u0000
    (8, "ok", 1, "2024-01-01", "{}", "toolongvalue"),        # varchar(5)
    (9, "ok", 1.5, "2024-01-01", "{}", "fine"),               # fraction in an integer column
    (10, "ok", 2, "2024-02-30", "{}", "fine"),                # impossible date
]
BAD_DDL = "CREATE TABLE bad (id INTEGER PRIMARY KEY, s TEXT, n INTEGER NOT NULL, d DATETIME, j JSON, v VARCHAR(5));"


def _add_invalid_utf8(path):
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO bad VALUES (11, CAST(x'41ff42' AS TEXT), 1, '2024-01-01', '{}', 'fine')")
    conn.commit()
    conn.close()


def test_on_error_error_names_table_key_column_and_value(pg_db, sqlite_path):
    make_sqlite(sqlite_path, BAD_DDL, {"bad": BAD})
    params = dict(pg_db, source=sqlite_path)
    run.schema(params)
    with pytest.raises(DataError) as err:
        run.copy(params)
    text = str(err.value)
    assert "table 'bad'" in text and "{'id': 2}" in text and "column 's'" in text and "NUL byte" in text
    assert fetch(params, "SELECT count(*) FROM bad") == [(0,)]   # nothing of the table was written


def test_quarantine_keeps_every_row_accounted_for(pg_db, sqlite_path):
    make_sqlite(sqlite_path, BAD_DDL, {"bad": BAD})
    _add_invalid_utf8(sqlite_path)
    params = dict(pg_db, source=sqlite_path)
    result = migrate(params, on_error="quarantine")
    assert result["tables"]["bad"]["rows"] == 1
    assert result["tables"]["bad"]["rejected"] == 10
    rejects = {r[0]["id"]: (r[1], r[2]) for r in fetch(
        params, "SELECT source_key, reason, raw FROM _migration_rejects WHERE table_name = 'bad'")}
    assert sorted(rejects) == list(range(2, 12))
    assert "NUL byte" in rejects[2][0] and rejects[2][1]["s"] == {"text_with_nul": "nul\\u0000byte"}
    assert "empty string" in rejects[3][0] and "not an integer" in rejects[4][0]
    assert "date/time" in rejects[5][0] and "not valid JSON" in rejects[6][0] and "\\u0000" in rejects[7][0]
    assert "longer than 5" in rejects[8][0] and "fractional" in rejects[9][0] and "date/time" in rejects[10][0]
    assert rejects[11][0] == "s: text is not valid UTF-8" and rejects[11][1]["s"] == {"invalid_utf8_hex": "41ff42"}
    verified = run.verify_all(params)
    assert verified["tables"]["bad"]["rejected"] == 10


KEYS_DDL = """
CREATE TABLE pairs (a TEXT, b INTEGER, val REAL, PRIMARY KEY (a, b));
CREATE TABLE wr (k TEXT PRIMARY KEY, v) WITHOUT ROWID;
CREATE TABLE nokey (x, y TEXT);
CREATE TABLE "Order" ("select" INTEGER PRIMARY KEY, "Group" TEXT, "from" TEXT);
CREATE TABLE empty (id INTEGER PRIMARY KEY, s TEXT);
CREATE VIEW v_pairs AS SELECT a FROM pairs;
"""


def test_keys_names_and_shapes(pg_db, sqlite_path):
    make_sqlite(sqlite_path, KEYS_DDL, {
        "pairs": [(f"k{i % 7}", i, i / 3) for i in range(2000)],
        "wr": [(f"key{i:05d}", i if i % 2 else f"t{i}") for i in range(3000)],
        "nokey": [(1, "dup"), (1, "dup"), (2.5, None)],
        "Order": [(1, "g", "f")],
    })
    params = dict(pg_db, source=sqlite_path)
    result = migrate(params)
    assert {t: r["rows"] for t, r in result["tables"].items()} == {
        "pairs": 2000, "wr": 3000, "nokey": 3, "Order": 1, "empty": 0}
    assert fetch(params, 'SELECT "select", "Group", "from" FROM "Order"') == [(1, "g", "f")]
    assert fetch(params, "SELECT count(*) FROM nokey WHERE y = 'dup'") == [(2,)]
    assert fetch(params, "SELECT v FROM wr WHERE k = 'key00002'") == [("t2",)]   # mixed column typed text
    pk = fetch(params, "SELECT conname FROM pg_constraint WHERE contype = 'p' AND connamespace = 'public'::regnamespace "
                       "AND conname NOT LIKE '\\_migration%' ORDER BY 1")
    assert pk == [("Order_pkey",), ("empty_pkey",), ("pairs_pkey",), ("wr_pkey",)]
    schema = run.schema(params, phase="tables", check_mode=True)
    assert schema["views"] == ["v_pairs"] and not schema["queries"]
    run.verify_all(params)


def test_megabyte_values(pg_db, sqlite_path):
    big_text = "x" * (3 << 20)
    big_blob = os.urandom(2 << 20)
    make_sqlite(sqlite_path, "CREATE TABLE m (id INTEGER PRIMARY KEY, s TEXT, b BLOB);",
                {"m": [(i, big_text + str(i), big_blob) for i in range(5)]})
    params = dict(pg_db, source=sqlite_path)
    migrate(params)
    assert fetch(params, "SELECT count(*), sum(length(s)), sum(length(b)) FROM m") == [
        (5, 5 * (3 << 20) + 5, 5 * (2 << 20))]
    run.verify_all(params)


def test_sequences_end_past_max_id_and_autoincrement_high_water(pg_db, sqlite_path):
    make_sqlite(sqlite_path, """
        CREATE TABLE a (id INTEGER PRIMARY KEY AUTOINCREMENT, s TEXT);
        CREATE TABLE p (id INTEGER PRIMARY KEY, s TEXT);""", {"a": [(i, "x") for i in range(1, 11)],
                                                              "p": [(i, "x") for i in range(1, 6)]})
    conn = sqlite3.connect(sqlite_path)
    conn.execute("DELETE FROM a WHERE id > 7")   # AUTOINCREMENT never hands out 8..10 again
    conn.commit()
    conn.close()
    params = dict(pg_db, source=sqlite_path)
    migrate(params)
    assert fetch(params, "INSERT INTO a (s) VALUES ('new') RETURNING id") == [(11,)]
    assert fetch(params, "INSERT INTO p (s) VALUES ('new') RETURNING id") == [(6,)]


def test_rerun_changes_nothing_and_check_mode_writes_nothing(pg_db, sqlite_path):
    make_sqlite(sqlite_path, "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT);", {"t": [(1, "a"), (2, "b")]})
    params = dict(pg_db, source=sqlite_path)
    planned = run.schema(params, check_mode=True)
    assert planned["changed"] and planned["queries"]
    assert fetch(params, "SELECT to_regclass('t')") == [(None,)]
    run.schema(params)
    would = run.copy(params, check_mode=True)
    assert would["changed"] and would["tables"]["t"]["status"] == "would_copy"
    assert fetch(params, "SELECT count(*) FROM t") == [(0,)]
    assert fetch(params, "SELECT to_regclass('_migration_ledger')") == [(None,)]
    assert run.copy(params)["changed"]
    again = run.copy(params)
    assert not again["changed"] and again["tables"]["t"]["status"] == "in_sync"
    assert not run.copy(params, check_mode=True)["changed"]
    conn = sqlite3.connect(sqlite_path)
    conn.execute("INSERT INTO t VALUES (3, 'c')")
    conn.commit()
    conn.close()
    assert run.copy(params)["tables"]["t"]["rows"] == 3   # a changed source is copied again
    assert not run.schema(params)["changed"]


_KILLER = """
import sys
sys.path[:0] = ["module_utils", "."]
import json
from sqlite_pg import run
from sqlite_pg.connection import connect_pg
run.copy(json.loads(sys.argv[1]))
"""


def test_copy_killed_half_way_resumes_without_duplicates_or_gaps(pg_db, tmp_path):
    path = str(tmp_path / "big.db")
    make_sqlite(path, """
        CREATE TABLE first (id INTEGER PRIMARY KEY, s TEXT);
        CREATE TABLE second (id INTEGER PRIMARY KEY, s TEXT, n INTEGER);""", {
        "first": [(i, f"row {i}") for i in range(1, 2001)],
        "second": [(i, f"payload {i} " * 8, i) for i in range(1, 600_001)],
    })
    params = dict(pg_db, source=path)
    run.schema(params)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__)))))
    watch = connect_pg(params)
    watch.autocommit = True
    proc = subprocess.Popen([sys.executable, "-c", _KILLER, json.dumps(params)], cwd=root)
    # Killed inside the second table's COPY, once PostgreSQL has taken some of its rows (the
    # first table's ledger row committed): a fixed sleep here raced the copy on a quiet machine.
    deadline = time.monotonic() + 60
    with watch.cursor() as cur:
        while time.monotonic() < deadline and proc.poll() is None:
            cur.execute("SELECT tuples_processed FROM pg_stat_progress_copy WHERE relid = to_regclass('second')")
            row = cur.fetchone()
            if row and 0 < row[0] < 300_000:
                break
            time.sleep(0.002)
    watch.close()
    assert proc.poll() is None, "the copy finished before it could be interrupted: make the table bigger"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert fetch(params, "SELECT table_name FROM _migration_ledger") == [("first",)]
    result = run.copy(params)
    assert result["tables"]["first"]["status"] == "in_sync"
    assert result["tables"]["second"]["status"] == "copied"
    assert fetch(params, "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM second") == [
        (600_000, 600_000, 1, 600_000)]
    run.schema(params, phase="constraints")
    run.verify_all(params)


def test_infinity_in_float_columns_and_refused_in_numeric(pg_db, sqlite_path):
    make_sqlite(sqlite_path, "CREATE TABLE f (id INTEGER PRIMARY KEY, x FLOAT, d DECIMAL(10,2));",
                {"f": [(1, 1e999, 1.5), (2, -1e999, 2), (3, 5e-324, 1e999)]})
    params = dict(pg_db, source=sqlite_path)
    result = migrate(params, on_error="quarantine")
    assert fetch(params, "SELECT x::text FROM f ORDER BY id") == [("Infinity",), ("-Infinity",)]
    assert result["tables"]["f"]["reasons"] == {"infinity in a numeric column": 1}
    run.verify_all(params)


def test_consistent_snapshot_while_the_app_keeps_writing(pg_db, tmp_path):
    """WAL mode: the app commits parent+child pairs during the copy; the copy sees whole pairs
    from one moment, and the app is never blocked."""
    import threading

    path = str(tmp_path / "live.db")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript("""
        CREATE TABLE parent (id INTEGER PRIMARY KEY, s TEXT);
        CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id), s TEXT);""")
    conn.executemany("INSERT INTO parent VALUES (?, ?)", [(i, "p" * 50) for i in range(1, 200_001)])
    conn.executemany("INSERT INTO child VALUES (?, ?, ?)", [(i, i, "c" * 50) for i in range(1, 200_001)])
    conn.commit()
    conn.close()
    params = dict(pg_db, source=path)
    run.schema(params)
    stop, written = threading.Event(), []

    def app():
        writer = sqlite3.connect(path, timeout=1)
        n = 200_001
        while not stop.is_set():
            with writer:
                writer.execute("INSERT INTO parent VALUES (?, 'new')", (n,))
                writer.execute("INSERT INTO child VALUES (?, ?, 'new')", (n, n))
            written.append(n)
            n += 1
        writer.close()

    thread = threading.Thread(target=app)
    thread.start()
    try:
        run.copy(params)
    finally:
        stop.set()
        thread.join()
    assert written, "the app could not write during the copy"
    parents, children = fetch(params, "SELECT (SELECT count(*) FROM parent), (SELECT count(*) FROM child)")[0]
    assert parents == children >= 200_000
    run.schema(params, phase="constraints")   # no orphans: the pairs arrived whole


def test_rows_added_since_the_copy_are_appended_and_changes_are_left_to_verify(pg_db, sqlite_path):
    from sqlite_pg.errors import VerifyError

    make_sqlite(sqlite_path, "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT);", {"t": [(i, "x") for i in range(100)]})
    params = dict(pg_db, source=sqlite_path)
    migrate(params)
    conn = sqlite3.connect(sqlite_path)
    conn.executemany("INSERT INTO t VALUES (?, 'new')", [(i,) for i in range(100, 150)])
    conn.commit()
    assert run.copy(params, check_mode=True)["tables"]["t"]["status"] == "would_append"
    result = run.copy(params)["tables"]["t"]
    assert (result["status"], result["rows"]) == ("appended", 150)
    run.verify_all(params)
    conn.execute("UPDATE t SET s = 'changed' WHERE id = 5")
    conn.execute("INSERT INTO t VALUES (150, 'new')")
    conn.commit()
    conn.close()
    assert run.copy(params)["tables"]["t"]["status"] == "appended"
    with pytest.raises(VerifyError):               # the update is not appended: verify sees it
        run.verify_all(params)
    assert run.copy(params, force=True)["tables"]["t"]["status"] == "copied"
    run.verify_all(params)


def test_progress_is_written_while_a_long_copy_runs(pg_db, tmp_path):
    import threading

    path = str(tmp_path / "big.db")
    make_sqlite(path, "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT);",
                {"t": [(i, f"row {i} " * 10) for i in range(1, 400_001)]})
    params = dict(pg_db, source=path)
    run.schema(params)
    progress_file = str(tmp_path / "progress" / "copy.json")
    seen, stop = [], threading.Event()

    def watch():
        while not stop.is_set():
            try:
                with open(progress_file) as fh:
                    seen.append(json.load(fh)["tables"]["t"])
            except (FileNotFoundError, KeyError, ValueError):
                pass
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        run.copy(params, progress_file=progress_file)
    finally:
        stop.set()
        watcher.join()
    assert any(s["status"] == "copying" and 0 < s["rows_done"] < 400_000 and s["rows_total"] == 400_000
               and s["rows_per_second"] > 0 for s in seen), seen[:3]
    with open(progress_file) as fh:
        final = json.load(fh)["tables"]["t"]
    assert final["status"] == "copied" and final["rows_done"] == 400_000


WEIRD = """
CREATE TABLE "we""ird tåble" ("k" INTEGER PRIMARY KEY, "line" TEXT, "co,l" TEXT, "Ünï" REAL, "s2p_n" INT);
CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT, words INT GENERATED ALWAYS AS (length(body)) STORED);
CREATE VIRTUAL TABLE docs_fts USING fts5(body);
CREATE INDEX ix_docs_lower ON docs(lower(body));
CREATE TRIGGER docs_ai AFTER INSERT ON docs BEGIN INSERT INTO docs_fts(body) VALUES (new.body); END;
"""


def test_identifiers_generated_columns_and_virtual_tables(pg_db, sqlite_path):
    make_sqlite(sqlite_path, WEIRD, {'we"ird tåble': [(1, "a\\x01b", 'x"y', 1.5, 7), (2, None, "", None, None)]})
    conn = sqlite3.connect(sqlite_path)
    conn.executemany("INSERT INTO docs (id, body) VALUES (?, ?)", [(1, "hello world"), (2, "quote \x01 inside")])
    conn.commit()
    conn.close()
    params = dict(pg_db, source=sqlite_path)
    schema = run.schema(params)
    assert "docs_fts" in schema["not_migrated"] and any(n.startswith("docs_fts_") for n in schema["not_migrated"])
    assert any("docs_ai" in n and "not migrated" in n for n in schema["notes"])
    assert schema["triggers"] == ["docs_ai"]
    run.copy(params)
    run.schema(params, phase="constraints")
    assert fetch(params, "SELECT attgenerated FROM pg_attribute WHERE attrelid = 'docs'::regclass "
                         "AND attname = 'words'") == [("s",)]          # PostgreSQL computes it, as SQLite did
    assert fetch(params, "SELECT indexdef LIKE '%lower(body)%' FROM pg_indexes WHERE indexname = 'ix_docs_lower'") == [
        (True,)]
    assert fetch(params, 'SELECT "k", "line", "co,l", "Ünï", "s2p_n" FROM "we""ird tåble" ORDER BY 1') == [
        (1, "a\\x01b", 'x"y', 1.5, 7), (2, None, "", None, None)]
    assert fetch(params, "SELECT body, words FROM docs ORDER BY id") == [("hello world", 11),
                                                                       ("quote \x01 inside", 14)]
    run.verify_all(params)


def test_date_time_edges_fast_and_careful_paths_agree(pg_db, sqlite_path):
    rows = [
        (1, "2024-12-31 23:59:59.999999"), (2, "2024-12-31T23:59:59.9999+00:00"), (3, "2024-01-01 12:00:59.9996Z"),
        (4, 2460310.5),              # SQLite julianday(): 2024-01-01 00:00 UTC
        (5, 20240101),               # YYYYMMDD: ambiguous, refused
        (6, "2024-01-01 23:59:60"),  # leap second: refused on both paths
        (7, "2024-01-01 12:00:+2"),  # a sign where seconds belong: refused
        (8, 1700000000),
    ]
    make_sqlite(sqlite_path, "CREATE TABLE t (id INTEGER PRIMARY KEY, at DATETIME, s TEXT);",
                {"t": [(i, v, "ok") for i, v in rows]})
    conn = sqlite3.connect(sqlite_path)   # one NUL byte elsewhere sends the table down the careful path too
    conn.execute("INSERT INTO t VALUES (9, '2024-12-31 23:59:59.999999', 'nul' || char(0))")
    conn.commit()
    conn.close()
    params = dict(pg_db, source=sqlite_path)
    result = migrate(params, on_error="quarantine")
    got = dict(fetch(params, "SELECT id, at FROM t"))
    assert got[1] == UTC(2024, 12, 31, 23, 59, 59, 999999)
    assert got[2] == UTC(2024, 12, 31, 23, 59, 59, 999900)
    assert got[3] == UTC(2024, 1, 1, 12, 0, 59, 999600)
    assert got[4] == UTC(2024, 1, 1)
    assert got[8] == UTC(2023, 11, 14, 22, 13, 20)
    assert set(got) == {1, 2, 3, 4, 8}
    assert result["tables"]["t"]["rejected"] == 4   # 5, 6, 7 and the NUL row 9
    report = run.profile(params)["tables"]["t"]["columns"]["at"]
    assert report["problems"] == {"not a recognised date/time": 3}
    assert report["datetime_formats"]["Julian day number"] == 1
    run.verify_all(params)


def test_keys_that_are_not_valid_utf8_and_a_column_named_rowid(pg_db, sqlite_path):
    make_sqlite(sqlite_path, """
        CREATE TABLE wr (k TEXT PRIMARY KEY, v INTEGER) WITHOUT ROWID;
        CREATE TABLE r (rowid TEXT, v INTEGER);""", {
        "wr": [(f"k{i:04d}", i) for i in range(600)],
        "r": [("same", 1), ("same", 2), (None, 3)],
    })
    conn = sqlite3.connect(sqlite_path)
    conn.execute("INSERT INTO wr VALUES (CAST(x'6b30303031ff' AS TEXT), 9999)")   # 'k0001\xff'
    conn.commit()
    conn.close()
    params = dict(pg_db, source=sqlite_path)
    result = migrate(params, on_error="quarantine")
    assert (result["tables"]["wr"]["rows"], result["tables"]["wr"]["rejected"]) == (600, 1)
    assert fetch(params, 'SELECT "rowid", v FROM r ORDER BY v') == [("same", 1), ("same", 2), (None, 3)]
    run.verify_all(params)


def test_decimal_scale_is_kept_not_rounded(pg_db, sqlite_path):
    make_sqlite(sqlite_path, "CREATE TABLE m (id INTEGER PRIMARY KEY, price DECIMAL(10,2));",
                {"m": [(1, 19.99), (2, 10.01), (3, 19.999), (4, "10.005"), (5, "7.50"), (6, 3)]})
    params = dict(pg_db, source=sqlite_path)
    result = migrate(params, on_error="quarantine")
    assert [str(r[0]) for r in fetch(params, "SELECT price FROM m ORDER BY id")] == ["19.99", "10.01", "7.50", "3.00"]
    assert result["tables"]["m"]["reasons"] == {
        "more decimal places than numeric(10,2) keeps (it would round the value)": 2}
    assert run.profile(params)["tables"]["m"]["would_reject"] == 2
    run.verify_all(params)


def test_self_referencing_rows_on_the_careful_path_with_the_foreign_key_in_place(pg_db, sqlite_path):
    # Children before their parents in key order, a foreign key already on the target (a
    # rerun), and one bad row that sends the table down the careful path.
    rows = [(i, i + 500 if i <= 500 else None, f"node {i}") for i in range(1, 1001)]
    make_sqlite(sqlite_path, "CREATE TABLE node (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES node(id), "
                             "name TEXT);", {"node": rows})
    params = dict(pg_db, source=sqlite_path)
    migrate(params)
    conn = sqlite3.connect(sqlite_path)
    conn.execute("INSERT INTO node VALUES (1001, 1002, 'nul' || char(0))")   # child of a row not yet there
    conn.execute("INSERT INTO node VALUES (1002, NULL, 'late parent')")
    conn.commit()
    conn.close()
    result = run.copy(dict(params), on_error="quarantine", force=True)["tables"]["node"]
    assert (result["rows"], result["rejected"]) == (1001, 1)
    assert fetch(params, "SELECT count(*) FROM node WHERE parent_id IS NOT NULL") == [(500,)]
    run.verify_all(params)


ODD_DDL = """CREATE TABLE odd (id INTEGER PRIMARY KEY, i INTEGER, f FLOAT, n NUMERIC, d DECIMAL(5,2), t TEXT, g TEXT,
                               r FLOAT, at DATETIME, day DATE);"""
ODD_TYPES = {"odd.t": "numeric(10,2)", "odd.g": "double precision", "odd.r": "real"}
_OK = (1, 1.5, "2.5", 1.25, "3.50", "0.5", 1.5, "2024-01-01 00:00:00", "2024-01-01")
_BROKEN = b"1\xff"   # stored as text: not valid UTF-8
ODD_ROWS = {   # id: (column, value, reason)
    2: ("i", _BROKEN, "text is not valid UTF-8"),
    3: ("f", _BROKEN, "text is not valid UTF-8"),
    4: ("n", _BROKEN, "text is not valid UTF-8"),
    5: ("d", _BROKEN, "text is not valid UTF-8"),
    6: ("t", "1.0e+300", "out of range for numeric(10,2)"),
    7: ("d", 12345.5, "out of range for numeric(5,2)"),
    8: ("d", 1000, "out of range for numeric(5,2)"),
    9: ("t", "123456789.5", "out of range for numeric(10,2)"),
    10: ("t", "1e999999999999999999", "out of range for numeric(10,2)"),
    11: ("g", "1e-400", "out of range for double precision"),
    12: ("r", 1e300, "out of range for real"),
    13: ("at", "0000-01-01 00:00:00", "not a recognised date/time"),
    14: ("at", "0000-12-31T10:00:00.5", "not a recognised date/time"),
    15: ("day", "0000-01-01", "not a date (or a date with a time of day)"),
    16: ("t", "12.345", "more decimal places than numeric(10,2) keeps (it would round the value)"),
}
ODD_COLUMNS = ("i", "f", "n", "d", "t", "g", "r", "at", "day")


def _odd(path):
    make_sqlite(path, ODD_DDL, {"odd": [(1, *_OK)]})
    conn = sqlite3.connect(path)
    for key, (column, value, _reason) in ODD_ROWS.items():
        row = dict(zip(ODD_COLUMNS, _OK, strict=True))
        row[column] = value
        marks = ", ".join("CAST(? AS TEXT)" if isinstance(row[c], bytes) else "?" for c in ODD_COLUMNS)
        conn.execute(f"INSERT INTO odd VALUES (?, {marks})", (key, *(row[c] for c in ODD_COLUMNS)))
    conn.commit()
    conn.close()
    return path


def test_unconvertible_numbers_and_dates_are_refused_with_a_reason_up_front(pg_db, sqlite_path, monkeypatch):
    """Broken text in numeric columns, numbers beyond numeric(p,s)/real/double, the year 0000:
    refused by the codecs (never a failing Python helper), on the fast path, as predicted."""
    from sqlite_pg import copy

    def careful(*_args, **_kwargs):
        raise AssertionError("PostgreSQL refused what the codecs let through")

    monkeypatch.setattr(copy, "careful_copy", careful)
    params = dict(pg_db, source=_odd(sqlite_path), column_types=ODD_TYPES)
    report = run.profile(params)["tables"]["odd"]
    result = migrate(params, on_error="quarantine")["tables"]["odd"]
    assert (result["rows"], result["rejected"]) == (1, len(ODD_ROWS))
    rejects = {r[0]["id"]: r[1] for r in fetch(params, "SELECT source_key, reason FROM _migration_rejects")}
    assert rejects == {key: f"{column}: {reason}" for key, (column, _value, reason) in ODD_ROWS.items()}
    assert report["would_reject"] == result["rejected"]
    predicted = {}
    for info in report["columns"].values():
        for reason, n in info["problems"].items():
            predicted[reason] = predicted.get(reason, 0) + n
    assert predicted == result["reasons"]
    assert [str(v) for v in fetch(params, "SELECT d, t, r FROM odd")[0]] == ["1.25", "3.50", "1.5"]
    run.verify_all(params)


@pytest.mark.parametrize("column", ["i", "f", "n", "d"])
def test_broken_text_in_a_numeric_column_stops_the_copy_with_a_data_error(pg_db, sqlite_path, column):
    make_sqlite(sqlite_path, ODD_DDL, {"odd": [(1, *_OK)]})
    conn = sqlite3.connect(sqlite_path)
    conn.execute(f"UPDATE odd SET {column} = CAST(x'31ff' AS TEXT)")
    conn.commit()
    conn.close()
    params = dict(pg_db, source=sqlite_path)
    assert run.profile(params)["tables"]["odd"]["columns"][column]["problems"] == {"text is not valid UTF-8": 1}
    run.schema(params)
    with pytest.raises(DataError) as err:
        run.copy(params)
    assert (err.value.table, err.value.key, err.value.column) == ("odd", {"id": 1}, column)
    assert "not valid UTF-8" in str(err.value)


def test_a_utf16_file_is_refused_up_front_with_the_way_out(pg_db, sqlite_path):
    from sqlite_pg.errors import SourceError

    make_sqlite(sqlite_path, "PRAGMA encoding = 'UTF-16le'; CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT);",
                {"t": [(1, "é")]})
    params = dict(pg_db, source=sqlite_path)
    for call in (lambda: run.profile(params), lambda: run.schema(params), lambda: run.copy(params)):
        with pytest.raises(SourceError, match=r"stores text as UTF-16le.*\.dump \| sqlite3 NEW\.db"):
            call()


@pytest.mark.parametrize("deferrable", ["DEFERRABLE INITIALLY DEFERRED", "DEFERRABLE", ""])
def test_a_child_of_a_quarantined_parent_is_quarantined_under_the_apps_deferred_key(pg_db, sqlite_path,
                                                                                     deferrable):
    """target: existing with the app's DEFERRABLE INITIALLY DEFERRED foreign key: the parent
    row too long for varchar(3) is quarantined, and its child with it (checked row by row, as
    a plain key is), instead of the copy failing at COMMIT. Every source row is in PostgreSQL
    or in the rejects table, and verification accounts for both."""
    from sqlite_pg.connection import connect_pg

    make_sqlite(sqlite_path, "CREATE TABLE p (id INTEGER PRIMARY KEY, code VARCHAR(3));"
                             "CREATE TABLE c (id INTEGER PRIMARY KEY, p_id INTEGER REFERENCES p(id));",
                {"p": [(1, "abc"), (2, "toolong")], "c": [(1, 1), (2, 2), (3, 1)]})
    conn = connect_pg(pg_db)
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE p (id integer PRIMARY KEY, code varchar(3)); CREATE TABLE c (id integer "
                    f"PRIMARY KEY, p_id integer REFERENCES p(id) {deferrable})")
    conn.commit()
    conn.close()
    params = dict(pg_db, source=sqlite_path, target="existing")
    result = run.copy(params, on_error="quarantine")
    assert result["tables"]["p"]["rejected"] == 1 and result["tables"]["c"]["rejected"] == 1
    assert fetch(params, "SELECT id, p_id FROM c ORDER BY id") == [(1, 1), (3, 1)]
    assert fetch(params, "SELECT table_name, source_key, reason FROM _migration_rejects ORDER BY id") == [
        ("p", {"id": 2}, "code: longer than 3 characters"),
        ("c", {"id": 2}, '(row): PostgreSQL refused the value: insert or update on table "c" violates foreign '
                         'key constraint "c_p_id_fkey"')]
    report = run.verify_all(params)
    assert report["tables"]["c"]["rejected"] == 1 and report["tables"]["c"]["content_ok"]
