#!/usr/bin/env python3
"""Create a demo ``bot.db`` for the idea-planner-agent: the app's own schema, filled fast.

    make_demo_db.py PATH [--users N] [--ideas-per-user K] [--analyses-per-idea J] [--seed S] [--force]

The schema is made by the app's models (``Base.metadata.create_all`` on ``sqlite:///PATH``),
so the file is exactly what the bot would have; the rows are then written with the stdlib
``sqlite3`` ``executemany`` in large batches inside one transaction (not the ORM row by
row). Values are stored the way SQLAlchemy stores them on SQLite: enum *names*
(``EVALUATION``, ``DONE``), ``DATETIME`` as ``YYYY-MM-DD HH:MM:SS.ffffff``, booleans as
0/1, the analysis result as JSON text. The data is deterministic for a given seed: same
arguments, same rows.

Defaults: 50,000 users x 5 ideas x 4 analyses = 50k users, 250k ideas, 1M analyses
(about 1.3M rows). The file is built next to PATH and renamed into place at the end, so an
interrupted run never leaves a half-filled database under PATH. PATH is not overwritten
unless ``--force`` is given.

Importable: ``build()`` makes a file, ``batches()`` yields the rows, and ``COLUMNS`` names
the columns of each table in insert order (for benchmarks that load the same data
elsewhere).
"""

import argparse
import datetime
import json
import os
import random
import sqlite3
import sys
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:  # run as a script: make the app's models importable
    sys.path.insert(0, _ROOT)

from sqlalchemy import create_engine  # noqa: E402

from tests.app.models import AnalysisMode, AnalysisStatus, Base  # noqa: E402

DEFAULT_USERS = 50_000
DEFAULT_IDEAS_PER_USER = 5
DEFAULT_ANALYSES_PER_IDEA = 4
DEFAULT_SEED = 20240601
USERS_PER_BATCH = 5_000

COLUMNS = {
    "users": ("id", "telegram_id", "username", "first_name", "created_at", "is_active"),
    "ideas": ("id", "user_id", "text", "mode", "created_at"),
    "analyses": ("id", "idea_id", "user_id", "status", "result", "tokens_used", "score", "created_at",
                 "completed_at"),
}
TABLES = tuple(COLUMNS)  # parents before children

# Users sign up over two years; every timestamp is naive UTC, as the app writes it.
EPOCH = datetime.datetime(2023, 1, 1, 8, 0, 0)
SIGNUP_SPAN_SECONDS = 730 * 86_400

# --- value pools ------------------------------------------------------------------------------

_FIRST_NAMES = (
    "Alex", "Maria", "John", "Olga", "Ivan", "Anna", "Dmitry", "Elena", "Chen", "Priya", "Lucas", "Sofia",
    "Mohammed", "Yuki", "Fatima", "Noah", "Emma", "Ahmed", "Zoë", "José", "Björn", "Ångström", "Иван",
    "Мария", "Алексей", "Наталья", "李", "王芳", "さくら", "민준", "Αλέξανδρος", "محمد", "דוד",
    "O'Brien", "D'Angelo", 'Big "Tony"', "Ann-Marie", "Jean, Paul", "Back\\slash", "🚀 Rocket", "Настя 🌸",
)
_USER_STEMS = (
    "alex", "maria", "john_dev", "olga", "ivan", "anna", "founder", "builder", "maker", "pm", "hacker",
    "startup", "idea", "dreamer", "coder", "growth", "product", "ceo", "indie", "nomad",
)
_ODD_USERNAMES = (
    "o'neil", 'the_"boss"', "zoë_k", "иван_петров", "李雷", "café_owner", "emoji_🚀", "naïve", "a,b,c",
    "tab\tname", "back\\slash", "   spaced   ",
)

_IDEA_OPENERS = (
    "A Telegram bot that", "An app that", "A marketplace where", "A SaaS tool that", "A browser extension that",
    "A subscription service that", "A community platform where", "An AI assistant that", "A mobile game that",
    "A B2B dashboard that", "Бот, который", "Сервис, который", "Una app que", "Eine Plattform, die",
)
_IDEA_MIDDLES = (
    "helps freelancers track invoices", "matches dog owners with walkers nearby",
    "summarises long group chats every evening", "plans weekly meals from what's in the fridge",
    "lets small cafés run loyalty programs", "turns voice notes into to-do lists",
    "finds co-founders by skills and timezone", "books padel courts and splits the payment",
    "reminds people to water their plants", "compares electricity tariffs every month",
    "помогает учить английские слова", "собирает отзывы клиентов", "recommends books based on mood",
    "tracks crypto portfolios across 12 exchanges", "translates menus with photos",
    'rates "side projects" by how likely they are to make $1,000/month',
)
_IDEA_DETAILS = (
    "Revenue: freemium, 4.99/month for pro.", "Target audience: students and young professionals.",
    "MVP in two weeks with Python + SQLite.", "Competitors exist but are clunky and expensive.",
    "Could partner with local businesses, 10% commission.", "Needs GDPR-compliant storage.",
    "Growth via referrals: invite 3 friends, get a month free.", "Main risk: chicken-and-egg problem.",
    "Uses the OpenAI API; cost per request ~$0.002.", "Data from public APIs (rate limits!).",
    "Works offline; syncs when online.", "Monetisation unclear — maybe ads?", "C'est une idée simple, mais utile.",
    "Пилот в Москве, потом другие города.", "Idea from a friend \U0001F914", "Price: 100 ₽ / 1 € / 1 $",
)
_BULLETS = ("- landing page", "- waitlist", "- payment via Telegram Stars", "- admin panel", "- analytics",
            "- onboarding flow", "- referral program", "- export to CSV, \"Excel\" and PDF")

