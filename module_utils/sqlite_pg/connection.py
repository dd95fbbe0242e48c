"""Opening both ends: the SQLite source read-only, PostgreSQL from plain options."""

import os
import sqlite3

from .errors import ConnectError, SourceError
from .pg import HAS_PSYCOPG2, psycopg2  # noqa: F401 - HAS_PSYCOPG2: the modules' check

MIN_SERVER_VERSION = 120000


def common_argument_spec():
    """Options every module takes: the source, the connection (named as community.postgresql
    names them) and the options that shape the target model, which must be the same for
    schema, copy and verify."""
    return dict(
        source=dict(type="path", required=True),
        login_host=dict(type="str", default=""),
        port=dict(type="int", default=5432),
        login_user=dict(type="str", default="postgres"),
        login_password=dict(type="str", default="", no_log=True),
        login_unix_socket=dict(type="str", default=""),
        db=dict(type="str", required=True),
        ssl_mode=dict(
            type="str",
            default="prefer",
            choices=["allow", "disable", "prefer", "require", "verify-ca", "verify-full"],
        ),
        ca_cert=dict(type="path", aliases=["ssl_rootcert"]),
        connect_timeout=dict(type="int", default=10),
        schema=dict(type="str", default="public"),
        include_tables=dict(type="list", elements="str", default=[]),
        exclude_tables=dict(type="list", elements="str", default=[]),
        timestamp_type=dict(type="str", default="timestamp", choices=["timestamp", "timestamptz"]),
        nocase=dict(type="str", default="citext", choices=["collation", "citext", "lower_index"]),
        generated_columns=dict(type="str", default="stored", choices=["stored", "plain"]),
        column_types=dict(type="dict", default={}),
        interval_units=dict(type="dict", default={}),
        rename=dict(type="dict", default={}),
        models=dict(type="str"),
        app_path=dict(type="path"),
        target=dict(type="str", default="create", choices=["create", "existing"]),
        exclude_columns=dict(type="list", elements="str", default=[]),
        column_defaults=dict(type="dict", default={}),
        source_host=dict(type="str", default=""),
        takeover_from=dict(type="str", default="", no_log=False),
        lock_wait=dict(type="int", default=60),
    )


def pg_connect_kwargs(params):
    """Map module-style options to libpq keywords, dropping empty values."""
    host = params.get("login_unix_socket") or params.get("login_host") or None
    kwargs = dict(
        host=host,
        port=params.get("port"),
        user=params.get("login_user"),
        password=params.get("login_password") or None,
        dbname=params.get("db"),
        sslmode=params.get("ssl_mode"),
        sslrootcert=params.get("ca_cert"),
        connect_timeout=params.get("connect_timeout"),
        application_name="sqlite_pg",
    )
    return {k: v for k, v in kwargs.items() if v not in (None, "")}


def connect_pg(params):
    """Open a PostgreSQL connection (autocommit off) or raise ConnectError with the driver's reason."""
    if not HAS_PSYCOPG2:
        raise ConnectError("psycopg2 is not installed on the host that runs the module")
    kwargs = pg_connect_kwargs(params)
    try:
        conn = psycopg2.connect(**kwargs)
    except psycopg2.OperationalError as exc:
        where = kwargs.get("host", "local socket")
        raise ConnectError(
            f"unable to connect to database {kwargs.get('dbname')!r} on {where}:{kwargs.get('port')} "
            f"as {kwargs.get('user')!r}: {str(exc).strip()}"
        ) from None
    if conn.server_version < MIN_SERVER_VERSION:
        version = conn.server_version
        conn.close()
        raise ConnectError(f"the server's version ({version}, as server_version_num) is not supported: "
                           "the target must be PostgreSQL 12 or later")
    conn.set_client_encoding("UTF8")
    with conn.cursor() as cur:
        # Timestamps are written and compared as UTC; the session zone must not shift them.
        cur.execute("SET TIME ZONE 'UTC'")
    conn.commit()
    return conn


def open_sqlite(path, timeout=30.0):
    """Open the SQLite file read-only and prove it is a readable database.

    A missing file, a directory, a file that is not SQLite, and a locked file each get
    their own message.
    """
    if not os.path.exists(path):
        raise SourceError(f"SQLite file {path} does not exist")
    if not os.path.isfile(path):
        raise SourceError(f"SQLite source {path} is not a regular file")
    if not os.access(path, os.R_OK):
        raise SourceError(f"SQLite file {path} is not readable by this user")
    uri = "file:" + _uri_path(os.path.abspath(path)) + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA query_only = 1")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        text = str(exc)
        if "locked" in text or "busy" in text:
            raise SourceError(f"SQLite file {path} is locked by another process: {text}") from None
        raise SourceError(f"SQLite file {path} is not a database or is corrupt: {text}") from None
    conn.text_factory = _decode_text
    return conn


def require_utf8(conn, path):
    """The data path hands SQLite's text to COPY as bytes: a UTF-16 file would send UTF-16.
    Refused with the way out rather than with a row-by-row refusal of every text value."""
    encoding = conn.execute("PRAGMA encoding").fetchone()[0]
    if encoding.upper() != "UTF-8":
        raise SourceError(
            f"SQLite file {path} stores text as {encoding}; the copy reads UTF-8 databases only. "
            f"With the app stopped, convert it (sqlite3 {path} .dump | sqlite3 NEW.db) and point the app "
            f"and the migration's source at NEW.db")


def snapshot_readers(conn, extra, timeout=30.0):
    """Start a read transaction on ``conn`` and on up to ``extra`` new read-only connections,
    all on the same snapshot of the file, so several threads can read one consistent state.

    Writers are held off for the few milliseconds it takes (BEGIN IMMEDIATE on a separate
    connection). Without write access to the file that is impossible: then only ``conn``
    reads. Returns the list of connections, ``conn`` first; each is in a read transaction.
    """
    path = conn.execute("PRAGMA database_list").fetchone()[2]
    readers = [conn]
    lock = None
    if extra and path and os.access(path, os.W_OK) and os.access(os.path.dirname(path) or ".", os.W_OK):
        try:
            lock = sqlite3.connect(path, timeout=timeout, isolation_level=None)
            lock.execute("BEGIN IMMEDIATE")
        except sqlite3.Error:
            lock = None
    if lock is not None:
        readers += [open_sqlite(path, timeout) for _ in range(extra)]
    try:
        for reader in readers:
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot starts here
    finally:
        if lock is not None:
            lock.execute("ROLLBACK")
            lock.close()
    return readers


def integrity_check(conn, max_errors=20):
    """Run PRAGMA integrity_check; return the list of problems (empty when the file is sound)."""
    try:
        rows = [r[0] for r in conn.execute(f"PRAGMA integrity_check({int(max_errors)})")]
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    return [] if rows == ["ok"] else rows


def _decode_text(raw):
    # Invalid UTF-8 must not raise deep inside a fetch: keep the bytes recoverable instead.
    return raw.decode("utf-8", "surrogateescape")


def _uri_path(path):
    return path.replace("%", "%25").replace("?", "%3f").replace("#", "%23")
