"""The cutover's backup gate: a server this run provisions needs a backup policy, or the
operator's word that the provider backs it up; a server the operator brings is the provider's."""

import os

import pytest
import yaml

from sqlite_pg import backup_policy

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))

STATE = {"configured": True, "stanza": "main", "backups": 1, "last_archived_wal": "000000010000000000000005",
         "archive_failed_count": 0, "last_failed_wal": None}


def test_a_provisioned_server_without_backups_is_refused_with_what_to_do():
    policy = dict(server="db1", provisioned=True, backup=False, state=dict(STATE, configured=False, backups=0))
    decision = backup_policy.decide(policy)
    assert not decision.allowed
    with pytest.raises(backup_policy.NoBackupPolicy,
                       match=r"db1 is provisioned .* postgresql_backup: false.*postgresql_backup: true for db1.*"
                             r"migration_backups_by_provider: true.*still runs on SQLite"):
        backup_policy.require(policy)


def test_the_inventory_decides_when_the_state_was_not_read():
    assert not backup_policy.decide(dict(server="db1", provisioned=True, backup=False)).allowed
    allowed = backup_policy.decide(dict(server="db1", provisioned=True, backup=True))
    assert allowed.allowed and any("not read in this run" in w for w in allowed.warnings)


def test_the_state_read_wins_over_the_inventory():
    assert not backup_policy.decide(dict(provisioned=True, backup=True, state=dict(STATE, configured=False))).allowed


def test_the_provider_takes_the_backups_when_the_operator_says_so():
    decision = backup_policy.require(dict(server="db1", provisioned=True, backup=False, by_provider=True))
    assert decision.allowed and "migration_backups_by_provider" in decision.warnings[0]


def test_a_server_the_operator_brings_is_not_checked():
    assert backup_policy.require(dict(server="rds", provisioned=False, backup=False)).allowed
    assert backup_policy.require({}).allowed          # the module's default: nothing provisioned
    assert backup_policy.require(None).allowed


def test_a_policy_with_backups_passes_quietly():
    decision = backup_policy.require(dict(server="db1", provisioned=True, backup=True, state=STATE))
    assert decision.allowed and decision.warnings == ()


def test_no_backup_yet_and_a_failing_archive_are_warned():
    state = dict(STATE, backups=0, archive_failed_count=3, last_failed_wal="000000010000000000000006")
    warnings = backup_policy.require(dict(server="db1", provisioned=True, backup=True, state=state)).warnings
    assert any("no backup in its repository yet" in w for w in warnings)
    assert any("WAL archiving on db1 is failing" in w for w in warnings)
    # An old failure, archived past since: no warning.
    state = dict(STATE, archive_failed_count=1, last_failed_wal="000000010000000000000002")
    assert backup_policy.require(dict(provisioned=True, backup=True, state=state)).warnings == ()


def test_the_local_inventory_passes_the_gate():
    """The README's main command provisions this machine (no systemd): its backups stay on
    (archive, stanza, first full backup, check; no timers), so its cutover is not refused."""
    with open(os.path.join(ROOT, "roles", "postgresql", "defaults", "main.yml")) as fh:
        role = yaml.safe_load(fh)
    with open(os.path.join(ROOT, "roles", "migration", "defaults", "main.yml")) as fh:
        migration = yaml.safe_load(fh)
    with open(os.path.join(ROOT, "inventory", "local", "group_vars", "all.yml")) as fh:
        local = yaml.safe_load(fh)
    assert role["postgresql_backup"] is True        # production-sane default
    policy = dict(server="localhost", provisioned=local.get("postgresql_provision", True),
                  backup=local.get("postgresql_backup", role["postgresql_backup"]),
                  by_provider=local.get("migration_backups_by_provider",
                                        migration["migration_backups_by_provider"]))
    assert backup_policy.require(policy).allowed
