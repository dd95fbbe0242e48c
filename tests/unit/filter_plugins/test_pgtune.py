"""PGTune's numbers for three reference hosts (PostgreSQL 15, Linux).

Where the expected values come from: the formulas in le0pard/pgtune,
src/features/configuration/configurationSlice.js (selectors selectSharedBuffers,
selectEffectiveCacheSize, selectMaintenanceWorkMem, selectCheckpointSegments,
selectWalBuffers, selectDefaultStatisticsTarget, selectRandomPageCost,
selectEffectiveIoConcurrency, selectParallelSettings, selectWorkMem, selectMaxConnections),
worked by hand below, and printed with the units of PGTune's formatValue (GB/MB if exact,
else kB). Database size is PGTune's default "mid_ram" (no work_mem adjustment).

web, 4 GB, 2 CPUs, ssd, connections unset (PGTune default 200 for web):
  total = 4 * 1048576 kB = 4194304 kB
  shared_buffers        = total / 4         = 1048576 kB  -> 1GB
  effective_cache_size  = total * 3 / 4     = 3145728 kB  -> 3GB
  maintenance_work_mem  = total / 16        = 262144 kB   -> 256MB (cap 8GB not reached)
  wal_buffers           = 3% of 1048576 = 31457 kB, capped at 16384 kB -> 16MB
  min/max_wal_size      = 1024 MB / 4096 MB -> 1GB / 4GB
  random_page_cost 1.1 (ssd), effective_io_concurrency 200 (ssd),
  default_statistics_target 100, checkpoint_completion_target 0.9
  2 CPUs < 4: no parallel settings, so work_mem uses the default 8 worker processes:
  work_mem = (4194304 - 1048576) / ((200 + 8) * 3) = 3145728 / 624 = 5041.2 -> 5041kB

oltp, 16 GB, 8 CPUs, ssd, connections unset (300 for oltp):
  total = 16777216 kB
  shared_buffers 4194304 kB -> 4GB; effective_cache_size 12582912 kB -> 12GB
  maintenance_work_mem 16777216 / 16 = 1048576 kB -> 1GB; wal_buffers 16MB
  min/max_wal_size 2GB / 8GB; random_page_cost 1.1; effective_io_concurrency 200
  parallel: max_worker_processes 8, per_gather ceil(8/2) = 4 (cap 4),
            max_parallel_workers 8, max_parallel_maintenance_workers min(4, 4) = 4
  work_mem = (16777216 - 4194304) / ((300 + 8) * 3) = 12582912 / 924 = 13617.9 -> 13617kB

dw, 64 GB, 16 CPUs, hdd, connections unset (40 for dw):
  total = 67108864 kB
  shared_buffers 16777216 kB -> 16GB; effective_cache_size 50331648 kB -> 48GB
  maintenance_work_mem = total / 8 = 8388608 kB = the 8GB cap -> 8GB; wal_buffers 16MB
  min/max_wal_size 4GB / 16GB; default_statistics_target 500
  random_page_cost 4 (hdd); effective_io_concurrency 2 (hdd)
  parallel: max_worker_processes 16, per_gather ceil(16/2) = 8 (no cap for dw),
            max_parallel_workers 16, max_parallel_maintenance_workers min(8, 4) = 4
  work_mem = (67108864 - 16777216) / ((40 + 16) * 3) / 2 = 50331648 / 168 / 2
           = 299593.14 / 2 = 149796.57 -> 149796kB
"""

import pytest

from filter_plugins.pgtune import FilterModule, PgTuneError, format_kb, pgtune

COMMON = {"checkpoint_completion_target": "0.9", "wal_buffers": "16MB"}

WEB_4GB_2CPU_SSD = {
    **COMMON,
    "max_connections": "200",
    "shared_buffers": "1GB",
    "effective_cache_size": "3GB",
    "maintenance_work_mem": "256MB",
    "default_statistics_target": "100",
    "random_page_cost": "1.1",
    "effective_io_concurrency": "200",
    "work_mem": "5041kB",
    "min_wal_size": "1GB",
    "max_wal_size": "4GB",
}

