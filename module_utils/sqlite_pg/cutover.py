"""Cutover's freeze window as one call on the app host: stop the app, the final pass (catch
up, verify the difference since the proof, or everything), point ``DATABASE_URL`` at
PostgreSQL, start the app, check its health and that it left SQLite, record the move.

The call owes nothing to the controller once it has begun: the module runs under Ansible's
``async``, detached from the connection, so a dropped SSH session or a killed
``ansible-playbook`` does not leave the app stopped. Any failure before the move is
recorded puts the app back on SQLite by itself, with whatever it wrote on PostgreSQL brought
back. Each step is journaled in ``cutover.json`` next to ``state.json``; a rerun waits for a
window still open, and finishes or undoes one whose worker died.

``plan`` is check mode; ``apply`` does it. Both return one ``decision``:
``already_moved``, ``cut_over`` (plan) or ``moved``.
"""

import datetime
import fcntl
import json
import os
import subprocess
import time

from . import backup_policy, frozen, run
from .errors import MigrationError, VerifyError

JOURNAL = "cutover.json"
STATE = "state.json"
# A journal left in one of these phases by a worker that died: .env may name PostgreSQL and
# the app may have written there, so the window is undone before it is opened again.
SWITCHED = ("switching", "starting", "checking")


class CutoverError(MigrationError):
    """The cutover failed; ``reverted`` says whether the app is back on SQLite."""


class App:
    """How to stop, start and check the app, from the module's options."""

    def __init__(self, params):
        self.service = params.get("app_service") or ""
        self.stop_command = params.get("app_stop_command") or ""
        self.start_command = params.get("app_start_command") or ""
        self.health_command = params.get("health_command") or ""
        self.health_retries = int(params.get("health_retries") or 0)
        self.health_delay = float(params.get("health_delay") if params.get("health_delay") is not None else 2)
        self.already_stopped = bool(params.get("app_stopped"))
        self.env_file = params["env_file"]

    def stoppable(self):
        return bool(self.service or self.stop_command)

    def stop(self):
        if self.service:
            _command(["systemctl", "stop", self.service], f"stop the service {self.service}")
        if self.stop_command:
            _command(["sh", "-c", self.stop_command], "the app's stop command")

    def start(self):
        if self.service:
            _command(["systemctl", "start", self.service], f"start the service {self.service}")
        if self.start_command:
            _command(["sh", "-c", self.start_command], "the app's start command")

    def healthy(self):
        """True when the health command passes within its retries (or there is none)."""
        if not self.health_command:
            return True
        for attempt in range(self.health_retries + 1):
            if subprocess.run(["sh", "-c", self.health_command], capture_output=True).returncode == 0:
                return True
            if attempt < self.health_retries:
                time.sleep(self.health_delay)
        return False


def _command(argv, what):
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise MigrationError(f"{what} failed (rc {done.returncode}): {(done.stderr or done.stdout).strip()[-500:]}")


