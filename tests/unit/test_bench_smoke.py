"""Smoke test of the benchmark (bench/run.py) in its small mode: 300 users (7,800 rows),
one round, only A (this project) and D (sqlite3 | psql), so it needs neither pgloader nor
DuckDB. It checks the numbers are sensible and A's row counts equal the source's; it does
not judge speed."""

import glob
import json
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = pytest.mark.skipif(
    not glob.glob("/usr/lib/postgresql/*/bin/initdb") or not shutil.which("sqlite3") or not shutil.which("psql"),
    reason="needs PostgreSQL server binaries, sqlite3 and psql (scripts/bootstrap.sh)")


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    out, raw = tmp / "bench.md", tmp / "bench.json"
    cmd = [sys.executable, os.path.join(ROOT, "bench", "run.py"), "--rows", "small", "--rounds", "1",
           "--tools", "A,D", "--no-install", "--cache-dir", str(tmp / "cache"), "--out", str(out),
           "--json", str(raw)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return dict(stdout=proc.stdout, markdown=out.read_text(), report=json.loads(raw.read_text()), cache=tmp / "cache")


def test_source_is_the_small_demo_db(bench):
    report = bench["report"]
    assert report["counts"] == {"users": 300, "ideas": 1500, "analyses": 6000}
    (path,) = glob.glob(str(bench["cache"] / "bot-300u-*.db"))
    conn = sqlite3.connect(path)
    try:
        for table, n in report["counts"].items():
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == n
    finally:
        conn.close()


def test_a_copies_every_row(bench):
    report = bench["report"]
    (run,) = report["runs"]["A"]
    assert run["ok"], run["detail"]
    assert run["counts"] == report["counts"]
    assert run["rows_match"]
    assert run["detail"]["rows"] == sum(report["counts"].values())
    assert run["detail"]["rejected"] == 0
    assert set(run["detail"]["phases"]) == {"imports", "schema_tables", "copy", "constraints"}


def test_d_copies_every_row(bench):
    report = bench["report"]
    (run,) = report["runs"]["D"]
    assert run["ok"], run["detail"]
    assert run["counts"] == report["counts"]


def test_numbers_are_sensible(bench):
    report = bench["report"]
    for tool in ("A", "D"):
        s = report["summary"][tool]
        assert s["ok_runs"] == 1 and s["rows_match"]
        assert 0 < s["min"] <= s["median"] <= s["max"] < 60
        assert s["rows_per_s"] == pytest.approx(7800 / s["median"])
        assert 1 < s["rss_max"] < 1000          # MB of the client processes
    verify = report["verify"]
    assert verify["detail"]["ok"] and verify["detail"]["rows"] == 7800
    assert 0 < verify["wall"] < 60
    assert report["postgres"]["settings"]["fsync"] == "on"
    assert report["postgres"]["settings"]["max_wal_size"] == "2GB"


def test_output_and_report(bench):
    assert "A/D = " in bench["stdout"]
    md = bench["markdown"]
    assert "<!-- bench:begin -->" in md and "<!-- bench:end -->" in md
    assert "| A) sqlite_pg (this project) |" in md
    assert "python bench/run.py --rows small --rounds 1 --tools A,D" in md
    assert "ROWS" not in md      # no tool flagged for lost rows
