"""migrate.yml and rollback.yml end to end, on this machine, against a PostgreSQL the
operator brings (no db_servers: nothing is installed), with the app running as a real
process that keeps writing. Every write the app committed must be found on the side it
ends up on: PostgreSQL after cutover, SQLite after rollback.
"""

import glob
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from urllib.parse import quote

import psycopg2
import pytest
import yaml

from scripts.make_demo_db import build
from tests.app.control import alive_command, stop_command

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PASSWORD = "app-secret/with:odd@chars"
APP_ROLE = "planner_app"
APP_PASSWORD = "app-role/only:dml@rights"


@pytest.fixture
def app(tmp_path, pg_cluster):
    """An app directory with bot.db and .env, the app's own database role (owner of its
    database, nothing more), and an inventory for it."""
    yield from make_app(tmp_path, pg_cluster)


@pytest.fixture
def tls_app(tmp_path, tls_cluster):
    """The same, against a PostgreSQL that takes only TLS connections, through verify-full."""
    yield from make_app(tmp_path, tls_cluster, tls=True)


@pytest.fixture
def app_own_role(tmp_path, pg_cluster):
    """The same, but the app logs in with its own role (not the owner: DML rights only)."""
    yield from make_app(tmp_path, pg_cluster, app_role=True)


def make_app(tmp_path, pg_cluster, tls=False, app_role=False):
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    build(app_dir / "bot.db", users=300, ideas_per_user=2, analyses_per_idea=2, seed=11)
    (app_dir / ".env").write_text(f"DATABASE_URL=sqlite:///{app_dir / 'bot.db'}\nOTHER=kept\n")
    db = f"app_{os.getpid()}_{int(time.time() * 1000) % 100000}"
    admin = psycopg2.connect(host=pg_cluster.sockdir, port=pg_cluster.port, user="postgres", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("DROP ROLE IF EXISTS planner")
        cur.execute("CREATE ROLE planner LOGIN PASSWORD %s", (PASSWORD,))
        cur.execute(f'CREATE DATABASE "{db}" OWNER planner')
        if app_role:   # what the provider (or roles/postgresql) does: a plain login role
            cur.execute(f"DROP ROLE IF EXISTS {APP_ROLE}")
            cur.execute(f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD %s", (APP_PASSWORD,))
    pidfile = app_dir / "app.pid"
    python = sys.executable
    writer = os.path.join(ROOT, "tests", "app", "writer.py")
    start = f"nohup {python} {writer} {app_dir} >> {app_dir}/app.out 2>&1 & echo $! > {pidfile}"
    inventory = {"all": {"children": {"app_servers": {"hosts": {"localhost": None}}, "db_servers": {"hosts": {}}},
                         "vars": {
        "ansible_connection": "local", "ansible_python_interpreter": python,
        "migration_source": str(app_dir / "bot.db"), "migration_env_file": str(app_dir / ".env"),
        "migration_db_host": "localhost" if tls else "127.0.0.1", "migration_db_port": pg_cluster.port,
        "migration_db_name": db, "migration_db_user": "planner", "migration_db_password": PASSWORD,
        "migration_ssl_mode": "verify-full" if tls else "disable",
        "migration_ca_cert": os.path.join(pg_cluster.root, "ca.pem") if tls else "",
        "migration_report_dir": str(tmp_path / "reports"),
        "migration_app_stop_command": f"sh -c '{stop_command(pidfile, poll=0.1)}'",
        "migration_app_start_command": f"sh -c '{start}'",
        "migration_health_command": f"sh -c 'sleep 0.5; {alive_command(pidfile)}'",
    }}}
    if app_role:
        inventory["all"]["vars"].update(migration_app_db_user=APP_ROLE, migration_app_db_password=APP_PASSWORD)
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    subprocess.run(["sh", "-c", start], check=True)
    yield dict(dir=app_dir, inventory=str(tmp_path / "inventory.yml"), db=db, pidfile=pidfile,
               params=dict(login_host="127.0.0.1", port=pg_cluster.port, login_user="planner",
                           login_password=PASSWORD, db=db, ssl_mode="require" if tls else "disable",
                           source=str(app_dir / "bot.db")),
               reports=tmp_path / "reports")
    if pidfile.exists():
        subprocess.run(["sh", "-c", f"kill $(cat {pidfile}) 2>/dev/null"], check=False)
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE "{db}" WITH (FORCE)')
        if app_role:
            cur.execute(f"DROP ROLE IF EXISTS {APP_ROLE}")
    admin.close()


def run_playbook(app, name, *extra, succeed=True):
    """Run a playbook with the JSON callback; its output, after checking it succeeded (or,
    ``succeed=False``, failed) and printed no password."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", app["inventory"],
                           os.path.join(ROOT, "playbooks", name), *extra], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    out = json.loads(proc.stdout)
    assert (proc.returncode == 0) == succeed, json.dumps(out["stats"]) + proc.stdout[-4000:]
    assert PASSWORD not in proc.stdout and PASSWORD not in proc.stderr
    assert APP_PASSWORD not in proc.stdout and APP_PASSWORD not in proc.stderr
    return out


def playbook(app, name, *extra):
    return run_playbook(app, name, *extra)["stats"]["localhost"]


def written(app):
    if not (app["dir"] / "writes.log").exists():
        return []
    return [line.strip() for line in (app["dir"] / "writes.log").read_text().splitlines()
            if line and not line.startswith("#")]


def wait_for_writes(app, more_than):
    deadline = time.monotonic() + 30
    while len(written(app)) <= more_than and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(written(app)) > more_than, (app["dir"] / "app.out").read_text()[-3000:]


def pg_users(app):
    conn = psycopg2.connect(host="127.0.0.1", port=app["params"]["port"], user="planner",
                            password=PASSWORD, dbname=app["db"], sslmode=app["params"]["ssl_mode"])
    with conn, conn.cursor() as cur:
        cur.execute("SELECT telegram_id FROM users")
        found = {r[0] for r in cur.fetchall()}
    conn.close()
    return found


def sqlite_users(app):
    conn = sqlite3.connect(app["dir"] / "bot.db")
    found = {r[0] for r in conn.execute("SELECT telegram_id FROM users")}
    conn.close()
    return found


def test_migrate_rollback_migrate_with_a_live_app(app):
    wait_for_writes(app, 20)                       # the app writes to SQLite

    env_before = (app["dir"] / ".env").read_text()
    planned = playbook(app, "migrate.yml", "--check")     # a plan: nothing is written anywhere
    assert planned["failures"] == 0
    assert (app["dir"] / ".env").read_text() == env_before
    assert not (app["dir"] / ".sqlite_pg" / "state.json").exists()
    conn = psycopg2.connect(host="127.0.0.1", port=app["params"]["port"], user="planner", password=PASSWORD,
                            dbname=app["db"])
    with conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert cur.fetchone() == (0,)
    conn.close()

    first = playbook(app, "migrate.yml")
    assert first["failures"] == 0 and first["changed"] > 0
    assert target_dumps(app) == []                 # the target held no table yet: nothing to dump
    before_cutover = written(app)
    lost = set(before_cutover) - pg_users(app)
    wait_for_writes(app, len(before_cutover) + 20)  # the app, restarted, writes to PostgreSQL
    assert "postgresql+psycopg2" in (app["dir"] / "writes.log").read_text().split("# start")[-1].splitlines()[0]
    assert lost == set(), f"{len(lost)} writes made on SQLite are missing in PostgreSQL"
    env = (app["dir"] / ".env").read_text()
    assert "OTHER=kept" in env and "%2F" in env and oct((app["dir"] / ".env").stat().st_mode & 0o777) == "0o600"
    state = json.loads((app["dir"] / ".sqlite_pg" / "state.json").read_text())
    assert state["migrated"] and float(state["write_downtime_seconds"]) < 60
    report = json.loads(next(app["reports"].glob("localhost-*.json")).read_text())   # not fleet-*
    assert report["write_downtime_seconds"] == state["write_downtime_seconds"]
    # The app also updated old rows while the bulk copy ran: the capture log named them, the
    # final pass replayed only those (no table copied again), and verification agreed.
    assert all(t["ok"] for t in report["verify"].values())
    final = {t["status"] for t in report["final_copy"].values()}
    assert "caught_up" in final and final <= {"caught_up", "in_sync"}, report["final_copy"]

    again = playbook(app, "migrate.yml")
    assert again["changed"] == 0                  # already on PostgreSQL: nothing changes

    back = playbook(app, "rollback.yml", "-e", "migration_confirm_rollback=true")
    assert back["changed"] > 0
    on_postgres = written(app)
    lost = set(on_postgres) - sqlite_users(app)
    assert lost == set(), f"{len(lost)} writes made on PostgreSQL are missing in SQLite after rollback"
    assert (app["dir"] / ".env").read_text().startswith(f"DATABASE_URL=sqlite:///{app['dir'] / 'bot.db'}")
    # Capture on PostgreSQL named the rows the app changed there: only those came back.
    back_state = json.loads((app["dir"] / ".sqlite_pg" / "state.json").read_text())
    statuses = {t["status"] for t in back_state["copied_back"].values()}
    assert "replayed_back" in statuses and statuses <= {"replayed_back", "in_sync"}, back_state["copied_back"]
    wait_for_writes(app, len(on_postgres) + 20)   # back on SQLite, writing

    assert playbook(app, "rollback.yml", "-e", "migration_confirm_rollback=true")["changed"] == 0

    third = playbook(app, "migrate.yml")           # and forward again
    assert third["failures"] == 0
    # The re-migration found the target holding tables: it was dumped (pg_dump -Fc) first.
    dumps = target_dumps(app)
    assert len(dumps) == 1 and oct(dumps[0].stat().st_mode & 0o777) == "0o600"
    assert {"users", "ideas", "analyses"} <= dumped_tables(dumps[0])
    assert set(written(app)) - pg_users(app) - set(written(app)[-5:]) == set()

    done = playbook(app, "decommission.yml", "-e", "migration_confirm_decommission=true")
    assert done["changed"] > 0 and not (app["dir"] / "bot.db").exists()
    state = json.loads((app["dir"] / ".sqlite_pg" / "state.json").read_text())
    assert state["decommissioned"] and len(state["sqlite_archive_sha256"]) == 64
    assert playbook(app, "decommission.yml", "-e", "migration_confirm_decommission=true")["changed"] == 0
    # A decommission stopped after the file was archived and removed (state not yet written)
    # finishes on a rerun.
    state_file = app["dir"] / ".sqlite_pg" / "state.json"
    interrupted = {k: v for k, v in json.loads(state_file.read_text()).items() if not k.startswith(("decomm", "sqlite_"))}
    state_file.write_text(json.dumps(interrupted))
    assert playbook(app, "decommission.yml", "-e", "migration_confirm_decommission=true")["failures"] == 0
    assert json.loads(state_file.read_text())["decommissioned"]
    assert playbook(app, "migrate.yml")["changed"] == 0


def test_rollback_needs_confirmation(app):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", app["inventory"],
                           os.path.join(ROOT, "playbooks", "rollback.yml")], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "migration_confirm_rollback=true" in proc.stdout
    os.kill(int(app["pidfile"].read_text()), signal.SIGTERM)


def test_the_gate_stops_cutover_and_leaves_the_app_on_sqlite(app):
    load = playbook(app, "migrate.yml", "--tags", "load")
    assert load["failures"] == 0
    conn = psycopg2.connect(host="127.0.0.1", port=app["params"]["port"], user="planner", password=PASSWORD,
                            dbname=app["db"])
    with conn, conn.cursor() as cur:
        cur.execute("DROP INDEX ix_ideas_user_id")       # what the app needs is no longer there
    conn.close()
    env_before = (app["dir"] / ".env").read_text()
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", app["inventory"],
                           os.path.join(ROOT, "playbooks", "migrate.yml"), "--tags", "cutover"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert proc.returncode != 0, proc.stdout[-6000:]
    assert "index ix_ideas_user_id is missing" in proc.stdout
    assert "The app runs on SQLite as before" in proc.stdout
    assert (app["dir"] / ".env").read_text() == env_before
    assert not (app["dir"] / ".sqlite_pg" / "state.json").exists()
    before = len(written(app))
    wait_for_writes(app, before + 10)                   # the app was started again, on SQLite
    assert "sqlite" in (app["dir"] / "writes.log").read_text().split("# start")[-1].splitlines()[0]


def test_cutover_through_verify_full_and_the_app_follows(tls_app):
    app = tls_app
    wait_for_writes(app, 10)
    assert playbook(app, "migrate.yml")["failures"] == 0
    env = (app["dir"] / ".env").read_text()
    assert "sslmode=verify-full" in env and "sslrootcert=" in env
    before = len(written(app))
    wait_for_writes(app, before + 10)               # the app writes to PostgreSQL, over TLS
    assert "postgresql+psycopg2" in (app["dir"] / "writes.log").read_text().split("# start")[-1].splitlines()[0]
    assert set(written(app)[:before]) - pg_users(app) == set()


# --- a dump of the target before a rerun touches it again (issue #4) -------------------------


def target_dumps(app):
    return sorted((app["dir"] / ".sqlite_pg" / "backups").glob(f"{app['db']}.*.pgc"))


def dumped_tables(path):
    """The tables in a custom-format dump, as ``pg_restore --list`` reads it (fails on a bad file)."""
    bindir = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_restore"), key=lambda p: int(p.split("/")[4]))[-1]
    listing = subprocess.run([bindir, "--list", str(path)], check=True, capture_output=True, text=True).stdout
    return {line.split()[-2] for line in listing.splitlines() if " TABLE DATA " in line}


def test_a_rerun_dumps_the_target_first_over_verify_full(tls_app, tmp_path):
    app = tls_app
    assert playbook(app, "migrate.yml", "--tags", "load")["failures"] == 0   # tables, no cutover
    backups = app["dir"] / ".sqlite_pg" / "backups"

    playbook(app, "migrate.yml", "--tags", "backup", "--check")
    assert target_dumps(app) == []                                          # check mode: no dump

    backups.mkdir(mode=0o700, parents=True, exist_ok=True)
    old = backups / f"{app['db']}.20000101T000000Z.pgc"
    old.write_bytes(b"an older dump")
    rerun = playbook(app, "migrate.yml", "--tags", "backup", "-e", "migration_keep_backups=1")
    assert rerun["changed"] > 0
    dumps = target_dumps(app)                          # pruned to the newest, taken through TLS
    assert len(dumps) == 1 and dumps[0] != old and oct(dumps[0].stat().st_mode & 0o777) == "0o600"
    assert {"users", "ideas", "analyses", "_migration_ledger"} <= dumped_tables(dumps[0])

    # A pg_dump older than the server: auto warns and goes on without a dump, required stops.
    fake = tmp_path / "old-client"
    fake.mkdir()
    (fake / "pg_dump").write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 11.22'\n")
    (fake / "pg_dump").chmod(0o755)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               PATH=f"{fake}:{os.environ['PATH']}")
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", app["inventory"],
               os.path.join(ROOT, "playbooks", "migrate.yml"), "--tags", "backup"]
    auto = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert auto.returncode == 0, auto.stdout[-4000:]
    assert "WARNING: " + app["db"] in auto.stdout and "pg_dump 11 on localhost is older than the server" in auto.stdout
    assert target_dumps(app) == dumps
    required = subprocess.run(command + ["-e", "migration_target_dump=required"], cwd=ROOT, env=env,
                              capture_output=True, text=True)
    assert required.returncode != 0 and "is older than the server (PostgreSQL" in required.stdout
    assert "install postgresql-client-" in required.stdout and PASSWORD not in required.stdout + auto.stdout


def playbook_tasks(app, name, *extra):
    """Run a playbook; {task name: changed} for the tasks that ran on localhost."""
    out = run_playbook(app, name, *extra)
    return {t["task"]["name"]: t["hosts"]["localhost"].get("changed", False)
            for play in out["plays"] for t in play["tasks"]
            if "localhost" in t["hosts"] and not t["hosts"]["localhost"].get("skipped")}


def test_the_app_runs_with_its_own_role_not_the_owner(app_own_role, pg_cluster):
    app = app_own_role
    wait_for_writes(app, 10)
    assert playbook(app, "migrate.yml", "--check")["failures"] == 0   # grants planned on no table yet

    first = playbook_tasks(app, "migrate.yml", "--tags", "load")
    grants = {name: changed for name, changed in first.items() if "Let the app's role" in name}
    assert len(grants) == 4 and any(grants.values()), first
    again = playbook_tasks(app, "migrate.yml", "--tags", "load")     # idempotent
    assert {name: changed for name, changed in again.items() if "Let the app's role" in name} == dict.fromkeys(grants,
                                                                                                               False)

    # The cutover gate logs in as the app's role: with a wrong password for it (the
    # migration's own login is fine) cutover stops before writes stop: the app keeps running
    # on SQLite, the same process (not stopped, so not started a second time).
    pid = app["pidfile"].read_text()
    env_before = (app["dir"] / ".env").read_text()
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", app["inventory"],
                           os.path.join(ROOT, "playbooks", "migrate.yml"), "--tags", "cutover",
                           "-e", "migration_app_db_password=not-the-app-password"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert proc.returncode != 0, proc.stdout[-6000:]
    assert "Check that the app's role logs in" in proc.stdout
    assert "The app runs on SQLite as before (it was never stopped)" in proc.stdout
    assert (app["dir"] / ".env").read_text() == env_before
    assert app["pidfile"].read_text() == pid
    before = len(written(app))
    wait_for_writes(app, before + 10)                     # still writing, on SQLite
    assert "sqlite" in (app["dir"] / "writes.log").read_text().split("# start")[-1].splitlines()[0]

    assert playbook(app, "migrate.yml")["failures"] == 0
    env = (app["dir"] / ".env").read_text()
    assert f"://{APP_ROLE}:" in env and "://planner:" not in env
    before = len(written(app))
    wait_for_writes(app, before + 20)                     # the app writes to PostgreSQL, as its own role
    assert "postgresql+psycopg2" in (app["dir"] / "writes.log").read_text().split("# start")[-1].splitlines()[0]
    assert set(written(app)[:before]) - pg_users(app) == set()

    admin = psycopg2.connect(host=pg_cluster.sockdir, port=pg_cluster.port, user="postgres", dbname=app["db"])
    with admin, admin.cursor() as cur:
        cur.execute("SELECT rolsuper, rolcreatedb, rolcreaterole, oid = (SELECT datdba FROM pg_database"
                    " WHERE datname = current_database()), (SELECT count(*) FROM pg_class WHERE relowner = r.oid)"
                    " FROM pg_roles r WHERE rolname = %s", (APP_ROLE,))
        assert cur.fetchone() == (False, False, False, False, 0)   # not the owner, owns nothing, no superuser
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s AND datname = current_database()",
                    (APP_ROLE,))
        assert cur.fetchone()[0] > 0                                # the running app's connection
        privs = {}
        for table in ("users", "ideas", "analyses", "_migration_ledger"):
            cur.execute("SELECT p FROM unnest(ARRAY['SELECT','INSERT','UPDATE','DELETE','TRUNCATE','REFERENCES',"
                        "'TRIGGER']) p WHERE has_table_privilege(%s, %s, p)", (APP_ROLE, f"public.{table}"))
            privs[table] = {r[0] for r in cur.fetchall()}
        dml = {"SELECT", "INSERT", "UPDATE", "DELETE"}
        assert privs == {"users": dml, "ideas": dml, "analyses": dml, "_migration_ledger": set()}
        cur.execute("SELECT has_schema_privilege(%s, 'public', 'CREATE'), has_database_privilege(%s,"
                    " current_database(), 'CREATE'), has_database_privilege(%s, current_database(), 'CONNECT')",
                    (APP_ROLE,) * 3)
        assert cur.fetchone() == (False, False, True)
        cur.execute("SELECT pg_get_serial_sequence('public.users', 'id')")
        seq = cur.fetchone()[0]
        cur.execute("SELECT has_sequence_privilege(%s, %s, 'USAGE'), has_sequence_privilege(%s, %s, 'UPDATE')",
                    (APP_ROLE, seq, APP_ROLE, seq))
        assert cur.fetchone() == (True, True)
    admin.close()
    assert playbook(app, "migrate.yml")["changed"] == 0


def test_the_apps_own_schema_route_through_the_playbook(app):
    """The guide's step 3: the app creates its schema on PostgreSQL (create_all), then
    migrate.yml loads data only (migration_target: existing) while the app keeps writing."""
    from sqlalchemy import create_engine

    from tests.app.models import Base

    url = f"postgresql+psycopg2://planner:{quote(PASSWORD, safe='')}@127.0.0.1:{app['params']['port']}/{app['db']}"
    engine = create_engine(url)
    Base.metadata.create_all(engine)   # native ENUM types, the app's own keys and defaults
    engine.dispose()
    wait_for_writes(app, 10)
    stats = playbook(app, "migrate.yml", "-e", "migration_target=existing")
    assert stats["failures"] == 0
    before_cutover = written(app)
    wait_for_writes(app, len(before_cutover) + 10)   # restarted on PostgreSQL
    assert set(before_cutover) - pg_users(app) == set()
    conn = psycopg2.connect(host="127.0.0.1", port=app["params"]["port"], user="planner", password=PASSWORD,
                            dbname=app["db"])
    with conn, conn.cursor() as cur:
        # The app's schema is kept as create_all made it (its ENUM), and the target is claimed.
        cur.execute("SELECT udt_name FROM information_schema.columns WHERE table_name = 'analyses' "
                    "AND column_name = 'status'")
        assert cur.fetchone() == ("analysisstatus",)
        cur.execute("SELECT host, path FROM _migration_source")
        assert cur.fetchone() == ("localhost", str(app["dir"] / "bot.db"))
    conn.close()
    assert playbook(app, "migrate.yml", "-e", "migration_target=existing")["changed"] == 0


def test_an_app_that_ignores_database_url_is_caught_and_keeps_its_writes(app, tmp_path):
    """The guide's own app hard-codes sqlite:///bot.db: it "moves" and goes on writing to
    SQLite. Cutover sees the writes the triggers log after the app started, fails, and
    leaves every one of them in SQLite with the app on SQLite."""
    stubborn = tmp_path / "stubborn"   # the same app, reading its URL from elsewhere
    stubborn.mkdir()
    (stubborn / ".env").write_text(f"DATABASE_URL=sqlite:///{app['dir'] / 'bot.db'}\n")
    writer = os.path.join(ROOT, "tests", "app", "writer.py")
    start = (f"sh -c 'nohup {sys.executable} {writer} {stubborn} >> {stubborn}/app.out 2>&1 & "
             f"echo $! > {app['pidfile']}'")
    wait_for_writes(app, 10)
    out = run_playbook(app, "migrate.yml", "-e", f"migration_app_start_command={start!r}",
                       "-e", "migration_moved_check_seconds=3", succeed=False)
    assert "still writes to SQLite after cutover" in json.dumps(out)
    assert (app["dir"] / ".env").read_text().startswith("DATABASE_URL=sqlite")
    assert not json.loads((app["dir"] / ".sqlite_pg" / "state.json").read_text()).get("migrated") \
        if (app["dir"] / ".sqlite_pg" / "state.json").exists() else True
    logged = {line.strip() for line in (stubborn / "writes.log").read_text().splitlines()
              if line and not line.startswith("#")}
    assert logged and logged - sqlite_users(app) - set(sorted(logged)[-3:]) == set()



def journal_phase(app):
    try:
        return json.loads((app["dir"] / ".sqlite_pg" / "cutover.json").read_text()).get("phase")
    except (FileNotFoundError, json.JSONDecodeError):   # not yet, or being replaced
        return None


@pytest.mark.parametrize("kill_at", ["stopping", "checking"])
def test_the_controller_dies_inside_the_window_and_the_cutover_finishes(app, kill_at):
    """ansible-playbook's whole process group is killed inside the freeze window (just as the
    app is being stopped, or once it runs on PostgreSQL before the move is recorded): the
    window, detached under async, finishes by itself; nothing is lost and a rerun completes."""
    wait_for_writes(app, 20)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    controller = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
                                   "-i", app["inventory"], os.path.join(ROOT, "playbooks", "migrate.yml")],
                                  cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
    order = ["stopping", "final_pass", "switching", "starting", "checking", "done"]
    deadline = time.monotonic() + 600
    while (journal_phase(app) not in order[order.index(kill_at):] and controller.poll() is None
           and time.monotonic() < deadline):
        time.sleep(0.02)
    killed_in = journal_phase(app)
    assert killed_in in order[order.index(kill_at):], f"the run ended before the window ({controller.returncode})"
    os.killpg(controller.pid, signal.SIGKILL)
    controller.wait()
    killed_at = time.monotonic()

    # With no controller, the window ends by itself: the app runs on PostgreSQL, the move recorded.
    while journal_phase(app) not in ("done", "reverted", "failed") and time.monotonic() < killed_at + 120:
        time.sleep(0.1)
    assert journal_phase(app) == "done", (app["dir"] / ".sqlite_pg" / "cutover.json").read_text()
    state = json.loads((app["dir"] / ".sqlite_pg" / "state.json").read_text())
    assert state["migrated"] and float(state["write_downtime_seconds"]) < 60
    before = len(written(app))
    wait_for_writes(app, before + 20)              # writing again, without anyone rerunning anything
    assert "postgresql+psycopg2" in (app["dir"] / "writes.log").read_text().split("# start")[-1].splitlines()[0]

    rerun = run_playbook(app, "migrate.yml")       # completes what is left: the report, the fleet line
    assert rerun["stats"]["localhost"]["failures"] == 0
    lost = set(written(app)) - pg_users(app)
    assert lost == set(), f"{len(lost)} acknowledged writes are missing in PostgreSQL (killed in {killed_in})"
    assert playbook(app, "migrate.yml")["changed"] == 0
