"""Django's ORM writes a SQLite database; the engine migrates it; Django reads it back.

The models (tests/django_app/models.py) cover each field whose SQLite spelling is not
PostgreSQL's. Django's SQLite column types say less than its PostgreSQL ones: a UUIDField
is ``char(32)`` (hex without dashes), a DurationField ``bigint`` (microseconds), a
DateTimeField ``datetime`` whether or not USE_TZ made it UTC. The migration is told what
the declared type cannot say (``column_types``, ``timestamp_type``), as docs/design.md's
table says; every other column maps from its declared type. Then each model instance read
through Django on PostgreSQL must equal, field by field, the one Django reads from SQLite.
"""

import datetime
import decimal
import uuid

import django  # the test extras install it (pyproject.toml)
import psycopg2
import pytest
from django.conf import settings

from sqlite_pg import run
from tests.conftest import fetch

PARIS = datetime.timezone(datetime.timedelta(hours=1))


@pytest.fixture(scope="module")
def dbs(pg_cluster, tmp_path_factory):
    """Django configured with two databases: ``default`` (a SQLite file) and ``pg`` (an empty
    PostgreSQL database); yields the engine's params for them."""
    name = "django_t"
    admin = psycopg2.connect(host=pg_cluster.sockdir, port=pg_cluster.port, user="postgres", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"')
    source = str(tmp_path_factory.mktemp("django") / "app.sqlite3")
    pg = {"ENGINE": "django.db.backends.postgresql", "NAME": name, "USER": "postgres",
          "HOST": pg_cluster.sockdir, "PORT": str(pg_cluster.port)}
    databases = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": source},
        "pg": pg,
        # The rollback test: a copy of the SQLite file, migrated into schema "back" and rolled back.
        "rolled": {"ENGINE": "django.db.backends.sqlite3", "NAME": ROLLED.format(source)},
        "pg_back": dict(pg, OPTIONS={"options": "-c search_path=back"}),
    }
    if not settings.configured:
        settings.configure(
            INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "tests.django_app"],
            DATABASES=databases, USE_TZ=True, TIME_ZONE="Europe/Paris",
            DEFAULT_AUTO_FIELD="django.db.models.BigAutoField")
        django.setup()
    else:  # pragma: no cover - a rerun in the same process
        from django.db import connections
        connections.close_all()
        settings.DATABASES.update(databases)
    yield pg_cluster.params(name, source=source)
    from django.db import connections
    connections.close_all()
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.close()


TOKEN = uuid.UUID("0f8e7a6b-5c4d-4e3f-8a1b-2c3d4e5f6a7b")
ROLLED = "{}.rolled-back"

# What Django's SQLite column types cannot say: the type Django gives each on PostgreSQL.
COLUMN_TYPES = {
    "django_app_sample.token": "uuid",                     # char(32): 32 hex digits
    "django_app_sample.span": "interval",                  # bigint: microseconds (interval_units default)
    "django_app_sample.doc": "jsonb",                      # text
    "django_app_sample.amount": "numeric(12,4)",           # decimal: no digits declared
    "django_app_localevent.at": "timestamp",               # USE_TZ = False: naive local times
}


