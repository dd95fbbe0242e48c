"""migrate.yml across several app hosts, each a real app process that keeps writing, on this
machine (local connections) against one PostgreSQL the operator brings:

- one database, one schema per app host: every host's writes end up in its own schema, the
  apps (restarted on PostgreSQL) write there, the rerun changes nothing, one fleet report;
- a host whose health check fails on PostgreSQL goes back to SQLite with the writes it made
  there, while the others move (batches, max-fail percentage);
- two hosts pointed at one target (the old inventory/example): one moves, the other is
  refused with a message naming both sources, its app left on SQLite and its writes kept.
"""

import json
import os
import sqlite3
import subprocess
import sys
import time

import psycopg2
import pytest
import yaml

from scripts.make_demo_db import build
from tests.app.control import alive_command, stop_command

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PASSWORD = "fleet-secret/with:odd@chars"
HOSTS = ("app1", "app2", "app3")


def _start_command(app_dir):
    writer = os.path.join(ROOT, "tests", "app", "writer.py")
    return f"nohup {sys.executable} {writer} {app_dir} >> {app_dir}/app.out 2>&1 & echo $! > {app_dir}/app.pid"


@pytest.fixture
def fleet(tmp_path, pg_cluster):
    """Three app hosts, each with its own bot.db and a running app; one empty database; an
    inventory whose hosts all connect locally. Yields a dict the tests extend the inventory of."""
    db = f"fleet_{os.getpid()}_{int(time.time() * 1000) % 100000}"
    admin = psycopg2.connect(host=pg_cluster.sockdir, port=pg_cluster.port, user="postgres", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("DROP ROLE IF EXISTS fleet_owner")
        cur.execute("CREATE ROLE fleet_owner LOGIN PASSWORD %s", (PASSWORD,))
        cur.execute(f'CREATE DATABASE "{db}" OWNER fleet_owner')
    hosts = {}
    for i, name in enumerate(HOSTS):
        app_dir = tmp_path / name
        app_dir.mkdir()
        build(app_dir / "bot.db", users=150 + 50 * i, ideas_per_user=2, analyses_per_idea=2, seed=20 + i)
        (app_dir / ".env").write_text(f"DATABASE_URL=sqlite:///{app_dir / 'bot.db'}\n")
        pid = app_dir / "app.pid"
        hosts[name] = {
            "migration_source": str(app_dir / "bot.db"),
            "migration_app_stop_command": f"sh -c '{stop_command(pid, poll=0.1)}'",
            "migration_app_start_command": f"sh -c '{_start_command(app_dir)}'",
            "migration_health_command": f"sh -c 'sleep 0.5; {alive_command(pid)}'",
        }
        subprocess.run(["sh", "-c", _start_command(app_dir)], check=True)
    settings = {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "migration_db_host": "127.0.0.1", "migration_db_port": pg_cluster.port, "migration_db_name": db,
        "migration_db_user": "fleet_owner", "migration_db_password": PASSWORD, "migration_ssl_mode": "disable",
        "migration_report_dir": str(tmp_path / "reports"), "migration_catchup_passes": 1,
        # The budget preflight checks against the test cluster's max_connections (100).
        "migration_app_pool_size": 5, "migration_app_max_overflow": 5,
    }
    yield dict(root=tmp_path, db=db, hosts=hosts, settings=settings, port=pg_cluster.port, admin=admin)
    for name in HOSTS:
        subprocess.run(["sh", "-c", f"kill $(cat {tmp_path / name / 'app.pid'}) 2>/dev/null"], check=False)
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE "{db}" WITH (FORCE)')
    admin.close()


def migrate(fleet, *extra):
    """migrate.yml over the fleet's inventory: (return code, stats per host, stdout)."""
    inventory = {"all": {"children": {"app_servers": {"hosts": fleet["hosts"]}, "db_servers": {"hosts": {}}},
                         "vars": fleet["settings"]}}
    path = fleet["root"] / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(path),
                           "-f", "5", os.path.join(ROOT, "migrate.yml"), *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    (fleet["root"] / "last-run.json").write_text(proc.stdout)   # for a failing test's reader
    assert PASSWORD not in proc.stdout and PASSWORD not in proc.stderr
    return proc.returncode, json.loads(proc.stdout)["stats"], proc.stdout


def fleet_report(fleet):
    return {h["host"]: h for h in json.loads((fleet["root"] / "reports" / "fleet-latest.json").read_text())["hosts"]}


def written(fleet, host):
    log = fleet["root"] / host / "writes.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return {line.strip() for line in lines if line and not line.startswith("#")}


def wait_for_writes(fleet, host, more_than):
    deadline = time.monotonic() + 30
    while len(written(fleet, host)) <= more_than and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(written(fleet, host)) > more_than, (fleet["root"] / host / "app.out").read_text()[-3000:]


def pg_users(fleet, schema):
    conn = psycopg2.connect(host="127.0.0.1", port=fleet["port"], user="fleet_owner", password=PASSWORD,
                            dbname=fleet["db"])
    with conn, conn.cursor() as cur:
        cur.execute(f'SELECT telegram_id FROM "{schema}".users')
        found = {r[0] for r in cur.fetchall()}
    conn.close()
    return found


def sqlite_users(fleet, host):
    conn = sqlite3.connect(fleet["root"] / host / "bot.db")
    found = {r[0] for r in conn.execute("SELECT telegram_id FROM users")}
    conn.close()
    return found


def test_one_database_a_schema_per_host_with_live_apps(fleet):
    fleet["settings"].update(migration_db_schema="{{ migration_host_slug }}", migration_serial=[1, "100%"])
    for host in HOSTS:
        wait_for_writes(fleet, host, 10)
    rc, stats, out = migrate(fleet)
    assert rc == 0, out[-4000:]
    report = fleet_report(fleet)
    for host in HOSTS:
        assert stats[host]["failures"] == 0
        assert (report[host]["on"], report[host]["outcome"]) == ("postgresql", "moved")
        assert report[host]["target"].endswith(f"/{fleet['db']} schema {host}")
        before = written(fleet, host)
        wait_for_writes(fleet, host, len(before) + 10)   # restarted on PostgreSQL, in its own schema
        assert written(fleet, host) - pg_users(fleet, host) - set(sorted(written(fleet, host))[-3:]) == set()
        assert "options=-csearch_path%3D" + host in (fleet["root"] / host / ".env").read_text()
    # Each schema holds its own host's rows, and nothing of the others'.
    assert not pg_users(fleet, "app1") & pg_users(fleet, "app2")
    rc, stats, out = migrate(fleet)
    assert rc == 0 and sum(s["changed"] for s in stats.values()) == 0, out[-4000:]
    assert {h["outcome"] for h in fleet_report(fleet).values()} == {"already_moved"}


def test_a_host_failing_its_health_check_goes_back_to_sqlite_with_its_writes(fleet):
    # One database per host (named by the default rule), made as the provider would.
    admin = fleet["admin"]
    with admin.cursor() as cur:
        for host in HOSTS:
            cur.execute(f"CREATE DATABASE {fleet['db']}_{host} OWNER fleet_owner")
    del fleet["settings"]["migration_db_name"]
    fleet["settings"].update(migration_db_base_name=fleet["db"], migration_serial=[1, "100%"],
                             migration_max_fail_percentage=50, migration_health_retries=1)
    # app3's app starts on PostgreSQL and writes there, but its health check fails.
    fleet["hosts"]["app3"]["migration_health_command"] = "sh -c 'sleep 3; false'"
    try:
        for host in HOSTS:
            wait_for_writes(fleet, host, 10)
        rc, stats, out = migrate(fleet)
        assert rc != 0 and stats["app3"]["failures"] == 1 and stats["app2"]["failures"] == 0, out[-3000:]
        report = fleet_report(fleet)
        assert [report[h]["on"] for h in HOSTS] == ["postgresql", "postgresql", "sqlite"], report
        assert "cutover" in report["app3"]["reason"] and "back on SQLite" in report["app3"]["reason"]
        # Every write app3 made, on SQLite before and on PostgreSQL during its failed cutover, is
        # in SQLite, where it writes again.
        log = (fleet["root"] / "app3" / "writes.log").read_text()
        assert "url=postgresql" in log, "app3 never ran on PostgreSQL: the test proves nothing"
        count = len(written(fleet, "app3"))
        wait_for_writes(fleet, "app3", count + 5)
        assert written(fleet, "app3") - sqlite_users(fleet, "app3") - set(sorted(written(fleet, "app3"))[-3:]) == set()
        assert "DATABASE_URL=sqlite" in (fleet["root"] / "app3" / ".env").read_text()
    finally:
        with admin.cursor() as cur:
            for host in HOSTS:
                cur.execute(f"DROP DATABASE IF EXISTS {fleet['db']}_{host} WITH (FORCE)")


def test_two_hosts_pointed_at_one_target_one_is_refused_and_loses_nothing(fleet):
    del fleet["hosts"]["app3"]
    rc, stats, out = migrate(fleet)   # both load at once into the one database's public schema
    assert rc != 0
    report = fleet_report(fleet)
    moved = [h for h in ("app1", "app2") if report[h]["outcome"] == "moved"]
    assert len(moved) == 1, report
    winner, loser = moved[0], ({"app1", "app2"} - set(moved)).pop()
    assert report[loser]["on"] == "sqlite" and stats[loser]["failures"] == 1
    assert "holds the data of another source" in report[loser]["reason"], report[loser]
    # The refused host's app never stopped and still writes to SQLite; nothing of it reached
    # PostgreSQL, and the winner's rows are intact.
    count = len(written(fleet, loser))
    wait_for_writes(fleet, loser, count + 5)
    assert written(fleet, loser) <= sqlite_users(fleet, loser)
    assert not pg_users(fleet, "public") & sqlite_users(fleet, loser)
    assert written(fleet, winner) - pg_users(fleet, "public") - set(sorted(written(fleet, winner))[-3:]) == set()
    assert "DATABASE_URL=sqlite" in (fleet["root"] / loser / ".env").read_text()
    # Run again: preflight now refuses it before anything is written, naming both sources.
    rc, stats, out = migrate(fleet)
    assert rc != 0 and stats[loser]["failures"] == 1 and stats[winner]["changed"] == 0
    refusal = fleet_report(fleet)[loser]["reason"]
    assert f"{winner}:{fleet['hosts'][winner]['migration_source']}" in refusal, refusal
    assert f"{loser}:{fleet['hosts'][loser]['migration_source']}" in refusal and "migration_takeover_from=" in refusal
    print(refusal)
