"""How values convert, on a real PostgreSQL from real SQLite files: a value is kept, converted
by a documented rule, or refused with a reason - never changed without a word."""

import datetime
import sqlite3

import pytest

from sqlite_pg import convert, run
from sqlite_pg.connection import connect_pg
from sqlite_pg.errors import SchemaError
from tests.conftest import fetch, make_sqlite, migrate


def _execute(params, statement):
    conn = connect_pg(params)
    with conn.cursor() as cur:
        cur.execute(statement)
    conn.commit()
    conn.close()


def _rejects(params, table):
    return {r[0]: r[1] for r in fetch(params, "SELECT (source_key->>'id')::int, reason FROM _migration_rejects "
                                              "WHERE table_name = %s", (table,))}


def test_numbers_are_read_by_postgresql_syntax_not_pythons(pg_db, sqlite_path):
    odd = ["1_000", "2_5.0", "１２３", "٣.٥"]          # int()/float() take them, PostgreSQL does not
    fine = [" 42 ", "+7", "\t-3\n"]                      # PostgreSQL skips the whitespace and reads a sign
    make_sqlite(sqlite_path, "CREATE TABLE n (id INTEGER PRIMARY KEY, i BIGINT, f FLOAT, d DECIMAL);",
                {"n": [(k, v, v, v) for k, v in enumerate(odd + fine, 1)]})
    params = dict(pg_db, source=sqlite_path)
    result = migrate(params, on_error="quarantine")
    assert result["tables"]["n"]["rejected"] == 4
    rejects = _rejects(params, "n")
    assert sorted(rejects) == [1, 2, 3, 4]
    assert all("i: not an integer" in why and "f: not a number" in why and "d: not a number" in why
               for why in rejects.values())
    assert fetch(params, "SELECT i, f, d FROM n ORDER BY id") == [(42, 42.0, 42), (7, 7.0, 7), (-3, -3.0, -3)]
    # The profile predicts it, with the same reason.
    assert run.profile(params)["tables"]["n"]["columns"]["i"]["problems"] == {"not an integer": 4}
    run.verify_all(params)


def test_negative_zero_keeps_its_sign_in_untyped_and_any_columns(pg_db, sqlite_path):
    # (A REAL column cannot hold -0.0: SQLite itself stores it as 0.)
    make_sqlite(sqlite_path, """
        CREATE TABLE s (id INTEGER PRIMARY KEY, a ANY) STRICT;
        CREATE TABLE u (id INTEGER PRIMARY KEY, v, w);""",
                {"s": [(1, -0.0), (2, 0.0), (3, -2.5)],
                 "u": [(1, -0.0, "text"), (2, 3, -0.0)]})
    params = dict(pg_db, source=sqlite_path)
    migrate(params)
    assert fetch(params, "SELECT a::text FROM s ORDER BY id") == [("-0",), ("0",), ("-2.5",)]
    assert fetch(params, "SELECT v::text, w FROM u ORDER BY id") == [("-0", "text"), ("3", "-0.0")]
    run.verify_all(params)


