"""Verify roles/postgresql on the Molecule hosts (testinfra over molecule's inventory).

Expected tuning is computed with the role's own filter from the host's facts, so this checks
that the server runs with what the role rendered. The last test converges a second time with
a reload-only change and proves the postmaster was not restarted.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

SCENARIO = Path(__file__).resolve().parents[1]
PROJECT = SCENARIO.parents[1]
sys.path.insert(0, str(PROJECT))

from filter_plugins.pgconf import pg_settings_changes  # noqa: E402
from filter_plugins.pgtune import pgtune  # noqa: E402

VARS = yaml.safe_load((SCENARIO / "group_vars" / "all.yml").read_text())
APP = VARS["postgresql_users"][0]
DB = VARS["postgresql_databases"][0]
EXPECTED_VERSION = {"12": "15", "13": "17"}


_FACTS = {}


def facts(host):
    """The host's facts, gathered once per host (setup over podman is slow)."""
    name = host.backend.host
    if name not in _FACTS:
        _FACTS[name] = host.ansible("setup", "gather_subset=min,hardware")["ansible_facts"]
    return _FACTS[name]


def version_of(host):
    return EXPECTED_VERSION[facts(host)["ansible_distribution_major_version"]]


def psql(host, sql, db="postgres"):
    """Run SQL as postgres over the socket; return the output without surrounding blanks."""
    cmd = host.run("runuser -u postgres -- psql -X -At -d %s -c %s", db, sql)
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


def app_login(host, password, sql="SELECT current_user"):
    """Connect as the app role over TCP to the host's own network address."""
    address = host.run("hostname -I").stdout.split()[0]
    return host.run(
        "PGPASSWORD=%s PGCONNECT_TIMEOUT=5 psql -X -At -h %s -U %s -d %s -c %s",
        password, address, APP["name"], DB["name"], sql,
    )


def ansible_playbook(host, playbook, *args):
    """Run a playbook of the project against this host with molecule's inventory."""
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE") or str(
        Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "inventory"
    )
    return subprocess.run(
        ["ansible-playbook", "-i", inventory, str(playbook), "--limit", host.backend.host, *args],
        capture_output=True, text=True, env=os.environ.copy(), check=False,
    )


def test_server_runs_under_systemd_at_distribution_version(host):
    version = version_of(host)
    assert host.file("/proc/1/comm").content_string.strip() == "systemd"
    assert host.run("systemctl is-system-running").stdout.strip() in ("running", "degraded")
    unit = host.service(f"postgresql@{version}-main")
    assert unit.is_running
    assert unit.is_enabled or host.service("postgresql").is_enabled
    assert psql(host, "SHOW server_version_num")[:2] == version


def test_tuned_values_are_live(host):
    f = facts(host)
    expected = pgtune(
        f["ansible_memtotal_mb"],
        cpus=f["ansible_processor_vcpus"],
        storage=VARS["postgresql_tuning_storage"],
        max_connections=VARS["postgresql_max_connections"],
        profile=VARS["postgresql_tuning_profile"],
        version=version_of(host),
    )
    expected.update(
        password_encryption="scram-sha-256",
        listen_addresses="*",
        log_min_duration_statement="1000",
        shared_preload_libraries="pg_stat_statements",
        log_checkpoints="on",
    )
    names = ",".join(f"'{name}'" for name in expected)
    rows = [
        dict(zip(("name", "setting", "unit", "vartype", "context"), line.split("|"), strict=True))
        for line in psql(host, f"SELECT name, setting, unit, vartype, context FROM pg_settings WHERE name IN ({names})")
        .splitlines()
    ]
    assert {r["name"] for r in rows} == set(expected)
    # pg_settings_changes normalises units ('1GB' == 131072 x 8kB); nothing may differ.
    assert pg_settings_changes(expected, rows) == []
    # and SHOW prints the same strings PGTune prints, for the memory settings
    for name in ("shared_buffers", "work_mem", "maintenance_work_mem", "wal_buffers", "max_wal_size"):
        assert psql(host, f"SHOW {name}") == expected[name], name


def test_app_role_logs_in_over_tcp_with_password(host):
    result = app_login(host, APP["password"])
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == APP["name"]


def test_wrong_password_is_refused(host):
    result = app_login(host, "not-the-password")
    assert result.rc != 0
    assert "password authentication failed" in result.stderr


def test_no_trust_for_tcp_in_pg_hba(host):
    hba = host.file(f"/etc/postgresql/{version_of(host)}/main/pg_hba.conf")
    assert hba.user == "postgres"
    rules = [line.split() for line in hba.content_string.splitlines() if line.strip() and not line.startswith("#")]
    assert rules, "pg_hba.conf has no rules"
    assert not [r for r in rules if r[0].startswith("host") and "trust" in r]
    assert psql(host, "SELECT count(*) FROM pg_hba_file_rules WHERE auth_method = 'trust' AND type <> 'local'") == "0"


def test_password_stored_as_scram(host):
    stored = psql(host, f"SELECT rolpassword FROM pg_authid WHERE rolname = '{APP['name']}'")
    assert stored.startswith("SCRAM-SHA-256$")


