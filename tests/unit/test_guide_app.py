"""The migration guide's own app and tests, run against a database this engine migrated.

A demo ``bot.db`` made by the app's models (scripts/make_demo_db.py) is migrated with the
engine (tables -> copy -> constraints) into a real PostgreSQL and verified; then the
app's SQLAlchemy models are pointed at PostgreSQL and the guide's step 6 tests run
unchanged in substance: 6.1 (create a user and an idea, the relationship sees it) and 6.2
(50 concurrent inserts). Both fail if the identity sequences were left behind max(id).

The engine maps the app's enum columns to ``varchar`` (there is no option for native
ENUM types yet); SQLAlchemy must still read and write them as Python enums.
"""

import datetime
import threading

import pytest
from sqlalchemy import URL, func, select, text

from scripts.make_demo_db import build
from sqlite_pg import run
from tests.app.models import (
    PG_POOL_OPTIONS,
    Analysis,
    AnalysisMode,
    AnalysisStatus,
    Idea,
    User,
    database_url,
    make_engine,
    make_session_factory,
    read_env_file,
)
from tests.conftest import fetch

USERS, IDEAS_PER_USER, ANALYSES_PER_IDEA = 200, 5, 4


def pg_url(pg_cluster, db):
    """postgresql+psycopg2://postgres@/DB?host=SOCKDIR&port=PORT"""
    return URL.create("postgresql+psycopg2", username="postgres", database=db,
                      query={"host": pg_cluster.sockdir, "port": str(pg_cluster.port)})


@pytest.fixture
def migrated(pg_db, tmp_path):
    """A demo bot.db migrated into pg_db: the params dict (with ``source``)."""
    source = tmp_path / "bot.db"
    made = build(source, users=USERS, ideas_per_user=IDEAS_PER_USER, analyses_per_idea=ANALYSES_PER_IDEA,
                 seed=7)
    assert made["counts"] == {"users": USERS, "ideas": USERS * IDEAS_PER_USER,
                              "analyses": USERS * IDEAS_PER_USER * ANALYSES_PER_IDEA}
    params = dict(pg_db, source=str(source))
    run.schema(params, phase="tables")
    copied = run.copy(params, on_error="error")
    assert copied["rejected"] == 0
    assert copied["rows"] == sum(made["counts"].values())
    run.schema(params, phase="constraints")
    return params


@pytest.fixture
def session_factory(migrated, pg_cluster):
    engine = make_engine(pg_url(pg_cluster, migrated["db"]))
    yield make_session_factory(engine)
    engine.dispose()


def test_demo_db_migrates_and_verifies(migrated):
    report = run.verify_all(migrated)
    assert report["rows"] == USERS * (1 + IDEAS_PER_USER * (1 + ANALYSES_PER_IDEA))
    assert all(t["ok"] for t in report["tables"].values()), report

    types = dict(((t, c), (typ, nullable)) for t, c, typ, nullable in fetch(
        migrated, "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
                  "WHERE table_schema = 'public'"))
    assert types["ideas", "mode"] == ("character varying", "YES")         # enum names, VARCHAR(10) in SQLite
    assert types["analyses", "status"] == ("character varying", "YES")
    assert types["users", "is_active"][0] == "boolean"
    assert types["analyses", "created_at"][0] == "timestamp without time zone"
    assert types["users", "telegram_id"] == ("text", "NO")                # VARCHAR without a length
    identity = fetch(migrated, "SELECT table_name FROM information_schema.columns "
                               "WHERE column_name = 'id' AND is_identity = 'YES' ORDER BY 1")
    assert [r[0] for r in identity] == ["analyses", "ideas", "users"]


def test_postgresql_connection(session_factory):
    """Guide step 6.1, first test."""
    session = session_factory()
    assert session.bind.dialect.name == "postgresql"
    session.close()


def test_data_integrity(session_factory):
    """Guide step 6.1, second test, on top of the migrated rows."""
    session = session_factory()

    # Test user creation
    user = User(telegram_id="test_user", username="test")
    session.add(user)
    session.commit()
    assert user.id > USERS  # the identity continues after the migrated ids

    # Test relationships
    idea = Idea(user_id=user.id, text="Test idea")
    session.add(idea)
    session.commit()

    # Verify data
    retrieved_user = session.query(User).filter_by(telegram_id="test_user").first()
    assert retrieved_user is not None
    assert len(retrieved_user.ideas) == 1
    assert retrieved_user.ideas[0].mode is AnalysisMode.EVALUATION   # the model's default, written as a name
    assert retrieved_user.is_active is True

    session.close()


