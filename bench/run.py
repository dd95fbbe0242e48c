#!/usr/bin/env python3
"""Benchmark: this project's copy against pgloader, DuckDB and the piped sqlite3 | psql ceiling.

    python bench/run.py [--rows 1.3M|0.3M|5.2M|small] [--rounds 3] [--tools A,B,C,D]
                        [--scale-series] [--out docs/benchmarks.md] [--json FILE]

In one run, on one throwaway PostgreSQL cluster (fsync on, ``max_wal_size=2GB``, everything
else at PostgreSQL's defaults), it

1. builds the demo ``bot.db`` with ``scripts/make_demo_db.py`` into ``bench/.cache`` (reused
   when present);
2. times, each into a fresh database, alternating A B C D for ``--rounds`` rounds:

   A. this project: ``sqlite_pg.run.schema(phase="tables")``, ``run.copy``,
      ``run.schema(phase="constraints")`` with the modules' default options, in a subprocess;
   B. ``pgloader sqlite:///... postgresql://...`` with its defaults (over the unix socket);
   C. DuckDB 1.4.4 with the ``sqlite`` and ``postgres`` extensions from PyPI:
      ``CREATE TABLE pg.t AS SELECT * FROM s.t`` per table, then the primary keys, unique
      constraints and indexes A creates;
   D. the piped ceiling: tables created beforehand (A's DDL, not timed), then for all tables
      at once ``sqlite3 -csv db 'SELECT ...' | psql -c '\\copy t FROM STDIN CSV'``, then the
      same keys and indexes as C;

3. prints per tool the median / min / max wall time, rows/s, the peak RSS of the client
   processes (``wait4`` rusage; for D the sum over the concurrent sqlite3 and psql
   processes) and the ratios A/B, A/C, A/D; after every run the rows of each table are
   counted in PostgreSQL and a run that lost rows is flagged;
4. times ``sqlite_pg.run.verify_all`` on A's result;
5. with ``--scale-series``, runs A and C at 0.3M, 1.3M and 5.2M rows;
6. writes a Markdown report (machine, PostgreSQL version and settings, exact command) to
   ``--out``: between the ``<!-- bench:begin -->`` / ``<!-- bench:end -->`` markers when the
   file has them, so prose around them survives a rerun.

pgloader (Debian package) and DuckDB (a venv in the cache directory) are installed by the
benchmark when missing; they are not dependencies of the project.
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULE_UTILS = os.path.join(ROOT, "module_utils")
for _p in (ROOT, MODULE_UTILS, os.path.join(ROOT, "scripts")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import psycopg2  # noqa: E402

from sqlite_pg.introspect import CAPTURE_LOG, SOURCE_ID  # noqa: E402
from tests.pg_cluster import Cluster  # noqa: E402

SIZES = {"small": 300, "0.3M": 12_500, "1.3M": 50_000, "5.2M": 200_000}   # users; x5 ideas x4 analyses
SCALE_SERIES = ("0.3M", "1.3M", "5.2M")
TOOLS = {
    "A": "sqlite_pg (this project)",
    "B": "pgloader, defaults",
    "C": "DuckDB CTAS + keys/indexes",
    "D": "sqlite3 -csv \\| psql \\copy (ceiling)",
}
DUCKDB_PACKAGES = ("duckdb==1.4.4", "duckdb-ext-sqlite==1.4.4.*", "duckdb-ext-postgres==1.4.4.*")
# Realistic durability: PostgreSQL's defaults (fsync, synchronous_commit, full_page_writes on,
# shared_buffers 128MB, wal_level replica) except a WAL budget big enough for a bulk load.
SERVER_SETTINGS = {"max_wal_size": "2GB"}
SHOWN_SETTINGS = ("fsync", "synchronous_commit", "full_page_writes", "wal_level", "shared_buffers",
                  "max_wal_size", "checkpoint_timeout", "work_mem", "maintenance_work_mem",
                  "max_parallel_maintenance_workers", "max_worker_processes", "wal_compression")
MARK_BEGIN, MARK_END = "<!-- bench:begin -->", "<!-- bench:end -->"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- the server ---------------------------------------------------------------------------


class BenchCluster(Cluster):
    """tests.pg_cluster.Cluster started with durable settings (its own start() hardcodes
    fsync=off, synchronous_commit=off and full_page_writes=off, fine for tests, not for timing)."""

    def __init__(self, settings=None):
        super().__init__()
        self.settings = dict(SERVER_SETTINGS if settings is None else settings)

    def start(self):
        if self.user:
            import pwd

            pw = pwd.getpwnam(self.user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self._run(f"{self.bindir}/initdb", "-D", self.datadir, "-U", "postgres", "-E", "UTF8",
                  "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=trust")
        opts = f"-p {self.port} -k {self.sockdir} -c listen_addresses=127.0.0.1"
        for key, value in self.settings.items():
            opts += f" -c {key}={value}"
        self._run(f"{self.bindir}/pg_ctl", "-D", self.datadir, "-o", opts, "-l",
                  os.path.join(self.root, "log"), "-w", "start")
        return self

    def connect(self, db="postgres"):
        conn = psycopg2.connect(host=self.sockdir, port=self.port, user="postgres", dbname=db)
        conn.autocommit = True
        return conn

    def sql(self, query, db="postgres", args=None):
        conn = self.connect(db)
        try:
            with conn.cursor() as cur:
                cur.execute(query, args)
                return cur.fetchall() if cur.description else None
        finally:
            conn.close()

    def fresh_db(self, name):
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.sql(f'CREATE DATABASE "{name}"')
        return name

    def drop_db(self, name):
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def cpu_seconds(self):
        """CPU seconds used so far by the server: the postmaster, its live children, and the
        children it has reaped (backends of finished connections, parallel workers)."""
        tick = os.sysconf("SC_CLK_TCK")
        with open(os.path.join(self.datadir, "postmaster.pid")) as fh:
            master = int(fh.readline())
        total = 0
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid, ppid = int(entry), int(fields[1])
            if pid == master:
                total += sum(int(f) for f in fields[11:15])      # utime stime cutime cstime
            elif ppid == master:
                total += int(fields[11]) + int(fields[12])
        return total / tick

    def settle(self):
        """Between runs, untimed: flush dirty buffers so no run pays for the previous one's."""
        self.sql("CHECKPOINT")


