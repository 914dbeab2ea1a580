"""How many CPUs this container may use: the cgroup CPU quota and the affinity mask.

`os.cpu_count()` reports the host's CPUs; a pod limited to `cpu: 2` on a 64-core node must not
fork 64 processes. The quota is rounded up: a 1.5-CPU limit can keep two processes busy.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

_V1_CPU_DIRS = ("cpu", "cpu,cpuacct", "cpuacct,cpu")


def available_cpus(
    proc_root: Path = Path("/proc"),
    cgroup_root: Path = Path("/sys/fs/cgroup"),
    affinity: int | None = None,
) -> int:
    """min(affinity, ceil(cgroup quota)), at least 1."""
    if affinity is None:
        try:
            affinity = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            affinity = os.cpu_count() or 1
    quota = cgroup_cpu_quota(proc_root, cgroup_root)
    cpus = affinity if quota is None else min(affinity, math.ceil(quota))
    return max(1, cpus)


def cgroup_cpu_quota(proc_root: Path, cgroup_root: Path) -> float | None:
    """The CPU quota in CPUs (e.g. 1.5), or None when unlimited or unknown."""
    v2_path, v1_paths = _own_cgroup_paths(proc_root)
    if v2_path is not None:
        for candidate in _candidates(cgroup_root, v2_path, "cpu.max"):
            quota = _read_v2(candidate)
            if not isinstance(quota, _Missing):
                return quota
    for controller_dir in _V1_CPU_DIRS:
        path = v1_paths.get(controller_dir, v1_paths.get("cpu", "/"))
        base = cgroup_root / controller_dir
        for candidate in _candidates(base, path, "cpu.cfs_quota_us"):
            quota = _read_v1(candidate)
            if not isinstance(quota, _Missing):
                return quota
    return None


class _Missing:
    """A quota file that is not there (as opposed to one saying "unlimited")."""


_MISSING = _Missing()


def _own_cgroup_paths(proc_root: Path) -> tuple[str | None, dict[str, str]]:
    """The v2 path ("0::/x") and the v1 paths by controller list ("4:cpu,cpuacct:/x")."""
    v2: str | None = None
    v1: dict[str, str] = {}
    try:
        lines = (proc_root / "self" / "cgroup").read_text().splitlines()
    except OSError:
        return "/", {}
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":
            v2 = path
        elif "cpu" in controllers.split(","):
            v1[controllers] = path
            v1["cpu"] = path
    return v2, v1


def _candidates(base: Path, cgroup_path: str, filename: str) -> list[Path]:
    # Inside a container the cgroup namespace usually mounts our own cgroup at the root;
    # without one, our cgroup sits at its path below the root. Try the most specific first.
    relative = cgroup_path.strip("/")
    paths = [base / relative / filename] if relative else []
    paths.append(base / filename)
    return paths


def _read_v2(path: Path) -> float | _Missing | None:
    try:
        fields = path.read_text().split()
    except OSError:
        return _MISSING
    if len(fields) != 2 or fields[0] == "max":
        return None
    try:
        quota, period = int(fields[0]), int(fields[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _read_v1(quota_path: Path) -> float | _Missing | None:
    try:
        quota = int(quota_path.read_text().strip())
        period = int((quota_path.parent / "cpu.cfs_period_us").read_text().strip())
    except (OSError, ValueError):
        return _MISSING
    return quota / period if quota > 0 and period > 0 else None
