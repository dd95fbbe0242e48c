"""Shared fixtures: a real PostgreSQL cluster for the session and a fresh database per test."""

import itertools
import os
import pwd
import sqlite3
import subprocess

import psycopg2
import pytest

from tests.pg_cluster import Cluster

_counter = itertools.count()
TLS_PASSWORD = "tls-secret"


@pytest.fixture(scope="session")
def pg_cluster():
    cluster = Cluster().start()
    yield cluster
    cluster.stop()


# --- a PostgreSQL reachable only over TLS (hostssl + scram-sha-256), with certificates made here


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _make_certs(directory):
    for ca in ("ca", "other-ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={ca}",
                 "-keyout", f"{ca}.key", "-out", f"{ca}.pem", cwd=directory)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key",
             "-out", "server.csr", cwd=directory)
    with open(os.path.join(directory, "san.ext"), "w") as fh:
        fh.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", "san.ext", "-out", "server.pem", cwd=directory)


@pytest.fixture(scope="session")
def tls_cluster():
    cluster = Cluster(hba=["local all postgres trust", "hostssl all all 127.0.0.1/32 scram-sha-256"])
    _make_certs(cluster.root)
    key = os.path.join(cluster.root, "server.key")
    os.chmod(key, 0o600)
    if cluster.user:
        pw = pwd.getpwnam(cluster.user)
        for name in ("server.key", "server.pem"):
            os.chown(os.path.join(cluster.root, name), pw.pw_uid, pw.pw_gid)
    cluster.settings.update(ssl="on", ssl_cert_file=os.path.join(cluster.root, "server.pem"), ssl_key_file=key)
    cluster.start()
    admin = psycopg2.connect(host=cluster.sockdir, port=cluster.port, user="postgres", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("CREATE ROLE migrator LOGIN PASSWORD %s", (TLS_PASSWORD,))
        cur.execute("CREATE DATABASE app OWNER migrator")
    admin.close()
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
