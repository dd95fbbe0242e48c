"""The freeze window as one engine call, with the app as a real process that keeps writing
(tests/app/writer.py): it moves and records, or puts the app back on SQLite with every write,
and a window a dead worker left open is undone before the next one."""

import json
import os
import sqlite3
import subprocess
import sys
import time

import psycopg2
import pytest

from scripts.make_demo_db import build
from sqlite_pg import cutover, run
from tests.app.control import alive_command, stop_command

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


def logged(app_dir):
    path = app_dir / "writes.log"
    lines = path.read_text().splitlines() if path.exists() else []
    return [line for line in lines if line and not line.startswith("#")]


def wait_for_writes(app_dir, more_than):
    deadline = time.monotonic() + 30
    while len(logged(app_dir)) <= more_than and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(logged(app_dir)) > more_than, (app_dir / "app.out").read_text()[-2000:]


def last_start(app_dir):
    return (app_dir / "writes.log").read_text().split("# start")[-1].splitlines()[0]


@pytest.fixture
def live(tmp_path, pg_db):
    """bot.db with a writer running on it, capture installed, loaded and proven: the moment
    before cutover. Yields the window's options."""
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    source = app_dir / "bot.db"
    build(source, users=60, ideas_per_user=2, analyses_per_idea=1, seed=5)
    (app_dir / ".env").write_text(f"OTHER=kept\nDATABASE_URL=sqlite:///{source}\n")
    pidfile = app_dir / "app.pid"
    start = (f"nohup {sys.executable} {ROOT}/tests/app/writer.py {app_dir} >> {app_dir}/app.out 2>&1 & "
             f"echo $! > {pidfile}")
    subprocess.run(["sh", "-c", start], check=True)
    params = dict(pg_db, source=str(source))
    run.capture(params)
    run.schema(params, phase="tables")
    run.copy(params, passes=2, prove=True)
    run.schema(params, phase="constraints")
    wait_for_writes(app_dir, 10)
    url = (f"postgresql+psycopg2://{pg_db['login_user']}@/{pg_db['db']}?host={pg_db['login_unix_socket']}"
           f"&port={pg_db['port']}")
    params.update(env_file=str(app_dir / ".env"), database_url=url, capture=True, moved_check_seconds=1,
                  app_stop_command=stop_command(pidfile),
                  app_start_command=start, health_command=f"sleep 0.2; {alive_command(pidfile)}",
                  health_retries=2, health_delay=0.3)
    yield dict(params=params, dir=app_dir, work=str(app_dir / ".sqlite_pg"), start=start)
    subprocess.run(["sh", "-c", f"kill $(cat {pidfile}) 2>/dev/null"], check=False)


def pg_users(params):
    conn = psycopg2.connect(host=params["login_unix_socket"], port=params["port"], user=params["login_user"],
                            dbname=params["db"])
    with conn, conn.cursor() as cur:
        cur.execute("SELECT telegram_id FROM users")
        found = {r[0] for r in cur.fetchall()}
    conn.close()
    return found


def sqlite_users(params):
    conn = sqlite3.connect(params["source"])
    found = {r[0] for r in conn.execute("SELECT telegram_id FROM users")}
    conn.close()
    return found


def test_the_window_moves_the_app_and_records_it(live):
    moved = cutover.apply(live["params"], live["work"], record={"backup": "/b/bot.db"})
    assert moved["decision"] == "moved" and moved["changed"]
    assert moved["path"] == "final pass" and 0 < moved["write_downtime_seconds"] < moved["final_pass_seconds"] + 5
    assert moved["proof_before_stop_seconds"] > 0   # the proof rolled forward while the app still wrote
    env = (live["dir"] / ".env").read_text().splitlines()
    assert env == ["OTHER=kept", f"DATABASE_URL={live['params']['database_url']}"]   # in place, the rest kept
    assert oct(os.stat(live["dir"] / ".env").st_mode & 0o777) == "0o600"
    state = json.loads((live["dir"] / ".sqlite_pg" / "state.json").read_text())
    assert state["migrated"] and state["backup"] == "/b/bot.db" and state["previous_database_url"].startswith("sqlite")
    wait_for_writes(live["dir"], len(logged(live["dir"])) + 10)
    assert "postgresql" in last_start(live["dir"])
    assert set(logged(live["dir"])) - pg_users(live["params"]) == set()
    again = cutover.apply(live["params"], live["work"])
    assert again["decision"] == "already_moved" and not again["changed"]