# --- the source ---------------------------------------------------------------------------


def source_db(cache, size_name, users):
    import make_demo_db

    path = os.path.join(cache, f"bot-{users}u-{make_demo_db.DEFAULT_IDEAS_PER_USER}i-"
                               f"{make_demo_db.DEFAULT_ANALYSES_PER_IDEA}a.db")
    if not os.path.exists(path):
        log(f"building {path} ({size_name}: {users} users)")
        result = make_demo_db.build(path, users, make_demo_db.DEFAULT_IDEAS_PER_USER,
                                    make_demo_db.DEFAULT_ANALYSES_PER_IDEA, make_demo_db.DEFAULT_SEED)
        log(f"built in {result['seconds']:.1f} s: {result['counts']}")
    return path


def source_tables(path):
    """{table: [columns]} and {table: rows} of the SQLite file: the app's tables, not the
    engine's own (the owner record and the change log a run leaves in the file)."""
    conn = sqlite3.connect(path)
    try:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND name NOT IN (?, ?) ORDER BY rowid", (SOURCE_ID, CAPTURE_LOG))]
        columns = {t: [r[1] for r in conn.execute(f'PRAGMA table_info("{t}")')] for t in names}
        counts = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in names}
    finally:
        conn.close()
    return columns, counts


# --- measuring ----------------------------------------------------------------------------


GNU_TIME = "/usr/bin/time"


def ensure_time(install=True):
    """GNU time launches every client: a process forked straight from this (large) Python
    process would report this process's RSS as its own peak (Linux keeps the pre-exec high-water
    mark in ru_maxrss), one forked from ``time`` starts from ~1 MB."""
    if os.access(GNU_TIME, os.X_OK):
        return True
    if install:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-q", "time"], env=env, capture_output=True)
    return os.access(GNU_TIME, os.X_OK)


class Proc:
    """A started client process whose stdout/stderr go to files; wait() reads its peak RSS."""

    use_time = True

    def __init__(self, argv, workdir, tag, stdin=None, stdout=None, env=None):
        self.tag = tag
        self.out_path = os.path.join(workdir, f"{tag}.out")
        self.err_path = os.path.join(workdir, f"{tag}.err")
        self.rss_path = os.path.join(workdir, f"{tag}.rss")
        self.err = open(self.err_path, "wb")
        self.out = None
        if stdout is None:
            self.out = open(self.out_path, "wb")
            stdout = self.out
        if self.use_time:
            argv = [GNU_TIME, "-f", "%M %U %S", "-o", self.rss_path, *argv]
        self.popen = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=self.err, env=env)
        self.returncode = None
        self.maxrss_kb = 0
        self.cpu = 0.0

    def wait(self):
        _pid, status, usage = os.wait4(self.popen.pid, 0)
        self.returncode = self.popen.returncode = os.waitstatus_to_exitcode(status)
        self.maxrss_kb = usage.ru_maxrss
        self.cpu = usage.ru_utime + usage.ru_stime     # includes the waited-for grandchild under time
        if self.use_time:
            with open(self.rss_path) as fh:
                last = (fh.read().strip().splitlines() or [""])[-1].split()
            self.maxrss_kb = int(last[0]) if len(last) == 3 and last[0].isdigit() else 0
        for fh in (self.out, self.err):
            if fh:
                fh.close()
        return self

    def stdout_text(self):
        with open(self.out_path, errors="replace") as fh:
            return fh.read()

    def stderr_text(self):
        with open(self.err_path, errors="replace") as fh:
            return fh.read()


def _check(proc, what):
    if proc.returncode != 0:
        tail = (proc.stderr_text() or (proc.stdout_text() if proc.out_path else ""))[-3000:]
        raise RuntimeError(f"{what} exited with {proc.returncode}:\n{tail}")


