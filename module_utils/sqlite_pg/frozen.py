"""Counts inside cutover's freeze. The app is stopped, so a table's row count - the one part
of the final pass that grows with the table - is read once on each side, not by the copy,
the catch-up and the verification in turn:

- SQLite: keyed by the file, the table and the change log's position, which every captured
  write moves;
- PostgreSQL: the count the catch-up read after its replay (in its own transaction, keyed by
  the log position it replayed to) is taken once by the verification that follows; any
  other verification counts again.

Outside ``counts()`` nothing is remembered."""

import contextlib

_memo = None


@contextlib.contextmanager
def counts():
    global _memo
    _memo = {}
    try:
        yield
    finally:
        _memo = None


def active():
    return _memo is not None


def recall(key, read):
    """The value remembered under ``key``, else ``read()`` (remembered while frozen)."""
    if _memo is None:
        return read()
    if key not in _memo:
        _memo[key] = read()
    return _memo[key]


def leave(key, value):
    """Leave ``value`` for the next ``take(key)`` (only while frozen)."""
    if _memo is not None:
        _memo[key] = value


def take(key):
    """What ``leave`` left under ``key`` (once), or None."""
    return _memo.pop(key, None) if _memo is not None else None
