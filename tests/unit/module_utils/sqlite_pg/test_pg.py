"""Without psycopg2 on the app host the engine still imports, so a module says what to
install instead of failing with a traceback before it starts."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))

PROBE = """
import sys
sys.modules["psycopg2"] = None            # as on a host without python3-psycopg2
sys.path.insert(0, "module_utils")
import sqlite_pg.run, sqlite_pg.cutover, sqlite_pg.profile, sqlite_pg.copy, sqlite_pg.verify, sqlite_pg.copy_back
from sqlite_pg.connection import HAS_PSYCOPG2
print(HAS_PSYCOPG2)
"""


def test_the_engine_imports_without_psycopg2():
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_a_module_without_psycopg2_says_what_to_install(tmp_path):
    """Through ansible-playbook, with an interpreter that cannot import psycopg2."""
    blocked = tmp_path / "blocked" / "psycopg2"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text('raise ImportError("No module named psycopg2")\n')
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\nPYTHONPATH={blocked.parent} exec {sys.executable} "$@"\n')
    python.chmod(0o755)
    (tmp_path / "bot.db").write_bytes(b"")
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "Verify", "sqlite_pg_verify": {"source": str(tmp_path / "bot.db"), "db": "app"}}]}]
    (tmp_path / "play.yml").write_text(json.dumps(play))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    done = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                           "-c", "local", "-e", f"ansible_python_interpreter={python}", str(tmp_path / "play.yml")],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    result = json.loads(done.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert result["failed"] and "psycopg2" in result["msg"] and "unexpected error" not in result["msg"], result
    assert "Traceback" not in result.get("module_stderr", ""), result