# --- A: this project ----------------------------------------------------------------------

A_CODE = r"""
import json, sys, time
t0 = time.monotonic()
sys.path.insert(0, sys.argv[1])
from sqlite_pg import run
params = json.loads(sys.argv[2])
t = [time.monotonic()]
run.schema(params, phase="tables"); t.append(time.monotonic())
res = run.copy(params); t.append(time.monotonic())
run.schema(params, phase="constraints"); t.append(time.monotonic())
print(json.dumps(dict(
    phases=dict(imports=t[0] - t0, schema_tables=t[1] - t[0], copy=t[2] - t[1], constraints=t[3] - t[2]),
    rows=res["rows"], rejected=res["rejected"],
    tables={k: dict(rows=v["rows"], seconds=v["seconds"]) for k, v in res["tables"].items()})))
"""

VERIFY_CODE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from sqlite_pg import run
params = json.loads(sys.argv[2])
t0 = time.monotonic()
res = run.verify_all(params)
print(json.dumps(dict(seconds=time.monotonic() - t0, rows=res["rows"],
                      ok=all(r["ok"] for r in res["tables"].values()))))
"""


def params_for(ctx, db):
    """The options an Ansible task with only the connection set would pass: every module
    default from the engine's argument spec (as playbooks/migrate.yml leaves them)."""
    from sqlite_pg.connection import common_argument_spec

    params = {k: v.get("default") for k, v in common_argument_spec().items()}
    params.update(source=ctx["source"], login_unix_socket=ctx["cluster"].sockdir, port=ctx["cluster"].port,
                  login_user="postgres", db=db)
    return params


def run_a(ctx, db):
    argv = [sys.executable, "-c", A_CODE, MODULE_UTILS, json.dumps(params_for(ctx, db))]
    start = time.monotonic()
    proc = Proc(argv, ctx["work"], "A").wait()
    wall = time.monotonic() - start
    _check(proc, "A (sqlite_pg)")
    detail = json.loads(proc.stdout_text().strip().splitlines()[-1])
    return dict(wall=wall, rss_kb=proc.maxrss_kb, cpu=proc.cpu, detail=detail)


def run_verify(ctx, db):
    argv = [sys.executable, "-c", VERIFY_CODE, MODULE_UTILS, json.dumps(params_for(ctx, db))]
    start = time.monotonic()
    proc = Proc(argv, ctx["work"], "verify").wait()
    wall = time.monotonic() - start
    _check(proc, "verify_all")
    detail = json.loads(proc.stdout_text().strip().splitlines()[-1])
    return dict(wall=wall, rss_kb=proc.maxrss_kb, detail=detail)


def prepare_ddl(ctx):
    """A's DDL, read from a scratch database (not timed): the tables phase as applied, the
    constraints phase as planned. C and D get the same keys and indexes from it."""
    from sqlite_pg import run

    cluster = ctx["cluster"]
    db = cluster.fresh_db("bench_prep")
    params = params_for(ctx, db)
    tables = run.schema(params, phase="tables")["queries"]
    planned = run.schema(params, phase="constraints", check_mode=True)["queries"]
    cluster.drop_db(db)
    fks = [q for q in planned if "FOREIGN KEY" in q]
    keys = [q for q in planned if "FOREIGN KEY" not in q]
    return dict(tables=tables, keys=keys, fks=fks)


# --- B: pgloader --------------------------------------------------------------------------


def ensure_pgloader(install=True):
    if shutil.which("pgloader"):
        return shutil.which("pgloader")
    if not install:
        raise RuntimeError("pgloader is not installed (apt-get install -y pgloader)")
    log("installing pgloader (apt-get install -y pgloader)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-q", "pgloader"]
    if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=True)
        subprocess.run(cmd, env=env, capture_output=True, check=True)
    return shutil.which("pgloader")


def run_b(ctx, db):
    cluster = ctx["cluster"]
    target = f"postgresql://postgres@unix:{cluster.sockdir}:{cluster.port}/{db}"
    rootdir = os.path.join(ctx["work"], "pgloader")
    argv = [ctx["pgloader"], "--root-dir", rootdir, f"sqlite://{ctx['source']}", target]
    start = time.monotonic()
    proc = Proc(argv, ctx["work"], "B").wait()
    wall = time.monotonic() - start
    _check(proc, "pgloader")
    text = proc.stdout_text() + proc.stderr_text()
    errors = [line for line in text.splitlines() if " ERROR " in line or "FATAL" in line]
    return dict(wall=wall, rss_kb=proc.maxrss_kb, cpu=proc.cpu, detail=dict(errors=errors[:5]))


# --- C: DuckDB ----------------------------------------------------------------------------