OLTP_16GB_8CPU_SSD = {
    **COMMON,
    "max_connections": "300",
    "shared_buffers": "4GB",
    "effective_cache_size": "12GB",
    "maintenance_work_mem": "1GB",
    "default_statistics_target": "100",
    "random_page_cost": "1.1",
    "effective_io_concurrency": "200",
    "work_mem": "13617kB",
    "min_wal_size": "2GB",
    "max_wal_size": "8GB",
    "max_worker_processes": "8",
    "max_parallel_workers_per_gather": "4",
    "max_parallel_workers": "8",
    "max_parallel_maintenance_workers": "4",
}

DW_64GB_16CPU_HDD = {
    **COMMON,
    "max_connections": "40",
    "shared_buffers": "16GB",
    "effective_cache_size": "48GB",
    "maintenance_work_mem": "8GB",
    "default_statistics_target": "500",
    "random_page_cost": "4",
    "effective_io_concurrency": "2",
    "work_mem": "149796kB",
    "min_wal_size": "4GB",
    "max_wal_size": "16GB",
    "max_worker_processes": "16",
    "max_parallel_workers_per_gather": "8",
    "max_parallel_workers": "16",
    "max_parallel_maintenance_workers": "4",
}


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (dict(memory_mb=4096, cpus=2, storage="ssd", profile="web", version=15), WEB_4GB_2CPU_SSD),
        (dict(memory_mb=16384, cpus=8, storage="ssd", profile="oltp", version=15), OLTP_16GB_8CPU_SSD),
        (dict(memory_mb=65536, cpus=16, storage="hdd", profile="dw", version=15), DW_64GB_16CPU_HDD),
    ],
    ids=["web-4GB-2cpu-ssd", "oltp-16GB-8cpu-ssd", "dw-64GB-16cpu-hdd"],
)
def test_reproduces_pgtune(kwargs, expected):
    assert pgtune(**kwargs) == expected


def test_given_connections_change_work_mem():
    # web 4 GB, 100 connections: 3145728 / ((100 + 8) * 3) = 9709.0 -> 9709kB
    result = pgtune(4096, cpus=2, max_connections=100, profile="web", version="15")
    assert result["max_connections"] == "100"
    assert result["work_mem"] == "9709kB"


def test_work_mem_floor_is_4mb():
    # desktop 1 GB: (1048576 - 65536) / ((20 + 8) * 3) / 6 = 1950 kB, raised to 4096 kB
    assert pgtune(1024, cpus=1, profile="desktop")["work_mem"] == "4MB"


def test_small_memory_wal_buffers():
    # desktop 512 MB: shared_buffers 32768 kB, 3% = 983 kB
    result = pgtune(512, profile="desktop")
    assert result["shared_buffers"] == "32MB"
    assert result["wal_buffers"] == "983kB"


def test_dw_on_ssd_keeps_default_random_page_cost():
    assert pgtune(8192, cpus=4, storage="ssd", profile="dw")["random_page_cost"] == "4"
    assert pgtune(8192, cpus=4, storage="ssd", profile="dw", db_size="less_ram")["random_page_cost"] == "1.1"


def test_san_io_concurrency():
    assert pgtune(8192, cpus=4, storage="san")["effective_io_concurrency"] == "300"


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(memory_mb=0),
        dict(memory_mb="lots"),
        dict(memory_mb=4096, profile="gaming"),
        dict(memory_mb=4096, storage="tape"),
        dict(memory_mb=4096, cpus=-1),
        dict(memory_mb=4096, version="fifteen"),
    ],
)
def test_rejects_bad_input(kwargs):
    with pytest.raises(PgTuneError):
        pgtune(**kwargs)


def test_format_kb():
    assert format_kb(1048576) == "1GB"
    assert format_kb(1536) == "1536kB"
    assert format_kb(2048) == "2MB"


def test_filter_module_exposes_pgtune():
    assert FilterModule().filters()["pgtune"] is pgtune