def test_fractions_past_microseconds_are_rounded_half_to_even_on_both_paths(pg_db, sqlite_path):
    rows = [
        (1, "2024-01-01 10:00:00.9999999", "10:00:00.9999999"),   # .NET writes seven digits
        (2, "2024-01-01 10:00:00.0000005", "10:00:00.0000005"),   # a half: to even (down)
        (3, "2024-01-01 10:00:00.0000015", "10:00:00.0000015"),   # a half: to even (up)
        (4, "2024-12-31 23:59:59.99999951", "23:59:59.9999996"),  # carries into the next day / 24:00
        (5, "2024-01-01T10:00:00.12345675+02:00", "10:00:00.1234560000"),
        (6, "2024-01-01 10:00:00.123", "10:00:00.123"),
    ]
    make_sqlite(sqlite_path, "CREATE TABLE t (id INTEGER PRIMARY KEY, at DATETIME, tm TIME, s TEXT);",
                {"t": [(*r, "ok") for r in rows]})
    want_at = {1: datetime.datetime(2024, 1, 1, 10, 0, 1), 2: datetime.datetime(2024, 1, 1, 10),
               3: datetime.datetime(2024, 1, 1, 10, 0, 0, 2), 4: datetime.datetime(2025, 1, 1),
               5: datetime.datetime(2024, 1, 1, 8, 0, 0, 123457), 6: datetime.datetime(2024, 1, 1, 10, 0, 0, 123000)}
    want_tm = {1: "10:00:01", 2: "10:00:00", 3: "10:00:00.000002", 4: "24:00:00", 5: "10:00:00.123456",
               6: "10:00:00.123"}
    params = dict(pg_db, source=sqlite_path)
    migrate(params)   # the fast path
    assert dict(fetch(params, "SELECT id, at FROM t")) == want_at
    assert dict(fetch(params, "SELECT id, tm::text FROM t")) == want_tm
    run.verify_all(params)
    conn = sqlite3.connect(sqlite_path)   # a NUL byte sends the table down the careful path: same values
    conn.execute("INSERT INTO t VALUES (7, '2024-01-01', '10:00', 'nul' || char(0))")
    conn.commit()
    conn.close()
    result = migrate(params, on_error="quarantine")
    assert result["tables"]["t"]["rejected"] == 1
    assert {k: v for k, v in fetch(params, "SELECT id, at FROM t")} == want_at
    assert dict(fetch(params, "SELECT id, tm::text FROM t")) == want_tm
    run.verify_all(params)


def test_the_largest_timestamp_a_program_writes_is_kept_whichever_path_runs(pg_db, sqlite_path):
    top = "9999-12-31 23:59:59.999999"    # Python's datetime.max
    make_sqlite(sqlite_path, "CREATE TABLE t (id INTEGER PRIMARY KEY, at DATETIME, tz TIMESTAMP, s TEXT);",
                {"t": [(1, top, top, "ok"), (2, "9999-12-31 23:59:59.9999999", top, "ok")]})
    params = dict(pg_db, source=sqlite_path)
    result = migrate(params, on_error="quarantine")
    top_value = datetime.datetime.max
    assert fetch(params, "SELECT at, tz FROM t ORDER BY id") == [(top_value, top_value)]
    # Rounding .9999999 would pass the year 9999: refused with a reason, not cut to .999999.
    assert result["tables"]["t"]["reasons"] == {"not a recognised date/time": 1}
    profile = run.profile(params)["tables"]["t"]["columns"]["at"]
    assert profile["problems"] == {"not a recognised date/time": 1}
    conn = sqlite3.connect(sqlite_path)   # a neighbour the full rules refuse: the same outcome for row 1
    conn.execute("INSERT INTO t VALUES (3, '2024-01-01', '2024-01-01', 'nul' || char(0))")
    conn.commit()
    conn.close()
    result = migrate(params, on_error="quarantine")
    assert fetch(params, "SELECT at, tz FROM t ORDER BY id") == [(top_value, top_value)]
    assert result["tables"]["t"]["rejected"] == 2
    run.verify_all(params)


def test_time_offsets_are_kept_in_timetz_or_refused_in_time(pg_db, sqlite_path):
    make_sqlite(sqlite_path, "CREATE TABLE t (id INTEGER PRIMARY KEY, tm TIME, plain TIME);",
                {"t": [(1, "12:00:00+05:45", "12:00:00"), (2, "12:00:00", "08:30"), (3, "07:00:00Z", None),
                       (4, "23:00:00.5 -03:00", None)]})
    params = dict(pg_db, source=sqlite_path)
    migrate(params)
    types = dict(fetch(params, "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 't'"))
    assert types["tm"] == "time with time zone" and types["plain"] == "time without time zone"
    assert fetch(params, "SELECT tm::text, plain::text FROM t ORDER BY id") == [
        ("12:00:00+05:45", "12:00:00"), ("12:00:00+00", "08:30:00"), ("07:00:00+00", None), ("23:00:00.5-03", None)]
    run.verify_all(params)
    # Told to use time without time zone, the copy refuses what it cannot keep, and says so.
    other = dict(pg_db, source=sqlite_path, schema="forced", column_types={"t.tm": "time"})
    _execute(pg_db, "CREATE SCHEMA forced")
    result = migrate(other, on_error="quarantine")
    assert result["tables"]["t"]["rejected"] == 3
    assert set(result["tables"]["t"]["reasons"]) == {convert.TIME_OFFSET}
    assert fetch(other, "SELECT id, tm::text FROM forced.t") == [(2, "12:00:00")]


