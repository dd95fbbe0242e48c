"""Read a SQLite schema into plain data classes (no PostgreSQL knowledge here)."""

import re
import sqlite3
from dataclasses import dataclass, field

from .errors import SourceError
from .sqlexpr import Untranslatable, closing, split_top, tokenize

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
    collation: str = ""    # the declared COLLATE name, upper-cased ('' when none)
    expression: str = ""   # a generated column's SQLite expression


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple
    ref_table: str
    ref_columns: tuple     # empty when the reference names the parent's primary key implicitly
    on_update: str
    on_delete: str
    name: str = ""         # the CONSTRAINT name written in the SQLite schema ('' when none)
    deferrable: str = ""   # '' (not deferrable), 'deferred' or 'immediate', as written


@dataclass(frozen=True)
class Check:
    name: str              # the CONSTRAINT name written in the SQLite schema ('' when none)
    sql: str               # the expression inside CHECK ( ... ), as written
    column: str = ""       # the column it was written on ('' for a table constraint)


@dataclass(frozen=True)
class Index:
    name: str
    columns: tuple         # column names; empty when the index uses expressions
    descending: tuple
    unique: bool
    origin: str            # 'c' created by CREATE INDEX, 'u' UNIQUE constraint, 'pk' primary key
    partial: bool
    sql: str | None
    collations: tuple = ()  # per key column, upper-cased ('BINARY' unless written otherwise)

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
    checks: tuple = ()
    unique_names: tuple = ()   # ((columns, CONSTRAINT name), ...) for named UNIQUE constraints
    unreadable: str = ""       # why the CREATE TABLE text could not be read for the rules above
    pk_name: str = ""          # the primary key's CONSTRAINT name ('' when none)

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
    views: list = field(default_factory=list)       # view names, in creation order is view_sql's
    view_sql: dict = field(default_factory=dict)    # view name -> CREATE VIEW text, in creation order
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
            schema.view_sql[name] = master.get(name, ("", ""))[1]
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
    rules = parse_create_table(sql)
    columns = []
    for _cid, cname, ctype, notnull, default, pk, hidden in conn.execute(f"PRAGMA main.table_xinfo({q})"):
        if hidden == 1:  # hidden column of a virtual table
            continue
        written = rules["columns"].get(cname.lower(), {})
        columns.append(Column(cname, ctype or "", bool(notnull), default, int(pk), generated=hidden in (2, 3),
                              collation=written.get("collation", ""), expression=written.get("expression", "")))
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
    written_fks = {(tuple(c.lower() for c in f["columns"]), f["ref_table"].lower()): f for f in rules["foreign_keys"]}
    foreign_keys = []
    for _, e in sorted(fks.items()):
        written = written_fks.get((tuple(c.lower() for c in e["columns"]), e["ref_table"].lower()), {})
        foreign_keys.append(ForeignKey(tuple(e["columns"]), e["ref_table"], tuple(e["ref_columns"]), e["on_update"],
                                       e["on_delete"], written.get("name", ""), written.get("deferrable", "")))
    foreign_keys = tuple(foreign_keys)

    index_sql = dict(conn.execute("SELECT name, sql FROM main.sqlite_master WHERE type = 'index' AND tbl_name = ?",
                                  (name,)).fetchall())
    indexes = []
    for _seq, iname, unique, origin, partial in conn.execute(f"PRAGMA main.index_list({q})"):
        cols, desc, colls, expression = [], [], [], False
        for _seqno, cid, cname, is_desc, coll, key in conn.execute(f"PRAGMA main.index_xinfo({quote_ident(iname)})"):
            if not key:
                continue
            if cid == -2 or cname is None:
                expression = True
            else:
                cols.append(cname)
                desc.append(bool(is_desc))
                colls.append((coll or "BINARY").upper())
        indexes.append(Index(iname, () if expression else tuple(cols), tuple(desc), bool(unique), origin,
                             bool(partial), index_sql.get(iname), tuple(colls)))
    indexes.sort(key=lambda i: i.name)

    autoincrement = bool(re.search(r"\bAUTOINCREMENT\b", sql, re.IGNORECASE))
    return Table(name, tuple(columns), primary_key, without_rowid, autoincrement,
                 foreign_keys, tuple(indexes), sql, tuple(rules["checks"]), tuple(rules["uniques"]),
                 rules["unreadable"], rules["pk_name"])


_COLUMN_STOP = {"CONSTRAINT", "PRIMARY", "NOT", "NULL", "UNIQUE", "CHECK", "DEFAULT", "COLLATE", "REFERENCES",
                "GENERATED", "AS"}