def write_sqlite():
    """Django writes the rows, as an app would."""
    from django.core.management import call_command
    from django.db.models import JSONField, Value
    from django.test.utils import override_settings

    from tests.django_app.models import LocalEvent, Owner, Sample

    call_command("migrate", run_syncdb=True, verbosity=0, database="default")
    ann, bob = Owner.objects.create(name="Ann"), Owner.objects.create(name="Bøb ✓")
    Sample.objects.create(
        owner=ann, title="héllo ✓ 日本 \U0001f600",
        at=datetime.datetime(2024, 7, 1, 12, 30, 45, 123456, tzinfo=PARIS),
        day=datetime.date(2024, 2, 29), clock=datetime.time(23, 59, 59, 999999),
        span=datetime.timedelta(days=-1, seconds=5, microseconds=7), amount=decimal.Decimal("12345678.1234"),
        flag=True, maybe=None, token=TOKEN,
        doc={"a": [1, 2.5, {"é": "ünï ✓"}], "n": None, "f": 0.1, "tiny": 1.5e-07, "ten": 2.5e1, "big": 2**60, "nested": {"t": True}},
        blob=b"\x00\xffbin\x01", big=2**63 - 1, ratio=-0.0, small=1000)
    Sample.objects.create(
        owner=ann, title="second", at=datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),   # no fraction
        day=datetime.date(1, 1, 1), clock=datetime.time(0, 0), span=datetime.timedelta(0),
        amount=decimal.Decimal("-0.0001"), flag=False, maybe=False, token=uuid.UUID(int=0),
        doc=Value(None, JSONField()), blob=b"", big=-(2**63), ratio=1e308, small=0)
    Sample.objects.create(
        owner=bob, title="nulls", maybe=True, doc="just a string", amount=decimal.Decimal("0"),
        span=datetime.timedelta(days=100000, microseconds=1), ratio=0.1, big=2**53 + 1,
        day=datetime.date(9999, 12, 31), clock=datetime.time(12, 0, 0, 1),
        at=datetime.datetime(9999, 12, 31, 22, 59, 59, 999999, tzinfo=datetime.UTC))
    with override_settings(USE_TZ=False):
        # Paris local times: 02:30 on 31 March 2024 does not exist there, on 27 October it
        # happens twice; naive, they are kept as written.
        LocalEvent.objects.create(at=datetime.datetime(2024, 3, 31, 2, 30))
        LocalEvent.objects.create(at=datetime.datetime(2024, 10, 27, 2, 30, 0, 500000))


def _same(a, b):
    if isinstance(a, memoryview | bytes) or isinstance(b, memoryview | bytes):
        return bytes(a) == bytes(b)
    if isinstance(a, float) and isinstance(b, float):
        return repr(a) == repr(b)          # -0.0 keeps its sign
    return type(a) is type(b) and a == b


def _rows(model, using):
    fields = [f.attname for f in model._meta.concrete_fields]
    return {o.pk: {f: getattr(o, f) for f in fields} for o in model.objects.using(using).order_by("pk")}


@pytest.fixture(scope="module")
def written(dbs):
    write_sqlite()
    return dbs