C_CODE = r"""
import json, sys, time
t0 = time.monotonic()
import duckdb
cfg = json.loads(sys.argv[1])
con = duckdb.connect()
def lit(x):
    return "'" + x.replace("'", "''") + "'"
con.execute(f"SET extension_directory = {lit(cfg['extension_directory'])}")
con.execute("LOAD sqlite")
con.execute("LOAD postgres")
con.execute(f"ATTACH {lit(cfg['source'])} AS s (TYPE sqlite, READ_ONLY)")
con.execute(f"ATTACH {lit(cfg['dsn'])} AS pg (TYPE postgres)")
t1 = time.monotonic()
for table in cfg["tables"]:
    con.execute(f'CREATE TABLE pg.public."{table}" AS SELECT * FROM s."{table}"')
t2 = time.monotonic()
for statement in cfg["keys"]:
    con.execute(f"CALL postgres_execute('pg', {lit(statement)})")
t3 = time.monotonic()
print(json.dumps(dict(phases=dict(start=t1 - t0, ctas=t2 - t1, keys=t3 - t2), duckdb=duckdb.__version__)))
"""


def ensure_duckdb(cache, install=True):
    venv = os.path.join(cache, "duckdb-venv")
    python = os.path.join(venv, "bin", "python")
    probe = ("import duckdb, os, sysconfig; "
             "print(os.path.join(sysconfig.get_paths()['purelib'], 'duckdb_ext', 'extensions'))")

    def found():
        if not os.path.exists(python):
            return None
        res = subprocess.run([python, "-c", probe], capture_output=True, text=True)
        ext = res.stdout.strip()
        if res.returncode == 0 and os.path.isdir(ext) and any(
                f.startswith(("sqlite", "postgres")) for _d, _s, files in os.walk(ext) for f in files):
            return ext
        return None

    ext = found()
    if ext is None:
        if not install:
            raise RuntimeError(f"DuckDB venv missing: python -m venv {venv}; pip install {' '.join(DUCKDB_PACKAGES)}")
        log(f"installing {', '.join(DUCKDB_PACKAGES)} into {venv}")
        subprocess.run([sys.executable, "-m", "venv", "--clear", venv], check=True, capture_output=True)
        subprocess.run([python, "-m", "pip", "install", "-q", *DUCKDB_PACKAGES], check=True, capture_output=True)
        ext = found()
        if ext is None:
            raise RuntimeError("DuckDB installed but its extensions folder was not found")
    return dict(python=python, extension_directory=ext)


def run_c(ctx, db):
    cluster = ctx["cluster"]
    cfg = dict(extension_directory=ctx["duckdb"]["extension_directory"], source=ctx["source"],
               dsn=f"host={cluster.sockdir} port={cluster.port} user=postgres dbname={db}",
               tables=list(ctx["columns"]), keys=ctx["ddl"]["keys"] + (ctx["ddl"]["fks"] if ctx["peer_fks"] else []))
    argv = [ctx["duckdb"]["python"], "-c", C_CODE, json.dumps(cfg)]
    start = time.monotonic()
    proc = Proc(argv, ctx["work"], "C").wait()
    wall = time.monotonic() - start
    _check(proc, "DuckDB")
    return dict(wall=wall, rss_kb=proc.maxrss_kb, cpu=proc.cpu, detail=json.loads(proc.stdout_text().strip().splitlines()[-1]))


# --- D: sqlite3 | psql --------------------------------------------------------------------


def _qi(name):
    return '"' + name.replace('"', '""') + '"'


def run_d(ctx, db):
    cluster = ctx["cluster"]
    conn = cluster.connect(db)        # tables beforehand, not timed
    with conn.cursor() as cur:
        for statement in ctx["ddl"]["tables"]:
            cur.execute(statement)
    conn.close()
    psql = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", cluster.sockdir, "-p", str(cluster.port),
            "-U", "postgres", "-d", db]
    start = time.monotonic()
    procs = []
    for table, cols in ctx["columns"].items():
        select = f"SELECT {', '.join(_qi(c) for c in cols)} FROM {_qi(table)}"
        reader = Proc(["sqlite3", "-csv", "-readonly", ctx["source"], select], ctx["work"], f"D-sqlite3-{table}",
                      stdout=subprocess.PIPE)
        copy = f"\\copy public.{_qi(table)} ({', '.join(_qi(c) for c in cols)}) FROM STDIN WITH (FORMAT csv)"
        writer = Proc(psql + ["-c", copy], ctx["work"], f"D-psql-{table}", stdin=reader.popen.stdout)
        reader.popen.stdout.close()
        procs += [reader, writer]
    for proc in procs:
        proc.wait()
    t_copy = time.monotonic() - start
    for proc in procs:
        _check(proc, proc.tag)
    copy_rss = sum(p.maxrss_kb for p in procs)
    keys = ctx["ddl"]["keys"] + (ctx["ddl"]["fks"] if ctx["peer_fks"] else [])
    script = os.path.join(ctx["work"], "D-keys.sql")
    with open(script, "w") as fh:
        fh.write("".join(s + ";\n" for s in keys))
    ddl = Proc(psql + ["-1", "-f", script], ctx["work"], "D-psql-keys").wait()
    wall = time.monotonic() - start
    _check(ddl, "psql (keys)")
    return dict(wall=wall, rss_kb=max(copy_rss, ddl.maxrss_kb), cpu=sum(p.cpu for p in procs) + ddl.cpu,
                detail=dict(phases=dict(copy=t_copy, keys=wall - t_copy)))


