"""The schema's rules on a real PostgreSQL: each is translated and holds there, or is named in the notes."""

import sqlite3

import psycopg2
import psycopg2.errors
import pytest

from sqlite_pg import run
from sqlite_pg.errors import SchemaError
from tests.conftest import fetch, make_sqlite, migrate


def _notes(params):
    """Notes of both schema phases, run the way the playbook runs them."""
    tables = run.schema(params)
    run.copy(params)
    constraints = run.schema(params, phase="constraints")
    return "\n".join(tables["notes"] + constraints["notes"])


def _refused(params, statement, error):
    with pytest.raises(error):
        fetch(params, statement)


# --- CHECK ------------------------------------------------------------------------------------

CHECKS = """
CREATE TABLE account (id INTEGER PRIMARY KEY, age INTEGER CHECK (age >= 0),
  kind TEXT NOT NULL CONSTRAINT ck_kind CHECK (kind IN ('user', 'admin')),
  active BOOLEAN NOT NULL CHECK (active IN (0, 1)),
  flag BOOLEAN CHECK (flag = 1 OR flag IS NULL),
  code TEXT CHECK (typeof(code) = 'text'),
  lo INTEGER, hi INTEGER,
  meta JSON CHECK ((JSON_VALID(meta) OR meta IS NULL)),
  doc TEXT CHECK ((JSON_VALID("doc") OR "doc" IS NULL)),
  CHECK (lo <= hi));
"""


