#!/usr/bin/python
"""Ansible module: the cutover's freeze window in one call on the app host."""

DOCUMENTATION = r"""
module: sqlite_pg_cutover
short_description: Move a running app from SQLite to PostgreSQL in one step that survives the controller
description:
  - Stops the app, copies what it wrote since the last pass, verifies (only the rows changed since the
    proof taken before the stop when O(capture) is on and the proof holds, else every row), points
    C(DATABASE_URL) in O(env_file) at PostgreSQL, starts the app, checks its health and that SQLite gets
    no more writes, then records the move in C(state.json) in O(work_dir).
  - Any failure before the move is recorded puts the app back on SQLite by itself, with what it wrote on
    PostgreSQL meanwhile brought back, and the module fails saying so.
  - Run it with C(async) so that it goes on when the controller's connection drops; each step is
    journaled in C(cutover.json). A rerun waits for a window still open, and undoes one whose worker died
    after touching O(env_file) before opening it again. Once C(state.json) says moved, it changes nothing.
  - The write downtime reported is from the stop command to the return of the start command.
extends_documentation_fragment: [sqlite_pg]
options:
  env_file:
    description: The app's environment file; its C(DATABASE_URL) line is replaced (other lines kept), mode 0600.
    type: path
    required: true
  database_url:
    description: The PostgreSQL URL the app uses from now on.
    type: str
    required: true
  work_dir:
    description: Where C(state.json), the journal C(cutover.json) and the window's lock live (created, mode 0700).
    type: path
    required: true
  app_service:
    description: The app's systemd unit, stopped and started with C(systemctl).
    type: str
    default: ""
  app_stop_command:
    description: A shell command that stops the app's writes (and returns once they stopped).
    type: str
    default: ""
  app_start_command:
    description: A shell command that starts the app again.
    type: str
    default: ""
  app_stopped:
    description:
      - The operator states the app is stopped (no service, no commands). Without it, and with no way to
        stop the app, the module refuses.
    type: bool
    default: false
  health_command:
    description: A shell command that exits 0 when the app is healthy.
    type: str
    default: ""
  health_retries:
    description: How many more times the health command is tried, 2 seconds apart.
    type: int
    default: 5
  capture:
    description:
      - Change capture is installed; verify only what changed since the proof, install capture on
        PostgreSQL for the rollback window, and check that SQLite gets no more writes.
    type: bool
    default: true
  moved_check_seconds:
    description: With O(capture), how long SQLite must stay free of writes after the app started (0 skips it).
    type: float
    default: 5
  on_error:
    description: As M(sqlite_pg_copy).
    type: str
    default: error
    choices: [error, quarantine]
  orphans:
    description: As M(sqlite_pg_verify).
    type: str
    default: error
    choices: [error, not_valid, skip]
  timeout:
    description:
      - Seconds the final pass may take. A table that still differs after it is copied again in full only
        within this time; past it, the app goes back to SQLite. Give C(async) this plus the health
        check's and the moved check's time, and a margin.
    type: int
    default: 300
  record:
    description: More keys for C(state.json) (the backup's path, the load's rejected rows).
    type: dict
    default: {}
  backup_policy:
    description:
      - The target server's backups. A server provisioned by roles/postgresql in this run must have a backup
        policy (O(backup_policy.backup)), unless O(backup_policy.by_provider); otherwise the module refuses
        before the app is touched, saying what to set. A server the operator brings is not checked.
    type: dict
    default: {}
    suboptions:
      server:
        description: The db server's inventory name, for the messages.
        type: str
        default: ""
      provisioned:
        description: roles/postgresql manages the server (C(postgresql_provision)).
        type: bool
        default: false
      backup:
        description: The server's C(postgresql_backup).
        type: bool
        default: false
      state:
        description: The server's C(postgresql_backup_state) when this run read it (empty otherwise).
        type: dict
        default: {}
      by_provider:
        description: The operator says the provider backs the server up (C(migration_backups_by_provider)).
        type: bool
        default: false
attributes:
  check_mode:
    support: full
    details: Plans the window (the copy's plan, the steps); stops nothing, writes nothing.
author: sqlite-to-postgres project
"""

