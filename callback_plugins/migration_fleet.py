"""Callback: one fleet report at the end of a migration run, however the run ended.

A play keyword such as ``max_fail_percentage`` may end a playbook before its last play, so
the report cannot be a task: each app host publishes its line with ``set_stats`` (per
host, key ``migration``; roles/migration/tasks/fleet_record.yml), and this plugin reads
them when the run ends, marks hosts that failed or were unreachable where no line says so,
prints one line per host and writes ``fleet-<time>.json`` and ``.md`` (and
``fleet-latest.*``) into the report directory the lines name.
"""

import json
import os
import time

from ansible import constants as C
from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: migration_fleet
type: aggregate
short_description: One report per migration run, one line per app host
description:
  - Reads the per-host records roles/migration publishes with set_stats (key C(migration)) and, at the end
    of the playbook, prints one line per host (on PostgreSQL or SQLite, outcome, target, rows, rejects,
    write downtime) and writes the fleet report as JSON and Markdown into the records' report directory.
  - Hosts that failed or were unreachable without a record saying why are marked so.
requirements:
  - enable it in callbacks_enabled (the project's ansible.cfg does)
"""

_COLUMNS = ("host", "on", "outcome", "target", "rows", "rejected", "write_downtime_seconds", "reason")


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "migration_fleet"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._playbook = ""

    def v2_playbook_on_start(self, playbook):
        self._playbook = os.path.basename(getattr(playbook, "_file_name", "") or "")

    def v2_playbook_on_stats(self, stats):
        records = {host: dict(data["migration"]) for host, data in (stats.custom or {}).items()
                   if isinstance(data, dict) and isinstance(data.get("migration"), dict)}
        if not records:
            return
        for host, record in records.items():
            if stats.dark.get(host):
                record.update(outcome="unreachable", reason=record.get("reason") or "the host could not be reached")
            elif stats.failures.get(host) and record.get("outcome") not in ("failed",):
                record.update(outcome="failed", reason=record.get("reason") or "a task failed: see its output above")
        rows = [dict(host=host, **{k: records[host].get(k) for k in _COLUMNS[1:]}) for host in sorted(records)]
        # A machine-readable stdout (json, yaml dumps) must stay parseable: only the files then.
        readable = str(C.DEFAULT_STDOUT_CALLBACK).rsplit(".", 1)[-1] not in ("json", "jsonl")
        if readable:
            self._display.banner("MIGRATION FLEET REPORT")
            for r in rows:
                self._display.display(_line(r))
        where = {records[h].get("report_dir") for h in records} - {None, ""}
        for directory in sorted(where):
            path = _write(directory, self._playbook, rows)
            if readable:
                self._display.display(f"fleet report: {path}")


def _line(r):
    parts = [f"{r['host']}: on {r['on']}", r["outcome"].replace("_", " "), r["target"]]
    if r.get("rows") not in (None, "", "None"):
        parts.append(f"{r['rows']} rows, {r.get('rejected') or 0} rejected")
    if r.get("write_downtime_seconds") not in (None, "", "None"):
        parts.append(f"write downtime {r['write_downtime_seconds']} s")
    if r.get("reason"):
        parts.append(f"why: {r['reason']}")
    return " | ".join(str(p) for p in parts)


def _write(directory, playbook, rows):
    os.makedirs(directory, mode=0o750, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    report = dict(playbook=playbook, finished_at=stamp, hosts=rows,
                  counts={o: sum(1 for r in rows if r["outcome"] == o) for o in sorted({r["outcome"] for r in rows})})
    lines = [f"# Fleet report: {playbook}, {stamp}", "",
             ", ".join(f"{n} {o.replace('_', ' ')}" for o, n in report["counts"].items()), "",
             "| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    lines += ["| " + " | ".join("" if r.get(c) in (None, "None") else str(r.get(c)).replace("|", "\\|")
                                for c in _COLUMNS) + " |" for r in rows]
    base = os.path.join(directory, f"fleet-{stamp}")
    for suffix, text in ((".json", json.dumps(report, indent=2) + "\n"), (".md", "\n".join(lines) + "\n")):
        for path in (base + suffix, os.path.join(directory, "fleet-latest" + suffix)):
            with open(path, "w") as fh:
                fh.write(text)
            os.chmod(path, 0o640)
    return base + ".json"