def test_json_that_jsonb_would_change_is_typed_json_and_kept_as_written(pg_db, sqlite_path):
    make_sqlite(sqlite_path, "CREATE TABLE j (id INTEGER PRIMARY KEY, doc JSON, other JSON);",
                {"j": [(1, '{"a":1,"a":2}', '{"b": 1, "a": [1, 2]}'), (2, '{"x": -0.0}', '{"x": "-0"}'),
                       (3, '[1, -0]', "null")]})
    params = dict(pg_db, source=sqlite_path)
    profile = run.profile(params)
    columns = profile["tables"]["j"]["columns"]
    assert (columns["doc"]["pg_type"], columns["other"]["pg_type"]) == ("json", "jsonb")
    assert any(line.startswith("j.doc: declared 'JSON', planned json: jsonb would change") for line in profile["summary"])
    migrate(params)
    assert fetch(params, "SELECT doc::text FROM j ORDER BY id") == [('{"a":1,"a":2}',), ('{"x": -0.0}',), ("[1, -0]",)]
    assert fetch(params, "SELECT other FROM j WHERE id = 1") == [({"a": [1, 2], "b": 1},)]
    run.verify_all(params)


def test_json_into_an_existing_jsonb_column_is_refused_when_jsonb_would_change_it(pg_db, sqlite_path):
    make_sqlite(sqlite_path, "CREATE TABLE j (id INTEGER PRIMARY KEY, doc JSON);",
                {"j": [(1, '{"a":1,"a":2}'), (2, '{"x": -0.0}'), (3, '{"b": 1,  "a": 2}')]})
    _execute(pg_db, "CREATE TABLE j (id bigint PRIMARY KEY, doc jsonb)")
    params = dict(pg_db, source=sqlite_path, target="existing")
    assert run.profile(params)["tables"]["j"]["columns"]["doc"]["problems"] == {convert.JSONB_CHANGES: 2}
    result = run.copy(params, on_error="quarantine")
    assert result["tables"]["j"]["reasons"] == {convert.JSONB_CHANGES: 2}
    assert fetch(params, "SELECT id, doc FROM j") == [(3, {"a": 2, "b": 1})]   # key order is not meaning


def test_integers_into_an_existing_interval_column_are_microseconds(pg_db, sqlite_path):
    # Django's DurationField on SQLite: integer microseconds. 5400000000 is 1 h 30 min, not 1,500,000 hours.
    make_sqlite(sqlite_path, "CREATE TABLE d (id INTEGER PRIMARY KEY, d);",
                {"d": [(1, 1), (2, 5400000000), (3, 63072000000000), (4, -90000000), (5, "5400000000"),
                       (6, 1.5), (7, "1 day 02:00:00"), (8, "1970-01-01 01:30:00.000000")]})
    _execute(pg_db, "CREATE TABLE d (id bigint PRIMARY KEY, d interval)")
    params = dict(pg_db, source=sqlite_path, target="existing")
    result = run.copy(params, on_error="quarantine")
    got = dict(fetch(params, "SELECT id, d FROM d"))
    assert got == {1: datetime.timedelta(microseconds=1), 2: datetime.timedelta(hours=1, minutes=30),
                   3: datetime.timedelta(days=730), 4: datetime.timedelta(seconds=-90),
                   7: datetime.timedelta(days=1, hours=2), 8: datetime.timedelta(hours=1, minutes=30)}
    assert result["tables"]["d"]["reasons"] == {convert.INTERVAL_NUMBER_TEXT: 1, convert.INTERVAL_NOT_WHOLE: 1}
    run.verify_all(params)


