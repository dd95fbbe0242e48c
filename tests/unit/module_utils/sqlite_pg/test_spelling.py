"""A rollback writes each value in the spelling its SQLite column already uses (spelling.py).

The unit tests learn a column's spelling from the values an app wrote (in-memory SQLite)
and write a value read from PostgreSQL in it; the tests on a real PostgreSQL roll back what
a hand-written app and SQLAlchemy wrote, and check the text in SQLite, the app's lookups and
verification."""

import datetime
import decimal
import sqlite3
import uuid

import pytest

from sqlite_pg import run, spelling
from sqlite_pg.introspect import read_schema
from tests.conftest import fetch, make_sqlite, migrate

UTC = datetime.UTC
NEPAL = datetime.timezone(datetime.timedelta(hours=5, minutes=45))
D = datetime.datetime(2025, 1, 2, 3, 4, 5)
D_FRACTION = D.replace(microsecond=250000)
U = uuid.UUID("0f8e7a6b-5c4d-4e3f-8a1b-2c3d4e5f6a7b")


def learned(values, pg_type, declared="TEXT"):
    """The spelling learned from a column of ``declared`` type holding ``values``."""
    conn = sqlite3.connect(":memory:")
    conn.execute(f"CREATE TABLE t (id INTEGER PRIMARY KEY, c {declared})")
    conn.executemany("INSERT INTO t (c) VALUES (?)", [(v,) for v in values])
    table = read_schema(conn).tables["t"]
    return spelling.learn_columns(conn, table, {"c": pg_type})["c"]


def spelled(values, pg_type, value, declared="TEXT"):
    return spelling.to_sqlite(value, declared, spelling=learned(values, pg_type, declared))


MOMENTS = [
    # (what the app wrote, PostgreSQL's value, what goes back)
    pytest.param(["2024-01-01 10:00:00.000000", "2024-01-02 10:00:00.500000"], D, "2025-01-02 03:04:05.000000",
                 id="sqlalchemy: six digits always"),
    pytest.param(["2024-01-01 10:00:00", "2024-01-02 10:00:00.500000"], D, "2025-01-02 03:04:05",
                 id="django: a fraction only when not zero"),
    pytest.param(["2024-01-01 10:00:00", "2024-01-02 10:00:00.500000"], D.replace(microsecond=5),
                 "2025-01-02 03:04:05.000005", id="django: a fraction that is not zero"),
    pytest.param(["2024-01-01 10:00:00"], D_FRACTION, "2025-01-02 03:04:05.250000",
                 id="whole seconds only: a fraction is still written"),
    pytest.param(["2024-01-01T10:00:00.000Z", "2024-01-01T10:00:00.120Z"], D, "2025-01-02T03:04:05.000Z",
                 id="javascript: T, milliseconds, Z"),
    pytest.param(["2024-01-01T10:00:00.000Z"], D.replace(microsecond=123456), "2025-01-02T03:04:05.123456Z",
                 id="more digits than the column's are kept"),
    pytest.param(["2024-01-01T10:00:00+00:00", "2024-06-01T10:00:00.500000+02:00"],
                 datetime.datetime(2025, 1, 2, 4, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=1))),
                 "2025-01-02T03:04:05+00:00", id="python isoformat, aware: UTC in the column's offset form"),
    pytest.param(["2024-01-01 10:00:00+0000"], D, "2025-01-02 03:04:05+0000", id="offset without a colon"),
    pytest.param(["2024-01-01", "2024-02-29"], D.replace(hour=0, minute=0, second=0), "2025-01-02",
                 id="date only while the time is midnight"),
    pytest.param(["2024-01-01", "2024-02-29"], D, "2025-01-02 03:04:05.000000",
                 id="date only: another time is written whole"),
    pytest.param(["2024-01-01T10:00:00", "2024-01-01 10:00:00"], D, "2025-01-02 03:04:05",
                 id="mixed separators: the default space, the fraction still learned"),
    pytest.param(["2024-01-01 10:00:00", "2024-01-01 10:00:00.000000"], D, "2025-01-02 03:04:05.000000",
                 id="mixed fractions: the default"),
    pytest.param(["2024-01-01 10:00:00Z", "2024-01-01 10:00:00+00:00"], D, "2025-01-02 03:04:05",
                 id="mixed offsets: none"),
    pytest.param([], D, "2025-01-02 03:04:05.000000", id="empty: the default"),
    pytest.param([1700000000, 1700000001], D, 1735787045, id="unix seconds: an integer"),
    pytest.param([1700000000, 1700000001], D_FRACTION, 1735787045.25,
                 id="unix seconds: a fraction is kept, as a real"),
    pytest.param([1700000000000, 1700000000250], D_FRACTION, 1735787045250, id="unix milliseconds: an integer"),
    pytest.param([1700000000.5, 1700000001.25], D, 1735787045.0, id="unix seconds as reals: a real"),
    pytest.param([1700000000], datetime.datetime(1971, 1, 1), "1971-01-01 00:00:00.000000",
                 id="unix seconds: a moment the copy would not read as one goes back as text"),
    pytest.param([1700000000, 1700000000000], D, "2025-01-02 03:04:05.000000", id="mixed units: the default text"),
    pytest.param([1700000000], datetime.datetime(2250, 1, 20, 16, 50, 48, 826131), "2250-01-20 16:50:48.826131",
                 id="unix seconds: a fraction no double holds exactly goes back as text"),
    pytest.param([1700000000], datetime.datetime(2250, 1, 20, 16, 50, 48), 8837657448,
                 id="unix seconds: a whole second far ahead is still an integer"),
    pytest.param([-9223372036854775808, 1700000000], D, "2025-01-02 03:04:05.000000",
                 id="the least 64-bit integer among them: the default text"),
    pytest.param([1700000000, "2024-01-01 10:00:00"], D, "2025-01-02 03:04:05",
                 id="numbers and text: the text's spelling"),
    pytest.param([2460000.5, 2460001.5], D, "2025-01-02 03:04:05.000000", id="julian days: the default text"),
    pytest.param(["0001-01-01T00:00:00"], datetime.datetime(1, 1, 1), "0001-01-01T00:00:00",
                 id="years before 1000 keep four digits"),
]


