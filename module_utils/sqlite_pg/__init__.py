"""Engine that moves a SQLite database into PostgreSQL.

Importable without Ansible: the modules in ``library/`` are thin wrappers over it.
Files, one concern each:

- ``errors``: typed exceptions the modules turn into ``fail_json`` messages;
- ``connection``: opening SQLite read-only and PostgreSQL from plain options;
- ``introspect``: reading the SQLite schema into plain data classes;
- ``typemap``: declared SQLite type -> PostgreSQL type;
- ``convert``: how each value converts for a PostgreSQL type, as SQLite SQL;
- ``ddl``: planning and applying the PostgreSQL schema;
- ``copy``: streaming rows through COPY with checkpoints and quarantine;
- ``verify``: proving the target holds the source's rows.
"""
