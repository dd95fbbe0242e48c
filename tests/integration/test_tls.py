"""A PostgreSQL reachable only over TLS (hostssl, scram-sha-256), and a migration role that
is not a superuser and owns only its database: the whole path works through verify-full,
and each way a connection can be wrong gets its own clear message."""

import os

import pytest
from sqlalchemy import create_engine, text

from filter_plugins.database_url import database_url
from sqlite_pg import run
from sqlite_pg.connection import connect_pg
from sqlite_pg.errors import ConnectError
from tests.conftest import TLS_PASSWORD as PASSWORD
from tests.conftest import make_sqlite, migrate


def _params(cluster, **over):
    out = dict(login_host="localhost", port=cluster.port, login_user="migrator", login_password=PASSWORD,
               db="app", ssl_mode="verify-full", ca_cert=os.path.join(cluster.root, "ca.pem"))
    out.update(over)
    return out


def test_schema_copy_verify_through_verify_full(tls_cluster, sqlite_path):
    make_sqlite(sqlite_path, "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT, at DATETIME);",
                {"t": [(i, f"row {i}", "2024-01-01 00:00:00") for i in range(1, 1001)]})
    params = dict(_params(tls_cluster), source=sqlite_path)
    migrate(params)
    assert run.verify_all(params)["rows"] == 1000
    conn = connect_pg(params)
    with conn.cursor() as cur:
        cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        assert cur.fetchone() == (True,)
        cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        assert cur.fetchone() == (False,)
    conn.close()


def test_database_url_carries_the_tls_settings(tls_cluster):
    p = _params(tls_cluster)
    url = database_url("postgresql+psycopg2", p["login_user"], p["login_password"], p["login_host"], p["port"],
                       p["db"], p["ssl_mode"], p["ca_cert"])
    assert "sslmode=verify-full" in url and "sslrootcert=" in url
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")) is True
    engine.dispose()


def test_wrong_ca_is_refused(tls_cluster):
    with pytest.raises(ConnectError, match="certificate verify failed"):
        connect_pg(_params(tls_cluster, ca_cert=os.path.join(tls_cluster.root, "other-ca.pem")))


def test_plaintext_is_refused(tls_cluster):
    with pytest.raises(ConnectError, match="no pg_hba.conf entry .* no encryption"):
        connect_pg(_params(tls_cluster, ssl_mode="disable"))


def test_wrong_password_is_refused(tls_cluster):
    with pytest.raises(ConnectError, match="password authentication failed for user \"migrator\""):
        connect_pg(_params(tls_cluster, login_password="nope"))
