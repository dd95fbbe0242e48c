"""The SQLite side of the data path: a table read in key ranges, formatted as COPY text by
SQLite itself, handed to the COPY by reader threads.

``SourceTable`` knows one table's keys and the codecs' SQL; ``Feed`` is the file-like
object ``copy_expert`` reads, fed by one reader thread per SQLite connection.
"""

import queue
import sqlite3
import threading

from . import frozen
from .errors import MigrationError
from .introspect import CAPTURE_LOG, quote_ident

_MAX_CHUNK_ROWS = 50_000
_CHUNK_BYTES = 4 << 20


class SourceTable:
    """Chunked access to one SQLite table, in key order, for the fast and the slow path."""

    def __init__(self, conn, table, columns):
        self.conn = conn
        self.table = table
        self.columns = columns
        self.qname = quote_ident(table.name)
        if table.has_rowid:
            # A column may be named rowid; SQLite's other names for it are _rowid_ and oid.
            taken = {n.lower() for n in table.column_names}
            name = next((n for n in ("rowid", "_rowid_", "oid") if n not in taken), None)
            if name is None:
                raise MigrationError(f"table {table.name!r} has columns named rowid, _rowid_ and oid: its rows "
                                     "cannot be addressed; rename one of them")
            self.keys = ("rowid",)
            self.key_sql = name
        else:
            self.keys = tuple(table.primary_key)
            self.key_sql = ", ".join(quote_ident(k) for k in self.keys)
        self.line_sql = self._line([c.codec.field(quote_ident(c.source)) for c in columns])
        self.careful_line_sql = self._line([c.codec.field(quote_ident(c.source), careful=True) for c in columns])

    @staticmethod
    def _line(fields):
        return " || ',' || ".join(f"({f})" for f in fields) + " || char(10)"

    def stats(self):
        """(row count, highest rowid or None); inside cutover's freeze read once per table
        and change-log position (``frozen``)."""
        if not frozen.active():
            return self._stats()
        try:
            file = self.conn.execute("SELECT file FROM pragma_database_list WHERE name = 'main'").fetchone()[0]
            seq = self.conn.execute("SELECT seq FROM main.sqlite_sequence WHERE name = ?", (CAPTURE_LOG,)).fetchone()
        except sqlite3.OperationalError:   # no AUTOINCREMENT table at all: no capture
            seq = None
        if seq is None:
            return self._stats()
        return frozen.recall(("sqlite", file, self.table.name, seq[0]), self._stats)

    def _stats(self):
        if self.table.has_rowid:
            # Two scalar subqueries, one snapshot: alone, count(*) reads the smallest index and
            # max(rowid) is one seek; together in one SELECT they scan the table (7x at 4M rows).
            return tuple(self.conn.execute(f"SELECT (SELECT count(*) FROM {self.qname}), "
                                           f"(SELECT max({self.key_sql}) FROM {self.qname})").fetchone())
        return self.conn.execute(f"SELECT count(*) FROM {self.qname}").fetchone()[0], None

    def _where(self, lo, hi):
        parts, args = [], []
        row = f"({self.key_sql})" if len(self.keys) > 1 else self.key_sql
        for op, bound in ((">", lo), ("<=", hi)):
            if bound is None:
                continue
            marks, values = _bind(bound)
            parts.append(f"{row} {op} {'(' + marks + ')' if len(self.keys) > 1 else marks}")
            args.extend(values)
        return (" AND ".join(parts) or "1"), args

    def chunks(self, first_rows=256, careful=False, start=None, end=None):
        """Yield (lo, hi, rows, good, payload) over keys in (start, end]; sizes adapt to ~4 MB of text."""
        lo, limit = start, first_rows
        order = self.key_sql
        line_sql = self.careful_line_sql if careful else self.line_sql
        while True:
            where, args = self._where(lo, end)
            if self.table.has_rowid:
                row = self.conn.execute(
                    f"SELECT max(k), count(*), count(line), CAST(group_concat(line, '') AS BLOB) FROM "
                    f"(SELECT {self.key_sql} AS k, {line_sql} AS line FROM {self.qname} WHERE {where} "
                    f"ORDER BY {self.key_sql} LIMIT ?)", args + [limit]).fetchone()
                hi = (row[0],) if row[0] is not None else None
                rows, good, payload = row[1], row[2], row[3] or b""
            else:
                edge = self.conn.execute(
                    f"SELECT {self.key_sql} FROM {self.qname} WHERE {where} ORDER BY {order} LIMIT 1 OFFSET ?",
                    args + [limit - 1]).fetchone()
                hi = tuple(edge) if edge else end
                cwhere, cargs = self._where(lo, hi)
                row = self.conn.execute(
                    f"SELECT count(*), count(line), CAST(group_concat(line, '') AS BLOB) FROM "
                    f"(SELECT {line_sql} AS line FROM {self.qname} WHERE {cwhere} ORDER BY {order})",
                    cargs).fetchone()
                rows, good, payload = row[0], row[1], row[2] or b""
            if rows == 0:
                return
            yield lo, hi, rows, good, payload
            if hi is None or rows < limit or hi == end:
                return
            lo = hi
            grow = _CHUNK_BYTES * rows // max(len(payload), 1)
            limit = max(1, min(_MAX_CHUNK_ROWS, limit * 4, grow))

    def split(self, parts, source_rows, min_rows=100_000):
        """Key ranges [(start, end)] that share the table between ``parts`` readers."""
        if parts < 2 or not self.table.has_rowid or source_rows < min_rows:
            return [(None, None)]
        edges = [None]
        for i in range(1, parts):
            row = self.conn.execute(f"SELECT {self.key_sql} FROM {self.qname} ORDER BY {self.key_sql} LIMIT 1 OFFSET ?",
                                    (source_rows * i // parts,)).fetchone()
            if row:
                edges.append((row[0],))
        edges.append(None)
        return list(zip(edges[:-1], edges[1:], strict=True))

    def on(self, conn):
        """The same table read through another connection (of the same snapshot)."""
        twin = SourceTable.__new__(SourceTable)
        twin.__dict__.update(self.__dict__)
        twin.conn = conn
        return twin

    def keys_in(self, lo, hi):
        where, args = self._where(lo, hi)
        return [tuple(r) for r in self.conn.execute(
            f"SELECT {self.key_sql} FROM {self.qname} WHERE {where} ORDER BY {self.key_sql}", args)]

    def payload(self, lo, hi):
        """(rows that convert, their COPY text) for the key range (lo, hi]."""
        where, args = self._where(lo, hi)
        good, payload = self.conn.execute(
            f"SELECT count(line), CAST(group_concat(line, '') AS BLOB) FROM (SELECT {self.careful_line_sql} AS line "
            f"FROM {self.qname} WHERE {where} ORDER BY {self.key_sql})", args).fetchone()
        return good, payload or b""

    # --- rows by logged key (catch-up from the change-capture log) ----------------------------

    def _pk_row(self, alias=""):
        keys = [alias + quote_ident(k) for k in self.table.primary_key]
        return keys[0] if len(keys) == 1 else f"({', '.join(keys)})"

    def _in(self, keys_sql):
        return f"{self._pk_row()} IN ({keys_sql})" if keys_sql else "1"

    def changed(self, keys_sql, args):
        """(rows, good, COPY text) of the rows whose key is among ``keys_sql`` (a subquery;
        None: every row)."""
        rows, good, payload = self.conn.execute(
            f"SELECT count(*), count(line), CAST(group_concat(line, '') AS BLOB) FROM (SELECT "
            f"{self.careful_line_sql} AS line FROM {self.qname} WHERE {self._in(keys_sql)})", args).fetchone()
        return rows, good, payload or b""

    def changed_bad_rows(self, keys_sql, args):
        return self.bad_rows_where(self._in(keys_sql), args)

    def gone(self, keys_sql, args):
        """COPY text of the logged keys (key columns only) whose row is no longer in the table,
        or no longer converts: these rows leave the target."""
        codecs = {c.source: c.codec for c in self.columns}
        fields = [codecs[k].field(f"s2p_log.k{i}", careful=True) for i, k in enumerate(self.table.primary_key)]
        # BINARY: under a NOCASE key, 'Bob' replacing 'bob' must leave 'bob' behind as gone.
        match = " AND ".join(f"s2p_row.{quote_ident(k)} IS s2p_log.k{i} COLLATE BINARY"
                             for i, k in enumerate(self.table.primary_key))
        count, payload = self.conn.execute(
            f"SELECT count(line), CAST(group_concat(line, '') AS BLOB) FROM (SELECT {self._line(fields)} AS line "
            f"FROM ({keys_sql}) AS s2p_log WHERE NOT EXISTS (SELECT 1 FROM {self.qname} AS s2p_row "
            f"WHERE {match} AND ({self.careful_line_sql}) IS NOT NULL))", args).fetchone()
        return count, payload or b""

    def bad_rows(self, lo, hi, only_bad=True):
        """Rows in the range that the SQL left out: (key dict, {column: reason}, raw values)."""
        where, args = self._where(lo, hi)
        return self.bad_rows_where(where, args, only_bad)

    def bad_rows_where(self, where, args, only_bad=True):
        problems = ", ".join(c.codec.problem(quote_ident(c.source)) for c in self.columns)
        raws = ", ".join(quote_ident(c) for c in self.table.column_names)
        pk = ", ".join(quote_ident(c) for c in self.table.primary_key) or self.key_sql
        cond = f" AND ({self.careful_line_sql}) IS NULL" if only_bad else ""
        n = len(self.columns)
        cursor = self.conn.execute(
            f"SELECT {pk}, {problems}, {raws} FROM {self.qname} WHERE {where}{cond} ORDER BY {self.key_sql}", args)
        keys = self.table.primary_key or ("rowid",)
        for row in cursor:
            key = dict(zip(keys, row[:len(keys)], strict=True))
            reasons = {c.source: r for c, r in zip(self.columns, row[len(keys):len(keys) + n], strict=True)
                       if r is not None}
            raw = dict(zip(self.table.column_names, row[len(keys) + n:], strict=True))
            yield key, reasons, raw


# --- the copy ---------------------------------------------------------------------------------


def _bind(key):
    """Placeholders and values for a key. Text that is not valid UTF-8 comes back from
    SQLite as a str with surrogate escapes; it is bound as its bytes, cast back to text."""
    marks, values = [], []
    for value in key:
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                marks.append("CAST(? AS TEXT)")
                values.append(value.encode("utf-8", "surrogateescape"))
                continue
        marks.append("?")
        values.append(value)
    return ", ".join(marks), values


class Feed:
    """File-like object for copy_expert, fed by reader threads through a bounded queue.

    sqlite3 releases the GIL while SQLite formats a chunk, so readers on their own
    connections format in parallel while PostgreSQL parses what was sent before.
    """

    def __init__(self, sources, depth=4, on_rows=None):
        self.on_rows = on_rows
        self.queue = queue.Queue(maxsize=depth)
        self.bad_ranges = []
        self.rows = 0
        self.bytes = 0
        self.error = None
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.running = len(sources)
        self.threads = [threading.Thread(target=self._produce, args=(chunks,), daemon=True) for chunks in sources]
        for thread in self.threads:
            thread.start()

    def _produce(self, chunks):
        try:
            for lo, hi, rows, good, payload in chunks:
                with self.lock:   # several reader threads add up here
                    if rows != good:
                        self.bad_ranges.append((lo, hi))
                    self.rows += good
                if self.stop.is_set():
                    return
                self.queue.put(payload)
        except BaseException as exc:  # handed to the main thread, raised there
            self.error = exc
        finally:
            self.queue.put(None)

    def read(self, _size=-1):
        while True:
            if self.running == 0:
                if self.error:
                    raise self.error
                return b""
            data = self.queue.get()
            if data is None:
                self.running -= 1
                continue
            if data:
                self.bytes += len(data)
                if self.on_rows:
                    self.on_rows(self.rows)
                return data

    def close(self):
        self.stop.set()
        while any(t.is_alive() for t in self.threads):
            try:
                self.queue.get(timeout=0.1)
            except queue.Empty:
                pass
        for thread in self.threads:
            thread.join()


def parallel_chunks(source, connections, source_rows):
    """One chunk generator per reader connection, over its share of the table."""
    ranges = source.split(len(connections), source_rows)
    return [source.on(conn).chunks(start=lo, end=hi) for conn, (lo, hi) in zip(connections, ranges, strict=False)]