_VERDICTS = tuple(json.dumps(v, ensure_ascii=False) for v in (
    "promising", "needs validation", "crowded market", "strong niche", "weak monetisation", "go",
    "pivot suggested", "перспективно", "rischioso",
))
_STRENGTHS = tuple(json.dumps(v, ensure_ascii=False) for v in (
    ["clear pain point"], ["low cost to build", "viral loop"], ["recurring revenue"],
    ["underserved niche", "simple MVP"], [], ["strong founder fit"], ["network effects", "B2B budget"],
    ["понятная аудитория"],
))
_RISKS = tuple(json.dumps(v, ensure_ascii=False) for v in (
    ["competition"], ["regulation", "payments"], ["user acquisition cost"], [], ["retention", "churn"],
    ["dependency on a third-party API"], ["seasonality"], ["\"copycats\" from big players"],
))
_STEPS = tuple(json.dumps(v, ensure_ascii=False) for v in (
    ["interview 10 users"], ["build a landing page", "run a $50 ad test"], ["prototype in a weekend"],
    ["validate pricing"], ["talk to 3 businesses", "prepare a demo"], [],
))
_ERRORS = tuple(json.dumps({"error": e}, ensure_ascii=False) for e in (
    "rate limit exceeded", "timeout after 60s", "model returned invalid JSON", "context length exceeded",
    "upstream 502 Bad Gateway", "ошибка сети",
))

_MODES = tuple(m.name for m in AnalysisMode)
_MODE_WEIGHTS = (60, 25, 15)
_DONE, _FAILED, _RUNNING, _QUEUED = (AnalysisStatus.DONE.name, AnalysisStatus.FAILED.name,
                                     AnalysisStatus.RUNNING.name, AnalysisStatus.QUEUED.name)


def _ts(seconds):
    """A timestamp EPOCH + seconds, as SQLAlchemy writes DATETIME on SQLite."""
    return (EPOCH + datetime.timedelta(seconds=seconds)).isoformat(" ", "microseconds")


def _username(rng, uid):
    r = rng.random()
    if r < 0.12:
        return None                      # no @username on Telegram
    if r < 0.14:
        return rng.choice(_ODD_USERNAMES)
    return f"{rng.choice(_USER_STEMS)}{uid}"


def _first_name(rng):
    return None if rng.random() < 0.05 else rng.choice(_FIRST_NAMES)


def _idea_text(rng):
    r = rng.random()
    head = f"{rng.choice(_IDEA_OPENERS)} {rng.choice(_IDEA_MIDDLES)}."
    if r < 0.30:
        return head
    details = " ".join(rng.choice(_IDEA_DETAILS) for _ in range(rng.randint(1, 6 if r < 0.97 else 60)))
    if r < 0.95:
        return f"{head} {details}"
    # a few multi-line ideas, as typed in Telegram (some with Windows line ends or trailing spaces)
    nl = "\r\n" if r > 0.99 else "\n"
    bullets = nl.join(rng.sample(_BULLETS, rng.randint(2, len(_BULLETS))))
    return f"{head}{nl}{nl}{details}{nl}Features:{nl}{bullets}{nl}  "


def _done_result(rng, score):
    return (f'{{"verdict": {rng.choice(_VERDICTS)}, "score": {score}, "strengths": {rng.choice(_STRENGTHS)}, '
            f'"risks": {rng.choice(_RISKS)}, "next_steps": {rng.choice(_STEPS)}}}')


