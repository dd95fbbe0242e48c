"""The idea-planner-agent's database layer, as the migration guide describes it.

A small, importable stand-in for the bot's ``src/database.py``: SQLAlchemy 2 declarative
models ``User``, ``Idea`` and ``Analysis`` over the tables ``users``, ``ideas`` and
``analyses``, the two Python enums, and ``make_engine`` with the guide's connection
settings (step 2: ``DATABASE_URL`` from the environment or a ``.env`` file; step 5.1:
the pool options when the URL is PostgreSQL).

Enum columns use SQLAlchemy's default behaviour: on SQLite the enum *names* (``QUEUED``,
not the value ``queued``) are stored in a ``VARCHAR`` sized to the longest name, without
a CHECK constraint; on PostgreSQL ``create_all`` would create native ENUM types
(``analysisstatus``, ``analysismode``). The ORM reads and writes names either way, so the
same models also work on a migrated schema where those columns are ``varchar``.
"""

import datetime
import enum
import importlib.util
import os

from sqlalchemy import (
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    make_url,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker

DEFAULT_URL = "sqlite:///bot.db"

# Step 5.1 of the guide: pool settings for PostgreSQL (SQLite keeps SQLAlchemy's defaults).
PG_POOL_OPTIONS = dict(pool_size=10, max_overflow=20, pool_timeout=30, pool_recycle=3600, pool_pre_ping=True)


def utcnow():
    """Naive UTC now, as ``datetime.utcnow()`` gave it (without its deprecation warning)."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


class AnalysisStatus(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class AnalysisMode(enum.Enum):
    EVALUATION = "evaluation"
    PLANNING = "planning"
    CRITIQUE = "critique"


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)
    telegram_id: Mapped[str] = mapped_column(String, unique=True, nullable=False)
    username: Mapped[str | None] = mapped_column(String)
    first_name: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, default=utcnow)
    is_active: Mapped[bool | None] = mapped_column(Boolean, default=True)

    ideas: Mapped[list["Idea"]] = relationship(back_populates="user")
    analyses: Mapped[list["Analysis"]] = relationship(back_populates="user")

    def __repr__(self):
        return f"User(id={self.id!r}, telegram_id={self.telegram_id!r})"


class Idea(Base):
    __tablename__ = "ideas"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)
    user_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id"), index=True)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    mode: Mapped[AnalysisMode | None] = mapped_column(Enum(AnalysisMode), default=AnalysisMode.EVALUATION)
    created_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, default=utcnow)

    user: Mapped[User | None] = relationship(back_populates="ideas")
    analyses: Mapped[list["Analysis"]] = relationship(back_populates="idea")

    def __repr__(self):
        return f"Idea(id={self.id!r}, user_id={self.user_id!r}, mode={self.mode!r})"


class Analysis(Base):
    __tablename__ = "analyses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)
    idea_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("ideas.id"))
    user_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id"))
    status: Mapped[AnalysisStatus | None] = mapped_column(Enum(AnalysisStatus), default=AnalysisStatus.QUEUED)
    result: Mapped[str | None] = mapped_column(Text)            # JSON document as text
    tokens_used: Mapped[int | None] = mapped_column(Integer)
    score: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, default=utcnow)
    completed_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)

    idea: Mapped[Idea | None] = relationship(back_populates="analyses")
    user: Mapped[User | None] = relationship(back_populates="analyses")

    def __repr__(self):
        return f"Analysis(id={self.id!r}, idea_id={self.idea_id!r}, status={self.status!r})"


# --- configuration ------------------------------------------------------------------------


def read_env_file(path):
    """KEY=VALUE lines of a ``.env`` file as a dict ({} when the file does not exist).

    Enough of the dotenv format for a database URL: blank lines and ``#`` comments are
    skipped, an ``export`` prefix is allowed, and a value may be wrapped in single or
    double quotes (then kept verbatim); an unquoted value ends at `` #``.
    """
    out = {}
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        return out
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, sep, value = line.partition("=")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = value.split(" #", 1)[0].rstrip()
        out[key] = value
    return out


def database_url(env_file=".env", environ=None):
    """``DATABASE_URL`` from the environment, else from ``env_file``, else SQLite ``bot.db``.

    As with python-dotenv's ``load_dotenv()``, a variable already set in the environment
    wins over the file.
    """
    environ = os.environ if environ is None else environ
    if environ.get("DATABASE_URL"):
        return environ["DATABASE_URL"]
    if env_file:
        value = read_env_file(env_file).get("DATABASE_URL")
        if value:
            return value
    return DEFAULT_URL


def resolve_url(url):
    """The URL as a SQLAlchemy URL object, with a driver SQLAlchemy can load.

    ``postgresql://`` (the guide's spelling) means psycopg2 in SQLAlchemy 1.4/2.0 but
    psycopg 3 from 2.1 on; when psycopg 3 is not installed and psycopg2 is (the guide
    installs ``psycopg2-binary``), the URL is pinned to ``postgresql+psycopg2``.
    """
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
            parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed


def make_engine(url=None, env_file=".env", echo=False, **kwargs):
    """The app's engine: ``url``, or the configured ``DATABASE_URL`` when none is given.

    PostgreSQL gets the guide's pool options (step 5.1); explicit ``kwargs`` override them.
    """
    url = resolve_url(url or database_url(env_file))
    options = dict(echo=echo)
    if url.get_backend_name() == "postgresql":
        options.update(PG_POOL_OPTIONS)
    options.update(kwargs)
    return create_engine(url, **options)


def make_session_factory(engine):
    """``SessionLocal`` as the bot builds it."""
    return sessionmaker(bind=engine, autoflush=False)


def init_db(engine):
    """Create the tables (the app's ``init_db``: ``Base.metadata.create_all``)."""
    Base.metadata.create_all(engine)