@pytest.mark.parametrize(("values", "value", "expected"), MOMENTS)
def test_timestamps_go_back_in_the_columns_spelling(values, value, expected):
    pg_type = "timestamp with time zone" if value.tzinfo else "timestamp without time zone"
    assert spelled(values, pg_type, value, "DATETIME") == expected


@pytest.mark.parametrize(("values", "pg_type", "value", "expected"), [
    (["2024-01-01"], "date", datetime.date(2025, 1, 2), "2025-01-02"),
    (["2024-01-01 00:00:00"], "date", datetime.date(2025, 1, 2), "2025-01-02 00:00:00"),
    (["2024-01-01T00:00:00.000Z"], "date", datetime.date(2025, 1, 2), "2025-01-02T00:00:00.000Z"),
    ([1704067200], "date", datetime.date(2025, 1, 2), 1735776000),
    (["23:59:59.999999", "00:00:00"], "time without time zone", datetime.time(5, 6, 7), "05:06:07"),
    (["00:00:00.000000"], "time without time zone", datetime.time(5, 6, 7), "05:06:07.000000"),
    (["10:00:00.123"], "time without time zone", datetime.time(5, 6, 7, 500000), "05:06:07.500"),
    (["12:00:00+05:45"], "time with time zone", datetime.time(12, tzinfo=NEPAL), "12:00:00+05:45"),
    (["12:00:00Z"], "time with time zone", datetime.time(1, tzinfo=UTC), "01:00:00Z"),
    (["12:00:00+0545"], "time with time zone", datetime.time(1, tzinfo=NEPAL), "01:00:00+0545"),
    ([], "time with time zone", datetime.time(1, tzinfo=NEPAL), "01:00:00.000000+05:45"),
    # SQLAlchemy's Interval: the epoch plus the duration, in the column's spelling too.
    (["1970-01-01T01:30:00"], "interval", datetime.timedelta(minutes=2), "1970-01-01T00:02:00"),
    (["1970-01-01 01:30:00.000000"], "interval", datetime.timedelta(minutes=2), "1970-01-01 00:02:00.000000"),
    # An interval's column of numbers holds counts of a unit to the copy, never Unix time.
    ([100000000, 200000000], "interval", datetime.timedelta(days=1200), "1973-04-15 00:00:00.000000"),
])
def test_dates_times_and_intervals_go_back_in_the_columns_spelling(values, pg_type, value, expected):
    assert spelled(values, pg_type, value, "TIME" if pg_type.startswith("time") else "DATETIME") == expected


