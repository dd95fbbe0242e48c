"""Shared fixtures: a real PostgreSQL cluster for the session and a fresh database per test."""

import itertools
import sqlite3

import psycopg2
import pytest

from tests.pg_cluster import Cluster

_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_cluster():
    cluster = Cluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_db(pg_cluster):
    """A fresh, empty database; yields its module-style connection options."""
    name = f"t{next(_counter)}"
    admin = psycopg2.connect(host=pg_cluster.sockdir, port=pg_cluster.port, user="postgres", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    yield pg_cluster.params(name)
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture
def pg_conn(pg_db):
    from sqlite_pg.connection import connect_pg

    conn = connect_pg(pg_db)
    yield conn
    conn.close()


@pytest.fixture
def sqlite_path(tmp_path):
    """Path of a new SQLite file; tests fill it with make_sqlite()."""
    return str(tmp_path / "source.db")


def make_sqlite(path, script, rows=None):
    """Create a SQLite file from a DDL script plus {table: [tuples]} of rows."""
    conn = sqlite3.connect(path)
    conn.executescript(script)
    for table, values in (rows or {}).items():
        if values:
            marks = ", ".join("?" * len(values[0]))
            quoted = table.replace('"', '""')
            conn.executemany(f'INSERT INTO "{quoted}" VALUES ({marks})', values)
    conn.commit()
    conn.close()
    return path


def migrate(params, on_error="error", orphans="error"):
    """The whole path as the playbook runs it: tables, copy, constraints."""
    from sqlite_pg import run

    run.schema(params, phase="tables")
    result = run.copy(params, on_error=on_error)
    run.schema(params, phase="constraints", orphans=orphans)
    return result


def fetch(params, query, args=None):
    from sqlite_pg.connection import connect_pg

    conn = connect_pg(params)
    try:
        with conn.cursor() as cur:
            cur.execute(query, args)
            rows = cur.fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()
