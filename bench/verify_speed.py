#!/usr/bin/env python3
"""Time ``sqlite_pg.run.verify_all`` of two engine trees on one copy, alternating.

    python bench/verify_speed.py [--rows 1.3M] [--rounds 2] [--before DIR] [--keep]

One throwaway PostgreSQL cluster with bench/run.py's durable settings; the demo file of
``--rows`` is copied once by this tree's engine (schema, copy, constraints: the copy's wall
time is reported), then ``verify_all`` runs in a subprocess for each tree in turn
(``--before``: a ``module_utils`` directory of another revision, e.g. made with
``git archive <rev> module_utils | tar -x -C DIR``), ``--rounds`` times. Prints each wall
time and the ratio verify / copy, so before and after are compared in one run on one file.
"""

import argparse
import json
import os
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
        start = time.monotonic()
        out = subprocess.run([sys.executable, "-c", bench.A_CODE, bench.MODULE_UTILS, params],
                             check=True, capture_output=True, text=True).stdout
        wall = time.monotonic() - start
        phases = json.loads(out.strip().splitlines()[-1])["phases"]
        print(f"copy (schema + copy + constraints): {wall:.2f} s wall; phases "
              + ", ".join(f"{k} {v:.2f}" for k, v in phases.items()), flush=True)
        trees = {"after": bench.MODULE_UTILS}
        if args.before:
            trees = {"before": args.before, **trees}
        times = {name: [] for name in trees}
        for _ in range(args.rounds):
            for name, tree in trees.items():
                cluster.settle()
                start = time.monotonic()
                proc = subprocess.run([sys.executable, "-c", bench.VERIFY_CODE, tree, params],
                                      capture_output=True, text=True)
                took = time.monotonic() - start
                if proc.returncode:
                    print(proc.stderr[-3000:])
                detail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "failed"
                times[name].append(took)
                print(f"verify_all {name}: {took:.2f} s wall ({took / wall:.2f} x copy) {detail}", flush=True)
        for name, walls in times.items():
            med = statistics.median(walls)
            print(f"{name}: median verify {med:.2f} s = {med / wall:.2f} x copy ({wall:.2f} s)")
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