@pytest.mark.parametrize(("values", "expected"), [
    ([1, 0], (1, 0)),
    (["true", "false"], ("true", "false")),
    (["True"], ("True", "False")),
    (["F", "F"], ("T", "F")),
    (["yes"], ("yes", "no")),
    (["ON", "OFF"], ("ON", "OFF")),
    (["true", 1], (1, 0)),                     # text and numbers: 0/1
    (["true", "TRUE", "false"], (1, 0)),       # two spellings of true: 0/1
    ([], (1, 0)),
])
def test_booleans_go_back_in_the_columns_spelling(values, expected):
    assert tuple(spelled(values, "boolean", v, "BOOLEAN") for v in (True, False)) == expected
    # The column's collation does not make two spellings one.
    assert tuple(spelled(values, "boolean", v, "BOOLEAN COLLATE NOCASE") for v in (True, False)) == expected


@pytest.mark.parametrize(("values", "declared", "expected"), [
    ([U.hex], "CHAR(32)", U.hex),
    ([str(U)], "CHAR(32)", str(U)),                       # the values say more than the declared type
    ([U.hex.upper()], "UUID", U.hex.upper()),
    ([str(U).upper()], "UUID", str(U).upper()),
    ([U.bytes], "UUID", U.bytes),
    ([U.hex, str(U)], "UUID", str(U)),                    # mixed: as the declared type says
    ([U.hex, str(U)], "CHAR(32)", U.hex),
    (["0" * 32], "TEXT", U.hex),                          # only digits: lower case
    ([], "CHAR(32)", U.hex),                              # nothing to learn from: the declared type
])
def test_uuids_go_back_in_the_columns_spelling(values, declared, expected):
    assert spelled(values, "uuid", U, declared) == expected
    assert spelled(values, "uuid", str(U), declared) == expected   # psycopg2 without register_uuid()


@pytest.mark.parametrize(("values", "declared", "expected"), [
    (["12.50"], "TEXT", "3.10"),                    # decimals kept as text keep their places
    ([12.5], "ANY", 3.1),
    (["12.50", 12.5], "ANY", 3.1),
    ([], "TEXT", 3.1),
])
def test_decimals_go_back_as_text_where_the_column_holds_text(values, declared, expected):
    assert spelled(values, "numeric", decimal.Decimal("3.10"), declared) == expected


PG_JSON = '{"a": [1, 2.5e-7, {"é": "ü ✓ \U0001f600, \\"x\\": y"}], "n": null}'   # as PostgreSQL prints jsonb


@pytest.mark.parametrize(("values", "expected"), [
    (['{"a": 1, "b": [1, 2]}', '"\\u00e9"'], '{"a": [1, 2.5e-7, {"\\u00e9": "\\u00fc \\u2713 \\ud83d\\ude00, '
                                              '\\"x\\": y"}], "n": null}'),          # json.dumps: ASCII escapes
    (['{"a":1,"b":[1,2]}', '"é"'], '{"a":[1,2.5e-7,{"é":"ü ✓ \U0001f600, \\"x\\": y"}],"n":null}'),   # compact
    (['{"a":1,"b":"\\u00e9"}'], '{"a":[1,2.5e-7,{"\\u00e9":"\\u00fc \\u2713 \\ud83d\\ude00, \\"x\\": y"}],"n":null}'),
    (['{"a": 1}', '{"a":1}'], PG_JSON),                                              # mixed: as printed
    (['"é"', '"\\u00e9"'], PG_JSON),
    ([], PG_JSON),
])
def test_json_from_jsonb_goes_back_spaced_and_escaped_as_the_column_is(values, expected):
    import json

    got = spelled(values, "jsonb", PG_JSON, "JSON")
    assert got == expected and json.loads(got) == json.loads(PG_JSON)
    assert spelled(values, "json", PG_JSON, "JSON") == PG_JSON                        # json keeps its text


def test_the_default_is_sqlalchemys_spelling_and_decide_is_pure():
    assert spelling.decide("moment", {"values": 0}) is spelling.DEFAULT
    assert spelling.to_sqlite(D) == "2025-01-02 03:04:05.000000"
    assert spelling.to_sqlite(datetime.time(1, tzinfo=NEPAL)) == "01:00:00.000000+05:45"
    assert spelling.to_sqlite(True) == 1 and spelling.to_sqlite(U, "CHAR(32)") == U.hex
    names, _select = spelling.census_sql("moment")
    counts = dict.fromkeys(names, 0) | dict(values=2, text=2, full=2, fraction=1, min_digits=6, max_digits=6,
                                            offset_=2)
    assert spelling.decide("moment", counts) == spelling.Spelling(shape="datetime", fraction="nonzero")
    assert spelling.family("integer") is None and spelling.family("interval", "BIGINT") is None


