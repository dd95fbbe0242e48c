#!/usr/bin/env python3
"""Where A's copy spends its time, table by table, on the benchmark's server settings.

    python bench/profile_copy.py [--rows 1.3M|0.3M|5.2M|small] [--py-spy]

For each table it separates the two halves of the engine's pipeline and sets each beside
the piped ceiling's (D's) equivalent:

- SQLite side: the engine's own chunk query (``source.SourceTable.chunks``: SQLite formats
  the COPY text with the codecs' CASE expressions) on one reader connection, written to a
  file, against ``sqlite3 -csv 'SELECT * FROM t'`` into a file;
- PostgreSQL side: ``COPY ... FREEZE`` of those two files (server CPU measured from /proc),
  then ``ANALYZE``, which the engine runs after each table.

With ``--binary`` it also loads each table through the two binary-COPY libraries issue 15
names, as lower bounds with no checking at all (so not exact: what they would cost before
any value is judged), installed into the benchmark's DuckDB venv if missing:

- psycopg 3's C COPY writer (``FORMAT BINARY``) fed with the rows sqlite3 returns, date/time
  text parsed by ``datetime.fromisoformat``, into the engine's own table;
- ADBC: the SQLite driver reads Arrow batches in C and the PostgreSQL driver ingests them by
  binary COPY in C, into a table it creates from Arrow's types (date/times stay text).

With ``--py-spy`` (installed into the benchmark's DuckDB venv if missing) it also records
one full A run (``schema tables`` + ``copy`` + ``constraints``) and one ``verify_all``,
and prints the hottest frames per thread. Nothing here changes the engine; it only calls it.
"""

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run as bench  # noqa: E402

from sqlite_pg import convert, pgcopy  # noqa: E402
from sqlite_pg import run as engine  # noqa: E402
from sqlite_pg import source as reader  # noqa: E402


def _timed(fn):
    wall, cpu = time.monotonic(), time.process_time()
    out = fn()
    return out, time.monotonic() - wall, time.process_time() - cpu


def split_tables(cluster, source, work):
    db = cluster.fresh_db("profile_split")
    params = bench.params_for(dict(source=source, cluster=cluster), db)
    engine.schema(params, phase="tables")
    rows = []
    with engine.opened(params) as (sconn, pconn, _schema, model, _options):
        convert.register_functions(sconn)
        for name, target in model.items():
            with pconn.cursor() as cur:
                columns = pgcopy.target_codecs(cur, "public", target)
            table = reader.SourceTable(sconn, target.source, columns)
            ours, plain = os.path.join(work, f"{name}.a.csv"), os.path.join(work, f"{name}.sqlite3.csv")

            def fmt(table=table, ours=ours):
                with open(ours, "wb") as fh:
                    for _lo, _hi, _rows, _good, payload in table.chunks():
                        fh.write(payload)

            _, a_wall, a_cpu = _timed(fmt)
            with open(plain, "wb") as fh:
                t0 = time.monotonic()
                proc = bench.Proc(["sqlite3", "-csv", "-readonly", source, f'SELECT * FROM "{name}"'], work,
                                  f"s3-{name}", stdout=fh).wait()
                s_wall = time.monotonic() - t0

            def load(path, copy_sql, name=name):
                c0, t0 = cluster.cpu_seconds(), time.monotonic()
                with pconn.cursor() as cur, open(path, "rb") as fh:
                    cur.execute(f'TRUNCATE "{name}"')
                    cur.copy_expert(copy_sql, fh, size=1 << 20)
                pconn.commit()
                return time.monotonic() - t0, cluster.cpu_seconds() - c0

            ours_sql = pgcopy.copy_sql("public", target.name, columns, freeze=True).as_string(pconn)
            pa_wall, pa_cpu = load(ours, ours_sql)
            ps_wall, ps_cpu = load(plain, f'COPY "{name}" FROM STDIN WITH (FORMAT csv, FREEZE)')
            t0 = time.monotonic()
            with pconn.cursor() as cur:
                cur.execute(f'ANALYZE "{name}"')
            pconn.commit()
            rows.append(dict(table=name, mb=os.path.getsize(ours) / 2**20, a_wall=a_wall, a_cpu=a_cpu,
                             s_wall=s_wall, s_cpu=proc.cpu, pa_wall=pa_wall, pa_cpu=pa_cpu, ps_wall=ps_wall,
                             ps_cpu=ps_cpu, analyze=time.monotonic() - t0))
            os.unlink(ours)
            os.unlink(plain)
    cluster.drop_db(db)
    return rows


