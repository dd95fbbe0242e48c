#!/usr/bin/python
"""Ansible module: online backup of a SQLite file."""

DOCUMENTATION = r"""
module: sqlite_backup
short_description: Back up a live SQLite file, consistent while the app writes
description:
  - Copies a consistent state of the database even while the app writes to it (unlike C(cp)).
  - In WAL mode through SQLite's backup API, in one step (the app's writes go on). In a rollback-journal
    file (SQLite's default) the file is copied under a read lock, as SQLite's documentation describes;
    the app's writes wait (not fail) for that long - RV(lock_seconds); 0.3 s for a 325 MB file in the benchmark.
    A backup taken a few pages at a time would start over at each of the app's commits and, with an
    app that writes steadily, never finish.
  - The copy is named C(<file>.<UTC timestamp>.bak), checked with C(PRAGMA integrity_check),
    made mode 0600, and its SHA-256 is returned.
  - Every run makes a new backup (C(changed=true)); playbooks decide when one is due.
options:
  source:
    description: The SQLite file.
    type: path
    required: true
  dest_dir:
    description: Directory for the backup (created 0700 if missing).
    type: path
    required: true
attributes:
  check_mode:
    support: full
    details: In check mode nothing is written; the result says a backup would be made.
author: sqlite-to-postgres project
"""

EXAMPLES = r"""
- name: Back up the app's database before migrating
  sqlite_backup:
    source: /srv/app/bot.db
    dest_dir: /srv/app/.sqlite_pg/backups
  register: backup

- name: Show where it went
  ansible.builtin.debug:
    msg: "{{ backup.dest }} sha256 {{ backup.sha256 }}"
"""

RETURN = r"""
dest:
  description: Path of the backup (empty in check mode).
  returned: always
  type: str
sha256:
  description: SHA-256 of the backup file.
  returned: success and not check mode
  type: str
size:
  description: Size of the backup in bytes.
  returned: success and not check mode
  type: int
lock_seconds:
  description: How long the backup held its read lock on the file (in a rollback-journal file, the
    longest the app's writes waited for it).
  returned: success and not check mode
  type: float
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sqlite_pg.backup import backup
from ansible.module_utils.sqlite_pg.errors import MigrationError


def main():
    module = AnsibleModule(argument_spec=dict(source=dict(type="path", required=True),
                                              dest_dir=dict(type="path", required=True)),
                           supports_check_mode=True)
    if module.check_mode:
        module.exit_json(changed=True, dest="")
    try:
        result = backup(module.params["source"], module.params["dest_dir"])
    except MigrationError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=True, **result)


if __name__ == "__main__":
    main()