RUNNERS = {"A": run_a, "B": run_b, "C": run_c, "D": run_d}


# --- counting -----------------------------------------------------------------------------


def target_counts(cluster, db, tables):
    """{table: rows} in PostgreSQL, the table looked up in any schema (pgloader may choose one);
    None for a table that is not there."""
    conn = cluster.connect(db)
    out = {}
    try:
        with conn.cursor() as cur:
            for table in tables:
                cur.execute("""SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                WHERE lower(c.relname) = lower(%s) AND c.relkind IN ('r', 'p')
                                  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                                ORDER BY n.nspname = 'public' DESC LIMIT 1""", (table,))
                row = cur.fetchone()
                if row is None:
                    out[table] = None
                    continue
                cur.execute(f"SELECT count(*) FROM {_qi(row[0])}.{_qi(row[1])}")
                out[table] = cur.fetchone()[0]
    finally:
        conn.close()
    return out


def timed_run(ctx, tool, db, keep=False):
    cluster = ctx["cluster"]
    cluster.fresh_db(db)
    cluster.settle()
    cpu0 = cluster.cpu_seconds()
    try:
        result = RUNNERS[tool](ctx, db)
        result["ok"] = True
        result["server_cpu"] = cluster.cpu_seconds() - cpu0
    except Exception as exc:  # a failed run is reported, the benchmark goes on
        result = dict(wall=None, rss_kb=None, detail=dict(error=str(exc)[-2000:]), ok=False)
    result["counts"] = target_counts(cluster, db, ctx["counts"])
    result["rows_match"] = result["counts"] == ctx["counts"]
    if not keep:
        cluster.drop_db(db)
    lost = {t: (n, ctx["counts"][t]) for t, n in result["counts"].items() if n != ctx["counts"][t]}
    status = "rows ok" if not lost else f"ROWS DIFFER {lost}"
    wall = f"{result['wall']:.2f} s" if result["wall"] is not None else "FAILED"
    rss = f"{result['rss_kb'] / 1024:.0f} MB" if result["rss_kb"] is not None else "-"
    log(f"{tool} {db}: {wall}, peak client RSS {rss}, counts {result['counts']} ({status})"
        + ("" if result["ok"] else f"\n    error: {result['detail']['error'][-600:]}"))
    return result


# --- summary and report -------------------------------------------------------------------


def summarize(runs, total_rows):
    walls = [r["wall"] for r in runs if r["ok"]]
    rss = [r["rss_kb"] / 1024 for r in runs if r["ok"]]
    if not walls:
        return dict(ok_runs=0, runs=len(runs), rows_match=False)
    med = statistics.median(walls)
    return dict(median=med, min=min(walls), max=max(walls), rows_per_s=total_rows / med,
                rss_min=min(rss), rss_max=max(rss), ok_runs=len(walls), runs=len(runs),
                client_cpu=statistics.median(r["cpu"] for r in runs if r["ok"]),
                server_cpu=statistics.median(r["server_cpu"] for r in runs if r["ok"]),
                rows_match=all(r["rows_match"] for r in runs))