def test_a_failing_health_check_puts_the_app_back_on_sqlite_with_its_writes(live):
    params = dict(live["params"], health_command="sleep 0.3; grep -q '^DATABASE_URL=sqlite' " + live["params"]["env_file"])
    with pytest.raises(cutover.CutoverError, match="health check failed on PostgreSQL.*runs on SQLite as before"):
        cutover.apply(params, live["work"])
    assert (live["dir"] / ".env").read_text().splitlines()[1].startswith("DATABASE_URL=sqlite")
    assert not (live["dir"] / ".sqlite_pg" / "state.json").exists()
    assert json.loads((live["dir"] / ".sqlite_pg" / "cutover.json").read_text())["phase"] == "reverted"
    # It wrote on PostgreSQL while it was checked; those writes are in SQLite now, and it writes there.
    on_pg = set(logged(live["dir"]))
    wait_for_writes(live["dir"], len(on_pg) + 10)
    assert "sqlite" in last_start(live["dir"])
    assert on_pg - sqlite_users(params) == set()


def test_no_way_to_stop_the_app_is_refused_and_nothing_changes(live):
    params = dict(live["params"], app_stop_command="", app_start_command="")
    env = (live["dir"] / ".env").read_text()
    with pytest.raises(cutover.CutoverError, match="no way to stop the app's writes.*migration_app_stopped"):
        cutover.apply(params, live["work"])
    with pytest.raises(cutover.CutoverError, match="no way to stop"):
        cutover.plan(params, live["work"])
    assert (live["dir"] / ".env").read_text() == env
    wait_for_writes(live["dir"], len(logged(live["dir"])) + 5)   # never stopped


def test_a_provisioned_server_without_backups_is_refused_and_nothing_changes(live):
    """Cutover onto a server roles/postgresql provisioned with postgresql_backup: false is refused
    before the app is touched; the operator's word that the provider backs it up lets it move."""
    no_policy = dict(server="db1", provisioned=True, backup=False, state={"configured": False, "backups": 0})
    params = dict(live["params"], backup_policy=no_policy)
    env = (live["dir"] / ".env").read_text()
    for call in (cutover.plan, cutover.apply):
        with pytest.raises(cutover.backup_policy.NoBackupPolicy, match="postgresql_backup: false.*by_provider"):
            call(params, live["work"])
    assert (live["dir"] / ".env").read_text() == env
    assert not os.path.exists(os.path.join(live["work"], "cutover.json"))   # no window opened
    wait_for_writes(live["dir"], len(logged(live["dir"])) + 5)   # never stopped
    params["backup_policy"] = dict(no_policy, by_provider=True)
    moved = cutover.apply(params, live["work"])
    assert moved["decision"] == "moved" and any("provider backs it up" in w for w in moved["warnings"])


def test_check_mode_plans_the_window_and_touches_nothing(live):
    env = (live["dir"] / ".env").read_text()
    planned = cutover.plan(live["params"], live["work"])
    assert planned["decision"] == "cut_over" and "stop the app" in planned["steps"]
    assert (live["dir"] / ".env").read_text() == env
    assert not os.path.exists(os.path.join(live["work"], "cutover.json"))
    wait_for_writes(live["dir"], len(logged(live["dir"])) + 5)   # still running


