"""fleet_provision: what one db server creates for the app hosts it serves."""

import pytest
from ansible.errors import AnsibleFilterError

from filter_plugins.fleet import FilterModule, fleet_provision


def target(host, db="idea_planner", schema="public", user="planner", password="p", app_user=None):
    return dict(db=db, schema=schema, user=user, password=password, app_user=app_user or user,
                app_password=password, connections=33, server="db1", host="10.0.0.10", port=5432)


def test_a_database_per_host():
    out = fleet_provision([target("a", db="idea_planner_a"), target("b", db="idea_planner_b")])
    assert out["users"] == [dict(name="planner", password="p")]
    assert out["databases"] == [dict(name="idea_planner_a", owner="planner", schema="public"),
                                dict(name="idea_planner_b", owner="planner", schema="public")]
    assert out["connections"] == 66


def test_one_database_a_schema_per_host_and_app_roles():
    out = fleet_provision([target("a", schema="a", app_user="app"), target("b", schema="b", app_user="app")])
    assert [d["schema"] for d in out["databases"]] == ["a", "b"]
    assert {d["name"] for d in out["databases"]} == {"idea_planner"}
    assert [u["name"] for u in out["users"]] == ["planner", "app"]


def test_conflicts_are_refused():
    with pytest.raises(AnsibleFilterError, match="two different passwords"):
        fleet_provision([target("a"), target("b", schema="b", password="other")])
    with pytest.raises(AnsibleFilterError, match="owned by both"):
        fleet_provision([target("a"), target("b", schema="b", user="someone")])
    assert "fleet_provision" in FilterModule().filters()