def test_the_most_recent_values_decide():
    """An app that changed its spelling (an ORM upgrade) is followed in what it writes now."""
    old = ["2020-01-01 10:00:00.000000"] * 3
    assert spelling.to_sqlite(D, spelling=learned(old + ["2024-01-01 10:00:00"], "timestamp")) == (
        "2025-01-02 03:04:05.000000")      # both spellings in the sample: the default
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, c DATETIME)")
    conn.executemany("INSERT INTO t (c) VALUES (?)", [(v,) for v in old + ["2024-01-01T10:00:00Z"] * 2])
    table = read_schema(conn).tables["t"]
    assert spelling.to_sqlite(D, spelling=spelling.learn(conn, table, "c", "moment", rows=2)) == "2025-01-02T03:04:05Z"


# --- on a real PostgreSQL ---------------------------------------------------------------------

APP = """
CREATE TABLE events (id INTEGER PRIMARY KEY, at DATETIME, day DATE, done BOOLEAN, ref UUID, price TEXT,
                     stamp TIMESTAMP, doc JSON);
"""
APP_ROWS = [
    (1, "2024-01-01T10:00:00.000Z", "2024-01-01T00:00:00", "true", str(U).upper(), "12.50", "2024-01-01 10:00:00",
     '{"a":[1,2],"é":true}'),
    (2, "2024-01-02T11:00:00.120Z", "2024-01-02T00:00:00", "false", str(uuid.UUID(int=1)).upper(), "0.10",
     "2024-01-01 10:00:00.500000", "null"),
]


@pytest.mark.parametrize("captured", [False, True], ids=["rewritten whole", "replayed row by row"])
def test_a_hand_written_apps_spellings_come_back_and_verify(pg_db, sqlite_path, captured):
    make_sqlite(sqlite_path, APP, {"events": APP_ROWS})
    params = dict(pg_db, source=sqlite_path, column_types={"events.price": "numeric(10,2)"})
    migrate(params)
    if captured:
        run.capture(params, side="postgresql")
    fetch(params, "INSERT INTO events (at, day, done, ref, price, stamp, doc) VALUES ('2025-01-02 03:04:05+00', "
                  "'2025-01-02', false, %s, 7.5, '2025-01-02 03:04:05', '{\"b\": {\"c\": \"ü\"}, \"a\": [1, 2]}'), "
                  "('2025-01-02 03:04:05.5+00', '2025-01-03', true, %s, 8, '2025-01-02 03:04:05.25', NULL); UPDATE events SET done = true WHERE id = 2 RETURNING id",
          (str(uuid.UUID(int=3)), str(uuid.UUID(int=4))))
    back = run.copy_back(params)
    assert back["tables"]["events"]["status"] == ("replayed_back" if captured else "copied_back")
    conn = sqlite3.connect(sqlite_path)
    rows = conn.execute("SELECT * FROM events ORDER BY id").fetchall()
    conn.close()
    assert rows == [
        APP_ROWS[0],
        APP_ROWS[1][:3] + ("true",) + APP_ROWS[1][4:],
        (3, "2025-01-02T03:04:05.000Z", "2025-01-02T00:00:00", "false", str(uuid.UUID(int=3)).upper(), "7.50",
         "2025-01-02 03:04:05", '{"a":[1,2],"b":{"c":"ü"}}'),
        (4, "2025-01-02T03:04:05.500Z", "2025-01-03T00:00:00", "true", str(uuid.UUID(int=4)).upper(), "8.00",
         "2025-01-02 03:04:05.250000", None),
    ]
    report = run.verify_all(params)
    assert all(t["ok"] for t in report["tables"].values()), report
    if not captured:   # (the playbook removes PostgreSQL's capture after a rollback; its log replays again)
        assert not run.copy_back(params)["changed"]


EPOCH_APP = "CREATE TABLE pings (id INTEGER PRIMARY KEY, seen DATETIME, seen_ms TIMESTAMP, seen_real DATETIME);"
EPOCH_ROWS = [(1, 1704103200, 1704103200000, 1704103200.5), (2, 1704189600, 1704189600120, 1704189600.25)]


