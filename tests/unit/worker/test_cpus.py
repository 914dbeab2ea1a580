"""CPU count from cgroup quotas and affinity, on fake /proc and /sys/fs/cgroup trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from workerlab.worker.cpus import available_cpus


def fake(tmp_path: Path, cgroup: str, files: dict[str, str]) -> tuple[Path, Path]:
    proc, root = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "cgroup").write_text(cgroup)
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return proc, root


@pytest.mark.parametrize(
    ("cpu_max", "affinity", "expected"),
    [
        ("max 100000\n", 8, 8),  # no quota: the affinity mask decides
        ("200000 100000\n", 8, 2),
        ("150000 100000\n", 8, 2),  # 1.5 CPUs: two processes can use them
        ("50000 100000\n", 8, 1),
        ("400000 100000\n", 2, 2),  # quota above the allowed cores
    ],
)
def test_cgroup_v2(tmp_path, cpu_max, affinity, expected):
    proc, root = fake(tmp_path, "0::/\n", {"cpu.max": cpu_max})
    assert available_cpus(proc, root, affinity=affinity) == expected


def test_cgroup_v2_nested_path_is_preferred(tmp_path):
    proc, root = fake(
        tmp_path,
        "0::/kubepods/pod1/ctr\n",
        {"kubepods/pod1/ctr/cpu.max": "300000 100000", "cpu.max": "max 100000"},
    )
    assert available_cpus(proc, root, affinity=16) == 3


def test_cgroup_v1(tmp_path):
    proc, root = fake(
        tmp_path,
        "4:cpu,cpuacct:/\n0::/\n",
        {"cpu,cpuacct/cpu.cfs_quota_us": "250000", "cpu,cpuacct/cpu.cfs_period_us": "100000"},
    )
    assert available_cpus(proc, root, affinity=16) == 3


def test_cgroup_v1_unlimited(tmp_path):
    proc, root = fake(
        tmp_path,
        "3:cpu:/\n",
        {"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"},
    )
    assert available_cpus(proc, root, affinity=4) == 4


def test_nothing_readable_falls_back_to_affinity(tmp_path):
    assert available_cpus(tmp_path / "nope", tmp_path / "nope", affinity=5) == 5


def test_never_below_one(tmp_path):
    proc, root = fake(tmp_path, "0::/\n", {"cpu.max": "1000 100000"})
    assert available_cpus(proc, root, affinity=0) == 1


def test_real_machine_gives_a_positive_count():
    assert available_cpus() >= 1
