"""The guide's app on a schema made by Alembic, then data-only from SQLite (issue #7).

An operator whose app manages its schema with Alembic runs ``alembic upgrade head`` on the
empty PostgreSQL database and only then loads the data (``target: existing``). The test
builds that Alembic environment itself - ``alembic.ini``, ``env.py`` and one revision
script as ``alembic revision --autogenerate`` would write it from the app's models
(tests/app/models.py), plus what the guide's step 3.1 adds: ``users.uuid``, a column
SQLite does not have, ``NOT NULL UNIQUE`` with a server default. The revision creates
the native ENUM types ``analysisstatus`` and ``analysismode`` and SERIAL keys (Alembic's
spelling of an integer primary key), not the identity columns this project would create.

Then the SQLite file is loaded into that schema, verified, and the app's models are used
on it: ``alembic_version`` is left as Alembic wrote it, the sequences continue past
max(id), and the guide's step 6.1 and 6.2 tests pass unchanged.
"""

import textwrap

import pytest
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, select

from scripts.make_demo_db import build
from sqlite_pg import run
from tests.app.models import (
    Analysis,
    AnalysisMode,
    AnalysisStatus,
    Idea,
    User,
    make_engine,
    make_session_factory,
)
from tests.conftest import fetch
from tests.unit.test_guide_app import ANALYSES_PER_IDEA, IDEAS_PER_USER, USERS, pg_url
from tests.unit.test_guide_app import test_concurrent_operations as guide_6_2
from tests.unit.test_guide_app import test_data_integrity as guide_6_1

REVISION = "3f2a9c1d0b7e"

ENV_PY = '''\
"""Alembic's environment, as `alembic init` writes it, online mode only."""
from alembic import context
from sqlalchemy import engine_from_config, pool

from tests.app.models import Base

config = context.config
# No logging.config.fileConfig(): it would reconfigure logging in the test process.
target_metadata = Base.metadata


def run_migrations_online():
    connectable = engine_from_config(config.get_section(config.config_ini_section, {}),
                                     prefix="sqlalchemy.", poolclass=pool.NullPool)
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
'''

# What `alembic revision --autogenerate -m "create users, ideas, analyses"` writes for the
# app's models, and the uuid column of the guide's step 3.1 added by hand.
REVISION_PY = f'''\
"""create users, ideas, analyses

Revision ID: {REVISION}
Revises:
Create Date: 2024-05-01 10:00:00.000000

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "{REVISION}"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("telegram_id", sa.String(), nullable=False),
        sa.Column("username", sa.String(), nullable=True),
        sa.Column("first_name", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=True),
        sa.Column("uuid", postgresql.UUID(as_uuid=True), server_default=sa.text("gen_random_uuid()"),
                  nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("telegram_id"),
        sa.UniqueConstraint("uuid"),
    )
    op.create_index(op.f("ix_users_id"), "users", ["id"], unique=False)
    op.create_table(
        "ideas",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("mode", sa.Enum("EVALUATION", "PLANNING", "CRITIQUE", name="analysismode"), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_ideas_id"), "ideas", ["id"], unique=False)
    op.create_index(op.f("ix_ideas_user_id"), "ideas", ["user_id"], unique=False)
    op.create_table(
        "analyses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idea_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.Enum("QUEUED", "RUNNING", "DONE", "FAILED", name="analysisstatus"),
                  nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("tokens_used", sa.Integer(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["idea_id"], ["ideas.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_analyses_id"), "analyses", ["id"], unique=False)


def downgrade():
    op.drop_index(op.f("ix_analyses_id"), table_name="analyses")
    op.drop_table("analyses")
    op.drop_index(op.f("ix_ideas_user_id"), table_name="ideas")
    op.drop_index(op.f("ix_ideas_id"), table_name="ideas")
    op.drop_table("ideas")
    op.drop_index(op.f("ix_users_id"), table_name="users")
    op.drop_table("users")
    sa.Enum(name="analysisstatus").drop(op.get_bind())
    sa.Enum(name="analysismode").drop(op.get_bind())
'''


def alembic_config(directory, url):
    """Write alembic.ini, env.py and the revision into ``directory``; returns the Config."""
    (directory / "versions").mkdir(parents=True)
    (directory / "env.py").write_text(ENV_PY)
    (directory / "versions" / f"{REVISION}_create_users_ideas_analyses.py").write_text(REVISION_PY)
    # configparser interpolation: the URL's %-escapes (the socket directory) are doubled.
    ini_url = url.render_as_string(hide_password=False).replace("%", "%%")
    (directory / "alembic.ini").write_text(textwrap.dedent(f"""\
        [alembic]
        script_location = {directory}
        sqlalchemy.url = {ini_url}
        """))
    return Config(str(directory / "alembic.ini"))


def alembic_current(url):
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_heads()
    finally:
        engine.dispose()