@pytest.mark.parametrize("captured", [False, True], ids=["rewritten whole", "replayed row by row"])
def test_unix_time_columns_get_numbers_back_and_verify(pg_db, sqlite_path, captured):
    """A hand-written app that stores Unix time reads numbers after a rollback, not ISO text."""
    make_sqlite(sqlite_path, EPOCH_APP, {"pings": EPOCH_ROWS})
    params = dict(pg_db, source=sqlite_path)
    migrate(params)
    if captured:
        run.capture(params, side="postgresql")
    fetch(params, "INSERT INTO pings (seen, seen_ms, seen_real) VALUES ('2025-01-02 03:04:05+00', "
                  "'2025-01-02 03:04:05.25+00', '2025-01-02 03:04:05+00'), ('2025-01-02 03:04:05.5+00', "
                  "'2025-01-02 03:04:05+00', NULL) RETURNING id")
    run.copy_back(params)
    conn = sqlite3.connect(sqlite_path)
    rows = conn.execute("SELECT *, typeof(seen), typeof(seen_ms), typeof(seen_real) FROM pings ORDER BY id").fetchall()
    conn.close()
    assert [r[:4] for r in rows] == EPOCH_ROWS + [(3, 1735787045, 1735787045250, 1735787045.0),
                                                  (4, 1735787045.5, 1735787045000, None)]
    # (a whole real in a DATETIME column is stored as an integer: SQLite's NUMERIC affinity)
    assert [r[4:] for r in rows] == [("integer", "integer", "real")] * 2 + [("integer", "integer", "integer"),
                                                                            ("real", "integer", "null")]
    report = run.verify_all(params)
    assert all(t["ok"] for t in report["tables"].values()), report


def test_sqlalchemy_finds_its_rows_after_a_rollback(pg_db, sqlite_path):
    """SQLAlchemy binds a DateTime as ``.ffffff`` always, a Time too, a Uuid as 32 hex digits:
    after a rollback its equality lookups find the old rows and those it wrote on PostgreSQL."""
    import sqlalchemy as sa
    from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

    class Base(DeclarativeBase):
        pass

    class Job(Base):
        __tablename__ = "jobs"
        id: Mapped[int] = mapped_column(primary_key=True)
        at: Mapped[datetime.datetime] = mapped_column(sa.DateTime)
        due: Mapped[datetime.time] = mapped_column(sa.Time)
        ref: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
        done: Mapped[bool] = mapped_column(sa.Boolean)

    lite = sa.create_engine(f"sqlite:///{sqlite_path}")
    Base.metadata.create_all(lite)
    with Session(lite) as session:
        session.add_all([Job(id=1, at=D, due=datetime.time(8), ref=U, done=True),
                         Job(id=2, at=D_FRACTION, due=datetime.time(8, 0, 0, 1), ref=uuid.UUID(int=2), done=False)])
        session.commit()
    pg = sa.create_engine(f"postgresql+psycopg2://{pg_db['login_user']}@/{pg_db['db']}",
                          connect_args=dict(host=pg_db["login_unix_socket"], port=pg_db["port"]))
    Base.metadata.create_all(pg)
    params = dict(pg_db, source=sqlite_path, target="existing")
    assert run.copy(params)["tables"]["jobs"]["rows"] == 2
    on_pg = datetime.datetime(2025, 6, 7, 8, 9, 10)
    with Session(pg) as session:
        session.add(Job(at=on_pg, due=datetime.time(9), ref=uuid.UUID(int=3), done=True))
        session.commit()
    pg.dispose()
    run.copy_back(params)
    report = run.verify_all(params)
    assert all(t["ok"] for t in report["tables"].values()), report
    with Session(lite) as session:
        def find(*where):
            return session.scalars(sa.select(Job.id).where(*where)).all()

        assert find(Job.at == D, Job.due == datetime.time(8), Job.ref == U, Job.done.is_(True)) == [1]
        assert find(Job.at == D_FRACTION, Job.ref == uuid.UUID(int=2)) == [2]
        assert find(Job.at == on_pg, Job.due == datetime.time(9), Job.ref == uuid.UUID(int=3)) == [3]
    with lite.connect() as conn:
        assert conn.exec_driver_sql("SELECT at, due FROM jobs WHERE id = 3").one() == (
            "2025-06-07 08:09:10.000000", "09:00:00.000000")
    lite.dispose()
