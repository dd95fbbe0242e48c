#!/usr/bin/python
"""Ansible module: profile a SQLite database before migrating it."""

DOCUMENTATION = r"""
module: sqlite_pg_profile
short_description: Tell what a SQLite database really holds, and what the migration will do with it
description:
  - Read-only. Reads the SQLite file only; PostgreSQL is not contacted, except with
    O(target=existing) and O(db) set, when the app's own column types are read from it so that the
    prediction is made against them (a value too large for the app's C(integer) column is counted).
  - Runs C(PRAGMA integrity_check) and fails on a damaged file.
  - Per table - rows, primary key kind (rowid alias, composite, WITHOUT ROWID, none with its duplicate
    rows), AUTOINCREMENT.
  - Per column - the storage classes actually present (C(typeof) census) against the declared type and
    the planned PostgreSQL type; how many values convert cleanly and how many would not, by reason
    (the same rules M(sqlite_pg_copy) applies, so the prediction and the copy agree), with examples;
    date/time encodings in use (ISO with C(T) or space, fractions, offsets, bare dates, epoch seconds
    and milliseconds); boolean spellings; integers beyond int4; SQLite defaults and their PostgreSQL
    translation.
  - Orphan rows per foreign key, and a plain summary an operator can act on.
extends_documentation_fragment: [sqlite_pg, sqlite_pg.reading]
options:
  db:
    description:
      - Read only with O(target=existing), for the app's column types; otherwise not used (accepted so
        module_defaults can be shared).
    type: str
    required: false
  max_examples:
    description: How many example values to show per column problem.
    type: int
    default: 5
  max_rejects:
    description:
      - Fail when more rows than this would not convert. Unset means report only.
    type: int
  on_error:
    description: The copy's policy, used to word the summary.
    type: str
    default: error
    choices: [error, quarantine]
  integrity_check:
    description: Run C(PRAGMA integrity_check) first.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    details: The module only reads; it runs the same in check mode.
author: sqlite-to-postgres project
"""

EXAMPLES = r"""
- name: Profile the app's database before migrating
  sqlite_pg_profile:
    source: /srv/app/bot.db
    max_rejects: 0
    on_error: quarantine
  register: profile

- name: Show what the operator should know
  ansible.builtin.debug:
    var: profile.summary
"""

RETURN = r"""
read:
  description: Where the source was read and why (the copy reads the same way) - the file's journal mode, C(live) or C(page_copy), and for a
    page copy how long its read lock held the app's writes (the longest of the passes) and its size.
  returned: always
  type: dict
  sample: {journal_mode: delete, way: page_copy, why: "rollback journal (delete): ...", lock_seconds: 0.23,
           bytes: 325201920}
integrity:
  description: Result of PRAGMA integrity_check (C(["ok"]) when sound).
  returned: always
  type: list
  elements: str
tables:
  description: Per table - rows, primary_key, autoincrement, columns (census, problems, examples, formats), would_reject.
  returned: always
  type: dict
orphans:
  description: Orphan rows per foreign key, keyed by a readable description of the key.
  returned: always
  type: dict
would_reject:
  description: Rows that would not convert, over all tables.
  returned: always
  type: int
notes:
  description: What the target model decided (long names cut, foreign keys left out and why) and, with
    O(target=existing), how the tables were matched to the app's.
  returned: always
  type: list
  elements: str
summary:
  description: One line per finding an operator can act on.
  returned: always
  type: list
  elements: str
  sample: ["analyses.tokens_used: 2 value(s): not an integer; they go to _migration_rejects"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sqlite_pg import run as engine
from ansible.module_utils.sqlite_pg.backup import reading_argument_spec
from ansible.module_utils.sqlite_pg.connection import common_argument_spec
from ansible.module_utils.sqlite_pg_module import run


def main():
    spec = common_argument_spec()
    spec["db"] = dict(type="str", required=False)
    spec.update(
        max_examples=dict(type="int", default=5),
        max_rejects=dict(type="int"),
        on_error=dict(type="str", default="error", choices=["error", "quarantine"]),
        integrity_check=dict(type="bool", default=True),
    )
    spec.update(reading_argument_spec())
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    run(module, lambda p: engine.profile(p, max_examples=p["max_examples"], check_integrity=p["integrity_check"],
                                         on_error=p["on_error"], max_rejects=p["max_rejects"],
                                         read_from=p["read_from"], snapshot_dir=p["snapshot_dir"]))


if __name__ == "__main__":
    main()