def read_json(path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except FileNotFoundError:
        return {}


def write_json(path, data):
    """Atomically, mode 0600 (the state names the previous URL; the journal is the app's)."""
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def env_url(env_file):
    """The DATABASE_URL the environment file names ('' without one)."""
    try:
        with open(env_file) as fh:
            for line in fh:
                if line.startswith("DATABASE_URL="):
                    return line.rstrip("\n")[len("DATABASE_URL="):]
    except FileNotFoundError:
        pass
    return ""


def set_env_url(env_file, url):
    """Point DATABASE_URL at ``url`` in place, every other line kept; the file is written whole, then
    renamed over the old one (a reader never sees half of it), mode 0600."""
    try:
        with open(env_file) as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        lines = []
    at = [i for i, line in enumerate(lines) if line.startswith("DATABASE_URL=")]
    lines = [line for i, line in enumerate(lines) if i not in at[1:]]   # one line, where the first was
    if at:
        lines[at[0]] = f"DATABASE_URL={url}"
    else:
        lines.append(f"DATABASE_URL={url}")
    tmp = f"{env_file}.sqlite_pg.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    os.replace(tmp, env_file)


class _Window:
    """One cutover attempt: what it did so far, so a failure undoes exactly that."""

    def __init__(self, params, app, work_dir):
        self.params, self.app, self.work_dir = params, app, work_dir
        self.journal_path = os.path.join(work_dir, JOURNAL)
        self.journal = {}
        self.warnings = []
        self.seconds = {}   # phase -> seconds it took: where the write downtime goes
        self.since = None

    def note(self, phase, **fields):
        now = time.monotonic()
        if self.since is not None:
            self.seconds[self.journal["phase"]] = round(now - self.since, 3)
        self.since = now
        self.journal.update(fields, phase=phase, pid=os.getpid(), at=time.time(), seconds=self.seconds)
        write_json(self.journal_path, self.journal)

    def previous_url(self):
        url = env_url(self.app.env_file)
        # After an interrupted cutover the file may name PostgreSQL: that is never "previous".
        return url if url.startswith("sqlite") else f"sqlite:///{self.params['source']}"

    def final_pass(self, on_error, since_proof, deadline):
        """Copy what was written since the last pass, verify; copy everything again when a
        table still differs and time allows. Returns (copy, verify, path).

        The app is stopped: the file itself is read (``read_from="live"``), no page copy
        inside the window whatever the journal mode (``backup.plan_reading``)."""
        copied = run.copy(self.params, on_error=on_error, read_from="live")
        try:
            verified = run.verify_all(self.params, orphans=self.params.get("orphans") or "error",
                                      since_proof=since_proof, read_from="live")
            return copied, verified, "final pass"
        except VerifyError as exc:
            differ = sorted(t for t, r in exc.report.items() if not r.get("ok"))
            if time.monotonic() > deadline:
                raise CutoverError(f"the final pass found {', '.join(differ)} differing and the freeze "
                                   f"timeout has passed: no full copy inside this window") from None
        self.warnings.append(f"tables differed after the final pass ({', '.join(differ)}): copied again in full")
        copied = run.copy(self.params, on_error=on_error, force=True, read_from="live")
        verified = run.verify_all(self.params, orphans=self.params.get("orphans") or "error", read_from="live")
        return copied, verified, "full copy"

    def revert(self, previous_url, app_started, env_touched, app_stopped):
        """Back on SQLite: what the app wrote on PostgreSQL comes back into SQLite first."""
        if app_started:
            try:
                self.app.stop()
            except MigrationError as exc:   # not running after all (a worker died mid-start)
                self.warnings.append(f"stopping the app on PostgreSQL: {exc}")
            run.copy_back(self.params, sqlite_untouched=True)
            run.capture(self.params, state="absent", side="postgresql")
        if env_touched:
            set_env_url(self.app.env_file, previous_url)
        if app_stopped and not self.app.already_stopped:
            self.app.start()
            if not self.app.healthy():
                self.warnings.append("the app is back on SQLite, but its health check fails there too: "
                                     "the cause is not the migration")


def _locked(work_dir, wait):
    """An exclusive lock on the window (a rerun waits for a worker still inside it)."""
    fh = open(os.path.join(work_dir, "cutover.lock"), "a")
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fh
        except BlockingIOError:
            if time.monotonic() > deadline:
                fh.close()
                holder = read_json(os.path.join(work_dir, JOURNAL))
                raise CutoverError(f"another cutover of this app is still running (pid {holder.get('pid')}, "
                                   f"phase {holder.get('phase')}): wait for it, then rerun") from None
            time.sleep(0.2)


def plan(params, work_dir):
    """Check mode: what the window would do, nothing written or stopped."""
    app = App(params)
    state = read_json(os.path.join(work_dir, STATE))
    if state.get("migrated"):
        return dict(changed=False, decision="already_moved", state=state)
    gate = backup_policy.require(params.get("backup_policy"))
    _require_a_stop(app)
    copied = run.copy(params, on_error=params.get("on_error") or "error", check_mode=True)
    steps = (["before the stop: catch up and prove each table by what changed since its proof"]
             if params.get("capture") and not app.already_stopped else [])
    steps += ["stop the app" if not app.already_stopped else "(the app is stopped, as stated)",
             "final pass: copy what changed, verify " + ("the difference since the proof" if params.get("capture")
                                                          else "every row"),
             "point DATABASE_URL at PostgreSQL", "start the app", "check its health",
             "check that SQLite gets no more writes", "record the move"]
    journal = read_json(os.path.join(work_dir, JOURNAL))
    if journal.get("phase") in SWITCHED:
        steps.insert(0, f"undo the window a dead worker left in phase {journal['phase']}")
    return dict(changed=True, decision="cut_over", steps=steps, final_copy=copied, warnings=list(gate.warnings))


def _require_a_stop(app):
    if not app.stoppable() and not app.already_stopped:
        raise CutoverError("no way to stop the app's writes: set migration_app_service or "
                           "migration_app_stop_command (and its start), or stop the app yourself and set "
                           "migration_app_stopped: true. A cutover while the app writes could lose writes")


def apply(params, work_dir, record=None, timeout=300, lock_wait=600):
    """Open the window, move, record; on any failure undo it and raise CutoverError."""
    app = App(params)
    os.makedirs(work_dir, mode=0o700, exist_ok=True)
    lock = _locked(work_dir, lock_wait)
    try:
        state_path = os.path.join(work_dir, STATE)
        if read_json(state_path).get("migrated"):
            return dict(changed=False, decision="already_moved", state=read_json(state_path))
        gate = backup_policy.require(params.get("backup_policy"))   # before the app is touched
        _require_a_stop(app)
        window = _Window(params, app, work_dir)
        window.warnings.extend(gate.warnings)
        left = read_json(window.journal_path)
        previous = left.get("previous_url") or window.previous_url()
        if left.get("phase") in SWITCHED:
            # A worker died after touching .env: the app may have written on PostgreSQL.
            window.warnings.append(f"a cutover worker died in phase {left['phase']}: undone before this one")
            window.revert(previous, app_started=True, env_touched=True, app_stopped=False)
            left = dict(left, phase="final_pass", stopped=True, stopped_at=time.time())
        # A worker that died inside the final pass left the app stopped: the window goes on
        # from there (its write downtime counted from that stop).
        resumed = left.get("stopped_at") if left.get("phase") in ("final_pass", "pg_capture") and left.get("stopped") \
            else None
        proof_seconds = None
        if resumed is None and params.get("capture") and not app.already_stopped:
            proof_seconds = roll_proof_forward(params, work_dir)
        return dict(_window(window, previous, record or {}, timeout, resumed), proof_before_stop_seconds=proof_seconds)
    finally:
        lock.close()


def roll_proof_forward(params, work_dir):
    """Before the stop, while the app writes: catch up and prove each table at the log's
    position now, by its difference since its last proof (``verify.prove``; a table without
    a proof is left to the freeze's full verification, as before). The final pass
    inside the freeze is then left with the writes of the last seconds, however long ago the
    load's proof was (the constraints phase alone takes minutes on a large file). Returns the
    seconds it took; the freeze does not wait for it. A rollback-journal file's page copy goes
    to ``work_dir``, as the load's does."""
    started = time.monotonic()
    run.copy(params, on_error=params.get("on_error") or "error", passes=2, max_lag=1000, prove="forward",
             snapshot_dir=work_dir)
    return round(time.monotonic() - started, 3)


def _window(window, previous, record, timeout, resumed_stop):
    params, app = window.params, window.app
    env_touched = app_started = False
    stopped = resumed_stop is not None or app.already_stopped
    deadline = time.monotonic() + timeout
    try:
        window.note("stopping", previous_url=previous, stopped=stopped)
        stopped_at = resumed_stop or time.time()
        if not stopped:
            app.stop()
            stopped = True
        window.note("final_pass", stopped=True, stopped_at=stopped_at)
        pass_started = time.monotonic()
        with frozen.counts():   # the app is stopped: each table counted once on each side
            copied, verified, path = window.final_pass(params.get("on_error") or "error",
                                                       bool(params.get("capture")), deadline)
        final_pass_seconds = round(time.monotonic() - pass_started, 3)
        window.note("pg_capture")
        if params.get("capture"):
            try:
                run.capture(params, state="present", side="postgresql")
            except MigrationError as exc:
                # Without it a rollback compares whole tables: a warning, not a stop.
                window.warnings.append(f"no change capture on PostgreSQL (a rollback compares whole tables): {exc}")
        window.note("switching")
        env_touched = True
        set_env_url(app.env_file, params["database_url"])
        window.note("starting")
        app_started = True
        if not app.already_stopped:
            app.start()
        started_at = time.time()
        window.note("checking", started_at=started_at)
        if not app.healthy():
            raise CutoverError(f"the app's health check failed on PostgreSQL ({app.health_retries + 1} tries)")
        moved_wait = float(params.get("moved_check_seconds") or 0)
        if params.get("capture") and moved_wait > 0:
            run.check_moved(params, wait=moved_wait)
    except Exception as exc:
        reason = str(exc) if isinstance(exc, MigrationError) else f"{type(exc).__name__}: {exc}"
        try:
            window.revert(previous, app_started, env_touched, stopped)
        except Exception as undo:
            window.note("failed", reason=reason, undo=str(undo))
            raise CutoverError(
                f"cutover failed ({reason}), and putting the app back on SQLite failed too: {undo}. "
                + ("The app is stopped and .env names PostgreSQL, which holds every write: fix the cause, then run "
                   "playbooks/rollback.yml (or start the app on PostgreSQL)" if env_touched else
                   "The app is stopped, on SQLite: start it")) from None
        window.note("reverted", reason=reason)
        raise CutoverError(f"{reason}. The app runs on SQLite as before"
                           + ("" if window.app.stoppable() else " (stopped, as you stated)")
                           + ("; " + "; ".join(window.warnings) if window.warnings else "")) from None
    downtime = round(started_at - stopped_at, 3)
    state = dict(record, migrated=True, cutover_at=datetime.datetime.now(datetime.UTC).isoformat(),
                 write_downtime_seconds=downtime, previous_database_url=previous,
                 target=dict(host=params.get("login_host") or "", port=int(params.get("port") or 5432),
                             db=params.get("db"), schema=params.get("schema") or "public"),
                 rows=verified.get("rows"), verified=path, window_seconds=dict(window.seconds))
    write_json(os.path.join(window.work_dir, STATE), state)
    window.note("done", downtime=downtime)
    return dict(changed=True, decision="moved", write_downtime_seconds=downtime, final_pass_seconds=final_pass_seconds,
                seconds=window.seconds, path=path, final_copy=copied, final_verify=verified, state=state, warnings=window.warnings)
