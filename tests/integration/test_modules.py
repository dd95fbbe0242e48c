"""The modules as Ansible runs them: through ansible-playbook, AnsiballZ and all.

Each module: check mode reports the change and writes nothing, the real run changes,
a rerun reports nothing changed; failures come back as a message, never a traceback.
"""

import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.conftest import fetch, make_sqlite

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES = ("sqlite_pg_schema", "sqlite_pg_copy", "sqlite_pg_verify", "sqlite_pg_profile", "sqlite_pg_target")
# Every module in library/: ansible-doc must parse each and match its argument spec.
DOCUMENTED = tuple(sorted(name[:-3] for name in os.listdir(os.path.join(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))), "library")) if name.endswith(".py")))


def play(tmp_path, params, tasks, check=False):
    """Run tasks on localhost; returns {task name: result}."""
    conn = {k: v for k, v in params.items()}
    playbook = [{
        "hosts": "localhost", "gather_facts": False, "connection": "local",
        "vars": {"ansible_python_interpreter": sys.executable},
        "module_defaults": {m: conn for m in MODULES},
        "tasks": tasks,
    }]
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump(playbook))
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), str(path)]
    if check:
        argv.append("--check")
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    out = json.loads(proc.stdout)
    return {t["task"]["name"]: t["hosts"]["localhost"] for t in out["plays"][0]["tasks"]}


SOURCE = """
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, created DATETIME);
CREATE TABLE ideas (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), text TEXT);
"""


@pytest.fixture
def source(sqlite_path):
    return make_sqlite(sqlite_path, SOURCE, {
        "users": [(i, f"user {i}", "2024-05-01 10:00:00") for i in range(1, 101)],
        "ideas": [(i, i % 100 + 1, f"idea {i}") for i in range(1, 301)],
    })


STEPS = [
    {"name": "profile", "sqlite_pg_profile": {"max_rejects": 0}},
    {"name": "tables", "sqlite_pg_schema": {}},
    {"name": "copy", "sqlite_pg_copy": {}},
    {"name": "constraints", "sqlite_pg_schema": {"phase": "constraints"}},
    {"name": "verify", "sqlite_pg_verify": {}},
    {"name": "owner", "sqlite_pg_target": {}},
]


def test_check_mode_then_real_run_then_rerun(tmp_path, pg_db, source):
    params = dict(pg_db, source=source)
    checked = play(tmp_path, params, STEPS[:2], check=True)
    assert checked["tables"]["changed"] and 'CREATE TABLE "public"."users"' in checked["tables"]["queries"][0]
    assert fetch(params, "SELECT to_regclass('users')") == [(None,)]

    first = play(tmp_path, params, STEPS)
    # The target is claimed by the first write (tables): "owner" then keeps it.
    assert [first[s["name"]]["changed"] for s in STEPS] == [False, True, True, True, False, False]
    assert first["owner"]["decision"] == "keep" and first["owner"]["owner"]["path"] == source
    assert first["copy"]["tables"]["ideas"]["rows"] == 300
    assert first["verify"]["tables"]["users"]["source_checksum"] == first["verify"]["tables"]["users"]["target_checksum"]

    second = play(tmp_path, params, STEPS)
    assert [second[s["name"]]["changed"] for s in STEPS] == [False, False, False, False, False, False]
    assert second["copy"]["tables"]["ideas"]["status"] == "in_sync"


def test_failures_are_messages_not_tracebacks(tmp_path, pg_db, source):
    params = dict(pg_db, source=source)
    results = play(tmp_path, params, [
        {"name": "missing", "sqlite_pg_schema": {"source": str(tmp_path / "nope.db")}, "ignore_errors": True},
        {"name": "password", "sqlite_pg_copy": {"login_unix_socket": "", "login_host": "127.0.0.1",
                                                "login_password": "not-the-password", "ssl_mode": "disable"},
         "ignore_errors": True},
        {"name": "no tables yet", "sqlite_pg_copy": {}, "ignore_errors": True},
        {"name": "differs", "sqlite_pg_verify": {}, "ignore_errors": True},
    ])
    assert "does not exist" in results["missing"]["msg"]
    assert "password authentication failed" in results["password"]["msg"]
    assert "not-the-password" not in json.dumps(results["password"])
    assert "run phase" in results["no tables yet"]["msg"] or "create it first" in results["no tables yet"]["msg"]
    for result in results.values():
        assert result["failed"] and "Traceback" not in json.dumps(result)


