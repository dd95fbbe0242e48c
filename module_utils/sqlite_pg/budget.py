"""Whether a server's connections hold what its clients need: every app's pool (size plus
overflow) and the migration's own connections, against ``max_connections`` less the slots
reserved for superusers."""


def check(cur, needed):
    """A dict: max_connections, reserved, available, needed, in_use, ok and, when short, msg
    (what to change). ``needed`` 0: nothing to check (only reported)."""
    cur.execute("""SELECT current_setting('max_connections')::int,
                          current_setting('superuser_reserved_connections')::int
                          + coalesce(current_setting('reserved_connections', true), '0')::int,
                          (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')""")
    max_connections, reserved, in_use = cur.fetchone()
    available = max_connections - reserved
    result = dict(max_connections=max_connections, reserved=reserved, available=available, needed=int(needed),
                  in_use=in_use, ok=int(needed) <= available)
    if not result["ok"]:
        result["msg"] = (
            f"the server allows {available} client connections (max_connections {max_connections}, {reserved} "
            f"reserved for superusers) but the apps' pools and the migration need {needed}. Raise max_connections "
            f"to at least {int(needed) + reserved} (postgresql_max_connections on a server roles/postgresql "
            "provisions; the provider's setting otherwise; a restart applies it), lower the pools "
            "(migration_app_pool_size, migration_app_max_overflow), or put a pooler such as pgbouncer in front "
            "(docs/runbook.md)")
    return result
