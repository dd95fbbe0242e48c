"""Online backup of a SQLite file through SQLite's backup API.

Unlike ``cp`` of a live file, the backup API copies a consistent state even while the app
writes (pages changed meanwhile are copied again). The result is checked and hashed.
"""

import datetime
import hashlib
import os
import sqlite3

from .connection import integrity_check, open_sqlite
from .errors import SourceError


def backup_name(source, when=None):
    stamp = (when or datetime.datetime.now(datetime.UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{os.path.basename(source)}.{stamp}.bak"


def sha256_of(path, block=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(block), b""):
            digest.update(chunk)
    return digest.hexdigest()


def backup(source, dest_dir, pages_per_step=4096):
    """Back up ``source`` into ``dest_dir``; returns {dest, sha256, size}."""
    src = open_sqlite(source)
    os.makedirs(dest_dir, mode=0o700, exist_ok=True)
    dest = os.path.join(dest_dir, backup_name(source))
    partial = dest + ".partial"
    try:
        out = sqlite3.connect(partial)
        try:
            src.backup(out, pages=pages_per_step)
            problems = integrity_check(out)
        finally:
            out.close()
        if problems:
            raise SourceError(f"the backup of {source} fails integrity_check: {'; '.join(problems[:5])}")
        os.chmod(partial, 0o600)
        os.replace(partial, dest)
    except sqlite3.Error as exc:
        raise SourceError(f"backup of {source} failed: {exc}") from None
    finally:
        src.close()
        if os.path.exists(partial):
            os.unlink(partial)
    return dict(dest=dest, sha256=sha256_of(dest), size=os.path.getsize(dest))