@pytest.fixture
def alembic_loaded(pg_db, pg_cluster, tmp_path):
    """``alembic upgrade head`` on an empty database, then the demo bot.db loaded data-only."""
    url = pg_url(pg_cluster, pg_db["db"])
    cfg = alembic_config(tmp_path / "migrations", url)
    command.upgrade(cfg, "head")
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head == REVISION and alembic_current(url) == (REVISION,)

    source = tmp_path / "bot.db"
    made = build(source, users=USERS, ideas_per_user=IDEAS_PER_USER, analyses_per_idea=ANALYSES_PER_IDEA, seed=13)
    params = dict(pg_db, source=str(source), target="existing")
    assert not run.schema(params)["changed"]          # the schema is Alembic's: nothing is created
    copied = run.copy(params)
    assert copied["rejected"] == 0 and copied["rows"] == sum(made["counts"].values())
    return dict(params=params, url=url, cfg=cfg, counts=made["counts"], notes=copied["notes"])


@pytest.fixture
def session_factory(alembic_loaded):
    engine = make_engine(alembic_loaded["url"])
    yield make_session_factory(engine)
    engine.dispose()


def test_data_only_into_the_schema_alembic_made(alembic_loaded):
    params, url = alembic_loaded["params"], alembic_loaded["url"]
    report = run.verify_all(params)
    assert all(t["ok"] for t in report["tables"].values()), report
    assert report["rows"] == sum(alembic_loaded["counts"].values())
    assert set(report["tables"]) == {"users", "ideas", "analyses"}      # alembic_version is not compared

    # Alembic's bookkeeping is as Alembic left it, and Alembic agrees nothing is pending.
    assert fetch(params, "SELECT version_num FROM alembic_version") == [(REVISION,)]
    command.upgrade(alembic_loaded["cfg"], "head")
    assert alembic_current(url) == (REVISION,)
    assert fetch(params, "SELECT count(*) FROM alembic_version") == [(1,)]

    # Alembic's types are kept: native ENUMs, SERIAL keys, the uuid filled by its server default.
    assert any("users.uuid: not in SQLite, left to its default" in n for n in alembic_loaded["notes"])
    assert fetch(params, "SELECT count(DISTINCT uuid), count(*) FROM users") == [(USERS, USERS)]
    assert fetch(params, "SELECT column_default FROM information_schema.columns "
                         "WHERE table_name = 'users' AND column_name = 'uuid'") == [("gen_random_uuid()",)]
    udt = dict(fetch(params, "SELECT column_name, udt_name FROM information_schema.columns "
                             "WHERE table_name IN ('ideas', 'analyses') AND column_name IN ('mode', 'status')"))
    assert udt == {"mode": "analysismode", "status": "analysisstatus"}
    assert fetch(params, "SELECT enum_range(NULL::analysisstatus)::text") == [("{QUEUED,RUNNING,DONE,FAILED}",)]
    serial = fetch(params, "SELECT table_name FROM information_schema.columns WHERE column_name = 'id' "
                           "AND table_name IN ('users', 'ideas', 'analyses') AND column_default LIKE 'nextval(%' ORDER BY 1")
    assert [r[0] for r in serial] == ["analyses", "ideas", "users"]
    # ...and its keys, indexes and foreign keys are the only ones (data-only adds none).
    assert fetch(params, "SELECT count(*) FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
                         "WHERE t.relname IN ('users', 'ideas', 'analyses') AND c.contype = 'f'") == [(3,)]

    # Every sequence continues past max(id): the app's models insert without a UniqueViolation.
    tops = {t: fetch(params, f"SELECT max(id) FROM {t}")[0][0] for t in ("users", "ideas", "analyses")}
    engine = make_engine(url)
    session = make_session_factory(engine)()
    user = User(telegram_id="after-alembic", username="new")
    session.add(user)
    session.flush()
    idea = Idea(user_id=user.id, text="first idea after the move")
    session.add(idea)
    session.flush()
    analysis = Analysis(idea_id=idea.id, user_id=user.id)
    session.add(analysis)
    session.commit()
    assert (user.id, idea.id, analysis.id) == (tops["users"] + 1, tops["ideas"] + 1, tops["analyses"] + 1)
    assert analysis.status is AnalysisStatus.QUEUED
    assert session.scalar(select(Idea.mode).where(Idea.id == idea.id)) is AnalysisMode.EVALUATION
    session.close()
    # The models do not map users.uuid: PostgreSQL's server default gives the new user one too.
    assert fetch(params, "SELECT uuid IS NOT NULL FROM users WHERE telegram_id = 'after-alembic'") == [(True,)]
    engine.dispose()
    for table, top in tops.items():
        last, called = fetch(params, f"SELECT last_value, is_called FROM {table}_id_seq")[0]
        assert last >= top and called


def test_postgresql_connection_on_the_alembic_schema(session_factory):
    """Guide step 6.1, first test."""
    session = session_factory()
    assert session.bind.dialect.name == "postgresql"
    session.close()


def test_data_integrity_on_the_alembic_schema(session_factory):
    """Guide step 6.1, second test: a new user and idea, and the relationship sees it."""
    guide_6_1(session_factory)


def test_concurrent_operations_on_the_alembic_schema(session_factory):
    """Guide step 6.2: 50 threads insert a user each."""
    guide_6_2(session_factory)
