#!/usr/bin/python
"""Ansible module: bring PostgreSQL's rows back into the SQLite file (rollback)."""

DOCUMENTATION = r"""
module: sqlite_pg_copy_back
short_description: Bring what PostgreSQL holds back into the SQLite file, for a rollback
description:
  - Compares each table as M(sqlite_pg_verify) does; a table that differs is rewritten in the SQLite file
    from PostgreSQL, so writes made on PostgreSQL after cutover are not lost.
  - All tables are rewritten in one SQLite transaction; on any error the file is unchanged.
  - Rows that the copy quarantined in C(_migration_rejects) never reached PostgreSQL and stay in SQLite
    as they were.
  - Each value goes back in the spelling its column already uses in the SQLite file, learned from the
    column's most recent values before the rewrite (date/times - separator, fraction, offset form, date only;
    booleans; uuids; decimals kept as text; compact or ASCII-escaped JSON), so the app's exact lookups find
    the rows again. A column whose values disagree, or an empty one, gets SQLAlchemy's spelling
    (C(YYYY-MM-DD HH:MM:SS.ffffff), 0/1). Enums go back as their names.
  - The app must be stopped; the module fails if it cannot lock the file.
extends_documentation_fragment: [sqlite_pg]
options:
  sqlite_untouched:
    description:
      - For a cutover that failed after the app started on PostgreSQL. When the SQLite file's change log
        holds changes after the final copy (the app wrote to SQLite, not following C(DATABASE_URL)) and
        PostgreSQL logged none, SQLite is kept as it is (status C(kept_in_sqlite), key C(sqlite_ahead));
        when both sides logged changes, nothing is changed and the module fails.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details: Compares and reports which tables would be rewritten; writes nothing.
author: sqlite-to-postgres project
"""

EXAMPLES = r"""
- name: Bring the app's data back from PostgreSQL
  sqlite_pg_copy_back:
    source: /srv/app/bot.db
    db: idea_planner
    login_user: planner_user
    login_password: "{{ vault_planner_password }}"
    login_host: db1.example.internal
  register: back
  no_log: true

- name: Show what was rewritten
  ansible.builtin.debug:
    var: back.tables
"""

RETURN = r"""
tables:
  description: Per table - status (in_sync, copied_back, would_copy_back, kept_in_sqlite), rows on each side,
    rows kept.
  returned: always
  type: dict
sqlite_ahead:
  description: With O(sqlite_untouched), the tables the app changed in SQLite after the final copy (table -> changes).
  returned: when SQLite was kept as it is
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sqlite_pg import run as engine
from ansible.module_utils.sqlite_pg.connection import common_argument_spec
from ansible.module_utils.sqlite_pg_module import run


def main():
    spec = common_argument_spec()
    spec["sqlite_untouched"] = dict(type="bool", default=False)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    run(module, lambda p: engine.copy_back(p, check_mode=module.check_mode, sqlite_untouched=p["sqlite_untouched"]))


if __name__ == "__main__":
    main()