BINARY_PACKAGES = ("psycopg[binary]==3.3.*", "pyarrow==26.*", "adbc-driver-sqlite==1.*", "adbc-driver-postgresql==1.*")

# Run by the DuckDB venv's python: argv[1] is a JSON config; prints client wall and CPU.
BINARY_CODE = r"""
import datetime, json, sqlite3, sys, time
cfg = json.loads(sys.argv[1])
t0, c0 = time.monotonic(), time.process_time()
if cfg["how"] == "psycopg3":
    import psycopg
    src = sqlite3.connect("file:" + cfg["source"] + "?mode=ro", uri=True)
    cols = ", ".join('"%s"' % c for c in cfg["columns"])
    iso = [i for i, t in enumerate(cfg["types"]) if t.startswith(("timestamp", "date"))]
    parse = datetime.datetime.fromisoformat
    with psycopg.connect(cfg["dsn"]) as pg, pg.cursor() as cur:
        cur.execute('TRUNCATE "%s"' % cfg["table"])
        with cur.copy('COPY "%s" (%s) FROM STDIN (FORMAT BINARY, FREEZE)' % (cfg["table"], cols)) as cp:
            cp.set_types([t.split("(")[0].replace("character varying", "varchar") for t in cfg["types"]])
            for row in src.execute('SELECT %s FROM "%s"' % (cols, cfg["table"])):
                if iso:
                    row = list(row)
                    for i in iso:
                        if row[i] is not None:
                            row[i] = parse(row[i])
                cp.write_row(row)
else:
    import adbc_driver_postgresql.dbapi as pgd
    import adbc_driver_sqlite.dbapi as sq
    with sq.connect(cfg["source"]) as src, pgd.connect(cfg["uri"]) as pg:
        with src.cursor() as s, pg.cursor() as p:
            p.execute('DROP TABLE IF EXISTS "adbc_%s"' % cfg["table"])
            s.execute('SELECT * FROM "%s"' % cfg["table"])
            p.adbc_ingest("adbc_" + cfg["table"], s.fetch_record_batch(), mode="create")
        pg.commit()
print(json.dumps(dict(wall=time.monotonic() - t0, cpu=time.process_time() - c0)))
"""


def ensure_binary(cache):
    duck = bench.ensure_duckdb(cache)
    probe = subprocess.run([duck["python"], "-c", "import psycopg, pyarrow, adbc_driver_sqlite, adbc_driver_postgresql"],
                           capture_output=True)
    if probe.returncode != 0:
        bench.log(f"installing {', '.join(BINARY_PACKAGES)} into the DuckDB venv")
        subprocess.run([duck["python"], "-m", "pip", "install", "-q", *BINARY_PACKAGES], check=True, capture_output=True)
    return duck["python"]