def test_an_interval_columns_unit_is_declared_per_column(pg_db, sqlite_path):
    make_sqlite(sqlite_path, "CREATE TABLE d (id INTEGER PRIMARY KEY, secs INTEGER, ms INTEGER);",
                {"d": [(1, 5400, 5400000), (2, 1.5, 0.0005)]})
    _execute(pg_db, "CREATE TABLE d (id bigint PRIMARY KEY, secs interval, ms interval)")
    params = dict(pg_db, source=sqlite_path, target="existing",
                  interval_units={"d.secs": "seconds", "d.ms": "milliseconds"})
    result = run.copy(params, on_error="quarantine")
    assert fetch(params, "SELECT secs, ms FROM d") == [(datetime.timedelta(hours=1, minutes=30),) * 2]
    assert result["tables"]["d"]["reasons"] == {convert.INTERVAL_NOT_WHOLE: 1}   # 0.0005 ms: half a microsecond
    run.verify_all(params)
    with pytest.raises(SchemaError, match="interval_units.*one of microseconds, milliseconds, seconds"):
        run.copy(dict(params, interval_units={"d.secs": "hours"}))


def test_what_sqlalchemy_writes_reads_back_the_same_through_sqlalchemy(pg_db, sqlite_path):
    """The ORM's own SQLite spellings (Interval as the epoch plus the duration, DateTime and Time
    with six digits), written by SQLAlchemy, loaded into the schema SQLAlchemy creates on PostgreSQL."""
    import sqlalchemy as sa
    from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

    class Base(DeclarativeBase):
        pass

    class Job(Base):
        __tablename__ = "jobs"
        id: Mapped[int] = mapped_column(primary_key=True)
        took: Mapped[datetime.timedelta] = mapped_column(sa.Interval)
        at: Mapped[datetime.datetime] = mapped_column(sa.DateTime)
        due: Mapped[datetime.time] = mapped_column(sa.Time)
        doc: Mapped[dict] = mapped_column(sa.JSON)

    values = [
        (datetime.timedelta(hours=1, minutes=30), datetime.datetime.max, datetime.time(23, 59, 59, 999999),
         {"n": -0.0, "big": 9007199254740993}),
        (datetime.timedelta(days=-1, microseconds=5), datetime.datetime(2024, 2, 29, 12, 0, 0, 1),
         datetime.time(0), {"a": [1, 2.5, None]}),
        (datetime.timedelta(days=800, seconds=1, microseconds=999999), datetime.datetime(1, 1, 1),
         datetime.time(12, 30), {}),
    ]
    engine = sa.create_engine(f"sqlite:///{sqlite_path}")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all(Job(id=i, took=t, at=a, due=d, doc=j) for i, (t, a, d, j) in enumerate(values, 1))
        session.commit()
    engine.dispose()
    pg = sa.create_engine(f"postgresql+psycopg2://{pg_db['login_user']}@/{pg_db['db']}",
                          connect_args=dict(host=pg_db["login_unix_socket"], port=pg_db["port"]))
    Base.metadata.create_all(pg)
    params = dict(pg_db, source=sqlite_path, target="existing")
    result = run.copy(params)
    assert result["tables"]["jobs"]["rows"] == 3
    with Session(pg) as session:
        got = [(j.took, j.at, j.due, j.doc) for j in session.scalars(sa.select(Job).order_by(Job.id))]
    pg.dispose()
    assert got == values
    run.verify_all(params)


def test_duplicate_keys_are_found_at_any_depth_and_under_any_spelling():
    conn = sqlite3.connect(":memory:")
    convert.register_functions(conn)
    cases = {'{"a":1,"a":2}': 1, '{"a":1,"b":{"a":2}}': 0, '[{"id":1},{"id":2}]': 0, '[{"id":1,"id":2}]': 1,
             '{"a":1,"\\u0061":2}': 1, '{"k": "x,\\"y\\": 1", "y": 2}': 0, '{"n": [1, -0.0]}': 1, '{"n": "-0"}': 0,
             '{"n": -0e5}': 1, '{"n": -10}': 0}
    conn.execute("CREATE TABLE j (doc)")
    conn.executemany("INSERT INTO j VALUES (?)", [(text,) for text in cases])
    got = dict(conn.execute(f"SELECT doc, {convert.jsonb_changes('doc')} FROM j"))
    assert got == cases


