#!/usr/bin/env python3
"""A fleet in one run: N app hosts migrated by ONE ``ansible-playbook playbooks/migrate.yml``
against ONE PostgreSQL, each app writing while it runs (issue 13).

    python bench/fleet.py [--hosts 1,4,16] [--users 2000] [--journal-mode delete|wal] [--forks N] [--serial 100%]
                          [--max-fail-percentage 0] [--max-connections M] [-e KEY=VALUE ...]
                          [--quiet SECONDS] [--keep] [--out FILE] [--json FILE]

For each N in ``--hosts``:

1. a throwaway PostgreSQL cluster (``bench/run.py``'s ``BenchCluster``: durable settings;
   superuser trust on its unix socket, scram-sha-256 over TCP; ``max_connections`` 40 per
   host, at least 100) gets a login role ``fleet`` that owns one database per host,
   ``idea_planner_<host>`` (the fleet default of ``migration_db_name``: ``inventory_hostname``
   lowercased, every character not in ``[a-z0-9_]`` made ``_``; set explicitly per host);
2. N app hosts ``app-01``... (``ansible_connection: local``, the venv's python), each a
   directory with its own copy of a demo ``bot.db`` (``scripts/make_demo_db.py``, ``--users``
   users, built once into ``bench/.cache``), a ``.env`` naming it and a live writer
   (``tests/app/writer.py``) that logs every committed write; the playbook stops and starts
   it with ``migration_app_stop_command`` / ``migration_app_start_command`` (a pid file);
   the generated inventory has no ``db_servers`` (bring your own PostgreSQL);
3. ``ansible-playbook`` runs once, ``-f FORKS`` (default N), ``-e migration_serial=...``,
   ``-e migration_max_fail_percentage=...``, with a small callback plugin (written into the
   run's directory, enabled beside those ``ansible.cfg`` enables) that records when each
   task started and ended on each host;
4. meanwhile a sampler records every 0.5 s the load average, the runnable tasks, the client
   backends (``pg_stat_activity``; the engine's: ``application_name = 'sqlite_pg'``),
   ``sum(numbackends)`` of ``pg_stat_database``, the playbook's worker processes, the
   background copies not finished yet and the writers' CPU; every 0.1 s it looks at each
   writer's log, so pauses between committed writes are measured as the app saw them;
5. after the run each migrated app is left to commit on PostgreSQL, then every writer is
   stopped, and every write it logged must be where the app ended up: in its PostgreSQL
   database (the log COPYed into a temporary table, anti-joined with ``users``), or in its
   bot.db for a host left on SQLite; a writer that died of an exception is reported (e.g.
   ``database is locked``: in a rollback-journal file a read transaction of the migration
   longer than the app's 5 s busy timeout fails the app's commit; ``--journal-mode wal``
   compares with a WAL file, where readers do not block writers);
6. each host's write downtime is read from its ``state.json`` and its report JSON in
   ``migration_report_dir``; the outcome from the fleet report, when the playbook writes one.

It reports the total wall time and per host its wall time, the span of each phase, the time
between its tasks (the controller, the batch's slowest host - the linear strategy runs each
task on every host before the next - and, with fewer forks than hosts, a free fork), the
costliest tasks, what the machine spent (CPU busy from ``/proc/stat``, time some task waited
for a CPU from ``/proc/pressure/cpu``, CPU of PostgreSQL, of the ansible-playbook tree and of
the writers) and what bounded the run (``bounds``). Markdown to stdout and ``--out``.
"""

import argparse
import configparser
import datetime
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run as bench  # noqa: E402  (puts ROOT, module_utils and scripts on sys.path)

from tests.app.control import alive_command, stop_command  # noqa: E402

ROOT = bench.ROOT
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
PYTHON = os.path.join(VENV_BIN, "python") if os.path.exists(os.path.join(VENV_BIN, "python")) else sys.executable
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(PYTHON), "ansible-playbook")
WRITER = os.path.join(ROOT, "tests", "app", "writer.py")
ROLE, PASSWORD = "fleet", "fleet-bench/secret:1"
WRITES_BEFORE = 20           # committed writes each app makes on SQLite before the run, and on PostgreSQL after
SAMPLE_EVERY = 0.1           # seconds between looks at the writers' logs
HEAVY_EVERY = 5              # ... and every this many looks, at PostgreSQL, the load and the processes
GAP_FLOOR = 0.3              # shorter pauses between writes are not recorded
# What preflight budgets per app host with the project's defaults (the app's pool 10 + 20,
# the migration's own 3), with room to spare: the server is sized for it, as roles/postgresql
# sizes a server it provisions (--max-connections to choose).
CONNECTIONS_PER_HOST = 40

# Per-host task timing, as the controller sees it. Written next to the generated inventory
# and enabled through ANSIBLE_CALLBACK_PLUGINS / ANSIBLE_CALLBACKS_ENABLED.
TIMING_PLUGIN = '''\
import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "fleet_timing"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._out = open(os.environ.get("FLEET_TIMING_FILE", os.devnull), "a", buffering=1)
        self._started = {}
        self._play = ""

    def _emit(self, **row):
        self._out.write(json.dumps(row) + "\\n")

    def v2_playbook_on_play_start(self, play):
        self._play = play.get_name()

    def v2_runner_on_start(self, host, task):
        self._started[(host.get_name(), task._uuid)] = time.time()

    def _done(self, result, status):
        host, task, end = result._host.get_name(), result._task, time.time()
        start = self._started.pop((host, task._uuid), end)
        self._emit(host=host, task=task.get_name(), path=task.get_path() or "", play=self._play,
                   start=start, end=end, status=status)

    def v2_runner_on_ok(self, result):
        self._done(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._done(result, "ignored" if ignore_errors else "failed")

    def v2_runner_on_skipped(self, result):
        self._done(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._done(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        for host in sorted(stats.processed):
            self._emit(host=host, stats=stats.summarize(host))
'''