def binary_floor(cluster, source, python):
    """Per table: (table, psycopg3 client wall/CPU + server CPU, ADBC the same)."""
    db = cluster.fresh_db("profile_binary")
    params = bench.params_for(dict(source=source, cluster=cluster), db)
    engine.schema(params, phase="tables")
    rows = []
    with engine.opened(params) as (_sconn, pconn, _schema, model, _options):
        for name, target in model.items():
            with pconn.cursor() as cur:
                columns = pgcopy.target_codecs(cur, "public", target)
                cur.execute("SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                            "WHERE a.attrelid = %s::regclass AND a.attnum > 0", (f'"{target.name}"',))
                types = dict(cur.fetchall())
            pconn.commit()
            row = dict(table=name)
            for how in ("psycopg3", "adbc"):
                cfg = dict(how=how, source=source, table=target.name, columns=[c.target for c in columns],
                           types=[types[c.target] for c in columns],
                           dsn=f"host={cluster.sockdir} port={cluster.port} user=postgres dbname={db}",
                           uri=f"postgresql://postgres@/{db}?host={cluster.sockdir}&port={cluster.port}")
                cluster.settle()
                c0 = cluster.cpu_seconds()
                done = subprocess.run([python, "-c", BINARY_CODE, json.dumps(cfg)], capture_output=True, text=True)
                if done.returncode != 0:
                    raise RuntimeError(f"{how} on {name}: {done.stderr.strip()[-400:]}")
                row[how] = dict(json.loads(done.stdout), server=cluster.cpu_seconds() - c0)
            rows.append(row)
    cluster.drop_db(db)
    return rows


def print_binary(rows):
    print("\n| table | psycopg 3 binary COPY from Python rows (wall / client CPU / server CPU) "
          "| ADBC SQLite -> Arrow -> binary COPY (wall / client CPU / server CPU) |")
    print("|---|---|---|")
    for r in rows:
        cells = [f"{r[h]['wall']:.2f} s / {r[h]['cpu']:.2f} s / {r[h]['server']:.2f} s" for h in ("psycopg3", "adbc")]
        print(f"| {r['table']} | {cells[0]} | {cells[1]} |")


def print_split(rows):
    print("| table | COPY text | SQLite: engine's chunk query, 1 reader (wall / CPU) | sqlite3 -csv (wall / CPU) "
          "| PG COPY FREEZE of the engine's text (wall / server CPU) | PG COPY FREEZE of sqlite3's CSV "
          "(wall / server CPU) | ANALYZE |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['table']} | {r['mb']:.0f} MB | {r['a_wall']:.2f} s / {r['a_cpu']:.2f} s | "
              f"{r['s_wall']:.2f} s / {r['s_cpu']:.2f} s | {r['pa_wall']:.2f} s / {r['pa_cpu']:.2f} s | "
              f"{r['ps_wall']:.2f} s / {r['ps_cpu']:.2f} s | {r['analyze']:.2f} s |")


def hottest(raw_path, top=8):
    threads, frames = collections.Counter(), collections.Counter()
    for line in open(raw_path):
        stack, _, n = line.rstrip().rpartition(" ")
        parts = stack.split(";")
        thread = parts[0].split(": ", 1)[-1]
        threads[thread] += int(n)
        frames[(thread, parts[-1])] += int(n)
    total = sum(threads.values()) or 1
    print("  samples per thread: " + ", ".join(f"{t} {n * 100 / total:.0f}%" for t, n in threads.most_common()))
    for (thread, frame), n in frames.most_common(top):
        print(f"  {n * 100 / total:5.1f}%  {thread}: {frame}")


def py_spy(cluster, source, work, cache):
    duck = bench.ensure_duckdb(cache)
    spy = os.path.join(os.path.dirname(duck["python"]), "py-spy")
    if not os.path.exists(spy):
        subprocess.run([duck["python"], "-m", "pip", "install", "-q", "py-spy"], check=True, capture_output=True)
    db = cluster.fresh_db("profile_spy")
    params = json.dumps(bench.params_for(dict(source=source, cluster=cluster), db))
    for what, code in (("A (schema tables + copy + constraints)", bench.A_CODE), ("verify_all", bench.VERIFY_CODE)):
        cluster.settle()
        raw = os.path.join(work, "spy.raw")
        c0, t0 = cluster.cpu_seconds(), time.monotonic()
        subprocess.run([spy, "record", "--threads", "--idle", "--rate", "100", "-f", "raw", "-o", raw, "--",
                        sys.executable, "-c", code, bench.MODULE_UTILS, params], check=True, capture_output=True)
        print(f"\n{what}: {time.monotonic() - t0:.2f} s wall under py-spy, server CPU "
              f"{cluster.cpu_seconds() - c0:.2f} s (--idle: waiting threads are sampled too)")
        hottest(raw)
    cluster.drop_db(db)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", default="1.3M", choices=list(bench.SIZES))
    p.add_argument("--py-spy", action="store_true", help="also sample one A run and one verify_all with py-spy")
    p.add_argument("--binary", action="store_true",
                   help="also load each table through psycopg 3's and ADBC's binary COPY (no checks: lower bounds)")
    p.add_argument("--cache-dir", default=os.path.join(HERE, ".cache"))
    args = p.parse_args(argv)
    cache = os.path.abspath(args.cache_dir)
    os.makedirs(cache, exist_ok=True)
    source = bench.source_db(cache, args.rows, bench.SIZES[args.rows])
    bench.Proc.use_time = bench.ensure_time()
    work = tempfile.mkdtemp(prefix="s2p-profile-")
    cluster = bench.BenchCluster().start()
    try:
        print_split(split_tables(cluster, source, work))
        if args.binary:
            print_binary(binary_floor(cluster, source, ensure_binary(cache)))
        if args.py_spy:
            py_spy(cluster, source, work, cache)
    finally:
        cluster.stop()
        subprocess.run(["rm", "-rf", work], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
