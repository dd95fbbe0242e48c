#!/usr/bin/python
"""Ansible module: claim a PostgreSQL target for one SQLite source, check the server's connections."""

DOCUMENTATION = r"""
module: sqlite_pg_target
short_description: Claim a PostgreSQL target (database and schema) for one SQLite source
description:
  - A target holds one source. The first migration that writes to it records the source there (table
    C(_migration_source)) - the source's id, kept inside the SQLite file (table C(_s2p_source), so a copy
    or a move of the file is still the same source), the app host and the path.
  - Refuses, changing nothing, a target that another source holds, and one that holds tables no
    migration of this source created (unless O(target=existing), the app's own schema). The message names
    both sources and the way out; only O(takeover_from) takes a target over.
  - Claims are made under an advisory lock in PostgreSQL, so two hosts that reach one unclaimed target
    at the same moment cannot both claim it; the second is refused.
  - Also checks that the server's C(max_connections) holds O(connections_needed).
  - In check mode it only plans (what preflight runs); the other writing modules make the same check
    before each write.
extends_documentation_fragment: [sqlite_pg]
options:
  connections_needed:
    description: Client connections the server must hold for every app it serves (pool size plus overflow
      each) and the migration's own; fails, saying what to change, when C(max_connections) less the
      superuser reserve is lower. C(0) only reports.
    type: int
    default: 0
  missing_ok:
    description: A server or database that cannot be reached yet (provisioning creates it later in the same
      run) is reported, not a failure.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details: Plans only; the refusal is the same.
author: sqlite-to-postgres project
"""

EXAMPLES = r"""
- name: Refuse another host's target before anything is written
  sqlite_pg_target:
    source: /srv/app/bot.db
    source_host: "{{ inventory_hostname }}"
    db: idea_planner_app1
    login_host: db1.example.internal
    login_user: planner_user
    login_password: "{{ vault_migration_db_password }}"
    connections_needed: 95
  check_mode: true

- name: Take over the target of a decommissioned source
  sqlite_pg_target:
    source: /srv/app/bot.db
    db: idea_planner
    login_user: planner_user
    login_password: "{{ vault_migration_db_password }}"
    takeover_from: 3f1c2d9e-5b7a-4c1e-9d2f-0a1b2c3d4e5f
"""

RETURN = r"""
decision:
  description: C(keep) (already this source's), C(claim), C(update) (this source moved to another host or
    path), C(take_over), or C(not_reachable) (with O(missing_ok)).
  returned: success
  type: str
msg:
  description: What was decided, for the operator.
  returned: always
  type: str
owner:
  description: The owner record found before this run (source_id, host, path, claimed_at, history), or null.
  returned: success
  type: dict
connections:
  description: max_connections, reserved, available, needed, in_use and ok; null when not reachable.
  returned: success
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sqlite_pg import run as engine
from ansible.module_utils.sqlite_pg.connection import common_argument_spec
from ansible.module_utils.sqlite_pg_module import run


def main():
    spec = common_argument_spec()
    spec["connections_needed"] = dict(type="int", default=0)
    spec["missing_ok"] = dict(type="bool", default=False)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    run(module, lambda p: engine.target(p, check_mode=module.check_mode, connections_needed=p["connections_needed"],
                                        missing_ok=p["missing_ok"]))


if __name__ == "__main__":
    main()