def test_enum_columns_round_trip_through_varchar(session_factory, migrated):
    session = session_factory()
    first = session.get(Idea, 1)
    assert isinstance(first.mode, AnalysisMode)
    assert first.mode.name == fetch(migrated, "SELECT mode FROM ideas WHERE id = 1")[0][0]
    assert isinstance(first.created_at, datetime.datetime)
    statuses = session.scalars(select(Analysis.status).distinct()).all()
    assert set(statuses) <= set(AnalysisStatus) and AnalysisStatus.DONE in statuses

    # filter on an enum, write one, and update one: PostgreSQL sees the names
    done = session.scalar(select(func.count()).select_from(Analysis).where(Analysis.status == AnalysisStatus.DONE))
    assert done == fetch(migrated, "SELECT count(*) FROM analyses WHERE status = 'DONE'")[0][0]
    analysis = Analysis(idea_id=first.id, user_id=first.user_id)
    session.add(analysis)
    first.mode = AnalysisMode.CRITIQUE
    session.commit()
    assert analysis.status is AnalysisStatus.QUEUED
    assert fetch(migrated, "SELECT status FROM analyses WHERE id = %s", (analysis.id,)) == [("QUEUED",)]
    assert fetch(migrated, "SELECT mode FROM ideas WHERE id = 1") == [("CRITIQUE",)]
    # the relationships of migrated rows load through the migrated foreign keys
    assert len(first.analyses) == ANALYSES_PER_IDEA + 1
    assert first.user.ideas and all(i.user_id == first.user_id for i in first.user.ideas)
    session.close()


def test_concurrent_operations(session_factory):
    """Guide step 6.2: 50 threads insert a user each, at the same moment."""
    with session_factory() as s:
        before = s.scalar(select(func.count()).select_from(User))
    errors = []
    start = threading.Barrier(50)

    def worker():
        # All 50 threads are alive at the barrier, so their idents are distinct (an ident is
        # reused only after its thread ends: without the barrier the guide's key could collide).
        start.wait(timeout=30)
        session = session_factory()
        try:
            user = User(telegram_id=f"user_{threading.current_thread().ident}")
            session.add(user)
            session.commit()
        except Exception as exc:  # collected and reported by the main thread
            errors.append(exc)
        finally:
            session.close()

    threads = []
    for _i in range(50):
        t = threading.Thread(target=worker)
        threads.append(t)
        t.start()

    for t in threads:
        t.join()

    assert errors == []
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(User)) == before + 50
        ids = s.scalars(select(User.id).where(User.telegram_id.like("user\\_%"))).all()
        assert len(ids) == len(set(ids)) == 50 and min(ids) > USERS


# --- the app's configuration (no database needed) -----------------------------------------


def test_make_engine_applies_the_guides_pool_options_to_postgresql(pg_cluster, tmp_path):
    engine = make_engine(pg_url(pg_cluster, "postgres"))
    pool = engine.pool
    assert (pool.size(), pool._max_overflow, pool._timeout, pool._recycle, pool._pre_ping) == (
        PG_POOL_OPTIONS["pool_size"], PG_POOL_OPTIONS["max_overflow"], PG_POOL_OPTIONS["pool_timeout"],
        PG_POOL_OPTIONS["pool_recycle"], PG_POOL_OPTIONS["pool_pre_ping"])
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT 1")) == 1
    engine.dispose()

    # The guide's spelling, postgresql://, names no driver; psycopg2 is what it installs.
    guide = make_engine("postgresql://planner_user:secret@localhost/idea_planner")
    assert guide.dialect.driver in ("psycopg2", "psycopg")
    guide.dispose()

    lite = make_engine(f"sqlite:///{tmp_path / 'bot.db'}")
    assert lite.dialect.name == "sqlite"
    assert (lite.pool._recycle, lite.pool._pre_ping) == (-1, False)   # SQLite keeps SQLAlchemy's defaults
    lite.dispose()


def test_database_url_from_environment_then_env_file(tmp_path):
    env = tmp_path / ".env"
    env.write_text("# app settings\n\nexport BOT_TOKEN=abc # not a url\n"
                   "DATABASE_URL='postgresql://planner_user:p#ss@localhost/idea_planner'\n")
    assert read_env_file(env)["BOT_TOKEN"] == "abc"
    assert database_url(env, environ={}) == "postgresql://planner_user:p#ss@localhost/idea_planner"
    assert database_url(env, environ={"DATABASE_URL": "sqlite:///other.db"}) == "sqlite:///other.db"
    assert database_url(tmp_path / "missing.env", environ={}) == "sqlite:///bot.db"