# Which phase a task belongs to: by the role file it comes from; else by its play's name when
# that names one phase; else (state.yml, fleet_record.yml, a play of several phases) the
# phase the host was in.
PHASE_OF_FILE = {"fleet.yml": "preflight", "preflight.yml": "preflight", "backup.yml": "backup", "load.yml": "load",
                 "copy_poll.yml": "load", "app_grants.yml": "load", "cutover.yml": "cutover",
                 "app_stop.yml": "cutover", "app_start.yml": "cutover", "report.yml": "report"}
PHASE_OF_PLAY = {"plan": "preflight", "preflight": "preflight", "backup": "backup", "load": "load",
                 "cut over": "cutover", "cutover": "cutover"}
PHASES = ("preflight", "backup", "load", "cutover", "report")


def phase_of(row, previous):
    """The phase of one task record (see PHASE_OF_FILE and PHASE_OF_PLAY)."""
    base = os.path.basename(row["path"].rsplit(":", 1)[0])
    if base in PHASE_OF_FILE:
        return PHASE_OF_FILE[base]
    named = {phase for word, phase in PHASE_OF_PLAY.items() if word in row["play"].lower()}
    return named.pop() if len(named) == 1 else previous


def log(msg):
    """Progress, on stderr: stdout is the report's."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def db_name(host):
    """The database of one app host: the rule of the fleet default of ``migration_db_name``."""
    return "idea_planner_" + re.sub(r"[^a-z0-9_]", "_", host.lower())


# --- the server and the hosts ---------------------------------------------------------------


def start_cluster(names, max_connections):
    """A throwaway cluster with scram-sha-256 over TCP, the ``fleet`` role and one database
    per host owned by it."""
    cluster = bench.BenchCluster(dict(bench.SERVER_SETTINGS, max_connections=max_connections)).start()
    with open(os.path.join(cluster.datadir, "pg_hba.conf"), "w") as fh:
        fh.write("local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n")
    cluster.sql("SELECT pg_reload_conf()")
    cluster.sql(f"CREATE ROLE {ROLE} LOGIN PASSWORD %s", args=(PASSWORD,))
    for name in names:
        cluster.sql(f'CREATE DATABASE "{db_name(name)}" OWNER {ROLE}')
    return cluster


def template_db(users):
    """The demo ``bot.db`` every host starts from, built once per size into ``bench/.cache``."""
    import make_demo_db

    cache = os.path.join(HERE, ".cache")
    os.makedirs(cache, exist_ok=True)
    path = os.path.join(cache, f"fleet-bot-{users}u.db")
    if not os.path.exists(path):
        log(f"building {path} ({users} users)")
        make_demo_db.build(path, users=users)
    return path


def writer_commands(app_dir):
    """Shell commands that start, stop and check one host's writer, through its pid file
    (``tests/app/control.py``: an init that reaps late, on this machine about every 2 s,
    would otherwise count as downtime)."""
    pidfile = os.path.join(app_dir, "app.pid")
    return dict(
        start=f"nohup {PYTHON} {WRITER} {app_dir} >> {app_dir}/app.out 2>&1 & echo $! > {pidfile}",
        stop=stop_command(pidfile), health=alive_command(pidfile)), pidfile


def make_hosts(work, n, template, journal_mode):
    """N app directories, each with its bot.db (in ``journal_mode``: delete is how
    make_demo_db leaves it, SQLite's default; in wal the migration's reads do not block the
    app's writes), .env and the commands of its writer."""
    hosts = []
    for i in range(1, n + 1):
        name = f"app-{i:02d}"
        app_dir = os.path.join(work, "hosts", name)
        os.makedirs(app_dir)
        shutil.copyfile(template, os.path.join(app_dir, "bot.db"))
        conn = sqlite3.connect(os.path.join(app_dir, "bot.db"))
        try:
            conn.execute(f"PRAGMA journal_mode = {journal_mode}").fetchone()
        finally:
            conn.close()
        with open(os.path.join(app_dir, ".env"), "w") as fh:
            fh.write(f"DATABASE_URL=sqlite:///{app_dir}/bot.db\n")
        commands, pidfile = writer_commands(app_dir)
        hosts.append(dict(name=name, dir=app_dir, db=db_name(name), pidfile=pidfile, commands=commands,
                          log=os.path.join(app_dir, "writes.log")))
    return hosts


def write_inventory(work, hosts, cluster, reports):
    """The generated inventory: app_servers only (no db_servers: bring your own PostgreSQL)."""
    app_servers = {}
    for host in hosts:
        app_servers[host["name"]] = {
            "migration_source": os.path.join(host["dir"], "bot.db"),
            "migration_env_file": os.path.join(host["dir"], ".env"),
            "migration_db_name": host["db"],
            "migration_app_stop_command": f"sh -c '{host['commands']['stop']}'",
            "migration_app_start_command": f"sh -c '{host['commands']['start']}'",
            "migration_health_command": f"sh -c '{host['commands']['health']}'",
        }
    inventory = {"all": {
        "children": {"app_servers": {"hosts": app_servers}, "db_servers": {"hosts": {}}},
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": PYTHON,
                 "postgresql_provision": False,
                 "migration_db_host": "127.0.0.1", "migration_db_port": cluster.port,
                 "migration_db_user": ROLE, "migration_db_password": PASSWORD,
                 "migration_ssl_mode": "disable", "migration_report_dir": reports}}}
    path = os.path.join(work, "inventory.json")   # JSON is YAML: the yaml inventory plugin reads it
    with open(path, "w") as fh:
        json.dump(inventory, fh, indent=1)
    return path


