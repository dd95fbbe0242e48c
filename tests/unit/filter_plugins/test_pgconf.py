"""pg_conf_value quoting and pg_settings_changes normalisation (units as PostgreSQL uses them)."""

import pytest

from filter_plugins.pgconf import FilterModule, pg_conf_value, pg_settings_changes, pg_settings_invalid


def row(name, setting, vartype="integer", unit=None, context="user"):
    return {"name": name, "setting": setting, "vartype": vartype, "unit": unit, "context": context}


ROWS = [
    row("shared_buffers", "131072", unit="8kB", context="postmaster"),  # 1GB
    row("work_mem", "5041", unit="kB"),
    row("max_wal_size", "4096", unit="MB", context="sighup"),
    row("log_min_duration_statement", "1000", unit="ms", context="superuser"),
    row("checkpoint_timeout", "300", unit="s", context="sighup"),
    row("random_page_cost", "1.1", vartype="real"),
    row("checkpoint_completion_target", "0.9", vartype="real", context="sighup"),
    row("jit", "on", vartype="bool"),
    row("password_encryption", "scram-sha-256", vartype="enum"),
    row("listen_addresses", "*", vartype="string", context="postmaster"),
    row("shared_preload_libraries", "pg_stat_statements", vartype="string", context="postmaster"),
]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1GB", "'1GB'"), (True, "'on'"), (False, "'off'"), (["a", "b"], "'a,b'"), ("it's", "'it''s'"), (16, "'16'")],
)
def test_pg_conf_value(value, expected):
    assert pg_conf_value(value) == expected


def test_equal_values_in_other_units_are_no_change():
    desired = {
        "shared_buffers": "1GB",
        "work_mem": "5041kB",
        "max_wal_size": "4GB",
        "log_min_duration_statement": "1s",
        "checkpoint_timeout": "5min",
        "random_page_cost": 1.1,
        "checkpoint_completion_target": "0.9",
        "jit": True,
        "password_encryption": "SCRAM-SHA-256",
        "listen_addresses": "*",
        "shared_preload_libraries": ["pg_stat_statements"],
    }
    assert pg_settings_changes(desired, ROWS) == []


def test_changes_carry_context():
    desired = {"shared_buffers": "2GB", "log_min_duration_statement": 2000, "jit": "off", "work_mem": "5041kB"}
    changes = pg_settings_changes(desired, ROWS)
    assert [(c["name"], c["context"]) for c in changes] == [
        ("jit", "user"),
        ("log_min_duration_statement", "superuser"),
        ("shared_buffers", "postmaster"),
    ]
    assert changes[2]["current"] == "131072" and changes[2]["desired"] == "2GB"


def test_removed_names_count_as_changes():
    changes = pg_settings_changes({"work_mem": "5041kB"}, ROWS, removed=["shared_buffers", "work_mem", "x.y"])
    assert [(c["name"], c["context"]) for c in changes] == [("shared_buffers", "postmaster"), ("x.y", "unknown")]


def test_unknown_names_are_not_changes():
    # Custom (prefix.name) settings are not in pg_settings until their library is loaded.
    assert pg_settings_changes({"pg_stat_statements.track": "all"}, ROWS) == []


def test_invalid_values_are_reported():
    rows = [
        {**row("shared_buffers", "16384", unit="8kB", context="postmaster"), "min_val": "16", "max_val": "1073741823"},
        {**row("jit", "on", vartype="bool")},
        {**row("wal_level", "replica", vartype="enum"), "enumvals": ["minimal", "replica", "logical"]},
        {**row("random_page_cost", "4", vartype="real"), "min_val": "0", "max_val": "1.79769e+308"},
    ]
    desired = {"shared_buffers": "lots", "jit": "maybe", "wal_level": "archive", "random_page_cost": "-1"}
    problems = pg_settings_invalid(desired, rows)
    assert [p.split(":")[0] for p in problems] == ["jit", "random_page_cost", "shared_buffers", "wal_level"]
    assert pg_settings_invalid({"shared_buffers": "1GB", "jit": "off", "wal_level": "Logical"}, rows) == []
    # 64kB is below the minimum of 16 * 8kB
    assert pg_settings_invalid({"shared_buffers": "64kB"}, rows) == ["shared_buffers: '64kB' is outside 16..1073741823 (8kB)"]


def test_filter_module():
    assert set(FilterModule().filters()) == {"pg_conf_value", "pg_settings_changes", "pg_settings_invalid"}
