"""Filter: the copy's progress file (see module_utils/sqlite_pg/progress.py) as lines."""


def copy_progress(report):
    lines = []
    for table, t in (report or {}).get("tables", {}).items():
        line = f"{table}: {t['rows_done']:,} of {t['rows_total']:,} rows, {t['rows_per_second']:,} rows/s"
        if t["status"] == "copying":
            line += f", about {t['eta_seconds']:.0f} s left"
        else:
            line += f" ({t['status']})"
        lines.append(line)
    return lines


class FilterModule:
    def filters(self):
        return {"copy_progress": copy_progress}
