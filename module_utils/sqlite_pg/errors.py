"""Typed errors raised by the engine. Modules translate them into ``fail_json``."""


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


def short_repr(value, limit=80):
    """A value shown safely: truncated, control characters escaped."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