def test_a_type_with_fewer_fraction_digits_refuses_what_it_would_round(pg_db, sqlite_path):
    make_sqlite(sqlite_path, "CREATE TABLE t (id INTEGER PRIMARY KEY, at DATETIME, tm TIME);",
                {"t": [(1, "2024-01-01 10:00:00.123", "10:00:00"), (2, "2024-01-01 10:00:00.1234", "10:00:00"),
                       (3, 1700000000123, "10:00:00.5"), (4, "2024-01-01 10:00:00.120000", "10:00:00.000")]})
    params = dict(pg_db, source=sqlite_path, column_types={"t.at": "timestamp(3)", "t.tm": "time(0)"})
    result = migrate(params, on_error="quarantine")
    assert result["tables"]["t"]["reasons"] == {
        "more fraction digits than timestamp(3) without time zone keeps (it would round the value)": 1,
        "more fraction digits than time(0) without time zone keeps (it would round the value)": 1}
    assert fetch(params, "SELECT id, at FROM t ORDER BY id") == [
        (1, datetime.datetime(2024, 1, 1, 10, 0, 0, 123000)), (4, datetime.datetime(2024, 1, 1, 10, 0, 0, 120000))]
    assert run.profile(params)["tables"]["t"]["would_reject"] == 2
    run.verify_all(params)


def test_an_integer_a_double_would_round_is_refused_from_a_double_column(pg_db, sqlite_path):
    make_sqlite(sqlite_path, "CREATE TABLE m (id INTEGER PRIMARY KEY, x INTEGER);",
                {"m": [(1, 2**53), (2, 2**53 + 1), (3, -(2**63)), (4, 7)]})
    _execute(pg_db, "CREATE TABLE m (id bigint PRIMARY KEY, x double precision)")
    params = dict(pg_db, source=sqlite_path, target="existing")
    result = run.copy(params, on_error="quarantine")
    assert result["tables"]["m"]["reasons"] == {
        "integer too large for double precision to hold exactly (it would round it): use numeric or bigint "
        "(column_types)": 2}
    assert fetch(params, "SELECT id, x FROM m ORDER BY id") == [(1, float(2**53)), (4, 7.0)]
    run.verify_all(params)


def test_json_numbers_jsonb_prints_as_integers_keep_the_column_json(pg_db, sqlite_path):
    """jsonb prints 1e+23 as 100000000000000000000000: Python's json (Django's JSONField)
    reads that back as an int of another value than the float written. Python writes every
    float from 1e16 with an exponent. 1.5e-07 (0.00000015) and 2.50e1 (25.0) stay floats."""
    make_sqlite(sqlite_path, "CREATE TABLE j (id INTEGER PRIMARY KEY, doc JSON, other JSON);",
                {"j": [(1, '{"e": 1e+23}', '[1.5e-07, 2.50e1, "1e5", {"k1e5": 0.1}]'), (2, "[1.5e1]", "[1E-5]")]})
    params = dict(pg_db, source=sqlite_path)
    columns = run.profile(params)["tables"]["j"]["columns"]
    assert (columns["doc"]["pg_type"], columns["other"]["pg_type"]) == ("json", "jsonb")
    migrate(params)
    assert fetch(params, "SELECT doc::text FROM j ORDER BY id") == [('{"e": 1e+23}',), ("[1.5e1]",)]
    assert fetch(params, "SELECT other::text FROM j ORDER BY id") == [
        ('[0.00000015, 25.0, "1e5", {"k1e5": 0.1}]',), ("[0.00001]",)]
    run.verify_all(params)

    forced = dict(pg_db, source=sqlite_path, schema="forced", column_types={"j.doc": "jsonb"})
    _execute(pg_db, "CREATE SCHEMA forced")
    result = migrate(forced, on_error="quarantine")
    assert result["tables"]["j"]["reasons"] == {convert.JSONB_CHANGES: 2}
