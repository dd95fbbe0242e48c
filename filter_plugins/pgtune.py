"""PostgreSQL tuning from host facts, with PGTune's formulas.

The formulas follow le0pard/pgtune (https://github.com/le0pard/pgtune,
``src/features/configuration/configurationSlice.js`` as of 2026-07, OS = Linux): every memory
value is computed in kB, and printed in the largest unit (GB, MB, kB) that loses nothing,
as PGTune's ``formatValue`` does. PostgreSQL accepts those units in postgresql.conf.

Scope: the settings PGTune derives from memory, CPUs, storage and workload that every
PostgreSQL >= 10 accepts. PGTune's version-specific extras (jit, wal_compression,
huge_pages, autovacuum_*, io_method, and wal_level for desktop) are not emitted; set them
through ``postgresql_settings`` if wanted.

Pure Python: Ansible only sees the ``FilterModule`` class at the bottom.
"""

from __future__ import annotations

import math

PROFILES = ("web", "oltp", "dw", "desktop", "mixed")
STORAGE_TYPES = ("ssd", "hdd", "san", "nvme")
DB_SIZES = ("less_ram", "mid_ram", "greater_ram")

KB_PER_MB = 1024
KB_PER_GB = 1024 * 1024

# PGTune's max_connections when none is given.
DEFAULT_CONNECTIONS = {"web": 200, "oltp": 300, "dw": 40, "desktop": 20, "mixed": 100}
# (min_wal_size, max_wal_size) in MB.
WAL_SIZES_MB = {
    "web": (1024, 4096),
    "oltp": (2048, 8192),
    "dw": (4096, 16384),
    "desktop": (100, 2048),
    "mixed": (1024, 4096),
}
EFFECTIVE_IO_CONCURRENCY = {"hdd": 2, "ssd": 200, "san": 300, "nvme": 1000}
# PostgreSQL's own default, used by PGTune's work_mem formula when it sets no parallel settings.
DEFAULT_MAX_WORKER_PROCESSES = 8


class PgTuneError(ValueError):
    """An input the formulas cannot use."""


def format_kb(value_kb: int) -> str:
    """Largest of GB/MB/kB that shows ``value_kb`` exactly (PGTune's formatValue)."""
    value_kb = int(value_kb)
    if value_kb % KB_PER_GB == 0:
        return f"{value_kb // KB_PER_GB}GB"
    if value_kb % KB_PER_MB == 0:
        return f"{value_kb // KB_PER_MB}MB"
    return f"{value_kb}kB"


def _positive_int(name: str, value) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise PgTuneError(f"pgtune: {name} must be a positive integer, got {value!r}") from None
    if number <= 0:
        raise PgTuneError(f"pgtune: {name} must be a positive integer, got {value!r}")
    return number


def _choice(name: str, value, choices) -> str:
    text = str(value).lower()
    if text not in choices:
        raise PgTuneError(f"pgtune: {name} must be one of {', '.join(choices)}; got {value!r}")
    return text


