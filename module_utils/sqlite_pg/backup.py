"""Consistent copies of a live SQLite file: the backup phase's, and the page copy long reads use.

Unlike ``cp`` of a live file, both copy one committed state even while the app writes. How
depends on the file's journal mode:

- WAL: SQLite's backup API in one step (readers never block writers in WAL). A backup taken a
  few pages at a time starts over whenever another process commits in between, so with an app
  that writes steadily it never finishes: one step it is.
- A rollback journal (``delete``, SQLite's and SQLAlchemy's default, ``truncate``, ``persist``):
  hold a read lock, which no commit can pass, and copy the file - the way SQLite's own
  documentation describes, about five times faster than the backup API's page by page copy,
  so the app's writes wait (not fail) for less than a second per ~300 MB.

``plan_reading`` decides where a long read (the bulk copy, the proof) takes its rows from:
the file itself in WAL mode, a page copy (``reading``) in a rollback-journal file, where a
read transaction as long as the copy would make every write of the app wait, and past its
busy timeout fail.
"""

import contextlib
import datetime
import hashlib
import os
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass

from .connection import integrity_check, open_sqlite
from .errors import MigrationError, SourceError

READ_FROM = ("auto", "live", "page_copy")
SNAPSHOT_PREFIX = "s2p-snapshot-"


def backup_name(source, when=None):
    stamp = (when or datetime.datetime.now(datetime.UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{os.path.basename(source)}.{stamp}.bak"


def sha256_of(path, block=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(block), b""):
            digest.update(chunk)
    return digest.hexdigest()


def journal_mode(conn):
    """The file's journal mode as ``conn`` sees it: ``wal``, or a rollback-journal mode."""
    return conn.execute("PRAGMA main.journal_mode").fetchone()[0].lower()


def page_copy(source, dest, timeout=30.0):
    """Copy one committed state of the SQLite file ``source`` to ``dest`` (a new file).

    Returns {journal_mode, seconds, bytes}: ``seconds`` is how long the copy held its read
    lock, the longest the app's writes waited for it in a rollback-journal file."""
    src = open_sqlite(source, timeout)
    try:
        mode = journal_mode(src)
        try:   # owner-only from the first byte: it holds the app's data
            os.close(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            raise SourceError(f"cannot copy {source}: {dest} exists already") from None
        start = time.monotonic()
        if mode == "wal":
            out = sqlite3.connect(dest)
            try:
                src.backup(out)   # one step
            finally:
                out.close()
        else:
            src.execute("BEGIN")
            try:
                src.execute("SELECT count(*) FROM main.sqlite_master").fetchone()   # the read lock
                shutil.copyfile(source, dest)
            finally:
                src.execute("ROLLBACK")
        seconds = time.monotonic() - start
    except (sqlite3.Error, OSError) as exc:
        with contextlib.suppress(OSError):
            os.unlink(dest)
        raise SourceError(f"cannot copy {source} to {dest}: {exc}") from None
    finally:
        src.close()
    return dict(journal_mode=mode, seconds=seconds, bytes=os.path.getsize(dest))


def backup(source, dest_dir):
    """Back up ``source`` into ``dest_dir``; returns {dest, sha256, size, lock_seconds}."""
    os.makedirs(dest_dir, mode=0o700, exist_ok=True)
    dest = os.path.join(dest_dir, backup_name(source))
    partial = dest + ".partial"
    try:
        if os.path.exists(partial):
            os.unlink(partial)   # left by an interrupted run
        copied = page_copy(source, partial)
        out = sqlite3.connect(partial)
        try:
            problems = integrity_check(out)
        finally:
            out.close()
        if problems:
            raise SourceError(f"the backup of {source} fails integrity_check: {'; '.join(problems[:5])}")
        os.replace(partial, dest)
    except sqlite3.Error as exc:
        raise SourceError(f"backup of {source} failed: {exc}") from None
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return dict(dest=dest, sha256=sha256_of(dest), size=os.path.getsize(dest),
                lock_seconds=round(copied["seconds"], 3))


# --- where a long read takes its rows from ----------------------------------------------------


@dataclass(frozen=True)
class ReadPlan:
    journal_mode: str
    way: str      # live | page_copy
    why: str

    def as_dict(self):
        return dict(journal_mode=self.journal_mode, way=self.way, why=self.why)


def plan_reading(conn, read_from="auto"):
    """Where the copy reads: ``auto`` takes the file itself in WAL mode and a page copy in a
    rollback-journal file; ``live`` and ``page_copy`` say so outright."""
    if read_from not in READ_FROM:
        raise MigrationError(f"read_from must be one of {', '.join(READ_FROM)}")
    mode = journal_mode(conn)
    if read_from == "live":
        why = "read_from is live" + ("" if mode == "wal" else
                                     ": in a rollback-journal file the app's writes wait for the whole read")
        return ReadPlan(mode, "live", why)
    if read_from == "page_copy":
        return ReadPlan(mode, "page_copy", "read_from is page_copy")
    if mode == "wal":
        return ReadPlan(mode, "live", "WAL: reading never blocks the app's writes, so the copy reads the file itself")
    return ReadPlan(mode, "page_copy",
                    f"rollback journal ({mode}): a read as long as the copy would block the app's writes, so the "
                    "copy reads a page copy taken under a short read lock; what the app writes meanwhile comes over "
                    "with the next pass")


def reading_argument_spec():
    """The options of the modules that read the whole source (profile, copy, verify)."""
    return dict(read_from=dict(type="str", default="auto", choices=list(READ_FROM)),
                snapshot_dir=dict(type="path"))


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(directory):
    """Remove page copies left by runs that died (kill -9); returns their names."""
    gone = []
    for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        pid = name[len(SNAPSHOT_PREFIX):].split("-", 1)[0]
        if name.startswith(SNAPSHOT_PREFIX) and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(os.path.join(directory, name), ignore_errors=True)
            gone.append(name)
    return gone


@contextlib.contextmanager
def reading(conn, plan, directory=None):
    """(connection to read, what was done): ``conn`` itself, or a read-only connection on a
    page copy of its file in a private directory under ``directory`` (the system's temporary
    directory by default), removed afterwards."""
    report = plan.as_dict()
    if plan.way == "live":
        yield conn, report
        return
    source = conn.execute("PRAGMA database_list").fetchone()[2]
    directory = directory or tempfile.gettempdir()
    os.makedirs(directory, mode=0o700, exist_ok=True)
    remove_stale(directory)
    need, free = os.path.getsize(source), shutil.disk_usage(directory).free
    if free < need * 1.05:
        raise SourceError(f"no room for a page copy of {source} in {directory}: it needs {need >> 20} MiB, "
                          f"{free >> 20} MiB are free. Free some space, or set snapshot_dir to a directory with room "
                          "(read_from: live reads the file itself, and holds the app's writes while it reads)")
    work = tempfile.mkdtemp(prefix=f"{SNAPSHOT_PREFIX}{os.getpid()}-", dir=directory)
    try:
        copied = page_copy(source, os.path.join(work, os.path.basename(source)))
        report.update(lock_seconds=round(copied["seconds"], 3), bytes=copied["bytes"])
        snapshot = open_sqlite(os.path.join(work, os.path.basename(source)))
        try:
            yield snapshot, report
        finally:
            snapshot.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