def parse_create_table(sql):
    """What PRAGMAs do not tell: per column its COLLATE and generated expression; CHECKs;
    constraint names (PRIMARY KEY, UNIQUE, FOREIGN KEY); DEFERRABLE foreign keys. A statement this
    reader cannot follow gives none of them and says why (``unreadable``), for the notes."""
    found = dict(columns={}, checks=[], uniques=[], foreign_keys=[], unreadable="", pk_name="")
    try:
        tokens = tokenize(sql or "")
        start = next(i for i, t in enumerate(tokens) if t.is_op("("))
        body = tokens[start + 1:closing(tokens, start)]
        for part in split_top(body):
            if not part:
                continue
            if part[0].is_word("CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"):
                _table_constraint(part, found, sql)
            else:
                _column_definition(part, found, sql)
    except (Untranslatable, StopIteration, IndexError) as exc:
        return dict(columns={}, checks=[], uniques=[], foreign_keys=[], unreadable=str(exc) or "no column list",
                    pk_name="")
    return found


def _sql_text(tokens, sql):
    """The text the tokens were read from, exactly as written."""
    if not tokens:
        return ""
    return sql[tokens[0].pos:tokens[-1].pos + len(tokens[-1].text)]


def _names(tokens):
    """Column names of a parenthesised list (terms may carry COLLATE/ASC/DESC)."""
    return tuple(term[0].value if term[0].kind == "name" else term[0].text for term in split_top(tokens) if term)


def _references(part, i, cols, name, found):
    """The REFERENCES clause at ``i``: its deferrability, recorded for ``cols``."""
    ref = part[i + 1]
    ref_table = ref.value if ref.kind == "name" else ref.text
    deferrable = ""
    words = [t.value for t in part[i:] if t.kind == "word"]
    for j, word in enumerate(words):
        if word == "DEFERRABLE" and (j == 0 or words[j - 1] != "NOT"):
            deferrable = "deferred" if words[j + 1:j + 3] == ["INITIALLY", "DEFERRED"] else "immediate"
    found["foreign_keys"].append(dict(columns=cols, ref_table=ref_table, name=name, deferrable=deferrable))


def _table_constraint(part, found, sql):
    name = ""
    if part[0].is_word("CONSTRAINT") and len(part) > 1:
        name = part[1].value if part[1].kind == "name" else part[1].text
        part = part[2:]
    if not part:
        return
    if part[0].is_word("PRIMARY"):
        found["pk_name"] = name
    elif part[0].is_word("CHECK") and len(part) > 1 and part[1].is_op("("):
        found["checks"].append(Check(name, _sql_text(part[2:closing(part, 1)], sql)))
    elif part[0].is_word("UNIQUE") and len(part) > 1 and part[1].is_op("(") and name:
        found["uniques"].append((_names(part[2:closing(part, 1)]), name))
    elif part[0].is_word("FOREIGN") and len(part) > 2 and part[2].is_op("("):
        end = closing(part, 2)
        refs = [i for i in range(end, len(part)) if part[i].is_word("REFERENCES")]
        if refs and refs[0] + 1 < len(part):
            _references(part, refs[0], _names(part[3:end]), name, found)


def _column_definition(part, found, sql):
    column = part[0].value if part[0].kind == "name" else part[0].text
    info = found["columns"].setdefault(column.lower(), {})
    i, name = 1, ""
    while i < len(part) and not part[i].is_word(*_COLUMN_STOP):
        i = closing(part, i) + 1 if part[i].is_op("(") else i + 1
    while i < len(part):
        tok = part[i]
        if tok.is_word("CONSTRAINT") and i + 1 < len(part):
            name = part[i + 1].value if part[i + 1].kind == "name" else part[i + 1].text
            i += 2
            continue
        if tok.is_word("COLLATE") and i + 1 < len(part):
            info["collation"] = part[i + 1].value.upper()
            i += 2
        elif tok.is_word("CHECK") and i + 1 < len(part) and part[i + 1].is_op("("):
            end = closing(part, i + 1)
            found["checks"].append(Check(name, _sql_text(part[i + 2:end], sql), column))
            i = end + 1
        elif tok.is_word("AS") and i + 1 < len(part) and part[i + 1].is_op("("):
            end = closing(part, i + 1)
            info["expression"] = _sql_text(part[i + 2:end], sql)
            i = end + 1
        elif tok.is_word("PRIMARY"):
            found["pk_name"] = name
            i += 1
        elif tok.is_word("UNIQUE"):
            if name:
                found["uniques"].append(((column,), name))
            i += 1
        elif tok.is_word("REFERENCES") and i + 1 < len(part):
            _references(part, i, (column,), name, found)
            i += 2
        elif tok.is_op("("):
            i = closing(part, i) + 1
            continue
        else:
            i += 1
            continue
        name = ""


def sqlite_sequence(conn):
    """AUTOINCREMENT high-water marks: table -> last id handed out (SQLite never reuses below it)."""
    try:
        return dict(conn.execute("SELECT name, seq FROM main.sqlite_sequence").fetchall())
    except sqlite3.OperationalError:
        return {}
