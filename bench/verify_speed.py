#!/usr/bin/env python3
"""Time ``sqlite_pg.run.verify_all`` of two engine trees on one copy, alternating.

    python bench/verify_speed.py [--rows 1.3M] [--rounds 2] [--before DIR] [--keep]

One throwaway PostgreSQL cluster with bench/run.py's durable settings; the demo file of
``--rows`` is copied once by this tree's engine (schema, copy, constraints: the copy's wall
time is reported), then ``verify_all`` runs in a subprocess for each tree in turn
(``--before``: a ``module_utils`` directory of another revision, e.g. made with
``git archive <rev> module_utils | tar -x -C DIR``), ``--rounds`` times. Prints each wall
time and CPU (client: the subprocess; server: PostgreSQL's processes) and the ratios
verify / copy, so before and after are compared in one run on one file.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, ROOT)

import run as bench  # noqa: E402  (bench/run.py)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", default="1.3M", choices=list(bench.SIZES))
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--before", help="module_utils directory of the revision to compare with")
    p.add_argument("--cache-dir", default=os.path.join(ROOT, "bench", ".cache"))
    args = p.parse_args(argv)
    os.makedirs(args.cache_dir, exist_ok=True)
    source = bench.source_db(args.cache_dir, args.rows, bench.SIZES[args.rows])
    cluster = bench.BenchCluster()
    cluster.start()
    try:
        ctx = dict(cluster=cluster, source=source, work=ROOT)
        db = cluster.fresh_db("verify_speed")
        params = json.dumps(bench.params_for(ctx, db))
        start, cpu = time.monotonic(), _cpu(cluster)
        out = subprocess.run([sys.executable, "-c", bench.A_CODE, bench.MODULE_UTILS, params],
                             check=True, capture_output=True, text=True).stdout
        wall, (client, server) = time.monotonic() - start, _since(cluster, cpu)
        copy_cpu = client + server
        phases = json.loads(out.strip().splitlines()[-1])["phases"]
        print(f"copy (schema + copy + constraints): {wall:.2f} s wall, CPU client {client:.2f} s + server "
              f"{server:.2f} s; phases " + ", ".join(f"{k} {v:.2f}" for k, v in phases.items()), flush=True)
        trees = {"after": bench.MODULE_UTILS}
        if args.before:
            trees = {"before": args.before, **trees}
        times = {name: [] for name in trees}
        cpus = {name: [] for name in trees}
        for _ in range(args.rounds):
            for name, tree in trees.items():
                cluster.settle()
                start, cpu = time.monotonic(), _cpu(cluster)
                proc = subprocess.run([sys.executable, "-c", bench.VERIFY_CODE, tree, params],
                                      capture_output=True, text=True)
                took, (client, server) = time.monotonic() - start, _since(cluster, cpu)
                cpus[name].append(client + server)
                if proc.returncode:
                    print(proc.stderr[-3000:])
                detail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "failed"
                times[name].append(took)
                print(f"verify_all {name}: {took:.2f} s wall ({took / wall:.2f} x copy), CPU client {client:.2f} s + "
                      f"server {server:.2f} s ({(client + server) / copy_cpu:.2f} x copy's) {detail}", flush=True)
        for name, walls in times.items():
            med, med_cpu = statistics.median(walls), statistics.median(cpus[name])
            print(f"{name}: median verify {med:.2f} s = {med / wall:.2f} x copy ({wall:.2f} s); CPU {med_cpu:.2f} s "
                  f"= {med_cpu / copy_cpu:.2f} x copy's ({copy_cpu:.2f} s)")
    finally:
        cluster.stop()


def _cpu(cluster):
    """(CPU seconds of this process's finished children, of the server) so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime, cluster.cpu_seconds()


def _since(cluster, before):
    now = _cpu(cluster)
    return now[0] - before[0], now[1] - before[1]


if __name__ == "__main__":
    sys.exit(main())