# --- the apps -----------------------------------------------------------------------------------


def start_writer(host):
    """Start the host's writer as the playbook will: detached, its pid in the pid file."""
    subprocess.run(["sh", "-c", host["commands"]["start"]], check=True)


def stop_writer(host, timeout=30):
    """SIGTERM the host's writer and wait until it has exited (or is a zombie)."""
    try:
        with open(host["pidfile"]) as fh:
            pid = int(fh.read())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, 15)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return
        except OSError:
            return
        time.sleep(0.05)


def segments(host):
    """The writer's log, split at each start: [(driver, [telegram_id, ...]), ...]."""
    out = []
    if not os.path.exists(host["log"]):
        return out
    with open(host["log"]) as fh:
        for line in fh.read().splitlines():
            if line.startswith("# start"):
                out.append((line.rsplit("url=", 1)[-1], []))
            elif line and out:
                out[-1][1].append(line)
    return out


def writer_errors(host):
    """How often the host's writer died of an exception (its app.out), and the last one's
    message: a write the app could not make, e.g. ``database is locked`` when a read
    transaction of the migration holds the SQLite file longer than the app's busy timeout."""
    try:
        with open(os.path.join(host["dir"], "app.out"), errors="replace") as fh:
            text = fh.read()
    except OSError:
        return 0, ""
    errors = [line for line in text.splitlines() if re.match(r"^[\w.]+(Error|Exception)\b.*:", line)]
    deaths = (text.count("Traceback (most recent call last)")          # a chained exception is one death
              - text.count("The above exception was the direct cause of the following exception")
              - text.count("During handling of the above exception, another exception occurred"))
    return deaths, (errors[-1][:160] if errors else "")


def wait_for_writes(hosts, more_than, on=None, timeout=60):
    """Until every host's writer, in its latest start (on ``on``, a driver prefix, if given),
    has committed more than ``more_than`` writes. Returns the hosts that did not."""
    deadline = time.monotonic() + timeout
    late = list(hosts)
    while late and time.monotonic() < deadline:
        late = [h for h in late if not (
            (seg := segments(h)) and len(seg[-1][1]) > more_than and (on is None or seg[-1][0].startswith(on)))]
        if late:
            time.sleep(0.2)
    return [h["name"] for h in late]


def check_writes(cluster, host):
    """Every write the app logged must be where the app ends up: a row of ``users`` in the
    host's database once it runs on PostgreSQL (the log COPYed into a temporary table and
    anti-joined), in its bot.db if it still runs on SQLite (cutover failed or never came)."""
    seg = segments(host)
    on = seg[-1][0] if seg else ""
    result = dict(sqlite=sum(len(w) for d, w in seg if d.startswith("sqlite")),
                  postgres=sum(len(w) for d, w in seg if d.startswith("postgresql")),
                  on="PostgreSQL" if on.startswith("postgresql") else "SQLite", lost=None, missing=[])
    if result["on"] == "SQLite":
        conn = sqlite3.connect(f"file:{host['dir']}/bot.db?mode=ro", uri=True)
        try:
            missing = [r[0] for r in conn.execute(
                "SELECT value FROM json_each(?) WHERE NOT EXISTS (SELECT 1 FROM users WHERE telegram_id = value)"
                " ORDER BY 1",
                (json.dumps([t for _, w in seg for t in w]),))]
        finally:
            conn.close()
        result.update(lost=len(missing), missing=missing[:5])
        return result
    conn = cluster.connect(host["db"])
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TEMPORARY TABLE logged (tid text)")
            with open(host["log"]) as fh:
                cur.copy_expert("COPY logged FROM STDIN WITH (FORMAT text) WHERE tid NOT LIKE '#%'", fh)
            cur.execute("SELECT l.tid FROM logged l WHERE NOT EXISTS"
                        " (SELECT 1 FROM users u WHERE u.telegram_id = l.tid) ORDER BY 1")
            missing = [r[0] for r in cur.fetchall()]
    finally:
        conn.close()
    result.update(lost=len(missing), missing=missing[:5])
    return result


# --- measuring ----------------------------------------------------------------------------------


def cpu_jiffies():
    """(busy, total) clock ticks of all CPUs so far (/proc/stat)."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + fields[4]                 # idle + iowait
    total = sum(fields[:8])                      # guest time is already in user/nice
    return total - idle, total


def cpu_pressure():
    """Microseconds so far in which some runnable task waited for a CPU (PSI), or None."""
    try:
        with open("/proc/pressure/cpu") as fh:
            return int(fh.readline().rsplit("total=", 1)[1])
    except (OSError, IndexError, ValueError):
        return None


def processes():
    """{pid: (ppid, cmdline)} of every process."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ")
        except (OSError, IndexError, ValueError):
            continue
        out[int(entry)] = (ppid, cmd)
    return out


