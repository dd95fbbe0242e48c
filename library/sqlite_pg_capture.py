#!/usr/bin/python
"""Ansible module: change capture (triggers and a log table) in the app's SQLite file."""

DOCUMENTATION = r"""
module: sqlite_pg_capture
short_description: Record which rows the app changes in SQLite, so catch-up copies only those
description:
  - With O(state=present), adds a log table C(_s2p_changes) and, on every migrated table, triggers
    that record the primary key of each row inserted, updated or deleted (old and new key when a
    key changes). M(sqlite_pg_copy) then replays only the logged rows on its next run (status
    C(caught_up)) instead of copying changed tables again, and prunes the log behind it.
  - Install it before the bulk copy. The copy records the log position of its snapshot, so no
    change between the two is missed. Tables copied before capture existed are compared and copied
    in full as before.
  - A table without a primary key only logs that it changed; it is copied again in full.
  - O(state=absent) removes triggers and log (decommission). The app's own triggers are never touched.
  - Writes to the SQLite file in one short write transaction (waits up to 30 s for the app's writers).
  - With O(side=postgresql), the same for the rollback window after cutover - a log table
    C(_migration_changes) and a row trigger on every migrated table of the target record the keys the
    app changes there, so M(sqlite_pg_copy_back) brings back only those rows. Installed at cutover
    before the app starts on PostgreSQL; removed after a rollback and at decommission.
  - Check mode returns the statements without running them.
extends_documentation_fragment: [sqlite_pg]
options:
  db:
    description: Not used by this module (it changes SQLite only); accepted so module_defaults can be shared.
    type: str
    required: false
  side:
    description: Where changes are captured - the SQLite file (before cutover) or the PostgreSQL target (after).
    type: str
    default: sqlite
    choices: [sqlite, postgresql]
  state:
    description: Whether capture is installed.
    type: str
    default: present
    choices: [present, absent]
attributes:
  check_mode:
    support: full
    details: Returns the statements without running them.
author: sqlite-to-postgres project
"""

EXAMPLES = r"""
- name: Log the app's changes from now on
  sqlite_pg_capture:
    source: /srv/app/bot.db

- name: Capture the app's changes on PostgreSQL for the rollback window
  sqlite_pg_capture:
    source: /srv/app/bot.db
    db: planner
    login_host: db.internal
    login_user: planner
    login_password: "{{ vault_planner_password }}"
    side: postgresql
  no_log: true

- name: Remove capture after decommission
  sqlite_pg_capture:
    source: /srv/app/bot.db
    state: absent
"""

RETURN = r"""
statements:
  description: The SQL run (or, in check mode, that would run) on the SQLite file or the target.
  returned: always
  type: list
  elements: str
tables:
  description: Tables whose changes are logged (state=present).
  returned: always
  type: list
  elements: str
log_rows:
  description: Entries in the SQLite log not yet pruned by a copy (null for side=postgresql).
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sqlite_pg import run as engine
from ansible.module_utils.sqlite_pg.connection import common_argument_spec
from ansible.module_utils.sqlite_pg_module import run


def main():
    spec = common_argument_spec()
    spec["db"] = dict(type="str", required=False)
    spec["state"] = dict(type="str", default="present", choices=["present", "absent"])
    spec["side"] = dict(type="str", default="sqlite", choices=["sqlite", "postgresql"])
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    if module.params["side"] == "postgresql" and not module.params["db"]:
        module.fail_json(msg="side=postgresql needs db (and the connection options)")
    run(module, lambda p: engine.capture(p, state=p["state"], check_mode=module.check_mode, side=p["side"]))


if __name__ == "__main__":
    main()
