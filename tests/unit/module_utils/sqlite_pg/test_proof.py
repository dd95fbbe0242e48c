"""Prove before the freeze, prove the difference inside it: a copy proven equal to the source
at a capture position P, then only the rows changed after P verified at cutover."""

import pytest

from sqlite_pg import run
from sqlite_pg.errors import VerifyError
from tests.conftest import fetch
from tests.unit.module_utils.sqlite_pg.test_capture import _app, _write

CHANGES = ("UPDATE users SET name = 'renamed' WHERE id = 3",
           "DELETE FROM ideas WHERE id = 41",
           "INSERT INTO users (name) VALUES ('new one')",
           "INSERT INTO ideas VALUES (9001, 51, 'for the new user', 1)",
           "UPDATE ideas SET score = score + 100 WHERE user_id = 7",
           "INSERT INTO tags VALUES (9001, 'z')")


@pytest.fixture
def proven(pg_db, sqlite_path):
    """The app's file with capture, loaded, and its last pass proven (while the app could
    still write); then the app changes rows and the final catch-up replays them."""
    _app(sqlite_path)
    params = dict(pg_db, source=sqlite_path)
    run.capture(params)
    run.schema(params, phase="tables")
    result = run.copy(params, passes=2, prove=True)
    run.schema(params, phase="constraints")
    assert all(t["proof"]["content_ok"] for t in result["tables"].values()), result["tables"]
    assert {t["proof"]["proven_at"] is not None for t in result["tables"].values()} == {True}
    _write(sqlite_path, *CHANGES)
    final = run.copy(params)
    assert {t["status"] for t in final["tables"].values()} <= {"caught_up", "in_sync"}
    return params


def test_a_table_nothing_changed_in_since_an_earlier_pass_is_proven_too(pg_db, sqlite_path):
    """Only users changes between the passes: the other tables are in sync with an older
    capture point, and the proof at P still covers them (else cutover verifies them in full)."""
    _app(sqlite_path)
    params = dict(pg_db, source=sqlite_path)
    run.capture(params)
    run.schema(params, phase="tables")
    run.copy(params)
    run.schema(params, phase="constraints")
    _write(sqlite_path, "UPDATE users SET name = 'renamed' WHERE id = 3")
    result = run.copy(params, prove=True)
    statuses = {name: t["status"] for name, t in result["tables"].items()}
    assert statuses["users"] == "caught_up" and statuses["tags"] == "in_sync", statuses
    assert {name for name, t in result["tables"].items() if t["proof"]["proven_at"] is None} <= {"log"}
    _write(sqlite_path, "UPDATE tags SET tag = 'after P' WHERE idea_id = 20 AND tag = 'a'")
    run.copy(params)
    report = run.verify_all(params, since_proof=True)["tables"]
    assert report["tags"]["path"] == "proof + changes" and report["tags"]["ok"], report["tags"]
    assert report["ideas"]["path"] == "proof + changes" and report["ideas"]["changes"] == 0


def test_the_difference_since_the_proof_is_what_cutover_verifies(proven):
    report = run.verify_all(proven, since_proof=True)["tables"]
    keyed = {"users", "ideas", "tags"}
    assert {name for name, t in report.items() if t["path"] == "proof + changes"} == keyed
    assert report["log"]["path"] == "full"          # no key to go by: verified whole
    assert report["users"]["changes"] == 2 and report["ideas"]["changes"] >= 6
    # The same answer as the full verification.
    full = run.verify_all(proven)["tables"]
    assert {t["path"] for t in full.values()} == {"full"}
    assert all(t["ok"] for t in full.values())


def test_a_changed_row_the_replay_got_wrong_fails_the_short_path(proven):
    fetch(proven, "UPDATE users SET name = 'not what SQLite has' WHERE id = 3; SELECT 1")
    with pytest.raises(VerifyError, match="users: the 2 row\\(s\\) changed since the proof differ") as failed:
        run.verify_all(proven, since_proof=True)
    differs = failed.value.report["users"]["differences"]
    assert differs[0]["key"] == {"id": 3} and differs[0]["columns"]["name"]["target"] == "not what SQLite has"