def pgtune(
    memory_mb,
    cpus=None,
    storage="ssd",
    max_connections=None,
    profile="web",
    version=15,
    db_size="mid_ram",
):
    """Return ``{setting: value}`` for a host, values as strings PostgreSQL accepts.

    :param memory_mb: total memory of the host in MB (``ansible_facts.memtotal_mb``).
    :param cpus: number of CPUs (``ansible_facts.processor_vcpus``); parallel settings are
        emitted only from 4 CPUs on, as in PGTune.
    :param storage: ``ssd``, ``hdd``, ``san`` or ``nvme``.
    :param max_connections: planned max_connections; PGTune's per-profile default if None/0.
    :param profile: ``web``, ``oltp``, ``dw`` (data warehouse), ``desktop`` or ``mixed``.
    :param version: PostgreSQL major version (``15``, ``"17"``, ``15.4``).
    :param db_size: database size against RAM: ``less_ram``, ``mid_ram`` (PGTune's
        default) or ``greater_ram``; adjusts work_mem and random_page_cost.
    """
    total_kb = _positive_int("memory_mb", memory_mb) * KB_PER_MB
    cpu_num = _positive_int("cpus", cpus) if cpus not in (None, "", 0) else None
    storage = _choice("storage", storage, STORAGE_TYPES)
    profile = _choice("profile", profile, PROFILES)
    db_size = _choice("db_size", db_size, DB_SIZES)
    try:
        major = float(str(version))
    except ValueError:
        raise PgTuneError(f"pgtune: version must be a PostgreSQL major version, got {version!r}") from None
    if max_connections in (None, "", 0):
        connections = DEFAULT_CONNECTIONS[profile]
    else:
        connections = _positive_int("max_connections", max_connections)

    shared_buffers = total_kb // 16 if profile == "desktop" else total_kb // 4
    effective_cache_size = total_kb // 4 if profile == "desktop" else total_kb * 3 // 4

    maintenance_work_mem = total_kb // 8 if profile == "dw" else total_kb // 16
    maintenance_work_mem = min(maintenance_work_mem, 8 * KB_PER_GB)

    # 3% of shared_buffers, at most 16MB; rounded up to 16MB above 14MB; at least 32kB.
    wal_buffers = min(3 * shared_buffers // 100, 16 * KB_PER_MB)
    if 14 * KB_PER_MB < wal_buffers < 16 * KB_PER_MB:
        wal_buffers = 16 * KB_PER_MB
    wal_buffers = max(wal_buffers, 32)

    if db_size == "less_ram":
        random_page_cost = "1.1"
    elif storage == "hdd" or profile == "dw":
        random_page_cost = "4"
    else:
        random_page_cost = "1.1"

    parallel = {}
    if cpu_num is not None and cpu_num >= 4:
        per_gather = math.ceil(cpu_num / 2)
        if profile != "dw":
            per_gather = min(per_gather, 4)
        parallel["max_worker_processes"] = str(cpu_num)
        parallel["max_parallel_workers_per_gather"] = str(per_gather)
        if major >= 10:
            parallel["max_parallel_workers"] = str(cpu_num)
        if major >= 11:
            parallel["max_parallel_maintenance_workers"] = str(min(math.ceil(cpu_num / 2), 4))

    workers_for_work_mem = cpu_num if parallel else DEFAULT_MAX_WORKER_PROCESSES
    work_mem_base = (total_kb - shared_buffers) / ((connections + workers_for_work_mem) * 3)
    divisor = {"web": 1, "oltp": 1, "dw": 2, "desktop": 6, "mixed": 2}[profile]
    work_mem = math.floor(work_mem_base / divisor)
    if db_size == "less_ram":
        work_mem = math.floor(work_mem * 1.3)
    elif db_size == "greater_ram":
        work_mem = math.floor(work_mem * 0.9)
    work_mem = max(work_mem, 4 * KB_PER_MB)

    min_wal_mb, max_wal_mb = WAL_SIZES_MB[profile]
    settings = {
        "max_connections": str(connections),
        "shared_buffers": format_kb(shared_buffers),
        "effective_cache_size": format_kb(effective_cache_size),
        "maintenance_work_mem": format_kb(maintenance_work_mem),
        "checkpoint_completion_target": "0.9",
        "wal_buffers": format_kb(wal_buffers),
        "default_statistics_target": "500" if profile == "dw" else "100",
        "random_page_cost": random_page_cost,
        "effective_io_concurrency": str(EFFECTIVE_IO_CONCURRENCY[storage]),
        "work_mem": format_kb(work_mem),
        "min_wal_size": format_kb(min_wal_mb * KB_PER_MB),
        "max_wal_size": format_kb(max_wal_mb * KB_PER_MB),
    }
    settings.update(parallel)
    return settings


class FilterModule:
    """Ansible entry point: ``{{ ansible_facts.memtotal_mb | pgtune(cpus=2, profile='web') }}``."""

    def filters(self):
        return {"pgtune": pgtune}