def test_a_window_a_dead_worker_left_switched_is_undone_then_run_again(live):
    """As if the worker was killed once the app ran on PostgreSQL: the app writes there,
    nothing recorded the move. The next call brings those writes back, then moves."""
    params = live["params"]
    subprocess.run(["sh", "-c", params["app_stop_command"]], check=True)
    run.copy(params)                                   # the dead worker's final pass
    run.capture(params, side="postgresql")
    cutover.set_env_url(params["env_file"], params["database_url"])
    os.makedirs(live["work"], exist_ok=True)
    cutover.write_json(os.path.join(live["work"], "cutover.json"),
                       {"phase": "checking", "pid": 1, "previous_url": f"sqlite:///{params['source']}"})
    subprocess.run(["sh", "-c", live["start"]], check=True)
    wait_for_writes(live["dir"], len(logged(live["dir"])) + 10)   # on PostgreSQL, unrecorded
    assert "postgresql" in last_start(live["dir"])

    moved = cutover.apply(params, live["work"])
    assert moved["decision"] == "moved" and any("died in phase checking" in w for w in moved["warnings"])
    wait_for_writes(live["dir"], len(logged(live["dir"])) + 10)
    assert set(logged(live["dir"])) - pg_users(params) == set()


def test_the_local_inventory_states_how_its_demo_is_stopped(tmp_path, pg_db):
    """The README's main command (inventory/local) migrates a demo file with no app running:
    its settings must say so, or cutover refuses an app it cannot stop."""
    import yaml

    with open(os.path.join(ROOT, "inventory", "local", "group_vars", "all.yml")) as fh:
        settings = yaml.safe_load(fh)
    source = tmp_path / "bot.db"
    build(source, users=20, ideas_per_user=1, analyses_per_idea=1, seed=3)
    params = dict(pg_db, source=str(source), env_file=str(tmp_path / ".env"), database_url="postgresql://x/y",
                  app_service=settings.get("migration_app_service", ""),
                  app_stop_command=settings.get("migration_app_stop_command", ""),
                  app_stopped=settings.get("migration_app_stopped", False))
    run.schema(params, phase="tables")
    assert cutover.plan(params, str(tmp_path / ".sqlite_pg"))["decision"] == "cut_over"


def test_a_row_the_target_lost_after_the_proof_is_found_inside_the_window(live, monkeypatch):
    """Inside the freeze the catch-up does not count a table before its replay: the count after
    it is the check. A row PostgreSQL lost outside the app's changes (here just before the stop)
    leaves the table unaccounted for after the replay: it is copied in full and verified in
    full inside the window, and the row comes back."""
    proven_then_lost = cutover.roll_proof_forward

    def roll_then_lose(params, work_dir):
        seconds = proven_then_lost(params, work_dir)
        conn = psycopg2.connect(host=params["login_unix_socket"], port=params["port"], user=params["login_user"],
                                dbname=params["db"])
        with conn, conn.cursor() as cur:
            cur.execute("DELETE FROM analyses WHERE id = 100")   # not a row the writer touches
            assert cur.rowcount == 1
        conn.close()
        return seconds

    monkeypatch.setattr(cutover, "roll_proof_forward", roll_then_lose)
    moved = cutover.apply(live["params"], live["work"])
    assert moved["decision"] == "moved", moved
    analyses = moved["final_copy"]["tables"]["analyses"]
    assert analyses["status"] == "copied" and "a change was not logged; copied in full" in analyses["note"], analyses
    assert moved["final_verify"]["tables"]["analyses"]["path"] == "full"
    assert moved["final_verify"]["tables"]["users"]["path"] == "proof + changes"
    conn = psycopg2.connect(host=live["params"]["login_unix_socket"], port=live["params"]["port"],
                            user=live["params"]["login_user"], dbname=live["params"]["db"])
    with conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM analyses WHERE id = 100")
        assert cur.fetchone()[0] == 1
    conn.close()
