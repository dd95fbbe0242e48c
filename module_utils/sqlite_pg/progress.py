"""Progress of a long copy, for an operator who wants to see it is alive.

The copy calls ``ProgressFile.update(table, done, total, status)`` as chunks go by; at most
once a second (and at every table's end) the whole picture is written atomically to a JSON
file, which a playbook polls while the copy runs in the background.
"""

import json
import os
import time


class ProgressFile:
    def __init__(self, path, interval=1.0):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path
        self.interval = interval
        self.tables = {}
        self.started = {}
        self.last = 0.0

    def update(self, table, done, total, status="copying"):
        now = time.monotonic()
        self.started.setdefault(table, now)
        elapsed = max(now - self.started[table], 1e-6)
        rate = done / elapsed
        self.tables[table] = dict(
            status=status, rows_done=done, rows_total=total, rows_per_second=round(rate),
            eta_seconds=round((total - done) / rate, 1) if rate and status == "copying" and total >= done else 0,
            seconds=round(elapsed, 1))
        if status != "copying" or now - self.last >= self.interval:
            self.write()
            self.last = now

    def write(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(dict(updated_at=time.time(), tables=self.tables), fh)
        os.replace(tmp, self.path)