# --- the app's models name the enum columns: native PostgreSQL ENUM types -------------------


def test_models_option_creates_native_enums_the_orm_uses(pg_db, pg_cluster, tmp_path):
    import os

    source = tmp_path / "bot.db"
    build(source, users=50, ideas_per_user=2, analyses_per_idea=2, seed=3)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    params = dict(pg_db, source=str(source), models="tests.app.models:Base", app_path=root)
    planned = run.schema(params, phase="tables", check_mode=True)
    assert any(q.startswith('CREATE TYPE "public"."analysisstatus" AS ENUM') for q in planned["queries"])
    run.schema(params, phase="tables")
    run.copy(params)
    run.schema(params, phase="constraints")
    run.verify_all(params)
    assert not run.schema(params, phase="tables")["changed"]
    types = dict(fetch(params, "SELECT column_name, udt_name FROM information_schema.columns "
                               "WHERE table_name IN ('ideas', 'analyses') AND column_name IN ('mode', 'status')"))
    assert types == {"mode": "analysismode", "status": "analysisstatus"}
    labels = fetch(params, "SELECT enum_range(NULL::analysisstatus)::text")[0][0]
    assert labels == "{QUEUED,RUNNING,DONE,FAILED}"
    engine = make_engine(pg_url(pg_cluster, params["db"]))
    session = make_session_factory(engine)()
    first = session.get(Idea, 1)
    assert isinstance(first.mode, AnalysisMode)
    session.add(Analysis(idea_id=1, user_id=first.user_id, status=AnalysisStatus.RUNNING))
    session.commit()
    session.close()
    engine.dispose()


# --- data only, into the schema the app created itself (the guide's step 3.2) ---------------


def test_data_only_into_the_apps_own_schema(pg_db, pg_cluster, tmp_path):
    from sqlalchemy import create_engine as sa_engine

    from sqlite_pg.errors import MigrationError, SchemaError
    from tests.app.models import Base

    source = tmp_path / "bot.db"
    build(source, users=60, ideas_per_user=2, analyses_per_idea=2, seed=5)
    url = pg_url(pg_cluster, pg_db["db"])
    engine = sa_engine(url)
    Base.metadata.create_all(engine)        # native ENUMs, integer keys, the app's own names
    with engine.begin() as conn:            # the guide's step 3.1: users gain a uuid column
        conn.execute(text("ALTER TABLE users ADD COLUMN uuid uuid UNIQUE"))
        conn.execute(text("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('abc123')"))
    engine.dispose()

    params = dict(pg_db, source=str(source), target="existing", column_defaults={"users.uuid": "gen_random_uuid()"})
    assert not run.schema(params)["changed"]          # nothing is created in an app-owned schema
    result = run.copy(params)
    assert result["rows"] == 60 + 120 + 240 and result["rejected"] == 0
    assert any("users.uuid: not in SQLite, filled with gen_random_uuid()" in n for n in result["notes"])
    run.verify_all(params)
    assert fetch(params, "SELECT count(DISTINCT uuid), count(*) FROM users") == [(60, 60)]
    assert fetch(params, "SELECT column_default FROM information_schema.columns "
                         "WHERE table_name = 'users' AND column_name = 'uuid'") == [(None,)]   # put back
    assert fetch(params, "SELECT udt_name FROM information_schema.columns WHERE table_name = 'analyses' "
                         "AND column_name = 'status'") == [("analysisstatus",)]
    assert fetch(params, "SELECT version_num FROM alembic_version") == [("abc123",)]   # left alone

    session = make_session_factory(make_engine(url))()
    user = User(telegram_id="after-migration")      # the identity/serial continues past max(id)
    session.add(user)
    session.commit()
    assert user.id == 61
    session.close()

    # A SQLite column with nowhere to go is an error, unless excluded.
    fetch(params, "ALTER TABLE ideas DROP COLUMN mode; SELECT 1")
    with pytest.raises(SchemaError, match=r"column ideas.mode has no column in public.ideas"):
        run.copy(params)
    again = run.copy(dict(params, include_tables=["ideas"], exclude_columns=["ideas.mode"]))
    assert again["tables"]["ideas"]["status"] == "in_sync"
    # users took a write on PostgreSQL since: a recopy would lose it, so it is refused.
    with pytest.raises(MigrationError, match="'users' must be copied again but tables outside this run reference it"):
        run.copy(dict(params, include_tables=["users"]))