def test_app_role_is_not_superuser_and_owns_database(host):
    assert psql(host, f"SELECT rolsuper, rolcanlogin FROM pg_roles WHERE rolname = '{APP['name']}'") == "f|t"
    owner, encoding = psql(
        host,
        f"SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding) FROM pg_database WHERE datname = '{DB['name']}'",
    ).split("|")
    assert (owner, encoding) == (APP["name"], "UTF8")
    assert psql(host, "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'public'", DB["name"]) == (
        APP["name"]
    )


def test_extensions_exist(host):
    installed = psql(host, "SELECT extname FROM pg_extension ORDER BY 1", DB["name"]).splitlines()
    assert "uuid-ossp" in installed
    assert "pg_stat_statements" in installed
    result = app_login(host, APP["password"], "SELECT uuid_generate_v4() IS NOT NULL")
    assert result.stdout.strip() == "t", result.stderr


@pytest.mark.slow
def test_reload_only_change_reloads_without_restart(host):
    """Converge again with a sighup/superuser-context change: value applied, postmaster kept."""
    before = psql(host, "SELECT pg_postmaster_start_time()")
    reloads_before = psql(host, "SELECT pg_conf_load_time()")
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE") or str(
        Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "inventory"
    )
    run = subprocess.run(
        [
            "ansible-playbook", "-i", inventory, str(SCENARIO / "converge.yml"),
            "--limit", host.backend.host, "-e", "postgresql_log_min_duration_statement=2500",
        ],
        capture_output=True, text=True, env=os.environ.copy(), check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "RUNNING HANDLER [postgresql : Reload PostgreSQL]" in run.stdout
    assert "RUNNING HANDLER [postgresql : Restart PostgreSQL]" not in run.stdout
    assert psql(host, "SHOW log_min_duration_statement") == "2500ms"
    assert psql(host, "SELECT pg_postmaster_start_time()") == before
    assert psql(host, "SELECT pg_conf_load_time()") != reloads_before


def test_backups_configured_and_checked(host):
    """archive_mode/archive_command live, stanza present with a full backup, timers active."""
    assert psql(host, "SHOW archive_mode") == "on"
    assert psql(host, "SHOW archive_command") == "pgbackrest --stanza=main archive-push %p"
    check = host.run("runuser -u postgres -- pgbackrest --stanza=main check")
    assert check.rc == 0, check.stdout + check.stderr
    info = json.loads(host.check_output("runuser -u postgres -- pgbackrest --stanza=main info --output=json"))
    assert info[0]["status"]["code"] == 0, info
    assert [b for b in info[0]["backup"] if b["type"] == "full"]
    for timer in ("pgbackrest-full.timer", "pgbackrest-diff.timer"):
        assert host.service(timer).is_enabled
        assert host.run("systemctl is-active %s", timer).stdout.strip() == "active"
    assert psql(host, "SELECT failed_count FROM pg_stat_archiver") == "0"


@pytest.mark.slow
def test_point_in_time_restore_proves_what_is_there_and_what_is_not(host):
    """Backup, rows at t1, more rows later; restore.yml to t1 has the first, not the later."""
    db = DB["name"]
    psql(host, "DROP TABLE IF EXISTS drill; CREATE TABLE drill (id int PRIMARY KEY, note text)", db)
    assert host.run("runuser -u postgres -- pgbackrest --stanza=main --type=diff backup").rc == 0
    psql(host, "INSERT INTO drill SELECT g, 'before ' || g FROM generate_series(1, 3) g", db)
    expect = psql(host, "SELECT md5(string_agg(t::text, E'\\n' ORDER BY t.id)) FROM drill t", db)
    time.sleep(1.5)
    t1 = psql(host, "SELECT clock_timestamp()")
    time.sleep(1.5)
    psql(host, "INSERT INTO drill SELECT g, 'after ' || g FROM generate_series(4, 5) g", db)
    # check switches the WAL segment and waits until it is in the repository.
    assert host.run("runuser -u postgres -- pgbackrest --stanza=main check").rc == 0
    main_started = psql(host, "SELECT pg_postmaster_start_time()")

    run = ansible_playbook(
        host, PROJECT / "restore.yml",
        "-e", json.dumps({
            "restore_hosts": "all", "restore_target_time": t1, "restore_database": db,
            "restore_keep_running": True,
            "restore_expect": {"public.drill": {"rows": 3, "checksum": expect}},
        }),
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    print(run.stdout[run.stdout.find("TASK [Print the proof]"):][:1500])
    try:
        scratch = host.run("runuser -u postgres -- psql -X -At -p 5499 -d %s -c %s", db,
                           "SELECT string_agg(note, ',' ORDER BY id) FROM drill")
        assert scratch.rc == 0, scratch.stderr
        assert scratch.stdout.strip() == "before 1,before 2,before 3"
        assert psql(host, "SELECT count(*) FROM drill WHERE note LIKE 'after%'", db) == "2"
    finally:
        version = version_of(host)
        host.run(f"runuser -u postgres -- /usr/lib/postgresql/{version}/bin/pg_ctl -D "
                 "/var/lib/postgresql/restore-main -m fast stop")
    # the main cluster was not touched
    assert psql(host, "SELECT pg_postmaster_start_time()") == main_started
    psql(host, "DROP TABLE drill", db)
