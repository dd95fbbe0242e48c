"""What an app host of the fleet scenario looks like now, as one JSON document (run by
tasks/observe.yml with the host's system Python; one call instead of a task per question,
since every task costs a few podman execs).

    observe.py APP_DIR SOURCE DRIVER

Waits (up to 60 s) until the app's last start was through DRIVER (the drivername writer.py
logs when it starts: sqlite or postgresql+psycopg2) and it has written at least 20 rows
since; then reads, in this order, so that every write logged is committed before the
database is read: the write log, the SQLite file's users, the .env (its DATABASE_URL with
the password masked, and a hash of the whole file), state.json, and the service's state.
"""

import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import time

MIN_WRITES = 20
WAIT_SECONDS = 60


def read_log(app_dir):
    """(starts, logged writes, runs as [url, writes since that start])."""
    starts, logged, runs = [], [], []
    try:
        with open(os.path.join(app_dir, "writes.log")) as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        lines = []
    for line in lines:
        if line.startswith("# start"):
            starts.append(line)
            runs.append([line.rsplit("url=", 1)[-1], 0])
        elif line:
            logged.append(line)
            if runs:
                runs[-1][1] += 1
    return starts, logged, runs


def main(app_dir, source, driver):
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        starts, logged, runs = read_log(app_dir)
        waited_for = bool(runs) and runs[-1][0] == driver and runs[-1][1] >= MIN_WRITES
        if waited_for or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    # The app holds SQLite's write lock now and then: wait for it, as the app itself would.
    conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        sqlite_users = [f"{tid}|{created}" for tid, created in
                        conn.execute("SELECT telegram_id, created_at FROM users")]
    finally:
        conn.close()
    with open(os.path.join(app_dir, ".env"), "rb") as fh:
        env = fh.read()
    url = next((line[len("DATABASE_URL="):] for line in env.decode().splitlines()
                if line.startswith("DATABASE_URL=")), "")
    state_path = os.path.join(app_dir, ".sqlite_pg", "state.json")
    state_text = open(state_path).read() if os.path.exists(state_path) else "{}"
    service = subprocess.run(["systemctl", "is-active", "idea-planner"], capture_output=True, text=True)
    json.dump({
        "waited_for": waited_for,
        "service": service.stdout.strip(),
        "starts": starts,
        "runs": runs,
        "logged": logged,
        "sqlite_users": sqlite_users,
        "url": re.sub(r"//[^@/]*@", "//***@", url),
        "env_lines": [line for line in env.decode().splitlines() if not line.startswith("DATABASE_URL=")],
        "env_sha256": hashlib.sha256(env).hexdigest(),
        "state": json.loads(state_text),
        "state_sha256": hashlib.sha256(state_text.encode()).hexdigest(),
    }, sys.stdout)


if __name__ == "__main__":
    main(*sys.argv[1:4])