def machine():
    def cmd(*argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    cpu = ""
    for line in cmd("lscpu").splitlines():
        if line.startswith("Model name:"):
            cpu = line.split(":", 1)[1].strip()
    mem = ""
    for line in cmd("free", "-g").splitlines():
        if line.startswith("Mem:"):
            mem = f"{line.split()[1]} GiB"
    return dict(loadavg=" ".join(open("/proc/loadavg").read().split()[:3]), nproc=cmd("nproc"), cpu=cpu, memory=mem, kernel=platform.release(),
                os=(cmd("sh", "-c", ". /etc/os-release; echo $PRETTY_NAME")),
                python=platform.python_version(), sqlite3=cmd("sqlite3", "--version").split(" ")[0],
                psql=cmd("psql", "--version"))


def fmt_s(x):
    return "–" if x is None else f"{x:.2f} s"


def fmt_rss(lo, hi):
    return f"{hi:.0f} MB" if round(lo) == round(hi) else f"{lo:.0f}–{hi:.0f} MB"


def ratio(a, b):
    if not a or not b or a.get("median") is None or b.get("median") is None:
        return "–"
    return f"{a['median'] / b['median']:.2f}"


def render(report):
    lines = []
    m, pg = report["machine"], report["postgres"]
    total = report["total_rows"]
    lines.append(f"Run {report['started']} UTC, {report['size']} ({total:,} rows: "
                 + ", ".join(f"{t} {n:,}" for t, n in report["counts"].items())
                 + f"; SQLite file {report['source_mb']:.0f} MB), {report['rounds']} round(s), "
                 f"tools run in the order {' '.join(report['tools'])} in every round, each into a fresh database.")
    lines.append("")
    lines.append(f"Command: `{report['command']}`")
    lines.append("")
    lines.append("| tool | median wall | min | max | rows/s | peak client RSS | client CPU | server CPU | rows "
                 "| A/tool |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    a = report["summary"].get("A")
    for tool in report["tools"]:
        s = report["summary"][tool]
        if not s.get("ok_runs"):
            lines.append(f"| {tool}) {TOOLS[tool]} | FAILED | | | | | | | "
                         f"{'ok' if s.get('rows_match') else '**ROWS LOST**'} | |")
            continue
        rows = "ok" if s["rows_match"] else "**ROWS LOST / DIFFER**"
        if s["ok_runs"] < s["runs"]:
            rows += f" ({s['runs'] - s['ok_runs']} run(s) failed)"
        lines.append(f"| {tool}) {TOOLS[tool]} | {fmt_s(s['median'])} | {fmt_s(s['min'])} | {fmt_s(s['max'])} | "
                     f"{s['rows_per_s']:,.0f} | {fmt_rss(s['rss_min'], s['rss_max'])} | {fmt_s(s['client_cpu'])} | "
                     f"{fmt_s(s['server_cpu'])} | {rows} | {'–' if tool == 'A' else ratio(a, s)} |")
    lines.append("")
    lines.append("Per round (wall seconds):")
    lines.append("")
    lines.append("| tool | " + " | ".join(f"round {i + 1}" for i in range(report["rounds"])) + " |")
    lines.append("|---|" + "---|" * report["rounds"])
    for tool in report["tools"]:
        cells = [fmt_s(r["wall"]) if r["ok"] else "failed" for r in report["runs"][tool]]
        lines.append(f"| {tool} | " + " | ".join(cells) + " |")
    if "A" in report["runs"]:
        lines.append("")
        lines.append("A's phases (median over rounds, inside the subprocess): "
                     + ", ".join(f"{k} {v:.2f} s" for k, v in report["a_phases"].items()) + ".")
    if report.get("verify"):
        v = report["verify"]
        a_med = a["median"] if a and a.get("median") else None
        lines.append("")
        lines.append(f"`sqlite_pg.run.verify_all` on A's result: {fmt_s(v['wall'])} wall "
                     f"({v['detail']['rows']:,} rows, ok={v['detail']['ok']}), peak RSS "
                     f"{v['rss_kb'] / 1024:.0f} MB"
                     + (f"; verify / copy (A median) = {v['wall'] / a_med:.2f}." if a_med else "."))
    if report.get("scale"):
        lines.append("")
        lines.append("Scale series (A and C, median of the runs at each size):")
        lines.append("")
        lines.append("| size | rows | tool | wall | rows/s | peak client RSS | client CPU | server CPU | rows |")
        lines.append("|---|---|---|---|---|---|---|---|---|")
        for entry in report["scale"]:
            for tool, s in entry["summary"].items():
                if not s.get("ok_runs"):
                    lines.append(f"| {entry['size']} | {entry['total_rows']:,} | {tool} | FAILED | | | | | |")
                    continue
                lines.append(f"| {entry['size']} | {entry['total_rows']:,} | {tool} | {fmt_s(s['median'])} | "
                             f"{s['rows_per_s']:,.0f} | {fmt_rss(s['rss_min'], s['rss_max'])} | "
                             f"{fmt_s(s['client_cpu'])} | {fmt_s(s['server_cpu'])} | "
                             f"{'ok' if s['rows_match'] else '**ROWS DIFFER**'} |")
    lines.append("")
    lines.append("Machine: " + f"{m['nproc']} cores ({m['cpu'] or 'unknown CPU'}), {m['memory']} RAM, "
                 f"{m['os']}, Linux {m['kernel']}, Python {m['python']}, sqlite3 {m['sqlite3']}; load average "
                 f"{report['loadavg_start']} at the start, {m['loadavg']} at the end (1/5/15 min).")
    lines.append("")
    lines.append(f"PostgreSQL: {pg['version']}, a throwaway cluster (initdb, C.UTF-8) on the same machine, "
                 "clients over the unix socket. Settings: "
                 + ", ".join(f"`{k}={v}`" for k, v in pg["settings"].items())
                 + " (only `max_wal_size` differs from the defaults). An untimed CHECKPOINT precedes every run.")
    lines.append("")
    tv = report["tool_versions"]
    lines.append("Tools: " + "; ".join(f"{k}: {v}" for k, v in tv.items()) + ".")
    lines.append("")
    lines.append("How each tool is run: A is `sqlite_pg.run.schema(phase=\"tables\")`, `run.copy`, "
                 "`run.schema(phase=\"constraints\")` with the modules' defaults (on_error=error, orphans=error) "
                 "in one `python -c` subprocess (imports included); B is `pgloader sqlite:///bot.db "
                 "postgresql://postgres@unix:SOCKDIR:PORT/db`; C is a `python -c` subprocess of a separate venv "
                 "with DuckDB, `CREATE TABLE pg.public.t AS SELECT * FROM s.t` per table, then "
                 + ("A's primary keys, unique constraints, indexes and foreign keys"
                    if report["peer_fks"] else "A's primary keys, unique constraints and indexes (no foreign keys)")
                 + " through `postgres_execute`; D creates the tables with A's DDL before the clock starts, then "
                 "runs one `sqlite3 -csv -readonly bot.db 'SELECT …' | psql -c '\\copy t FROM STDIN CSV'` "
                 "pipeline per table, all at once, then the same keys and indexes as C in one `psql -1`. "
                 "Peak client RSS is the maximum resident set size of each client process as GNU `time -f %M` "
                 "reports it (`ru_maxrss`; launched through `time` so that the benchmark's own memory is not "
                 "counted) (D: the sum over its "
                 "concurrent sqlite3 and psql processes); the server's memory is not included. Client CPU is "
                 "user+system seconds of the client processes, server CPU the same for the PostgreSQL "
                 "processes (postmaster, its children and the backends it reaped) during the run; medians. "
                 "Rows are "
                 "counted in PostgreSQL after every run and compared with the source.")
    return "\n".join(lines) + "\n"


def write_report(path, body):
    block = f"{MARK_BEGIN}\n{body}{MARK_END}\n"
    if os.path.exists(path):
        with open(path) as fh:
            old = fh.read()
        if MARK_BEGIN in old and MARK_END in old:
            head, rest = old.split(MARK_BEGIN, 1)
            tail = rest.split(MARK_END, 1)[1].lstrip("\n")
            new = head + block + ("\n" + tail if tail else "")
        else:
            new = "# Benchmarks\n\n" + block
    else:
        new = "# Benchmarks\n\n" + block
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(new)


# --- main ---------------------------------------------------------------------------------


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", default="1.3M", choices=list(SIZES), help="source size (default %(default)s)")
    p.add_argument("--rounds", type=int, default=3, help="rounds of A B C D (default %(default)s)")
    p.add_argument("--tools", default="A,B,C,D", help="comma-separated subset of A,B,C,D (default %(default)s)")
    p.add_argument("--scale-series", action="store_true", help="also run A and C at 0.3M, 1.3M and 5.2M rows")
    p.add_argument("--scale-rounds", type=int, default=1, help="runs per tool and size in the scale series")
    p.add_argument("--peer-fks", action="store_true", help="C and D also add A's foreign keys")
    p.add_argument("--no-verify", action="store_true", help="skip timing verify_all")
    p.add_argument("--no-install", action="store_true", help="fail instead of installing pgloader / DuckDB")
    p.add_argument("--cache-dir", default=os.path.join(ROOT, "bench", ".cache"),
                   help="where source databases and the DuckDB venv live (default bench/.cache)")
    p.add_argument("--out", help="Markdown report to write (e.g. docs/benchmarks.md)")
    p.add_argument("--json", help="write the raw results as JSON here")
    args = p.parse_args(argv)
    args.tools = [t.strip().upper() for t in args.tools.split(",") if t.strip()]
    bad = [t for t in args.tools if t not in TOOLS]
    if bad or not args.tools:
        p.error(f"--tools: unknown tool(s) {bad}; use A,B,C,D")
    if args.rounds < 1 or args.scale_rounds < 1:
        p.error("--rounds and --scale-rounds must be at least 1")
    return args


def print_summary(report):
    print()
    print(f"{'tool':<42} {'median':>8} {'min':>8} {'max':>8} {'rows/s':>11} {'peak RSS MB':>12} "
          f"{'cli CPU':>8} {'srv CPU':>8}  rows")
    a = report["summary"].get("A")
    for tool in report["tools"]:
        s = report["summary"][tool]
        name = f"{tool}) {TOOLS[tool]}"
        if not s.get("ok_runs"):
            print(f"{name:<42} FAILED")
            continue
        print(f"{name:<42} {s['median']:>8.2f} {s['min']:>8.2f} {s['max']:>8.2f} {s['rows_per_s']:>11,.0f} "
              f"{fmt_rss(s['rss_min'], s['rss_max']):>12} {s['client_cpu']:>8.2f} {s['server_cpu']:>8.2f}  "
              f"{'ok' if s['rows_match'] else 'ROWS DIFFER'}")
    for tool in report["tools"]:
        if tool != "A":
            print(f"A/{tool} = {ratio(a, report['summary'][tool])}")
    if report.get("verify"):
        v = report["verify"]
        print(f"verify_all: {v['wall']:.2f} s, peak RSS {v['rss_kb'] / 1024:.0f} MB, ok={v['detail']['ok']}")
    for entry in report.get("scale") or ():
        for tool, s in entry["summary"].items():
            if s.get("ok_runs"):
                print(f"scale {entry['size']:>5} {tool}: {s['median']:.2f} s, {s['rows_per_s']:,.0f} rows/s, "
                      f"RSS {fmt_rss(s['rss_min'], s['rss_max'])}, rows {'ok' if s['rows_match'] else 'DIFFER'}")
            else:
                print(f"scale {entry['size']:>5} {tool}: FAILED")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    cache = os.path.abspath(args.cache_dir)
    os.makedirs(cache, exist_ok=True)
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M")
    loadavg_start = " ".join(open("/proc/loadavg").read().split()[:3])
    tool_versions = {}
    need_c = "C" in args.tools or args.scale_series
    Proc.use_time = ensure_time(not args.no_install)
    pgloader = duck = None
    if "B" in args.tools:
        try:
            pgloader = ensure_pgloader(not args.no_install)
        except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
            log(f"B (pgloader) left out: {exc}")
            args.tools.remove("B")
    if need_c:
        try:
            duck = ensure_duckdb(cache, not args.no_install)
        except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
            log(f"C (DuckDB) left out: {exc}")
            if "C" in args.tools:
                args.tools.remove("C")
            args.scale_series = False
    if not args.tools:
        log("no tool left to run")
        return 1
    if pgloader:
        tool_versions["pgloader"] = subprocess.run([pgloader, "--version"], capture_output=True,
                                                   text=True).stdout.splitlines()[0].strip()
    if duck:
        tool_versions["DuckDB"] = subprocess.run([duck["python"], "-c", "import duckdb; print(duckdb.__version__)"],
                                                 capture_output=True, text=True).stdout.strip() + \
            " (PyPI duckdb, duckdb-ext-sqlite, duckdb-ext-postgres)"
    if "D" in args.tools:
        tool_versions["sqlite3"] = subprocess.run(["sqlite3", "--version"], capture_output=True,
                                                  text=True).stdout.split(" ")[0]
        tool_versions["psql"] = subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.strip()

    source = source_db(cache, args.rows, SIZES[args.rows])
    columns, counts = source_tables(source)
    work = tempfile.mkdtemp(prefix="s2p-bench-")
    cluster = BenchCluster()
    log(f"starting PostgreSQL ({cluster.bindir}) with {SERVER_SETTINGS}")
    cluster.start()
    try:
        pg_version = cluster.sql("SHOW server_version")[0][0]
        settings = {k: cluster.sql(f"SHOW {k}")[0][0] for k in SHOWN_SETTINGS}
        ctx = dict(cluster=cluster, source=source, columns=columns, counts=counts, work=work,
                   pgloader=pgloader, duckdb=duck, peer_fks=args.peer_fks)
        ctx["ddl"] = prepare_ddl(ctx)
        total = sum(counts.values())
        log(f"source {source}: {total:,} rows {counts}")
        runs = {t: [] for t in args.tools}
        keep_a = None
        for rnd in range(1, args.rounds + 1):
            for tool in args.tools:
                db = f"bench_{tool.lower()}_{rnd}"
                keep = tool == "A" and rnd == args.rounds and not args.no_verify
                runs[tool].append(timed_run(ctx, tool, db, keep=keep))
                if keep:
                    keep_a = db
        verify = None
        if keep_a:
            if runs["A"][-1]["ok"]:
                cluster.settle()
                verify = run_verify(ctx, keep_a)
                log(f"verify_all: {verify['wall']:.2f} s, RSS {verify['rss_kb'] / 1024:.0f} MB, {verify['detail']}")
            cluster.drop_db(keep_a)
        summary = {t: summarize(r, total) for t, r in runs.items()}
        a_phases = {}
        if "A" in runs:
            ok = [r["detail"]["phases"] for r in runs["A"] if r["ok"]]
            if ok:
                a_phases = {k: statistics.median(p[k] for p in ok) for k in ok[0]}

        scale = []
        if args.scale_series:
            for size in SCALE_SERIES:
                if size == args.rows and "A" in args.tools and "C" in args.tools:
                    scale.append(dict(size=size, total_rows=total,
                                      summary={t: summary[t] for t in ("A", "C")}))
                    continue
                s_source = source_db(cache, size, SIZES[size])
                s_columns, s_counts = source_tables(s_source)
                s_ctx = dict(ctx, source=s_source, columns=s_columns, counts=s_counts)
                s_runs = {"A": [], "C": []}
                for rnd in range(1, args.scale_rounds + 1):
                    for tool in ("A", "C"):
                        s_runs[tool].append(timed_run(s_ctx, tool, f"scale_{tool.lower()}_{rnd}"))
                s_total = sum(s_counts.values())
                scale.append(dict(size=size, total_rows=s_total,
                                  summary={t: summarize(r, s_total) for t, r in s_runs.items()},
                                  runs=s_runs))
            scale.sort(key=lambda e: e["total_rows"])

        report = dict(started=started, loadavg_start=loadavg_start, rss_method="GNU time %M" if Proc.use_time else "wait4",
                      size=args.rows, rounds=args.rounds, tools=args.tools, counts=counts,
                      total_rows=total, source_mb=os.path.getsize(source) / 2**20,
                      command=shlex.join(["python", "bench/run.py", *argv]), peer_fks=args.peer_fks,
                      machine=machine(), postgres=dict(version=pg_version, settings=settings),
                      tool_versions=tool_versions, runs=runs, summary=summary, a_phases=a_phases,
                      verify=verify, scale=scale, ddl=ctx["ddl"])
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)

    print_summary(report)
    if args.out:
        write_report(args.out, render(report))
        log(f"report written to {args.out}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2, default=str)
    failed = [t for t, s in report["summary"].items() if not s.get("ok_runs")]
    return 1 if failed and "A" in failed else 0


if __name__ == "__main__":
    sys.exit(main())