def batches(users=DEFAULT_USERS, ideas_per_user=DEFAULT_IDEAS_PER_USER,
            analyses_per_idea=DEFAULT_ANALYSES_PER_IDEA, seed=DEFAULT_SEED, users_per_batch=USERS_PER_BATCH):
    """Yield ``{table: [row tuples]}`` for ``users_per_batch`` users (and their ideas and analyses)
    at a time, columns as in ``COLUMNS``. Ids start at 1 and rise; same seed, same rows."""
    rng = random.Random(seed)
    rand, randint, choice, choices = rng.random, rng.randint, rng.choice, rng.choices
    idea_id = analysis_id = 0
    step = SIGNUP_SPAN_SECONDS / max(users, 1)
    for first in range(1, users + 1, users_per_batch):
        out = {t: [] for t in TABLES}
        u_rows, i_rows, a_rows = out["users"], out["ideas"], out["analyses"]
        for uid in range(first, min(first + users_per_batch, users + 1)):
            signed_up = uid * step + rand() * step
            u_rows.append((uid, str(5_000_000_000 + uid * 1_000 + randint(0, 999)), _username(rng, uid),
                           _first_name(rng), _ts(signed_up), 0 if rand() < 0.07 else 1))
            modes = choices(_MODES, _MODE_WEIGHTS, k=ideas_per_user)
            for k in range(ideas_per_user):
                idea_id += 1
                posted = signed_up + rand() * 30 * 86_400
                i_rows.append((idea_id, uid, _idea_text(rng), modes[k], _ts(posted)))
                for j in range(analyses_per_idea):
                    analysis_id += 1
                    created = posted + 1 + j * 3_600 + rand() * 600
                    r = rand()
                    if r < 0.85:
                        score = round(1 + rand() * 9, 2)
                        tokens = randint(300, 4_000)
                        a_rows.append((analysis_id, idea_id, uid, _DONE, _done_result(rng, score), tokens, score,
                                       _ts(created), _ts(created + 2 + rand() * 90)))
                    elif r < 0.93:
                        tokens = None if r < 0.89 else randint(10, 300)
                        a_rows.append((analysis_id, idea_id, uid, _FAILED, choice(_ERRORS), tokens, None,
                                       _ts(created), _ts(created + 60)))
                    elif r < 0.95:
                        a_rows.append((analysis_id, idea_id, uid, _RUNNING, None, None, None, _ts(created), None))
                    else:
                        a_rows.append((analysis_id, idea_id, uid, _QUEUED, None, None, None, _ts(created), None))
        yield out


def create_schema(path):
    """The app's schema in a new SQLite file, made by the app's models."""
    engine = create_engine(f"sqlite:///{path}")
    try:
        Base.metadata.create_all(engine)
    finally:
        engine.dispose()


def _remove(path):
    for p in (path, path + "-journal", path + "-wal", path + "-shm"):
        if os.path.exists(p):
            os.unlink(p)


def build(path, users=DEFAULT_USERS, ideas_per_user=DEFAULT_IDEAS_PER_USER,
          analyses_per_idea=DEFAULT_ANALYSES_PER_IDEA, seed=DEFAULT_SEED, force=False):
    """Create the demo database at ``path``; returns ``{"counts": {table: rows}, "seconds": s}``.

    Raises FileExistsError when ``path`` exists and ``force`` is false.
    """
    start = time.monotonic()
    path = os.fspath(path)
    if os.path.exists(path) and not force:
        raise FileExistsError(f"{path} already exists (use --force to overwrite it)")
    tmp = f"{path}.building"
    _remove(tmp)
    try:
        create_schema(tmp)
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            # Load-time settings only: neither is stored in the file.
            conn.execute("PRAGMA synchronous = OFF")
            conn.execute("PRAGMA cache_size = -262144")
            counts = dict.fromkeys(TABLES, 0)
            inserts = {t: f"INSERT INTO {t} ({', '.join(c)}) VALUES ({', '.join('?' * len(c))})"
                       for t, c in COLUMNS.items()}
            conn.execute("BEGIN")
            for batch in batches(users, ideas_per_user, analyses_per_idea, seed):
                for table in TABLES:
                    conn.executemany(inserts[table], batch[table])
                    counts[table] += len(batch[table])
            conn.execute("COMMIT")
        finally:
            conn.close()
        if force:
            _remove(path)
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    return dict(counts=counts, seconds=time.monotonic() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", metavar="PATH", help="SQLite file to create")
    parser.add_argument("--users", type=int, default=DEFAULT_USERS, help="users (default %(default)s)")
    parser.add_argument("--ideas-per-user", type=int, default=DEFAULT_IDEAS_PER_USER,
                        help="ideas per user (default %(default)s)")
    parser.add_argument("--analyses-per-idea", type=int, default=DEFAULT_ANALYSES_PER_IDEA,
                        help="analyses per idea (default %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default %(default)s)")
    parser.add_argument("--force", action="store_true", help="overwrite PATH if it exists")
    args = parser.parse_args(argv)
    for name in ("users", "ideas_per_user", "analyses_per_idea"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must not be negative")
    try:
        result = build(args.path, args.users, args.ideas_per_user, args.analyses_per_idea, args.seed, args.force)
    except FileExistsError as exc:
        print(f"make_demo_db: {exc}", file=sys.stderr)
        return 1
    total = sum(result["counts"].values())
    for table, n in result["counts"].items():
        print(f"{table:<10} {n:>10,} rows")
    print(f"{'total':<10} {total:>10,} rows in {result['seconds']:.1f} s -> {args.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
