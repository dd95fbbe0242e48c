"""Read a SQLite schema into plain data classes (no PostgreSQL knowledge here)."""

import re
import sqlite3
from dataclasses import dataclass, field

from .errors import SourceError

# The change-capture log and triggers this migration adds to the app's file (capture.py):
# never migrated themselves.
CAPTURE_LOG = "_s2p_changes"
CAPTURE_PREFIX = "_s2p_"
# The source's identity (ownership.py): a random id the target's owner record names.
SOURCE_ID = "_s2p_source"


@dataclass(frozen=True)
class Column:
    name: str
    declared: str          # the declared type exactly as written ('' when none)
    notnull: bool
    default: str | None    # the default as SQL text, as SQLite stores it
    pk_position: int       # 1-based position in the primary key, 0 when not part of it
    generated: bool = False


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple
    ref_table: str
    ref_columns: tuple     # empty when the reference names the parent's primary key implicitly
    on_update: str
    on_delete: str


@dataclass(frozen=True)
class Index:
    name: str
    columns: tuple         # column names; empty when the index uses expressions
    descending: tuple
    unique: bool
    origin: str            # 'c' created by CREATE INDEX, 'u' UNIQUE constraint, 'pk' primary key
    partial: bool
    sql: str | None

    @property
    def portable(self):
        """True when the index is plain columns, so it means the same thing in PostgreSQL."""
        return bool(self.columns) and not self.partial


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple
    primary_key: tuple     # column names, in key order
    without_rowid: bool
    autoincrement: bool
    foreign_keys: tuple = ()
    indexes: tuple = ()
    sql: str = ""

    @property
    def rowid_alias(self):
        """The column that is SQLite's rowid (INTEGER PRIMARY KEY), or None."""
        if self.without_rowid or len(self.primary_key) != 1:
            return None
        col = self.column(self.primary_key[0])
        return col.name if col.declared.strip().upper() == "INTEGER" else None

    @property
    def has_rowid(self):
        return not self.without_rowid

    def column(self, name):
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def column_names(self):
        return tuple(c.name for c in self.columns)


@dataclass
class Schema:
    tables: dict = field(default_factory=dict)      # name -> Table, in source order
    views: list = field(default_factory=list)       # view names (listed, not migrated)
    triggers: list = field(default_factory=list)    # trigger names (listed, not migrated)
    skipped: dict = field(default_factory=dict)     # name -> why it is not migrated
    notes: list = field(default_factory=list)       # how the tables were bound to an existing schema

    def select(self, include=(), exclude=()):
        """The tables to migrate: all, or those in include, minus those in exclude."""
        names = list(self.tables)
        unknown = [n for n in list(include) + list(exclude) if n not in self.tables]
        if unknown:
            raise SourceError(f"tables not found in the SQLite file: {', '.join(sorted(unknown))}")
        if include:
            names = [n for n in names if n in include]
        return [self.tables[n] for n in names if n not in exclude]


def quote_ident(name):
    """SQLite identifier quoting: embedded double quotes are doubled."""
    return '"' + name.replace('"', '""') + '"'


def read_schema(conn):
    """Read every user table of the SQLite database behind ``conn``."""
    schema = Schema()
    try:
        listing = conn.execute("PRAGMA main.table_list").fetchall()
        master = {
            name: (kind, sql or "")
            for kind, name, sql in conn.execute("SELECT type, name, sql FROM main.sqlite_master")
        }
    except sqlite3.DatabaseError as exc:
        raise SourceError(f"cannot read the SQLite schema: {exc}") from None
    order = {name: i for i, name in enumerate(master)}
    for _schema, name, kind, _ncol, without_rowid, _strict in sorted(listing, key=lambda r: order.get(r[1], 0)):
        if _schema != "main":
            continue
        if name.startswith("sqlite_"):
            continue
        if name == CAPTURE_LOG:
            schema.skipped[name] = "change-capture log of this migration (see capture.py)"
            continue
        if name == SOURCE_ID:
            schema.skipped[name] = "this source's identity, named by the target's owner record (see ownership.py)"
            continue
        if kind == "view":
            schema.views.append(name)
            continue
        if kind == "virtual":
            schema.skipped[name] = "virtual table (its module has no PostgreSQL equivalent)"
            continue
        if kind == "shadow":
            schema.skipped[name] = "shadow table of a virtual table"
            continue
        schema.tables[name] = _read_table(conn, name, bool(without_rowid), master.get(name, ("", ""))[1])
    schema.views.sort()
    schema.triggers = sorted(name for name, (kind, _sql) in master.items()
                             if kind == "trigger" and not name.startswith(CAPTURE_PREFIX))
    return schema


def _read_table(conn, name, without_rowid, sql):
    q = quote_ident(name)
    columns = []
    for _cid, cname, ctype, notnull, default, pk, hidden in conn.execute(f"PRAGMA main.table_xinfo({q})"):
        if hidden == 1:  # hidden column of a virtual table
            continue
        columns.append(Column(cname, ctype or "", bool(notnull), default, int(pk), generated=hidden in (2, 3)))
    primary_key = tuple(c.name for c in sorted((c for c in columns if c.pk_position), key=lambda c: c.pk_position))

    fks = {}
    for fk_id, _seq, ref_table, from_col, to_col, on_update, on_delete, _match in conn.execute(
        f"PRAGMA main.foreign_key_list({q})"
    ):
        entry = fks.setdefault(fk_id, dict(columns=[], ref_columns=[], ref_table=ref_table,
                                           on_update=on_update, on_delete=on_delete))
        entry["columns"].append(from_col)
        if to_col is not None:
            entry["ref_columns"].append(to_col)
    foreign_keys = tuple(
        ForeignKey(tuple(e["columns"]), e["ref_table"], tuple(e["ref_columns"]), e["on_update"], e["on_delete"])
        for _, e in sorted(fks.items())
    )

    index_sql = dict(conn.execute("SELECT name, sql FROM main.sqlite_master WHERE type = 'index' AND tbl_name = ?",
                                  (name,)).fetchall())
    indexes = []
    for _seq, iname, unique, origin, partial in conn.execute(f"PRAGMA main.index_list({q})"):
        cols, desc, expression = [], [], False
        for _seqno, cid, cname, is_desc, _coll, key in conn.execute(f"PRAGMA main.index_xinfo({quote_ident(iname)})"):
            if not key:
                continue
            if cid == -2 or cname is None:
                expression = True
            else:
                cols.append(cname)
                desc.append(bool(is_desc))
        indexes.append(Index(iname, () if expression else tuple(cols), tuple(desc), bool(unique), origin,
                             bool(partial), index_sql.get(iname)))
    indexes.sort(key=lambda i: i.name)

    autoincrement = bool(re.search(r"\bAUTOINCREMENT\b", sql, re.IGNORECASE))
    return Table(name, tuple(columns), primary_key, without_rowid, autoincrement,
                 foreign_keys, tuple(indexes), sql)


def sqlite_sequence(conn):
    """AUTOINCREMENT high-water marks: table -> last id handed out (SQLite never reuses below it)."""
    try:
        return dict(conn.execute("SELECT name, seq FROM main.sqlite_sequence").fetchall())
    except sqlite3.OperationalError:
        return {}