def test_django_writes_sqlite_and_reads_postgresql_back_unchanged(written):
    from django.apps import apps
    from django.test.utils import override_settings

    from tests.django_app.models import LocalEvent, Sample

    dbs = written
    params = dict(dbs, timestamp_type="timestamptz", column_types=COLUMN_TYPES)
    planned = run.schema(params, phase="tables")
    copied = run.copy(params, on_error="error")
    assert copied["rejected"] == 0
    constraints = run.schema(params, phase="constraints")
    report = run.verify_all(params)
    assert all(t["ok"] for t in report["tables"].values()), report

    types = planned["tables"]["django_app_sample"]["columns"]
    assert types["token"] == "uuid" and types["span"] == "interval" and types["doc"] == "jsonb"
    assert types["at"] == "timestamp with time zone" and types["flag"] == "boolean"
    assert types["blob"] == "bytea" and types["ratio"] == "double precision" and types["big"] == "bigint"
    assert planned["tables"]["django_app_localevent"]["columns"]["at"] == "timestamp without time zone"
    # Nothing is noted: jsonb holds Django's CHECK (JSON_VALID(doc)), the rest is translated.
    assert planned["notes"] + constraints["notes"] == []
    assert set(fetch(dbs, "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                          "WHERE conrelid = 'django_app_sample'::regclass AND contype IN ('c', 'u', 'f')")) == {
        ("sample_owner_title_uniq", "UNIQUE (owner_id, title)"),
        ("sample_small_lte_1000", "CHECK ((small <= 1000))"),
        ("django_app_sample_small_check", "CHECK ((small >= 0))"),
        ("django_app_sample_owner_id_fkey",
         "FOREIGN KEY (owner_id) REFERENCES django_app_owner(id) DEFERRABLE INITIALLY DEFERRED")}

    # Every model, Django's own included, reads the same Python values on both databases.
    for model in apps.get_models():
        if model is LocalEvent:
            continue
        lite, pg = _rows(model, "default"), _rows(model, "pg")
        assert lite.keys() == pg.keys(), model
        for pk, row in lite.items():
            for f, v in row.items():
                assert _same(v, pg[pk][f]), (model.__name__, pk, f, v, pg[pk][f])
    with override_settings(USE_TZ=False):
        assert _rows(LocalEvent, "default") == _rows(LocalEvent, "pg")
        assert [e.at for e in LocalEvent.objects.using("pg").order_by("pk")] == [
            datetime.datetime(2024, 3, 31, 2, 30), datetime.datetime(2024, 10, 27, 2, 30, 0, 500000)]

    # django_migrations (no model in the app registry): the same rows, applied as an aware UTC time
    from django.db import connections
    from django.db.migrations.recorder import MigrationRecorder

    applied = [list(MigrationRecorder(connections[a]).migration_qs.order_by("id").values_list("app", "name", "applied"))
               for a in ("default", "pg")]
    assert applied[0] == applied[1] and applied[0] and applied[0][0][2].tzinfo is not None

    # Django's lookups work on the PostgreSQL types
    assert Sample.objects.using("pg").get(token=TOKEN).title.startswith("héllo")
    assert Sample.objects.using("pg").filter(span__lt=datetime.timedelta(0)).count() == 1
    assert Sample.objects.using("pg").get(doc__nested__t=True).small == 1000
    assert Sample.objects.using("pg").filter(doc__isnull=True).count() == 0   # JSON null is not SQL NULL
    assert fetch(dbs, "SELECT doc IS NULL, doc = 'null'::jsonb FROM django_app_sample ORDER BY id") == [
        (False, False), (False, True), (False, False)]


def test_a_json_float_jsonb_would_read_back_as_an_integer_is_refused_and_named(written, pg_cluster):
    """Django writes 1e23 in a JSONField as ``1e+23``; jsonb prints it as an integer, which
    Django would read back as int 100000000000000000000000 (another value). Told jsonb, the
    copy refuses that row with the reason; by default (Django's ``text``) it is kept as written."""
    from sqlite_pg import convert
    from tests.django_app.models import Owner, Sample

    row = Sample.objects.create(owner=Owner.objects.get(name="Ann"), title="float", doc={"e": 1e23, "f": 0.5})
    try:
        fetch(written, "CREATE SCHEMA forced; CREATE SCHEMA plain; SELECT 1")
        forced = dict(written, schema="forced", timestamp_type="timestamptz", column_types=COLUMN_TYPES)
        assert run.profile(forced)["tables"]["django_app_sample"]["columns"]["doc"]["problems"] == {
            convert.JSONB_CHANGES: 1}
        run.schema(forced, phase="tables")
        copied = run.copy(forced, on_error="quarantine")
        assert copied["tables"]["django_app_sample"]["reasons"] == {convert.JSONB_CHANGES: 1}
        assert fetch(forced, "SELECT count(*) FROM forced.django_app_sample WHERE id = %s", (row.pk,)) == [(0,)]

        plain = dict(written, schema="plain")
        run.schema(plain, phase="tables")
        assert run.copy(plain, on_error="error")["rejected"] == 0
        assert fetch(plain, "SELECT doc FROM plain.django_app_sample WHERE id = %s", (row.pk,)) == [
            ('{"e": 1e+23, "f": 0.5}',)]
    finally:
        row.delete()


def test_with_the_default_mapping_values_are_kept_but_django_reads_other_types(written):
    """Without ``column_types``, Django's declared types map as written: every value is kept
    (verify passes) but Django reads a UUID as its 32 hex digits, a duration as microseconds,
    an aware time as naive UTC - the reason docs/design.md gives the settings above."""
    from tests.django_app.models import Sample

    fetch(written, "CREATE SCHEMA defaults; SELECT 1")
    params = dict(written, schema="defaults")
    planned = run.schema(params, phase="tables")
    assert run.copy(params, on_error="error")["rejected"] == 0
    constraints = run.schema(params, phase="constraints")
    report = run.verify_all(params)
    assert all(t["ok"] for t in report["tables"].values()), report
    types = planned["tables"]["django_app_sample"]["columns"]
    assert (types["token"], types["span"], types["doc"], types["at"], types["amount"]) == (
        "character varying(32)", "bigint", "text", "timestamp without time zone", "numeric")
    assert planned["notes"] + constraints["notes"] == [
        "django_app_sample: CHECK ((JSON_VALID(\"doc\") OR \"doc\" IS NULL)) on column 'doc' not translated "
        "(function JSON_VALID()): not created"]
    assert fetch(params, "SELECT token, span, at::text FROM defaults.django_app_sample WHERE title = 'second'") == [
        ("0" * 32, 0, "2024-01-01 00:00:00")]
    lite = Sample.objects.using("default").get(title="second")
    assert (lite.token, lite.span) == (uuid.UUID(int=0), datetime.timedelta(0))


def test_after_a_rollback_djangos_exact_lookups_find_every_row(written):
    """Django writes whole seconds without a fraction (``.ffffff`` only when non-zero) and
    compares that text in its exact lookups. A rollback writes each value in the spelling its
    column already uses, so the rows Django wrote before the migration and the ones it wrote
    on PostgreSQL are found again, in SQLite, by the values Django knows them by."""
    import shutil

    from django.test.utils import override_settings

    from tests.django_app.models import LocalEvent, Owner, Sample

    source = ROLLED.format(written["source"])
    shutil.copy(written["source"], source)
    fetch(written, "CREATE SCHEMA back; SELECT 1")
    params = dict(written, source=source, schema="back", timestamp_type="timestamptz", column_types=COLUMN_TYPES)
    run.schema(params, phase="tables")
    assert run.copy(params, on_error="error")["rejected"] == 0
    run.schema(params, phase="constraints")

    # The app, now on PostgreSQL, writes: whole seconds and fractions, and edits an old row.
    on_pg = datetime.datetime(2025, 3, 4, 5, 6, 7, tzinfo=datetime.UTC)
    Sample.objects.using("pg_back").create(
        owner=Owner.objects.using("pg_back").get(name="Ann"), title="written on postgresql", at=on_pg,
        day=datetime.date(2025, 3, 4), clock=datetime.time(5, 6, 7), span=datetime.timedelta(seconds=1),
        amount=decimal.Decimal("1.5"), flag=True, maybe=False, token=uuid.UUID(int=7), doc={"on": "pg"}, small=3)
    Sample.objects.using("pg_back").create(
        owner=Owner.objects.using("pg_back").get(name="Bøb ✓"), title="a fraction on postgresql",
        at=on_pg.replace(microsecond=250000), clock=datetime.time(5, 6, 7, 250000), small=4)
    Sample.objects.using("pg_back").filter(title="second").update(title="second, edited")
    with override_settings(USE_TZ=False):
        LocalEvent.objects.using("pg_back").create(at=datetime.datetime(2025, 1, 1, 9, 0))

    assert run.copy_back(params)["changed"]
    report = run.verify_all(params)
    assert all(t["ok"] for t in report["tables"].values()), report

    lite = Sample.objects.using("rolled")
    # Rows written before the migration, by Django on SQLite:
    assert lite.get(at=datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)).title == "second, edited"
    assert lite.get(at=datetime.datetime(2024, 7, 1, 12, 30, 45, 123456, tzinfo=PARIS)).title.startswith("héllo")
    assert lite.get(clock=datetime.time(0, 0)).title == "second, edited"
    assert lite.get(day=datetime.date(1, 1, 1), token=uuid.UUID(int=0), flag=False).title == "second, edited"
    assert lite.get(token=TOKEN, flag=True).title.startswith("héllo")
    # ... and by Django on PostgreSQL:
    assert lite.get(at=on_pg).title == "written on postgresql"
    assert lite.get(clock=datetime.time(5, 6, 7), token=uuid.UUID(int=7), maybe=False).title == "written on postgresql"
    assert lite.get(at=on_pg.replace(microsecond=250000), clock=datetime.time(5, 6, 7, 250000)).small == 4
    with override_settings(USE_TZ=False):
        assert LocalEvent.objects.using("rolled").get(at=datetime.datetime(2024, 3, 31, 2, 30)).pk == 1
        assert LocalEvent.objects.using("rolled").get(at=datetime.datetime(2025, 1, 1, 9, 0)).pk == 3
        assert _rows(LocalEvent, "rolled") == _rows(LocalEvent, "pg_back")
    # Django reads every field back as it reads it on PostgreSQL.
    rolled, pg = _rows(Sample, "rolled"), _rows(Sample, "pg_back")
    assert rolled.keys() == pg.keys() and len(rolled) == 5
    for pk, row in rolled.items():
        for f, v in row.items():
            assert _same(v, pg[pk][f]), (pk, f, v, pg[pk][f])
