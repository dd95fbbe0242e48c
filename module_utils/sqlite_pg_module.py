"""Glue between AnsibleModule and the engine: the one place that knows both.

Every sqlite_pg_* module builds its spec from ``common_argument_spec()``, then calls
``run(module, fn)``: the engine's typed errors become ``fail_json`` messages, never a
traceback, and nothing that carries the password is echoed.
"""

import traceback

from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.sqlite_pg.connection import HAS_PSYCOPG2
from ansible.module_utils.sqlite_pg.errors import MigrationError, ProfileError, VerifyError, fault, json_safe


def run(module, fn):
    if not HAS_PSYCOPG2 and module.params.get("db"):
        module.fail_json(msg=missing_required_lib("psycopg2"))
    try:
        result = fn(dict(module.params))
    except VerifyError as exc:
        module.fail_json(msg=str(exc), tables=json_safe(exc.report), changed=False)
    except ProfileError as exc:
        module.fail_json(msg=str(exc), changed=False, **json_safe(exc.report))
    except MigrationError as exc:
        module.fail_json(msg=str(exc), changed=False)
    except Exception as exc:  # an engine bug: still a message, with the trace for a bug report
        typed = fault(exc, module.params.get("source"))
        if typed is not None:   # a fault of the environment (lost connection, corrupt file)
            module.fail_json(msg=str(typed), changed=False)
        module.fail_json(msg=f"unexpected error: {type(exc).__name__}: {exc}", exception=traceback.format_exc())
    # Text that is not valid UTF-8 (a key read from SQLite) as its bytes: Ansible refuses it.
    module.exit_json(**json_safe(result))
