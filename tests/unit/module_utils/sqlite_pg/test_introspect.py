"""Reading the rules PRAGMAs do not give from a real SQLite file: COLLATE, CHECK, names, DEFERRABLE, generated."""

import sqlite3

from sqlite_pg.introspect import Check, read_schema
from tests.conftest import make_sqlite

DDL = """
CREATE TABLE "Users" (id INTEGER PRIMARY KEY,
  email TEXT COLLATE NOCASE NOT NULL CONSTRAINT uq_users_email UNIQUE,
  age INTEGER CHECK (age >= 0) CONSTRAINT ck_age_small CHECK(age < 200),
  "first name" TEXT, last TEXT,
  "full" TEXT GENERATED ALWAYS AS ("first name" || ' ' || last) VIRTUAL,
  boss INTEGER REFERENCES "Users"(id) ON DELETE SET NULL,
  CONSTRAINT uq_name UNIQUE ("first name", last),
  CHECK ("first name" <> last), -- a comment, (with a parenthesis
  CONSTRAINT fk_self FOREIGN KEY (age) REFERENCES "Users"(id) DEFERRABLE INITIALLY DEFERRED
);
CREATE TABLE plain (id INTEGER PRIMARY KEY, p INTEGER REFERENCES "Users" DEFERRABLE INITIALLY IMMEDIATE);
CREATE VIEW v2 AS SELECT id FROM plain;
CREATE VIEW a1 AS SELECT id FROM v2;
"""


def test_rules_are_read(sqlite_path):
    conn = sqlite3.connect(make_sqlite(sqlite_path, DDL))
    schema = read_schema(conn)
    users = schema.tables["Users"]
    assert users.column("email").collation == "NOCASE"
    assert users.column("full").generated and users.column("full").expression == "\"first name\" || ' ' || last"
    assert users.checks == (Check("", "age >= 0", "age"), Check("ck_age_small", "age < 200", "age"),
                            Check("", '"first name" <> last'))
    assert users.unique_names == ((("email",), "uq_users_email"), (("first name", "last"), "uq_name"))
    fks = {fk.columns: (fk.name, fk.deferrable) for fk in users.foreign_keys}
    assert fks == {("boss",): ("", ""), ("age",): ("fk_self", "deferred")}
    assert schema.tables["plain"].foreign_keys[0].deferrable == "immediate"
    email_key = next(i for i in users.indexes if i.origin == "u" and i.columns == ("email",))
    assert email_key.collations == ("NOCASE",)
    assert list(schema.view_sql) == ["v2", "a1"]          # creation order: a view may use an earlier one
    assert schema.views == ["a1", "v2"]


def test_an_unreadable_statement_gives_no_rules(sqlite_path):
    conn = sqlite3.connect(make_sqlite(sqlite_path, "CREATE TABLE t (a TEXT CHECK (a <> 'x'));"))
    from sqlite_pg.introspect import parse_create_table

    unreadable = parse_create_table("CREATE TABLE t (a TEXT CHECK (a <> 'x'")
    assert unreadable["checks"] == [] and unreadable["unreadable"] == "unbalanced parentheses"   # said, for the notes
    assert read_schema(conn).tables["t"].checks == (Check("", "a <> 'x'", "a"),)