def test_checks_hold_in_postgresql_or_are_named(pg_db, sqlite_path):
    make_sqlite(sqlite_path, CHECKS, {"account": [(1, 30, "user", 1, None, "a", 1, 2, '{"a": 1}', "[1]")]})
    params = dict(pg_db, source=sqlite_path)
    notes = _notes(params)
    names = dict(fetch(params, "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                       "WHERE conrelid = 'account'::regclass AND contype = 'c'"))
    assert names == {"account_age_check": "CHECK ((age >= 0))",
                     "ck_kind": "CHECK ((kind = ANY (ARRAY['user'::text, 'admin'::text])))",
                     "account_check": "CHECK ((lo <= hi))"}
    _refused(params, "INSERT INTO account (age, kind, active) VALUES (-1, 'user', true)", psycopg2.errors.CheckViolation)
    _refused(params, "INSERT INTO account (kind, active) VALUES ('guest', true)", psycopg2.errors.CheckViolation)
    _refused(params, "INSERT INTO account (kind, active, lo, hi) VALUES ('user', true, 2, 1)",
             psycopg2.errors.CheckViolation)
    # SQLAlchemy's Boolean CHECK (active IN (0, 1)) and JSON_VALID on a jsonb column are what the
    # types hold: nothing to name. On a text column (Django's JSONField) JSON_VALID is named.
    assert "active" not in notes and "meta" not in notes
    assert "CHECK ((JSON_VALID(\"doc\") OR \"doc\" IS NULL)) on column 'doc' not translated" in notes
    # Named: one that does not translate, and one PostgreSQL refuses (a boolean compared with 1).
    assert "CHECK (typeof(code) = 'text') on column 'code' not translated (function typeof()): not created" in notes
    assert "CHECK account_flag_check (\"flag\" = 1 OR \"flag\" IS NULL): not created, PostgreSQL refused" in notes
    assert not run.schema(params, phase="constraints")["changed"]     # a rerun adds nothing


def test_a_check_the_rows_already_break_is_added_not_valid(pg_db, sqlite_path):
    make_sqlite(sqlite_path, "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER CHECK (n > 0));")
    conn = sqlite3.connect(sqlite_path)
    conn.execute("PRAGMA ignore_check_constraints = 1")   # how a file comes to hold such a row
    conn.execute("INSERT INTO t VALUES (1, -5)")
    conn.commit()
    conn.close()
    params = dict(pg_db, source=sqlite_path)
    notes = _notes(params)
    assert "CHECK t_n_check" in notes and "added NOT VALID" in notes
    assert fetch(params, "SELECT convalidated FROM pg_constraint WHERE conname = 't_n_check'") == [(False,)]
    assert fetch(params, "SELECT n FROM t") == [(-5,)]                   # the row is kept as it is
    _refused(params, "INSERT INTO t (n) VALUES (0)", psycopg2.errors.CheckViolation)   # new rows are checked


# --- DEFERRABLE foreign keys and constraint names ------------------------------------------

KEYS = """
CREATE TABLE parent (id INTEGER NOT NULL, a TEXT, b TEXT, CONSTRAINT [PK_Parent] PRIMARY KEY ([id]),
  CONSTRAINT uq_parent_ab UNIQUE (a, b));
CREATE TABLE child (id INTEGER PRIMARY KEY,
  parent_id INTEGER CONSTRAINT fk_child_parent REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED,
  other_id INTEGER REFERENCES parent(id));
"""


def test_deferrable_foreign_keys_and_constraint_names_survive(pg_db, sqlite_path):
    make_sqlite(sqlite_path, KEYS, {"parent": [(1, "x", "y")], "child": [(1, 1, 1)]})
    params = dict(pg_db, source=sqlite_path)
    migrate(params)
    rows = fetch(params, "SELECT conname, condeferrable, condeferred FROM pg_constraint WHERE contype = 'f' ORDER BY 1")
    assert rows == [("child_other_id_fkey", False, False), ("fk_child_parent", True, True)]
    # The app's unit of work: the child first, its parent later, in one transaction.
    fetch(params, "INSERT INTO child (id, parent_id) VALUES (2, 7); INSERT INTO parent (id) VALUES (7); SELECT 1")
    assert fetch(params, "SELECT parent_id FROM child WHERE id = 2") == [(7,)]
    # An app's later migration drops the constraint by the name its models gave it.
    fetch(params, "ALTER TABLE parent DROP CONSTRAINT uq_parent_ab; SELECT 1")
    assert fetch(params, "SELECT conname FROM pg_constraint WHERE contype = 'p' "
                         "AND conrelid IN ('parent'::regclass, 'child'::regclass) ORDER BY 1") == [
        ("PK_Parent",), ("child_pkey",)]                                  # Chinook's named primary keys


def test_long_constraint_names_are_cut_like_postgresql_needs(pg_db, sqlite_path):
    long = "ck_" + "x" * 70
    make_sqlite(sqlite_path, f"CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, CONSTRAINT {long} CHECK (n > 0), "
                             f"CONSTRAINT uq_{'y' * 70} UNIQUE (n));")
    params = dict(pg_db, source=sqlite_path)
    _notes(params)
    names = [r[0] for r in fetch(params, "SELECT conname FROM pg_constraint WHERE conrelid = 't'::regclass "
                                         "AND contype IN ('c', 'u') ORDER BY 1")]
    assert [n[:54] for n in names] == [long[:54], ("uq_" + "y" * 70)[:54]]
    assert all(len(n) == 63 for n in names)      # cut with a short hash, never truncated into a clash
    assert not run.schema(params, phase="constraints")["changed"]


# --- COLLATE NOCASE -------------------------------------------------------------------------

NOCASE = """
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT COLLATE NOCASE NOT NULL UNIQUE, name TEXT);
CREATE INDEX ix_users_name ON users (name COLLATE NOCASE);
"""


@pytest.mark.parametrize("mode, finds", [(None, True), ("collation", True), ("lower_index", False)])
def test_nocase_columns_keep_ignoring_case(pg_db, sqlite_path, mode, finds):
    make_sqlite(sqlite_path, NOCASE, {"users": [(1, "Bob@x.io", "Bob")]})
    sqlite = sqlite3.connect(sqlite_path)
    assert sqlite.execute("SELECT id FROM users WHERE email = 'bob@X.IO'").fetchall() == [(1,)]
    params = dict(pg_db, source=sqlite_path, **({"nocase": mode} if mode else {}))
    notes = _notes(params)
    # What SQLite finds, PostgreSQL finds (collation, citext); lower_index says it will not.
    assert fetch(params, "SELECT id FROM users WHERE email = 'bob@X.IO'") == ([(1,)] if finds else [])
    if not finds:
        assert "column 'email' COLLATE NOCASE (nocase: lower_index): compared case-sensitively" in notes
    if mode is None:   # the default (citext): LIKE ignores case too, as SQLite's LIKE does
        assert sqlite.execute("SELECT id FROM users WHERE email LIKE 'BOB%'").fetchall() == [(1,)]
        assert fetch(params, "SELECT id FROM users WHERE email LIKE 'BOB%'") == [(1,)]
    # In every mode a NOCASE unique column refuses a duplicate that differs in case only, as in SQLite.
    _refused(params, "INSERT INTO users (email) VALUES ('BOB@x.io')", psycopg2.errors.UniqueViolation)
    with pytest.raises(sqlite3.IntegrityError):
        sqlite.execute("INSERT INTO users (email) VALUES ('BOB@x.io')")
    assert fetch(params, "SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_users_name'") == [(1,)]
    assert run.verify_all(params)["tables"]["users"]["ok"]
    assert not run.schema(params)["changed"]


def test_other_collations_are_named(pg_db, sqlite_path):
    make_sqlite(sqlite_path, "CREATE TABLE t (id INTEGER PRIMARY KEY, code TEXT COLLATE RTRIM);")
    assert "column 'code' COLLATE RTRIM: not translated" in _notes(dict(pg_db, source=sqlite_path))


# --- generated columns -----------------------------------------------------------------------

GENERATED = """
CREATE TABLE item (id INTEGER PRIMARY KEY, price INTEGER, qty INTEGER, label TEXT,
  total INTEGER GENERATED ALWAYS AS (price * qty) STORED,
  shout TEXT AS (upper(label)),
  half REAL AS (price / 2));
"""


def test_generated_columns_are_computed_by_postgresql(pg_db, sqlite_path):
    make_sqlite(sqlite_path, GENERATED)
    conn = sqlite3.connect(sqlite_path)
    conn.execute("INSERT INTO item (id, price, qty, label) VALUES (1, 3, 4, 'ab'), (2, 5, NULL, NULL)")
    conn.commit()
    params = dict(pg_db, source=sqlite_path)
    notes = _notes(params)
    gen = dict(fetch(params, "SELECT attname, attgenerated FROM pg_attribute WHERE attrelid = 'item'::regclass "
                             "AND attnum > 0"))
    assert gen == {"id": "", "price": "", "qty": "", "label": "", "total": "s", "shout": "s", "half": ""}
    assert fetch(params, "SELECT id, total, shout, half FROM item ORDER BY id") == [(1, 12, "AB", 1.0),
                                                                                    (2, None, None, 2.0)]
    # '/' divides integers by other rules: kept as a plain column with SQLite's values, and named.
    assert "generated column 'half' (AS price / 2) not translated" in notes
    assert run.verify_all(params)["tables"]["item"]["ok"]
    fetch(params, "INSERT INTO item (price, qty, label) VALUES (2, 2, 'x'); SELECT 1")
    assert fetch(params, "SELECT total, shout FROM item WHERE price = 2") == [(4, "X")]
    _refused(params, "INSERT INTO item (price, total) VALUES (1, 99)", psycopg2.errors.GeneratedAlways)


def test_generated_columns_plain_on_request_and_a_refused_expression_says_what_to_do(pg_db, sqlite_path):
    make_sqlite(sqlite_path, "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, s TEXT AS (n || 'x'));")
    conn = sqlite3.connect(sqlite_path)
    conn.execute("INSERT INTO t (id, n) VALUES (1, 7)")
    conn.commit()
    params = dict(pg_db, source=sqlite_path, generated_columns="plain")
    # An expression PostgreSQL refuses (abs() of text) stops the tables phase before anything
    # is created, saying what to do.
    bad = str(sqlite_path) + ".bad"
    make_sqlite(bad, "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT, n INTEGER AS (abs(s)));")
    with pytest.raises(SchemaError, match=r"PostgreSQL refuses the generated column\(s\) n AS \(abs\(\"s\"\)\).*"
                                          r"generated_columns: plain"):
        run.schema(dict(pg_db, source=bad, schema="other"))
    assert fetch(params, "SELECT to_regclass('other.t')") == [(None,)]
    notes = _notes(params)
    assert "generated column 's' (AS n || 'x'): a plain column holding the copied values" in notes
    assert fetch(params, "SELECT s FROM t") == [("7x",)]


def test_generated_columns_through_catch_up_and_rollback(pg_db, sqlite_path):
    """Neither the catch-up nor the copy back writes a generated column: each side computes it."""
    make_sqlite(sqlite_path, "CREATE TABLE t (id INTEGER PRIMARY KEY, price INTEGER, qty INTEGER, "
                             "total INTEGER AS (price * qty) STORED);")
    conn = sqlite3.connect(sqlite_path)
    conn.execute("INSERT INTO t (id, price, qty) VALUES (1, 3, 4)")
    conn.commit()
    params = dict(pg_db, source=sqlite_path)
    run.capture(params)
    migrate(params)
    conn.execute("UPDATE t SET qty = 5 WHERE id = 1")
    conn.execute("INSERT INTO t (id, price, qty) VALUES (2, 1, 1)")
    conn.commit()
    assert run.copy(params)["tables"]["t"]["status"] == "caught_up"
    assert fetch(params, "SELECT id, total FROM t ORDER BY id") == [(1, 15), (2, 1)]
    assert run.verify_all(params)["tables"]["t"]["ok"]
    run.capture(params, state="absent")
    fetch(params, "UPDATE t SET price = 10 WHERE id = 2 RETURNING id")   # the app, now on PostgreSQL
    run.copy_back(params)
    assert conn.execute("SELECT id, total FROM t ORDER BY id").fetchall() == [(1, 15), (2, 10)]


@pytest.mark.parametrize("app_column", ["bigint", "bigint GENERATED ALWAYS AS (price * qty) STORED"])
def test_generated_columns_into_a_schema_the_app_made(pg_db, sqlite_path, app_column):
    make_sqlite(sqlite_path, "CREATE TABLE t (id INTEGER PRIMARY KEY, price INTEGER, qty INTEGER, "
                             "total INTEGER AS (price * qty));")
    conn = sqlite3.connect(sqlite_path)
    conn.execute("INSERT INTO t (id, price, qty) VALUES (1, 3, 4)")
    conn.commit()
    params = dict(pg_db, source=sqlite_path, target="existing")
    run.target(params)
    fetch(params, f"CREATE TABLE t (id bigint PRIMARY KEY, price bigint, qty bigint, total {app_column}); SELECT 1")
    notes = "\n".join(run.schema(params)["notes"])
    run.copy(params)
    # A plain column gets SQLite's values; a generated one is computed by PostgreSQL, and said so.
    assert fetch(params, "SELECT total FROM t") == [(12,)]
    assert ("computed there" in notes) == ("GENERATED" in app_column)
    assert run.verify_all(params)["tables"]["t"]["ok"]


# --- partial and expression indexes ------------------------------------------------------------

INDEXES = """
CREATE TABLE post (id INTEGER PRIMARY KEY, slug TEXT, title TEXT, deleted INTEGER NOT NULL DEFAULT 0);
CREATE UNIQUE INDEX ux_post_live_slug ON post (slug) WHERE deleted = 0;
CREATE INDEX ix_post_title ON post (lower(title) DESC, id);
CREATE INDEX ix_post_glob ON post (title) WHERE title GLOB 'a*';
"""


def test_partial_and_expression_indexes(pg_db, sqlite_path):
    make_sqlite(sqlite_path, INDEXES, {"post": [(1, "a", "A", 1), (2, "a", "B", 0)]})
    params = dict(pg_db, source=sqlite_path)
    notes = _notes(params)
    defs = dict(fetch(params, "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'post'"))
    assert defs["ux_post_live_slug"].endswith("USING btree (slug) WHERE (deleted = 0)")
    assert defs["ix_post_title"].endswith("USING btree (lower(title) DESC, id)")
    assert "ix_post_glob" not in defs
    assert "index 'ix_post_glob' not created: GLOB: GLOB has no PostgreSQL operator" in notes
    fetch(params, "INSERT INTO post (slug, deleted) VALUES ('a', 1); SELECT 1")   # only live slugs are unique
    _refused(params, "INSERT INTO post (slug) VALUES ('a')", psycopg2.errors.UniqueViolation)


# --- views -------------------------------------------------------------------------------------

VIEWS = """
CREATE TABLE author (id INTEGER PRIMARY KEY, name TEXT, active BOOLEAN);
CREATE TABLE book (id INTEGER PRIMARY KEY, author_id INTEGER REFERENCES author(id), title TEXT, pages INTEGER);
CREATE VIEW long_books AS SELECT b.id, b.title, a.name AS author FROM book AS b
  JOIN author a ON a.id = b.author_id WHERE b.pages >= 300 ORDER BY b.id;
CREATE VIEW Pages_By_Author AS SELECT author_id, count(*) AS books, sum(pages) AS pages FROM book GROUP BY author_id;
CREATE VIEW busy AS SELECT author_id FROM pages_by_author WHERE books > 1;
CREATE VIEW per_book AS SELECT title, pages / 2 AS sheets FROM book;
CREATE VIEW live_authors AS SELECT name FROM author WHERE active = 1;
CREATE VIEW ranked AS WITH r AS (SELECT id FROM book) SELECT id FROM r;
"""


def test_views_whose_sql_translates_are_created(pg_db, sqlite_path):
    make_sqlite(sqlite_path, VIEWS, {"author": [(1, "Ann", 1), (2, "Bo", 0)],
                                     "book": [(1, 1, "Big", 500), (2, 1, "Small", 80), (3, 2, "Mid", 300)]})
    sqlite = sqlite3.connect(sqlite_path)
    params = dict(pg_db, source=sqlite_path)
    notes = _notes(params)
    for view in ("long_books", "Pages_By_Author", "busy"):
        query = f'SELECT * FROM "{view}" ORDER BY 1'
        assert fetch(params, query) == [tuple(r) for r in sqlite.execute(query)], view
    assert "view 'per_book' not created: '/' divides integers and reals by other rules" in notes
    assert "view 'ranked' not created: WITH: a common table expression" in notes
    # Translated, but PostgreSQL will not compare a boolean with 1: named, not a failed phase.
    assert "view live_authors: not created, PostgreSQL refused the translation" in notes
    assert not run.schema(params, phase="constraints")["changed"]


# --- a real ORM writing the data ----------------------------------------------------------------


def test_sqlalchemy_models_rules_survive(pg_db, sqlite_path):
    sa = pytest.importorskip("sqlalchemy")
    from sqlalchemy import orm

    class Base(orm.DeclarativeBase):
        metadata = sa.MetaData(naming_convention={
            "uq": "uq_%(table_name)s_%(column_0_name)s", "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"})

    class Team(Base):
        __tablename__ = "team"
        id = sa.Column(sa.Integer, primary_key=True)
        name = sa.Column(sa.String(50, collation="NOCASE"), nullable=False, unique=True)
        active = sa.Column(sa.Boolean(create_constraint=True, name="active_bool"), nullable=False, default=True)
        budget = sa.Column(sa.Integer, nullable=False, default=0)
        budget_k = sa.Column(sa.Integer, sa.Computed("budget * 1000"))
        __table_args__ = (sa.CheckConstraint("budget >= 0", name="budget_positive"),)

    class Member(Base):
        __tablename__ = "member"
        id = sa.Column(sa.Integer, primary_key=True)
        team_id = sa.Column(sa.Integer, sa.ForeignKey("team.id", deferrable=True, initially="DEFERRED"))
        email = sa.Column(sa.String(100), nullable=False)
        left = sa.Column(sa.Boolean, nullable=False, default=False)
        __table_args__ = (sa.Index("ux_member_email_live", "email", unique=True, sqlite_where=sa.text("NOT left")),)

    engine = sa.create_engine(f"sqlite:///{sqlite_path}")
    Base.metadata.create_all(engine)
    with orm.Session(engine) as session:
        team = Team(name="Core", budget=3)
        session.add_all([team, Member(email="a@x.io", left=False, team_id=None)])
        session.flush()
        session.add(Member(email="a@x.io", left=True, team_id=team.id))
        session.commit()
    engine.dispose()
    params = dict(pg_db, source=sqlite_path)
    notes = _notes(params)
    cons = dict(fetch(params, "SELECT conname, contype FROM pg_constraint"))
    assert cons["uq_team_name"] == "u" and cons["ck_team_budget_positive"] == "c"
    assert cons["fk_member_team_id_team"] == "f"
    assert fetch(params, "SELECT budget_k FROM team") == [(3000,)]
    assert fetch(params, "SELECT id FROM team WHERE name = 'CORE'") == [(1,)]
    # "NOT left" on a boolean translates and holds: only members still in can't share an email.
    _refused(params, "INSERT INTO member (email, \"left\") VALUES ('a@x.io', false)", psycopg2.errors.UniqueViolation)
    assert "not translated" not in notes and "refused" not in notes, notes
    assert all(t["ok"] for t in run.verify_all(params)["tables"].values())
