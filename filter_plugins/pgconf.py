"""Helpers for the managed postgresql.conf drop-in of roles/postgresql.

- ``pg_conf_value``: one value as a quoted postgresql.conf literal (booleans as on/off,
  lists joined with commas, single quotes doubled).
- ``pg_settings_changes``: which desired settings differ from what the running server
  reports in ``pg_settings``, after normalising units the way PostgreSQL does
  (``'1GB'`` equals ``setting=131072, unit=8kB``), with each name's ``context`` so the
  caller can decide between reload and restart.

Pure Python: Ansible only sees the ``FilterModule`` class at the bottom.
"""

from __future__ import annotations

import re

MEMORY_UNITS = {"B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
TIME_UNITS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
_NUMBER_WITH_UNIT = re.compile(r"^\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-zA-Z]*)\s*$")
_TRUE = ("on", "true", "yes", "1")
_FALSE = ("off", "false", "no", "0")


def pg_conf_value(value) -> str:
    """Render ``value`` as a single-quoted postgresql.conf value."""
    if isinstance(value, bool):
        text = "on" if value else "off"
    elif isinstance(value, (list, tuple)):
        text = ",".join(str(item) for item in value)
    else:
        text = str(value)
    return "'" + text.replace("'", "''") + "'"


def _plain(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    return str(value).strip()


def _unit_scale(unit: str):
    """(family, size of one unit) for a pg_settings unit such as '8kB', 'ms' or 's'."""
    match = re.match(r"^(\d*)(B|kB|MB|GB|TB|us|ms|s|min|h|d)$", unit or "")
    if not match:
        return None, None
    factor = int(match.group(1) or 1)
    base = match.group(2)
    if base in MEMORY_UNITS:
        return "memory", factor * MEMORY_UNITS[base]
    return "time", factor * TIME_UNITS[base]


def _numeric(value: str, unit: str | None):
    """Value in the setting's own unit (as pg_settings.setting shows it), or None."""
    match = _NUMBER_WITH_UNIT.match(value)
    if not match:
        return None
    number, given = float(match.group(1)), match.group(2)
    if not given:
        return number
    family, size = _unit_scale(unit or "")
    if family == "memory" and given in MEMORY_UNITS:
        return number * MEMORY_UNITS[given] / size
    if family == "time" and given in TIME_UNITS:
        return number * TIME_UNITS[given] / size
    return None


def _same(desired, row: dict) -> bool:
    current = str(row.get("setting", ""))
    vartype = row.get("vartype")
    text = _plain(desired)
    if vartype == "bool":
        lowered = text.lower()
        wanted = "on" if lowered in _TRUE else "off" if lowered in _FALSE else lowered
        return wanted == current.lower()
    if vartype in ("integer", "real"):
        wanted = _numeric(text, row.get("unit"))
        if wanted is None:
            return False
        if vartype == "integer":
            # PostgreSQL rounds a value given in another unit to the nearest whole unit.
            wanted = float(round(wanted))
        try:
            return abs(wanted - float(current)) <= 1e-9 * max(1.0, abs(wanted))
        except ValueError:
            return False
    if vartype == "enum":
        return text.lower() == current.lower()
    # string: compare list-like values without blanks around commas
    return re.sub(r"\s*,\s*", ",", text) == re.sub(r"\s*,\s*", ",", current)


def pg_settings_changes(desired: dict, rows: list, removed=()) -> list:
    """Settings whose running value differs from ``desired``.

    :param desired: ``{name: value}`` to be written to the drop-in file.
    :param rows: ``pg_settings`` rows with at least name, setting, unit, vartype, context.
    :param removed: names that were in the managed file before and are no longer desired;
        they fall back to the server's other configuration, so they count as changed.
    :returns: list of ``{name, current, desired, context}``, sorted by name. Names that
        ``pg_settings`` does not know (custom ``prefix.name`` settings) are reported with
        context ``unknown`` only when they are in ``removed``.
    """
    by_name = {str(row["name"]).lower(): row for row in rows}
    changes = []
    for name, value in sorted((desired or {}).items()):
        row = by_name.get(str(name).lower())
        if row is None or _same(value, row):
            continue
        changes.append(
            {"name": name, "current": row.get("setting"), "desired": _plain(value), "context": row["context"]}
        )
    for name in sorted(set(removed or ()) - {str(n).lower() for n in (desired or {})}):
        row = by_name.get(str(name).lower())
        changes.append(
            {
                "name": name,
                "current": row.get("setting") if row else None,
                "desired": None,
                "context": row["context"] if row else "unknown",
            }
        )
    return changes


def pg_settings_invalid(desired: dict, rows: list) -> list:
    """Messages for desired values the server would reject, checked against ``pg_settings``.

    Uses vartype, unit, min_val, max_val and enumvals of each row: booleans must be a
    boolean word, numbers must parse (with a unit of the right kind) and lie within
    [min_val, max_val], enums must be one of enumvals. Strings and names missing from
    ``rows`` are not checked here.
    """
    by_name = {str(row["name"]).lower(): row for row in rows}
    problems = []
    for name, value in sorted((desired or {}).items()):
        row = by_name.get(str(name).lower())
        if row is None:
            continue
        text = _plain(value)
        vartype = row.get("vartype")
        if vartype == "bool" and text.lower() not in _TRUE + _FALSE:
            problems.append(f"{name}: {text!r} is not a boolean")
        elif vartype in ("integer", "real"):
            number = _numeric(text, row.get("unit"))
            if number is None:
                unit = row.get("unit")
                problems.append(f"{name}: {text!r} is not a number" + (f" of unit {unit}" if unit else ""))
                continue
            low, high = row.get("min_val"), row.get("max_val")
            if low not in (None, "") and number < float(low) or high not in (None, "") and number > float(high):
                problems.append(f"{name}: {text!r} is outside {low}..{high} ({row.get('unit') or 'no unit'})")
        elif vartype == "enum":
            choices = row.get("enumvals") or []
            if isinstance(choices, str):
                choices = choices.strip("{}").split(",")
            if choices and text.lower() not in [str(c).strip('"').lower() for c in choices]:
                problems.append(f"{name}: {text!r} is not one of {', '.join(map(str, choices))}")
    return problems


class FilterModule:
    """Ansible entry point for the filters above."""

    def filters(self):
        return {
            "pg_conf_value": pg_conf_value,
            "pg_settings_changes": pg_settings_changes,
            "pg_settings_invalid": pg_settings_invalid,
        }