def test_a_row_lost_outside_the_changes_fails_the_row_count(proven):
    fetch(proven, "DELETE FROM tags WHERE idea_id = 20; SELECT 1")   # never logged: only the count sees it
    with pytest.raises(VerifyError, match="tags: .*unaccounted for"):
        run.verify_all(proven, since_proof=True)


def test_a_gap_in_capture_falls_back_to_the_full_path(proven):
    run.capture(proven, state="absent")   # capture switched off and on: changes may have gone unlogged
    _write(proven["source"], "UPDATE users SET name = 'while capture was off' WHERE id = 5")
    run.capture(proven)
    run.copy(proven)
    report = run.verify_all(proven, since_proof=True)["tables"]
    assert {t["path"] for t in report.values()} == {"full"}
    assert all(t["ok"] for t in report.values())


def test_without_capture_nothing_is_proven_and_verification_is_full(pg_db, sqlite_path):
    _app(sqlite_path)
    params = dict(pg_db, source=sqlite_path)
    run.schema(params, phase="tables")
    result = run.copy(params, prove=True)
    run.schema(params, phase="constraints")
    assert {t["proof"]["proven_at"] for t in result["tables"].values()} == {None}
    assert {t["path"] for t in run.verify_all(params, since_proof=True)["tables"].values()} == {"full"}


def test_the_proof_rolls_forward_by_the_difference(proven):
    """Proven at P, changed and caught up since: a new proof proves each keyed table by the rows
    changed since P (not in full) and moves its proof point, so the freeze verifies only what
    comes after it."""
    rolled = run.copy(proven, prove=True)["tables"]
    for name in ("users", "ideas", "tags"):
        assert rolled[name]["proof"]["path"] == "proof + changes", rolled[name]["proof"]
        assert rolled[name]["proof"]["content_ok"] and rolled[name]["proof"]["proven_at"] is not None
    assert rolled["log"]["proof"]["path"] == "full"   # no key: proven whole, as before
    report = run.verify_all(proven, since_proof=True)["tables"]
    assert report["users"]["path"] == "proof + changes" and report["users"]["changes"] == 0
    _write(proven["source"], "UPDATE users SET name = 'after the new proof' WHERE id = 4")
    run.copy(proven)
    report = run.verify_all(proven, since_proof=True)["tables"]
    assert report["users"]["changes"] == 1 and report["users"]["ok"]


def test_a_difference_that_does_not_hold_does_not_move_the_proof(proven):
    """A changed row PostgreSQL holds wrongly: the rolled proof fails for that table and keeps
    its old point, so cutover still finds the row."""
    fetch(proven, "UPDATE users SET name = 'not what SQLite has' WHERE id = 3; SELECT 1")
    rolled = run.copy(proven, prove=True)["tables"]
    assert not rolled["users"]["proof"]["content_ok"]
    assert rolled["ideas"]["proof"]["content_ok"]
    # users stays proven where it was, before the position the others moved to.
    assert rolled["users"]["proof"]["proven_at"] < rolled["ideas"]["proof"]["proven_at"]
    with pytest.raises(VerifyError, match="users: the 2 row\\(s\\) changed since the proof differ"):
        run.verify_all(proven, since_proof=True)


def test_cutover_rolls_forward_only_what_is_proven(proven):
    """Before the stop, cutover proves again only the tables it can prove by their difference:
    a table without a proof (here one without a key) is not verified in full twice."""
    rolled = run.copy(proven, prove="forward")["tables"]
    assert "proof" not in rolled["log"]
    assert {rolled[n]["proof"]["path"] for n in ("users", "ideas", "tags")} == {"proof + changes"}