class Sampler(threading.Thread):
    """Samples while the fleet runs: writers' logs every 0.1 s (pauses between committed
    writes), and every 0.5 s PostgreSQL's backends, the load, and the playbook's processes."""

    PG_QUERY = """
        SELECT count(*) FILTER (WHERE backend_type = 'client backend'),
               count(*) FILTER (WHERE backend_type = 'client backend' AND state = 'active'),
               count(*) FILTER (WHERE application_name = 'sqlite_pg'),
               (SELECT sum(numbackends) FROM pg_stat_database) - 1,
               (SELECT coalesce(max(c), 0) FROM (SELECT count(*) AS c FROM pg_stat_activity
                 WHERE datname LIKE 'idea_planner%' GROUP BY datname) d)
          FROM pg_stat_activity WHERE pid <> pg_backend_pid()"""

    def __init__(self, cluster, hosts, async_dir):
        super().__init__(daemon=True)
        self.cluster, self.hosts, self.async_dir = cluster, hosts, async_dir
        self.controller = None
        self.samples = []                          # (t, clients, active, engine, numbackends, per_db, load1,
        #                                             runnable, workers, copies)
        self.gaps = {h["name"]: [] for h in hosts}   # [(start, end, restart)]
        self.writer_ticks = {}                     # pid: [CPU ticks at its first sample (0 if started since), last]
        self.error = None
        self._halt = threading.Event()

    def stop(self):
        self._halt.set()
        self.join()

    def _logs(self, state, now):
        """A pause ends when new committed writes appear in a writer's log; it is the restart
        when a ``# start`` line came since the previous write."""
        for host in self.hosts:
            size, last, restarted = state.get(host["name"], (0, now, False))
            try:
                new = os.stat(host["log"]).st_size
            except OSError:
                new = 0
            if new > size:
                with open(host["log"], "rb") as fh:
                    fh.seek(size)
                    chunk = fh.read(new - size)
                restarted = restarted or b"# start" in chunk
                if any(line and not line.startswith(b"#") for line in chunk.split(b"\n")):
                    if now - last >= GAP_FLOOR:
                        self.gaps[host["name"]].append((last, now, restarted))
                    last, restarted = now, False
                size = new
            state[host["name"]] = (size, last, restarted)

    def _heavy(self, cur, now):
        cur.execute(self.PG_QUERY)
        clients, active, engine, backends, per_db = cur.fetchone()
        with open("/proc/loadavg") as fh:
            parts = fh.read().split()
        procs = processes()
        workers = 0
        if self.controller:
            children = {}
            for pid, (ppid, _) in procs.items():
                children.setdefault(ppid, []).append(pid)
            todo = list(children.get(self.controller, []))
            while todo:
                pid = todo.pop()
                todo.extend(children.get(pid, []))
                workers += b"ansible-playbook" in procs[pid][1]
        copies = 0                                 # background jobs (the bulk copies) not finished yet
        for job in os.listdir(self.async_dir) if os.path.isdir(self.async_dir) else []:
            try:
                with open(os.path.join(self.async_dir, job)) as fh:
                    copies += json.load(fh).get("finished") is False
            except (OSError, ValueError):
                continue
        self._writers()
        self.samples.append((now, clients, active, engine, int(backends or 0), per_db, float(parts[0]),
                             int(parts[3].split("/")[0]) - 1, workers, copies))

    def _writers(self):
        """CPU ticks of each writer process (read from the pid files: restarted ones too)."""
        for host in self.hosts:
            try:
                with open(host["pidfile"]) as fh:
                    pid = int(fh.read())
                with open(f"/proc/{pid}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except (OSError, ValueError):
                continue
            ticks = int(fields[11]) + int(fields[12])
            self.writer_ticks.setdefault(pid, [ticks if not self.samples else 0, ticks])[1] = ticks

    def writers_cpu(self):
        """CPU seconds the writers used while sampled."""
        return sum(last - first for first, last in list(self.writer_ticks.values())) / os.sysconf("SC_CLK_TCK")

    def run(self):
        conn = self.cluster.connect()
        state = {}
        tick = 0
        try:
            with conn.cursor() as cur:
                while not self._halt.is_set():
                    now = time.time()
                    self._logs(state, now)
                    if tick % HEAVY_EVERY == 0:
                        self._heavy(cur, now)
                    tick += 1
                    self._halt.wait(SAMPLE_EVERY)
        except Exception as exc:   # the report says the samples stop here, rather than nothing
            self.error = f"sampling stopped at {time.strftime('%H:%M:%S')}: {exc!r}"
        finally:
            conn.close()


# --- the run ------------------------------------------------------------------------------------


def run_playbook(work, inventory, forks, serial, max_fail, extra, sampler):
    """One ansible-playbook run; (rc, wall seconds, CPU seconds of its process tree, output path,
    argv). The timing callback is enabled beside those ansible.cfg enables (migration_fleet)."""
    plugins = os.path.join(work, "callback_plugins")
    os.makedirs(plugins, exist_ok=True)
    with open(os.path.join(plugins, "fleet_timing.py"), "w") as fh:
        fh.write(TIMING_PLUGIN)
    config = configparser.ConfigParser(interpolation=None)
    config.read(os.path.join(ROOT, "ansible.cfg"))
    paths = [os.path.join(ROOT, p) for p in config.get("defaults", "callback_plugins", fallback="").split(":") if p]
    enabled = [c.strip() for c in config.get("defaults", "callbacks_enabled", fallback="").split(",") if c.strip()]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_CALLBACK_PLUGINS=":".join([plugins] + paths),
               ANSIBLE_CALLBACKS_ENABLED=",".join(enabled + ["fleet_timing"]),
               FLEET_TIMING_FILE=os.path.join(work, "timing.jsonl"),
               ANSIBLE_REMOTE_TEMP=os.path.join(work, "ansible-tmp"), ANSIBLE_ASYNC_DIR=os.path.join(work, "async"),
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    argv = [ANSIBLE_PLAYBOOK, "-i", inventory, os.path.join(ROOT, "playbooks", "migrate.yml"), "-f", str(forks),
            "-e", f"migration_serial={serial}", "-e", f"migration_max_fail_percentage={max_fail}"]
    for item in extra:
        argv += ["-e", item]
    out = os.path.join(work, "ansible.out")
    with open(out, "w") as fh:
        start = time.monotonic()
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
        sampler.controller = proc.pid
        _, status, usage = os.wait4(proc.pid, 0)     # rusage of the whole tree it reaped
        wall = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, wall, usage.ru_utime + usage.ru_stime, out, argv


def host_timing(path):
    """Per host from the callback's records: wall (first start to last end), the span of each
    phase, busy (the union of its tasks' intervals), the recap; and per task (play, name,
    file:line) each host's [(seconds, status)], one per run (the copy's polls repeat)."""
    hosts, tasks = {}, {}
    if not os.path.exists(path):
        return hosts, tasks
    phase = {}
    with open(path) as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    for row in rows:
        h = hosts.setdefault(row["host"], dict(intervals=[], phases={}, stats={}, failed=[]))
        if "stats" in row:
            h["stats"] = row["stats"]
            continue
        phase[row["host"]] = phase_of(row, phase.get(row["host"], "preflight"))
        h["intervals"].append((row["start"], row["end"]))
        lo, hi = h["phases"].get(phase[row["host"]], (row["start"], row["end"]))
        h["phases"][phase[row["host"]]] = (min(lo, row["start"]), max(hi, row["end"]))
        if row["status"] in ("failed", "unreachable"):
            h["failed"].append(row["task"])
        runs = tasks.setdefault((row["play"], row["task"], row["path"]), {}).setdefault(row["host"], [])
        runs.append((row["end"] - row["start"], row["status"]))
    for h in hosts.values():
        busy, reach = 0.0, None
        for start, end in sorted(h["intervals"]):
            if reach is None or start > reach:
                busy += end - start
                reach = end
            elif end > reach:
                busy += end - reach
                reach = end
        if h["intervals"]:
            h["first"] = min(s for s, _ in h["intervals"])
            h["wall"] = max(e for _, e in h["intervals"]) - h["first"]
            h["busy"] = busy
    return hosts, tasks


def downtimes(host, reports):
    """write_downtime_seconds of the host from its state.json and from its report JSON."""
    out = dict(state=None, report=None)
    try:
        with open(os.path.join(host["dir"], ".sqlite_pg", "state.json")) as fh:
            out["state"] = float(json.load(fh)["write_downtime_seconds"])
    except (OSError, KeyError, ValueError, TypeError):
        pass
    found = sorted(f for f in os.listdir(reports) if f.startswith(host["name"] + "-") and f.endswith(".json")) \
        if os.path.isdir(reports) else []
    if found:
        with open(os.path.join(reports, found[-1])) as fh:
            report = json.load(fh)
        value = report.get("write_downtime_seconds")
        out["report"] = float(value) if value not in (None, "") else None
        out["final_copy"] = sorted({t.get("status", "?") for t in report.get("final_copy", {}).values()})
    return out


def fleet_report(reports):
    """{host: row} of the fleet report the migration_fleet callback writes, if it did."""
    try:
        with open(os.path.join(reports, "fleet-latest.json")) as fh:
            return {row["host"]: row for row in json.load(fh).get("hosts", [])}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def failure_lines(path, limit=12):
    """The lines of the playbook's output that say what failed."""
    with open(path) as fh:
        lines = [line.rstrip() for line in fh if line.startswith(("fatal:", "failed:")) or "FAILED!" in line
                 or line.lstrip().startswith("msg:")]
    return [line[:400] for line in lines[:limit]]


def host_rows(hosts, cluster, reports, sampler, timing, t0, late):
    """One dict per host: its timing, downtimes, pauses of its writes, and the writes check."""
    fleet = fleet_report(reports)
    rows = []
    for host in hosts:
        t = timing.get(host["name"], {})
        gaps = sampler.gaps[host["name"]]
        restart = [g for g in gaps if g[2] and g[0] >= t0]
        others = [g for g in gaps if g not in restart]
        rows.append(dict(
            name=host["name"], db=host["db"], wall=t.get("wall"), busy=t.get("busy"),
            phases={p: e - s for p, (s, e) in t.get("phases", {}).items()},
            stats=t.get("stats", {}), failed=t.get("failed", []),
            downtime=downtimes(host, reports),
            app_gap=max((e - s for s, e, _ in restart), default=None),
            other_gap=max((e - s for s, e, _ in others), default=None),
            writes=check_writes(cluster, host), late=host["name"] in late, died=writer_errors(host),
            outcome=fleet.get(host["name"], {}).get("outcome"), reason=fleet.get(host["name"], {}).get("reason")))
    return rows


def task_costs(tasks, n):
    """The 8 costliest tasks (per host, all runs summed: median, max, runs per host), and
    per host how many tasks ran and were skipped, with the median time of one that ran."""
    costs = sorted(((statistics.median(sum(d for d, _ in runs) for runs in by_host.values()),
                     max(sum(d for d, _ in runs) for runs in by_host.values()),
                     max(len(runs) for runs in by_host.values()), key[1])
                    for key, by_host in tasks.items()), reverse=True)[:8]
    ran = [d for by_host in tasks.values() for runs in by_host.values() for d, st in runs if st != "skipped"]
    skipped = sum(1 for by_host in tasks.values() for runs in by_host.values() for _, st in runs if st == "skipped")
    return costs, dict(ran=len(ran) / n, skipped=skipped / n, median=statistics.median(ran) if ran else None)


def wait_quiet(limit, below=1.0):
    """Wait up to ``limit`` seconds for the 1-minute load average to fall below ``below``
    (other work on the machine skews every figure here)."""
    deadline = time.monotonic() + limit
    if os.getloadavg()[0] >= below and limit > 0:
        log(f"waiting up to {limit} s for a quiet machine (load {os.getloadavg()[0]:.2f})")
    while os.getloadavg()[0] >= below and time.monotonic() < deadline:
        time.sleep(5)


def run_fleet(n, args, template):
    """Migrate N hosts in one run; everything measured, as a dict."""
    forks = args.forks or n
    wait_quiet(args.quiet)
    loadavg_start = os.getloadavg()
    names = [f"app-{i:02d}" for i in range(1, n + 1)]
    log(f"N={n}: cluster, {n} host(s), forks {forks}, serial {args.serial}")
    max_connections = args.max_connections or max(100, CONNECTIONS_PER_HOST * n + 20)
    cluster = start_cluster(names, max_connections)
    work = tempfile.mkdtemp(prefix=f"s2p-fleet-{n}-")
    hosts = []
    try:
        hosts = make_hosts(work, n, template, args.journal_mode)
        reports = os.path.join(work, "reports")
        inventory = write_inventory(work, hosts, cluster, reports)
        for host in hosts:
            start_writer(host)
        late = wait_for_writes(hosts, WRITES_BEFORE, on="sqlite")
        if late:
            raise RuntimeError(f"writers did not start: {late}")
        cluster.settle()
        server_version = cluster.sql("SHOW server_version")[0][0].split(" ")[0]
        sampler = Sampler(cluster, hosts, os.path.join(work, "async"))
        sampler.start()
        cpu0, psi0, server0, t0 = cpu_jiffies(), cpu_pressure(), cluster.cpu_seconds(), time.time()
        log(f"N={n}: ansible-playbook ...")
        rc, wall, tree_cpu, out, argv = run_playbook(work, inventory, forks, args.serial, args.max_fail_percentage,
                                                     args.extra, sampler)
        cpu1, psi1, server1, t1 = cpu_jiffies(), cpu_pressure(), cluster.cpu_seconds(), time.time()
        writers_cpu = sampler.writers_cpu()
        log(f"N={n}: playbook rc={rc} in {wall:.1f} s; letting the apps write on PostgreSQL")
        moved = [h for h in hosts if downtimes(h, reports)["state"] is not None]
        not_on_pg = wait_for_writes(moved, WRITES_BEFORE, on="postgresql", timeout=60)
        sampler.stop()
        for host in hosts:
            stop_writer(host)
        timing, tasks = host_timing(os.path.join(work, "timing.jsonl"))
        tick = os.sysconf("SC_CLK_TCK")
        window = [s for s in sampler.samples if t0 <= s[0] <= t1]
        per_host = host_rows(hosts, cluster, reports, sampler, timing, t0, not_on_pg)
        slowest, counts = task_costs(tasks, n)
        return dict(
            n=n, forks=forks, serial=args.serial, max_fail=args.max_fail_percentage, rc=rc, wall=wall,
            argv=argv, hosts=per_host, slowest=slowest, sampler_error=sampler.error,
            tasks=counts, failures=failure_lines(out) if rc else [],
            cpu_busy=(cpu1[0] - cpu0[0]) / tick, cpu_total=(cpu1[1] - cpu0[1]) / tick,
            psi=(psi1 - psi0) / 1e6 if psi0 is not None and psi1 is not None else None,
            server_cpu=server1 - server0, tree_cpu=tree_cpu, writers_cpu=writers_cpu, seconds=t1 - t0, ncpu=os.cpu_count(),
            max_connections=max_connections, server_version=server_version,
            peak=dict(clients=max((s[1] for s in window), default=0), active=max((s[2] for s in window), default=0),
                      engine=max((s[3] for s in window), default=0),
                      numbackends=max((s[4] for s in window), default=0),
                      per_db=max((s[5] for s in window), default=0),
                      load1=max((s[6] for s in window), default=0.0),
                      workers=max((s[8] for s in window), default=0),
                      copies=max((s[9] for s in window), default=0)),
            runnable=(statistics.mean(s[7] for s in window) if window else 0.0,
                      max((s[7] for s in window), default=0)),
            loadavg_start=loadavg_start, loadavg_end=os.getloadavg())
    finally:
        for host in hosts:
            stop_writer(host)
        cluster.stop()
        if args.keep:
            log(f"N={n}: kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


# --- the report ---------------------------------------------------------------------------------


def bounds(r):
    """What bounded a run, by these rules: CPU when the cores were at least 85 % busy or a
    task waited for a CPU during at least half the run; forks when fewer forks than hosts
    and every fork was busy at some point; connections at 90 % of max_connections; else
    the tasks themselves: the lockstep of the linear strategy and each task's fixed cost."""
    found = []
    util = r["cpu_busy"] / r["cpu_total"] if r["cpu_total"] else 0
    if util >= 0.85 or (r["psi"] is not None and r["psi"] >= 0.5 * r["seconds"]):
        found.append("CPU")
    if r["forks"] < r["n"] and r["peak"]["workers"] >= r["forks"]:
        found.append("forks")
    if r["peak"]["numbackends"] >= 0.9 * r["max_connections"]:
        found.append("connections")
    return ", ".join(found) or "task latency"


def fmt(x, unit=" s", digits=2):
    return "–" if x is None else f"{x:.{digits}f}{unit}"


def spread(values, unit=" s"):
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return fmt(values[0], unit)
    return f"{fmt(statistics.median(values), unit)} / {fmt(max(values), unit)}"


def render(results, args, machine):
    """The Markdown report."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"Run {now}: `python bench/fleet.py {' '.join(args.argv)}`".rstrip(), "",
             f"Each host: a demo `bot.db` of {args.users:,} users ({args.rows:,} rows, "
             f"{args.size / 1e6:.1f} MB, journal_mode {args.journal_mode}) and a live writer (`tests/app/writer.py`); one PostgreSQL "
             f"{results[0]['server_version'] if results else ''} (throwaway cluster, durable settings, "
             "scram over 127.0.0.1), one database per host. Median / max over the hosts.", "",
             "| hosts | forks | serial | result | total wall | host wall | write downtime (state.json) "
             "| app-seen write gap | writers that died | lost writes | bound |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        ok = sum(1 for h in r["hosts"] if h["stats"].get("failures", 0) == 0 and h["downtime"]["state"] is not None)
        lost = sum(h["writes"]["lost"] or 0 for h in r["hosts"])
        unchecked = sum(1 for h in r["hosts"] if h["writes"]["lost"] is None)
        lines.append(
            f"| {r['n']} | {r['forks']} | {r['serial']} | rc {r['rc']}, {ok}/{r['n']} migrated | {fmt(r['wall'])} "
            f"| {spread([h['wall'] for h in r['hosts']])} | {spread([h['downtime']['state'] for h in r['hosts']])} "
            f"| {spread([h['app_gap'] for h in r['hosts']])} | {sum(1 for h in r['hosts'] if h['died'][0])} "
            f"| {lost}{f' ({unchecked} unchecked)' if unchecked else ''} | {bounds(r)} |")
    lines += ["", "What the machine did while the playbook ran (CPU over all "
              f"{results[0]['ncpu'] if results else ''} cores; peaks sampled every 0.5 s):", "",
              "| hosts | load average before | tasks per host: run (median) / skipped | CPU busy | a task waited for CPU | load 1-min peak | runnable mean / max | PostgreSQL CPU "
              "| ansible-playbook tree CPU | writers' CPU | rest (copies, other) | peak workers / forks | background copies peak | client backends peak "
              "(active; engine) | numbackends peak / max_connections | per-database peak |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        p = r["peak"]
        util = 100 * r["cpu_busy"] / r["cpu_total"] if r["cpu_total"] else 0
        lines.append(
            f"| {r['n']} | {' '.join(f'{x:.2f}' for x in r['loadavg_start'])} | {r['tasks']['ran']:.0f} ({fmt(r['tasks']['median'])}) / {r['tasks']['skipped']:.0f} "
            f"| {r['cpu_busy']:.1f} CPU-s ({util:.0f} %) "
            f"| {fmt(r['psi'], ' s', 1)} of {r['seconds']:.1f} s | {p['load1']:.2f} "
            f"| {r['runnable'][0]:.1f} / {r['runnable'][1]} | {r['server_cpu']:.1f} s | {r['tree_cpu']:.1f} s "
            f"| {r['writers_cpu']:.1f} s | {r['cpu_busy'] - r['server_cpu'] - r['tree_cpu'] - r['writers_cpu']:.1f} s "
            f"| {p['workers']} / {r['forks']} | {p['copies']} | {p['clients']} ({p['active']}; {p['engine']}) "
            f"| {p['numbackends']} / {r['max_connections']} | {p['per_db']} |")
    busy = [f"{r['n']} host(s): load average {r['loadavg_start'][0]:.2f} before the run" for r in results
            if r["loadavg_start"][0] >= 1.0]
    if busy:
        lines += ["", "Note: the machine was not quiet (" + "; ".join(busy) + "): the rest column holds the other "
                  "work's CPU, and every time here is longer than on a quiet machine."]
    for r in results:
        command = " ".join(os.path.relpath(a, ROOT) if a.startswith(ROOT) else
                           ("<run dir>/inventory.json" if a.endswith("inventory.json") else a) for a in r["argv"])
        lines += ["", f"### {r['n']} host(s): per host", "", f"`ANSIBLE_CONFIG=ansible.cfg {command}`", "",
                  "| host | database | on | outcome (fleet report) | recap | wall | preflight | backup | load | cutover | report "
                  "| between its tasks | downtime state.json / report | app-seen gap | longest other pause "
                  "| final pass | writer died of | writes SQLite / PostgreSQL | lost |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for h in r["hosts"]:
            s, w = h["stats"], h["writes"]
            recap = f"ok {s.get('ok', 0)}, changed {s.get('changed', 0)}, failed {s.get('failures', 0)}" if s else "–"
            wait = h["wall"] - h["busy"] if h["wall"] is not None else None
            lost = "–" if w["lost"] is None else (f"**{w['lost']}** {', '.join(w['missing'])}" if w["lost"] else "0")
            lines.append(
                f"| {h['name']} | {h['db']} | {w['on']} | {h['outcome'] or '–'} | {recap} | {fmt(h['wall'])} | "
                + " | ".join(fmt(h["phases"].get(p)) for p in PHASES)
                + f" | {fmt(wait)} | {fmt(h['downtime']['state'])} / {fmt(h['downtime']['report'])} "
                f"| {fmt(h['app_gap'])} | {fmt(h['other_gap'])} | {', '.join(h['downtime'].get('final_copy', [])) or '–'} "
                f"| {(str(h['died'][0]) + 'x ' + h['died'][1].replace('|', '/')) if h['died'][0] else '–'} "
                f"| {w['sqlite']} / {w['postgres']}{' (no write on PostgreSQL)' if h['late'] else ''} | {lost} |")
        lines += ["", "Where a host's time goes: the costliest tasks (per host, all runs of the task summed):", "",
                  "| task | median over hosts | max | runs per host |", "|---|---|---|---|"]
        for median, most, runs, name in r["slowest"]:
            lines.append(f"| {name} | {median:.2f} s | {most:.2f} s | {runs} |")
        if r["sampler_error"]:
            lines += ["", f"Note: {r['sampler_error']} (peaks and pauses after it are missing)."]
        reasons = [f"- {h['name']}: {h['reason']}" for h in r["hosts"] if h.get("reason")]
        if reasons:
            lines += ["", "Why, as the fleet report gives it:", ""] + reasons
        if r["failures"]:
            lines += ["", "The playbook failed:", "", "```"] + r["failures"] + ["```"]
    lines += ["", f"Machine: {machine['nproc']} cores ({machine['cpu']}), {machine['memory']} RAM, {machine['os']}, "
              f"Linux {machine['kernel']}, Python {machine['python']}; load average {machine['loadavg']} at the start.",
              "", "Wall: host = its first task's start to its last task's end, as the controller sees them; "
              "between its tasks = wall minus the union of its tasks' intervals (the controller's own time, waiting "
              "for the other hosts of the batch - the linear strategy runs each task on every host before the next "
              "- and, with fewer forks than hosts, for a fork). Write downtime (state.json) = from before the app is stopped to after it is started again; "
              "app-seen write gap = the longest time without a committed write around the restart, from the "
              "writer's log (includes the writer's own start); longest other pause = the longest such time before "
              "or after it. Lost writes: logged writes not found where the app ended up (its PostgreSQL "
              "database after cutover, its bot.db otherwise). CPU busy from "
              "/proc/stat, waiting for CPU from /proc/pressure/cpu (\"some\"), PostgreSQL CPU of the postmaster "
              "and its children, ansible-playbook tree = the controller, its forks and the modules they waited "
              "for (not the background copies, which detach: they are in the rest, with anything else the machine "
              "ran). Bound: CPU when the cores were 85 % busy or some task waited for a CPU half the run; forks when "
              "fewer forks than hosts were all busy; connections at 90 % of max_connections; else task latency."]
    return "\n".join(lines) + "\n"


# --- main -----------------------------------------------------------------------------------


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hosts", default="1,4,16", help="fleet sizes, comma-separated (default %(default)s)")
    p.add_argument("--users", type=int, default=2000, help="users in each bot.db (x5 ideas, x20 analyses; "
                                                           "default %(default)s)")
    p.add_argument("--journal-mode", default="delete", choices=["delete", "wal"],
                   help="each bot.db's journal mode (default %(default)s, as make_demo_db builds it)")
    p.add_argument("--forks", type=int, default=0, help="ansible-playbook -f (default: the number of hosts)")
    p.add_argument("--serial", default="100%", help="migration_serial, the cutover batch (default %(default)s)")
    p.add_argument("--max-fail-percentage", type=int, default=0, help="migration_max_fail_percentage")
    p.add_argument("--max-connections", type=int, default=0,
                   help=f"the server's max_connections (default: {CONNECTIONS_PER_HOST} per host, at least 100)")
    p.add_argument("-e", "--extra", action="append", default=[], metavar="KEY=VALUE",
                   help="more extra vars for ansible-playbook (repeatable)")
    p.add_argument("--out", help="also write the Markdown report to this file")
    p.add_argument("--json", help="write the raw figures as JSON to this file")
    p.add_argument("--quiet", type=int, default=0, metavar="SECONDS",
                   help="before each fleet, wait up to this long for a 1-minute load average below 1")
    p.add_argument("--keep", action="store_true", help="keep each run's work directory (inventory, logs)")
    args = p.parse_args(argv)
    args.sizes = [int(x) for x in args.hosts.split(",") if x.strip()]
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    args.argv = argv
    template = template_db(args.users)
    _, counts = bench.source_tables(template)
    args.rows, args.size = sum(counts.values()), os.path.getsize(template)
    machine = bench.machine()
    results = []
    for n in args.sizes:
        result = run_fleet(n, args, template)
        results.append(result)
    body = render(results, args, machine)
    print(body)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(body)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(dict(results=results, machine=machine), fh, indent=1, default=str)
    return 0 if all(r["rc"] == 0 and all(h["writes"]["lost"] == 0 for h in r["hosts"]) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