EXAMPLES = r"""
- name: Cut over (goes on if the controller goes away)
  sqlite_pg_cutover:
    source: /srv/app/bot.db
    db: idea_planner
    login_host: db1.example.internal
    login_user: planner_user
    login_password: "{{ vault_planner_password }}"
    env_file: /srv/app/.env
    database_url: "{{ app_database_url }}"
    work_dir: /srv/app/.sqlite_pg
    app_service: idea-planner
    health_command: curl -fsS http://127.0.0.1:8080/health
  async: 900
  poll: 1
  register: cutover
  no_log: true

- name: Show the write downtime
  ansible.builtin.debug:
    msg: "{{ cutover.decision }}: {{ cutover.write_downtime_seconds | default('-') }} s"
"""

RETURN = r"""
decision:
  description: C(moved), C(already_moved), or in check mode C(cut_over).
  returned: always
  type: str
write_downtime_seconds:
  description: From the stop to the start of the app.
  returned: when moved
  type: float
final_pass_seconds:
  description: The final copy and verification, inside the window.
  returned: when moved
  type: float
proof_before_stop_seconds:
  description:
    - With change capture, before the app is stopped, a catch-up and a proof of each table by
      what changed since its last proof, so that the final pass is left with the last seconds' writes.
    - Not part of the write downtime. Null when it did not run (no capture, or the app was already stopped).
  returned: when moved
  type: float
path:
  description: C(final pass) or C(full copy) (a table differed after the final pass).
  returned: when moved
  type: str
final_copy:
  description: The final copy's result, as M(sqlite_pg_copy) returns it.
  returned: when moved, and in check mode
  type: dict
final_verify:
  description: The verification's result, as M(sqlite_pg_verify) returns it.
  returned: when moved
  type: dict
state:
  description: What C(state.json) holds.
  returned: when moved or already moved
  type: dict
steps:
  description: In check mode, the window's steps.
  returned: check mode
  type: list
  elements: str
warnings:
  description:
    - What went differently but did not stop the move (no capture on PostgreSQL, a full copy, the server's
      backups - none yet, archiving failing, the provider's).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sqlite_pg import cutover as engine
from ansible.module_utils.sqlite_pg.connection import common_argument_spec
from ansible.module_utils.sqlite_pg_module import run


def main():
    spec = common_argument_spec()
    spec.update(
        env_file=dict(type="path", required=True),
        database_url=dict(type="str", required=True, no_log=True),
        work_dir=dict(type="path", required=True),
        app_service=dict(type="str", default=""),
        app_stop_command=dict(type="str", default=""),
        app_start_command=dict(type="str", default=""),
        app_stopped=dict(type="bool", default=False),
        health_command=dict(type="str", default=""),
        health_retries=dict(type="int", default=5),
        capture=dict(type="bool", default=True),
        moved_check_seconds=dict(type="float", default=5),
        on_error=dict(type="str", default="error", choices=["error", "quarantine"]),
        orphans=dict(type="str", default="error", choices=["error", "not_valid", "skip"]),
        timeout=dict(type="int", default=300),
        record=dict(type="dict", default={}),
        backup_policy=dict(type="dict", default={}, options=dict(
            server=dict(type="str", default=""),
            provisioned=dict(type="bool", default=False),
            backup=dict(type="bool", default=False),
            state=dict(type="dict", default={}),
            by_provider=dict(type="bool", default=False),
        )),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    if module.check_mode:
        run(module, lambda p: engine.plan(p, p["work_dir"]))
    run(module, lambda p: engine.apply(p, p["work_dir"], p["record"], p["timeout"], lock_wait=p["timeout"] + 600))


if __name__ == "__main__":
    main()