def test_text_that_is_not_utf8_and_a_corrupt_file_reach_the_operator_as_messages(tmp_path, pg_db, sqlite_path):
    """A key that is not valid UTF-8 made Ansible refuse the profile's result ("Refusing to
    deserialize an invalid UTF8 string"); a corrupt file was "unexpected error"."""
    import sqlite3

    make_sqlite(sqlite_path, "CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT); INSERT INTO t VALUES "
                             "(CAST(X'ff41' AS TEXT), 'a'), ('b', 'b');")
    broken = str(tmp_path / "broken.db")
    make_sqlite(broken, "CREATE TABLE z (id INTEGER PRIMARY KEY, v TEXT);", {"z": [(i, "z" * 300) for i in range(3000)]})
    conn = sqlite3.connect(broken)
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = [r[0] for r in conn.execute("SELECT pageno FROM dbstat WHERE name = 'z' AND pagetype = 'leaf'")]
    conn.close()
    with open(broken, "r+b") as fh:
        fh.seek((pages[len(pages) // 2] - 1) * size)
        fh.write(b"\xa5" * size)
    params = dict(pg_db, source=sqlite_path)
    results = play(tmp_path, params, [
        {"name": "profile", "sqlite_pg_profile": {"on_error": "quarantine", "integrity_check": False}},
        {"name": "corrupt", "sqlite_pg_profile": {"source": broken, "integrity_check": False}, "ignore_errors": True},
    ])
    examples = results["profile"]["tables"]["t"]["columns"]["k"]["examples"]
    assert examples[0]["key"] == {"k": {"invalid_utf8_hex": "ff41"}}
    assert results["corrupt"]["failed"] and "is corrupt" in results["corrupt"]["msg"]
    assert "unexpected error" not in results["corrupt"]["msg"] and "backup" in results["corrupt"]["msg"]


def _documented(module):
    out = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-doc"), "-M", "library", "--json",
                          module], cwd=ROOT, capture_output=True, text=True, check=True,
                         env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg")))
    doc = json.loads(out.stdout)[module]
    return doc["doc"], doc["return"]


def _argument_spec(module, monkeypatch):
    """The spec main() passes to AnsibleModule, captured without running the module."""
    import importlib
    import importlib.util

    from ansible.module_utils import basic

    for name in ("", ".connection", ".errors", ".run", ".profile"):
        monkeypatch.setitem(sys.modules, "ansible.module_utils.sqlite_pg" + name,
                            importlib.import_module("sqlite_pg" + name))
    spec_path = os.path.join(ROOT, "module_utils", "sqlite_pg_module.py")
    glue = importlib.util.spec_from_file_location("ansible.module_utils.sqlite_pg_module", spec_path)
    mod = importlib.util.module_from_spec(glue)
    glue.loader.exec_module(mod)
    monkeypatch.setitem(sys.modules, "ansible.module_utils.sqlite_pg_module", mod)

    captured = {}

    class Captured(Exception):
        pass

    def fake_init(self, argument_spec, **_kw):
        captured.update(argument_spec)
        raise Captured

    monkeypatch.setattr(basic.AnsibleModule, "__init__", fake_init)
    spec = importlib.util.spec_from_file_location(module, os.path.join(ROOT, "library", module + ".py"))
    code = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(code)
    with pytest.raises(Captured):
        code.main()
    return captured


@pytest.mark.parametrize("module", DOCUMENTED)
def test_documentation_matches_the_argument_spec(module, monkeypatch):
    doc, returns = _documented(module)
    spec = _argument_spec(module, monkeypatch)
    assert set(doc["options"]) == set(spec)
    for name, option in spec.items():
        documented = doc["options"][name]
        assert documented.get("type", "str") == option.get("type", "str"), name
        assert documented.get("default") == option.get("default"), name
        assert documented.get("choices") == option.get("choices"), name
    assert doc["attributes"]["check_mode"]["support"] == "full"
    assert returns, "RETURN is empty"


def test_return_documents_every_key(tmp_path, pg_db, source):
    params = dict(pg_db, source=source)
    results = play(tmp_path, params, STEPS)
    standard = {"changed", "failed", "invocation", "_ansible_no_log", "action", "warnings", "deprecations"}
    for step in STEPS:
        module = next(k for k in step if k.startswith("sqlite_pg"))
        _doc, returns = _documented(module)
        assert set(results[step["name"]]) - standard <= set(returns), module
