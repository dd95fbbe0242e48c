#!/usr/bin/python
"""Ansible module: copy SQLite rows into PostgreSQL through COPY."""

DOCUMENTATION = r"""
module: sqlite_pg_copy
short_description: Copy a SQLite database's rows into PostgreSQL, fast and without loss
description:
  - Streams each table through PostgreSQL C(COPY) with bounded memory, from one consistent snapshot
    of the source - the file itself in WAL mode, a page copy in a rollback-journal file (see O(read_from)),
    so the app keeps writing either way.
  - Converts each value by the target column's type, as the target's catalog says - 0/1 and spelled
    booleans, ISO 8601 date/time text (offsets folded into UTC) and Unix epochs in seconds or
    milliseconds, JSON text to jsonb, integers beyond int4, text in numeric columns, BLOB or text
    for bytea. CSV quoting is done by SQLite, so backslashes, tabs, quotes, CR/LF and C(\N) arrive intact.
  - A value that cannot be stored (a NUL byte, invalid UTF-8, invalid JSON, text in an integer
    column, an over-long varchar) is handled by O(on_error).
  - Each table is copied in its own transaction and recorded in C(_migration_ledger); an interrupted
    run resumes on rerun with no duplicates and no gaps, and a table whose source row count and
    highest rowid are unchanged since its copy is left alone (C(changed=false)).
  - Identity and serial sequences are set past max(id) and past SQLite's AUTOINCREMENT high-water mark;
    each table is ANALYZEd after its load.
extends_documentation_fragment: [sqlite_pg, sqlite_pg.reading]
options:
  on_error:
    description:
      - C(error) stops at the first value that cannot be stored, naming table, key, column and value;
        nothing of that table is written.
      - C(quarantine) writes the row to C(_migration_rejects) in the target schema (table, key, reason,
        raw values as JSON) and goes on; RV(tables) counts rejects per table and reason.
    type: str
    default: error
    choices: [error, quarantine]
  force:
    description: Copy every table again, even those the ledger says are in sync.
    type: bool
    default: false
  progress_file:
    description:
      - Write the copy's progress there as JSON (per table - rows done and total, rows/s, seconds left),
        at most once a second. Run the task with C(async) and poll the file to show progress.
    type: path
  passes:
    description:
      - While the app still writes - pass again, each time on a new snapshot, until a pass moved at most
        O(max_lag) changed keys or rows, or O(passes) passes ran. With change capture (M(sqlite_pg_capture))
        each pass replays what the app changed during the one before, so passes get shorter.
    type: int
    default: 1
  max_lag:
    description: See O(passes).
    type: int
    default: 0
  prove:
    description:
      - After the last pass, on its snapshot of the source (a capture position P), verify every table in
        full and record in the ledger the tables proven equal at P. M(sqlite_pg_verify) with
        O(sqlite_pg_verify#module:since_proof) then verifies only the rows changed since P - the cutover's
        short path. Needs change capture; costs one more pass (a short catch-up) and one full verification,
        while the app still runs.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details: Reads the ledger and the source's row counts, writes nothing, and reports which tables would be copied.
author: sqlite-to-postgres project
"""

EXAMPLES = r"""
- name: Copy all rows, quarantining what cannot be stored
  sqlite_pg_copy:
    source: /srv/app/bot.db
    db: idea_planner
    login_user: postgres
    login_unix_socket: /var/run/postgresql
    on_error: quarantine
  register: copied

- name: Show per-table rows, rejects and speed
  ansible.builtin.debug:
    var: copied.tables
"""

RETURN = r"""
read:
  description: Where the source was read and why - the file's journal mode, C(live) or C(page_copy), and for a
    page copy how long its read lock held the app's writes (the longest of the passes) and its size.
  returned: always
  type: dict
  sample: {journal_mode: delete, way: page_copy, why: "rollback journal (delete): ...", lock_seconds: 0.23,
           bytes: 325201920}
notes:
  description: With O(target=existing), how tables and columns were matched and what target-only columns get.
  returned: always
  type: list
  elements: str
tables:
  description: Per SQLite table, what happened.
  returned: always
  type: dict
  sample:
    users:
      status: copied
      rows: 50000
      rejected: 0
      bytes: 4200000
      seconds: 0.41
      rows_per_second: 121951
      reasons: {}
rows:
  description: Rows in the target from the selected tables.
  returned: always
  type: int
rejected:
  description: Rows quarantined in C(_migration_rejects).
  returned: always
  type: int
passes:
  description: How many passes ran (see O(passes)).
  returned: always
  type: int
lag:
  description: Changed keys (caught up) and rows (copied or appended) the last pass moved.
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sqlite_pg import run as engine
from ansible.module_utils.sqlite_pg.backup import reading_argument_spec
from ansible.module_utils.sqlite_pg.connection import common_argument_spec
from ansible.module_utils.sqlite_pg_module import run


def main():
    spec = common_argument_spec()
    spec.update(
        on_error=dict(type="str", default="error", choices=["error", "quarantine"]),
        force=dict(type="bool", default=False),
        progress_file=dict(type="path"),
        passes=dict(type="int", default=1),
        max_lag=dict(type="int", default=0),
        prove=dict(type="bool", default=False),
    )
    spec.update(reading_argument_spec())
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    run(module, lambda p: engine.copy(p, on_error=p["on_error"], force=p["force"], check_mode=module.check_mode,
                                      progress_file=p["progress_file"], passes=p["passes"], max_lag=p["max_lag"],
                                      prove=p["prove"], read_from=p["read_from"], snapshot_dir=p["snapshot_dir"]))


if __name__ == "__main__":
    main()
