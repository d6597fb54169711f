"""Container usage from cgroup files: /proc/<pid>/cgroup parsing, v1 and v2 layouts, percent of limits."""

import os
from pathlib import Path

import pytest

from p2porch.agent.cgroups import Sample, UsageMeter, cgroup_files, parse_proc_cgroup, read_sample

V1 = "12:memory:/p2porch-x/abc\n4:cpu,cpuacct:/p2porch-x/abc\n1:name=systemd:/p2porch-x/abc\n0::/\n"
V2 = "0::/system.slice/docker-abc.scope\n"


def fake(tmp: Path, proc_text: str, files: dict[str, str]) -> tuple[Path, Path]:
    (tmp / "proc" / "42").mkdir(parents=True)
    (tmp / "proc" / "42" / "cgroup").write_text(proc_text)
    for rel, text in files.items():
        path = tmp / "cg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp / "cg", tmp / "proc"


def test_parse_proc_cgroup_splits_joined_controllers():
    parsed = parse_proc_cgroup(V1)
    assert parsed["cpuacct"] == parsed["cpu"] == "/p2porch-x/abc" and parsed[""] == "/"


def test_v1_hierarchy_reads_cpuacct_ns_and_usage_in_bytes(tmp_path):
    root, proc = fake(
        tmp_path,
        V1,
        {
            "cpuacct/p2porch-x/abc/cpuacct.usage": "2500000\n",
            "memory/p2porch-x/abc/memory.usage_in_bytes": "4096\n",
        },
    )
    files = cgroup_files(42, root, proc)
    assert files is not None and not files.v2
    assert read_sample(files, 1.0) == Sample(1.0, 2500, 4096)


def test_v2_hierarchy_reads_usage_usec_and_memory_current(tmp_path):
    root, proc = fake(
        tmp_path,
        V2,
        {
            "system.slice/docker-abc.scope/cpu.stat": "usage_usec 777\nuser_usec 700\n",
            "system.slice/docker-abc.scope/memory.current": "8192\n",
        },
    )
    files = cgroup_files(42, root, proc)
    assert files is not None and files.v2
    assert read_sample(files, 2.0) == Sample(2.0, 777, 8192)


def test_unreadable_cgroup_is_none_for_the_engine_fallback(tmp_path):
    assert cgroup_files(42, tmp_path, tmp_path) is None  # no such pid
    root, proc = fake(tmp_path, V2, {})
    assert cgroup_files(42, root, proc) is None  # files absent (another mount namespace)


def test_this_process_cgroup_is_readable_on_this_host():
    files = cgroup_files(os.getpid())
    if files is None:
        pytest.skip("no cgroup mount readable here: the engine fallback applies")
    sample = read_sample(files, 0.0)
    assert sample.cpu_usec > 0 and sample.memory_bytes > 0


def test_meter_turns_two_samples_into_percent_of_the_limits():
    meter = UsageMeter()
    assert meter.update("t1", Sample(10.0, 1_000_000, 100), cpu_limit=0.5, memory_limit=1000) is None
    usage = meter.update("t1", Sample(12.0, 1_500_000, 250), cpu_limit=0.5, memory_limit=1000)
    assert usage is not None
    assert (usage.cpu_cores, usage.cpu_percent, usage.memory_percent) == (0.25, 50.0, 25.0)
    unlimited = meter.update("t1", Sample(14.0, 1_500_000, 250), cpu_limit=None, memory_limit=None)
    assert unlimited is not None and unlimited.cpu_percent is None and unlimited.cpu_cores == 0.0
    assert meter.update("t1", Sample(13.0, 0, 1), cpu_limit=None, memory_limit=None) is None  # restarted
    meter.forget_except(set())
    assert meter.update("t1", Sample(20.0, 9, 1), cpu_limit=None, memory_limit=None) is None
