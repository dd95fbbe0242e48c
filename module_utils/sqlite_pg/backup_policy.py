"""Whether the app may move onto its server: a server this run provisioned (roles/postgresql)
must have a backup policy (``postgresql_backup``), or the operator must say that the provider
takes its backups (``migration_backups_by_provider``). A server the operator brings is the
provider's to back up.

``decide`` is pure (the cutover's plan and apply both call it before the app is touched);
``require`` raises ``NoBackupPolicy`` on a refusal, with what to do.
"""

from dataclasses import dataclass, field

from .errors import MigrationError


class NoBackupPolicy(MigrationError):
    """A provisioned server with no backup policy: the cutover is refused, nothing touched."""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    warnings: tuple = field(default_factory=tuple)


def decide(policy):
    """``policy``: {server, provisioned, backup, state, by_provider} as the cutover module gets
    it. ``backup`` is the server's ``postgresql_backup``; ``state`` its
    ``postgresql_backup_state`` when this run read it (empty otherwise)."""
    policy = policy or {}
    server = policy.get("server") or "the db server"
    state = policy.get("state") or {}
    by_provider = bool(policy.get("by_provider"))
    if not policy.get("provisioned"):
        return Decision(True, f"{server} is not provisioned by this project: its backups are the provider's")
    configured = bool(state["configured"]) if "configured" in state else bool(policy.get("backup"))
    if not configured:
        if by_provider:
            return Decision(True, "migration_backups_by_provider: the provider backs up " + server, (
                f"{server} has no backup policy of this project (postgresql_backup: false); "
                "migration_backups_by_provider says the provider backs it up",))
        return Decision(False, (
            f"refused: {server} is provisioned by roles/postgresql with postgresql_backup: false, so nothing "
            "would back up the app's data once it runs there (no WAL archive, no scheduled backup). Set "
            f"postgresql_backup: true for {server} and rerun (the provision phase sets up pgBackRest and takes "
            "a first full backup), or, if the provider backs this server up by other means, set "
            "migration_backups_by_provider: true. The app was not stopped and still runs on SQLite"))
    warnings = []
    if not state:
        warnings.append(f"the backup state of {server} was not read in this run (is it outside --limit?): "
                        "relying on its postgresql_backup: true")
    else:
        if not state.get("backups"):
            warnings.append(f"{server} has a backup policy but no backup in its repository yet: "
                            "run `pgbackrest --stanza=" + str(state.get("stanza") or "main") + " --type=full backup`")
        if state.get("archive_failed_count") and state.get("last_failed_wal") and \
                str(state.get("last_failed_wal")) >= str(state.get("last_archived_wal") or ""):
            warnings.append(f"WAL archiving on {server} is failing (last failed segment "
                            f"{state.get('last_failed_wal')}): see `pgbackrest check` and the server log")
    return Decision(True, f"{server} has a backup policy (pgBackRest)", tuple(warnings))


def require(policy):
    """The decision, or ``NoBackupPolicy`` when it refuses."""
    decision = decide(policy)
    if not decision.allowed:
        raise NoBackupPolicy(decision.reason)
    return decision
