# Options shared by the sqlite_pg_* modules, documented once.


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  source:
    description: Path of the SQLite file on the host that runs the module. It is opened read-only.
    type: path
    required: true
  login_host:
    description: Host of the PostgreSQL server. Empty means the local socket.
    type: str
    default: ''
  port:
    description: Port of the PostgreSQL server.
    type: int
    default: 5432
  login_user:
    description: Role to log in as.
    type: str
    default: postgres
  login_password:
    description: Password of O(login_user). Never logged.
    type: str
    default: ''
  login_unix_socket:
    description: Directory of the server's Unix socket; takes precedence over O(login_host).
    type: str
    default: ''
  db:
    description: Target database.
    type: str
    required: true
  ssl_mode:
    description: libpq sslmode. Use C(verify-full) with O(ca_cert) for a server across a network.
    type: str
    default: prefer
    choices: [allow, disable, prefer, require, verify-ca, verify-full]
  ca_cert:
    description: CA certificate file used to check the server's certificate.
    type: path
    aliases: [ssl_rootcert]
  connect_timeout:
    description: Seconds to wait for the server.
    type: int
    default: 10
  schema:
    description: PostgreSQL schema that receives the tables.
    type: str
    default: public
  include_tables:
    description: Only these SQLite tables (all when empty).
    type: list
    elements: str
    default: []
  exclude_tables:
    description: SQLite tables to leave out.
    type: list
    elements: str
    default: []
  timestamp_type:
    description:
      - PostgreSQL type for DATETIME/TIMESTAMP columns. Values are taken as UTC, as SQLite's
        own date functions write them; offsets in the text are folded into UTC.
    type: str
    default: timestamp
    choices: [timestamp, timestamptz]
  nocase:
    description:
      - How a C(COLLATE NOCASE) text column keeps ignoring case. C(citext) (the default) - the citext type
        (C(=), ORDER BY, UNIQUE and LIKE ignore case, as SQLite's do; the extension is created, trusted since
        PostgreSQL 13, or the role is told to ask for it). C(collation) - a case-insensitive ICU collation
        (C(=), ORDER BY, UNIQUE ignore case; but LIKE on the column fails before PostgreSQL 18, so an app
        that searches the column breaks). C(lower_index) - the column compares case-sensitively, only its
        unique keys hold on C(lower()); named in the notes.
    type: str
    default: citext
    choices: [collation, citext, lower_index]
  generated_columns:
    description:
      - C(stored) - a generated column whose expression translates becomes C(GENERATED ALWAYS AS ... STORED)
        (PostgreSQL computes it; it is not copied). C(plain) - every generated column is a plain column
        holding the copied values. An expression that does not translate is always a plain column, named in
        the notes.
    type: str
    default: stored
    choices: [stored, plain]
  column_types:
    description: Per-column type overrides, C(table.column) -> PostgreSQL type.
    type: dict
    default: {}
  interval_units:
    description:
      - What an integer counts in an C(interval) column, C(table.column) -> C(microseconds), C(milliseconds)
        or C(seconds). Without an entry an integer is microseconds (Django's C(DurationField) on SQLite).
      - Date/time text in an C(interval) column is the difference from 1970-01-01 00:00:00 (SQLAlchemy's
        C(Interval) on SQLite); a number written as text is refused (its unit is unknown).
    type: dict
    default: {}
  rename:
    description: Explicit renames, C(table) or C(table.column) -> new name. Names are otherwise kept exactly.
    type: dict
    default: {}
  models:
    description:
      - The app's SQLAlchemy models as C(package.module:Base). Native C(Enum) columns then become
        PostgreSQL ENUM types whose labels are the enum member names (what SQLAlchemy stores in SQLite),
        as C(Base.metadata.create_all) would create them.
      - The module's Python must be able to import the models (and SQLAlchemy).
    type: str
  app_path:
    description: Directory to import O(models) from.
    type: path
  target:
    description:
      - C(create) - this project creates the PostgreSQL schema (M(sqlite_pg_schema)).
      - C(existing) - the app created it (C(Base.metadata.create_all), C(alembic upgrade head)); nothing is
        created, tables and columns are matched by name (exactly, then ignoring case), values are converted
        by the real column types (ENUM labels, uuid, timestamptz, ...), tables only the target has are left
        alone, and tables load parents first by the target's foreign keys.
    type: str
    default: create
    choices: [create, existing]
  exclude_columns:
    description: With O(target=existing), SQLite columns (C(table.column)) to leave out; any other SQLite
      column without a target column is an error.
    type: list
    elements: str
    default: []
  column_defaults:
    description: With O(target=existing), SQL expressions for target-only columns (C(table.column) -> SQL),
      used instead of their defaults during the load (e.g. C(users.uuid) -> C(gen_random_uuid())).
    type: dict
    default: {}
  source_host:
    description:
      - The app host's name as the owner record of the target shows it to humans (the playbooks pass
        C(inventory_hostname)). Default, the host's own name.
      - A target (database and schema) holds one source. It records the source's id (kept inside the
        SQLite file, table C(_s2p_source), so a copied or moved file stays the same source), host and
        path in C(_migration_source). A call that writes refuses, changing nothing, a target another source
        holds or one that holds tables no migration of this source created; reading calls refuse the
        first; see M(sqlite_pg_target).
    type: str
    default: ""
  takeover_from:
    description:
      - Take over a target that another source holds, named by the source id its refusal printed, e.g.
        after that source was decommissioned; or C(unowned) for a target whose tables no recorded source
        claims (an earlier load by an older version). Every table is then copied again.
      - Set it for one host and one run (C(-e), host_vars), never for a whole fleet.
    type: str
    default: ""
  lock_wait:
    description: Seconds a writing call waits for another run that writes to the same target (two
      operators, a stuck run) before it is refused, naming that run.
    type: int
    default: 60
notes:
  - Requires psycopg2 on the host that runs the module.
  - O(timestamp_type), O(nocase), O(generated_columns), O(column_types), O(rename), O(include_tables) and O(exclude_tables) shape the
    target model; give the same values to M(sqlite_pg_schema), M(sqlite_pg_copy) and M(sqlite_pg_verify).
requirements:
  - psycopg2
"""

    # Where the long reads of the source take their rows from (profile, copy, verify).
    READING = r"""
options:
  read_from:
    description:
      - Where this module reads the SQLite file's rows. A read takes one consistent snapshot; in a
        rollback-journal file (SQLite's and SQLAlchemy's default journal mode) a snapshot held for the
        whole read makes every write of the app wait, and past its busy timeout (often 5 s) fail.
      - C(auto) - a WAL file is read in place (its readers never block writers); a rollback-journal file
        is copied under a short read lock (the app's writes wait that long, about 0.3 s per 300 MB) and
        the copy is read; with change capture, what the app writes meanwhile is caught up from the log.
        RV(read) says which way was taken and why.
      - C(live) - read the file itself, e.g. when the app is stopped (no page copy to wait for).
      - C(page_copy) - always read a page copy.
    type: str
    default: auto
    choices: [auto, live, page_copy]
  snapshot_dir:
    description:
      - Directory for the page copy (a private subdirectory, mode 0700, removed after the read; one left by
        a killed run is removed by the next). Needs room for a copy of the file. Default - the system's
        temporary directory.
    type: path
"""
