"""roles/postgresql templates/pg_hba.conf.j2: with postgresql_tls, `host` rows for other hosts
become `hostssl`; loopback rows and local rows stay as they are."""

from pathlib import Path

import jinja2
import yaml

ROLE = Path(__file__).resolve().parents[2] / "roles" / "postgresql"


def _render(tls, entries):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(ROLE / "templates")), trim_blocks=True)
    env.filters["comment"] = lambda text: "# " + text
    env.filters["bool"] = bool
    local = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["__postgresql_hba_local_addresses"]
    text = env.get_template("pg_hba.conf.j2").render(
        ansible_managed="managed", postgresql_version="17", postgresql_tls=tls, postgresql_hba_entries=entries,
        __postgresql_hba_local_addresses=local)
    return [line.split() for line in text.splitlines() if line and not line.startswith("#")]


ENTRIES = [
    {"type": "local", "database": "all", "user": "all", "method": "peer"},
    {"type": "host", "database": "all", "user": "all", "address": "127.0.0.1/32", "method": "scram-sha-256"},
    {"type": "host", "database": "all", "user": "all", "address": "::1/128", "method": "scram-sha-256"},
    {"type": "host", "database": "app", "user": "app", "address": "samenet", "method": "scram-sha-256"},
    {"type": "host", "database": "app", "user": "app", "address": "10.0.0.0/24", "method": "scram-sha-256"},
    {"type": "hostnossl", "database": "app", "user": "x", "address": "10.0.0.9/32", "method": "reject"},
]


def test_tls_makes_rows_for_other_hosts_hostssl():
    rows = _render(True, ENTRIES)
    assert [r[0] for r in rows] == ["local", "host", "host", "hostssl", "hostssl", "hostnossl"]
    assert rows[3] == ["hostssl", "app", "app", "samenet", "scram-sha-256"]


def test_without_tls_rows_are_written_as_given():
    assert [r[0] for r in _render(False, ENTRIES)] == ["local", "host", "host", "host", "host", "hostnossl"]
