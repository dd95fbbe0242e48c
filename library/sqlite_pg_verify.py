#!/usr/bin/python
"""Ansible module: prove PostgreSQL holds the SQLite database's rows."""

DOCUMENTATION = r"""
module: sqlite_pg_verify
short_description: Prove that PostgreSQL holds every row of a SQLite database
description:
  - Compares row counts and content checksums per table. The source is converted with the same rules
    the copy uses and hashed beside the target from canonical values, so a SQLite C(1) and a
    PostgreSQL C(true) agree while any changed, missing or extra row does not.
  - On a mismatch, names the rows (key, column, source value, target value; the first O(max_diffs)).
  - Rows quarantined by M(sqlite_pg_copy) are accounted for, not counted as loss.
  - Also checks foreign keys (a C(NOT VALID) one with orphans is reported) and that identity sequences
    are past max(id).
  - Never changes anything; fails when any table differs.
extends_documentation_fragment: [sqlite_pg, sqlite_pg.reading]
options:
  max_diffs:
    description: How many differing rows to name per table.
    type: int
    default: 10
  orphans:
    description:
      - The policy given to M(sqlite_pg_schema). With C(skip), a foreign key left out because of orphan
        rows is reported as a warning instead of a failure.
    type: str
    default: error
    choices: [error, not_valid, skip]
  checks:
    description:
      - C(all) - rows, and what the app needs of PostgreSQL (keys, indexes, foreign keys, statistics,
        sequences); the gate before cutover.
      - C(content) - rows only (counts, checksums, quarantined rows accounted for); what a rollback proves.
      - C(moved) - no rows compared - after cutover, fails when the SQLite file's change log holds writes made
        after the final copy (after O(quiet_seconds)) - the app did not follow C(DATABASE_URL). Needs change
        capture (M(sqlite_pg_capture)).
    type: str
    default: all
    choices: [all, content, moved]
  quiet_seconds:
    description: With O(checks=moved), how long to wait (the app running on PostgreSQL) before looking.
    type: int
    default: 0
  since_proof:
    description:
      - A table that M(sqlite_pg_copy) proved equal to the source at a capture position P (O(sqlite_pg_copy#module:prove)),
        and whose copy is at this snapshot, is verified by what changed since - the rows of the keys logged
        after P on both sides, its row count against the source's, keys, indexes and sequences - instead of
        in full. Tables without such a proof, or whose log shows a gap (capture re-created, a NULL key), are
        verified in full. Each table's C(path) says which way ran.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details: Verification only reads, so it runs the same in check mode.
author: sqlite-to-postgres project
"""

EXAMPLES = r"""
- name: Verify the copy
  sqlite_pg_verify:
    source: /srv/app/bot.db
    db: idea_planner
    login_user: postgres
    login_unix_socket: /var/run/postgresql
  register: verified

- name: Show counts and checksums
  ansible.builtin.debug:
    var: verified.tables
"""

RETURN = r"""
read:
  description: Where the source was read and why - the file's journal mode, C(live) or C(page_copy), and for a
    page copy how long its read lock held the app's writes (the longest of the passes) and its size.
  returned: success
  type: dict
  sample: {journal_mode: delete, way: page_copy, why: "rollback journal (delete): ...", lock_seconds: 0.23,
           bytes: 325201920}
tables:
  description: Per SQLite table, the findings (also returned on failure).
  returned: always
  type: dict
  sample:
    users:
      ok: true
      source_rows: 50000
      target_rows: 50000
      rejected: 0
      source_checksum: 3f1c0a9e5b2d7c41
      target_checksum: 3f1c0a9e5b2d7c41
      problems: []
      differences: []
      seconds: 0.52
rows:
  description: Rows verified in the target.
  returned: success
  type: int
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sqlite_pg import run as engine
from ansible.module_utils.sqlite_pg.backup import reading_argument_spec
from ansible.module_utils.sqlite_pg.connection import common_argument_spec
from ansible.module_utils.sqlite_pg_module import run


def main():
    spec = common_argument_spec()
    spec.update(max_diffs=dict(type="int", default=10),
                orphans=dict(type="str", default="error", choices=["error", "not_valid", "skip"]),
                checks=dict(type="str", default="all", choices=["all", "content", "moved"]),
                since_proof=dict(type="bool", default=False),
                quiet_seconds=dict(type="int", default=0))
    spec.update(reading_argument_spec())
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    if module.params["checks"] == "moved":
        run(module, lambda p: engine.check_moved(p, wait=p["quiet_seconds"]))
    run(module, lambda p: engine.verify_all(p, max_diffs=p["max_diffs"], orphans=p["orphans"], checks=p["checks"],
                                            since_proof=p["since_proof"], read_from=p["read_from"],
                                            snapshot_dir=p["snapshot_dir"]))


if __name__ == "__main__":
    main()
