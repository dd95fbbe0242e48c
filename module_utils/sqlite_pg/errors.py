"""Typed errors raised by the engine. Modules translate them into ``fail_json``."""

import contextlib


class MigrationError(Exception):
    """Base class: every error the engine raises on purpose."""


class SourceError(MigrationError):
    """The SQLite file is missing, unreadable, locked or corrupt."""


class ConnectError(MigrationError):
    """PostgreSQL could not be reached or refused the login."""


class SchemaError(MigrationError):
    """The source schema cannot be mapped, or the target schema has drifted."""


class DataError(MigrationError):
    """A source value cannot be stored in its target column.

    Names the table, the row's key, the column and the value, so an operator can find it.
    """

    def __init__(self, table, key, column, value, reason):
        self.table, self.key, self.column, self.value, self.reason = table, key, column, value, reason
        where = f"table {table!r}, key {key}"
        if column:
            where += f", column {column!r}"
        super().__init__(f"{where}: {reason} (value: {short_repr(value)})")


class VerifyError(MigrationError):
    """Source and target differ; ``report`` holds the per-table findings."""

    def __init__(self, message, report):
        super().__init__(message)
        self.report = report


class ProfileError(MigrationError):
    """The source is not fit to move as asked (corrupt, or more rejects than allowed)."""

    def __init__(self, message, report):
        super().__init__(message)
        self.report = report


def json_safe(value):
    """``value`` with every text that is not valid UTF-8 (SQLite hands such text over with
    surrogate escapes) replaced by ``{"invalid_utf8_hex": its bytes}``, as the rejects table
    keeps it: a result Ansible (and JSON) can carry, nothing lost."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return {"invalid_utf8_hex": value.encode("utf-8", "surrogateescape").hex()}
        return value
    if isinstance(value, dict):
        return {(repr(k) if isinstance(json_safe(k), dict) else k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def short_repr(value, limit=80):
    """A value shown safely: truncated, control characters escaped."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ConnectionLost(ConnectError):
    """The PostgreSQL connection broke while a phase ran (server restart, network, a
    terminated backend). What was committed is kept; a rerun resumes."""


class SourceCorrupt(SourceError):
    """The SQLite file has corrupt pages: reading it failed part way."""


# SQLite's own words for a damaged file (sqlite3.DatabaseError's text).
_CORRUPT_WORDS = ("malformed", "file is not a database", "disk i/o error", "corrupt")


def fault(exc, source=None):
    """The typed error for a fault of the environment that reached the engine as a driver
    exception (a lost PostgreSQL connection, a corrupt SQLite file), or None when ``exc``
    is not one. Each says what happened and what to do, rather than "unexpected error"."""
    import sqlite3

    from .pg import psycopg2
    if psycopg2 is not None and isinstance(exc, psycopg2.Error):
        code = getattr(exc, "pgcode", None) or ""
        lost = isinstance(exc, psycopg2.InterfaceError) or (
            isinstance(exc, psycopg2.OperationalError) and (not code or code.startswith(("08", "57P"))))
        if lost:
            # A rollback on the closed connection hides the first error: name the first.
            first = exc
            while isinstance(first.__context__, psycopg2.Error):
                first = first.__context__
            detail = " ".join(str(first).split()) or type(first).__name__
            return ConnectionLost(
                f"the connection to PostgreSQL was lost ({detail}): what was not committed was rolled back, "
                "every table finished before it is kept; check that the server is up and reachable, then "
                "rerun the same step: it resumes where it stopped")
        return None
    if isinstance(exc, sqlite3.DatabaseError) and any(w in str(exc).lower() for w in _CORRUPT_WORDS):
        where = f"the SQLite file {source!r}" if source else "the SQLite file"
        return SourceCorrupt(
            f"{where} is corrupt ({exc}): reading it failed part way (tables copied before the damage are "
            "kept on PostgreSQL, nothing else was written). Restore the file from the backup the backup "
            "phase took (migration_work_dir/backups, or your own), or repair it (sqlite3 FILE '.recover'), "
            "then rerun")
    return None


@contextlib.contextmanager
def faults(source=None):
    """Turn a fault of the environment raised inside the block into its typed error (see
    ``fault``); anything else passes unchanged."""
    try:
        yield
    except MigrationError:
        raise
    except Exception as exc:
        typed = fault(exc, source)
        if typed is None:
            raise
        raise typed from exc
