"""Each way the two ends can be unusable gets its own clear message."""

import sqlite3

import pytest

from sqlite_pg.connection import connect_pg, integrity_check, open_sqlite
from sqlite_pg.errors import ConnectError, SourceError
from tests.pg_cluster import SUPERUSER_PASSWORD


def test_missing_file(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        open_sqlite(str(tmp_path / "nope.db"))


def test_directory(tmp_path):
    with pytest.raises(SourceError, match="not a regular file"):
        open_sqlite(str(tmp_path))


def test_not_a_database(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(SourceError, match="not a database or is corrupt"):
        open_sqlite(str(path))


def test_corrupt_pages_are_found_by_integrity_check(tmp_path):
    path = str(tmp_path / "c.db")
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, "x" * 200) for i in range(2000)])
    conn.execute("CREATE INDEX ix ON t(s)")
    conn.commit()
    conn.close()
    with open(path, "r+b") as fh:   # scribble over a page in the middle of the file
        fh.seek(4096 * 20)
        fh.write(b"\xde\xad\xbe\xef" * 512)
    problems = integrity_check(open_sqlite(path))
    assert problems and problems != ["ok"]


def test_locked_file(tmp_path):
    path = str(tmp_path / "l.db")
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("CREATE TABLE t (x)")
    writer.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(SourceError, match="locked"):
            open_sqlite(path, timeout=0.2)
    finally:
        writer.execute("ROLLBACK")


def test_wrong_password(pg_cluster):
    params = dict(login_host="127.0.0.1", port=pg_cluster.port, login_user="postgres",
                  login_password="wrong", db="postgres", ssl_mode="disable")
    with pytest.raises(ConnectError, match="password authentication failed") as err:
        connect_pg(params)
    assert "wrong" not in str(err.value)


def test_good_password_over_tcp(pg_cluster):
    conn = connect_pg(dict(login_host="127.0.0.1", port=pg_cluster.port, login_user="postgres",
                           login_password=SUPERUSER_PASSWORD, db="postgres", ssl_mode="disable"))
    conn.close()


def test_unreachable_server(pg_cluster):
    from tests.pg_cluster import _free_port

    with pytest.raises(ConnectError, match="unable to connect.*127.0.0.1"):
        connect_pg(dict(login_host="127.0.0.1", port=_free_port(), login_user="postgres", db="postgres",
                        connect_timeout=2))
