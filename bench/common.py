"""Shared helpers: the machine's description, waiting, medians and ratios, the API client.

Every bench script imports only workerlab.* and its siblings in bench/ (never the repo root,
whose operator/ folder would shadow the standard library's `operator`).
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
CONTEXT = "kind-workerlab"
NAMESPACE = "bench"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text().split()
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(int(meminfo[meminfo.index("MemTotal:") + 1]) / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def wait_until(
    check: Callable[[], Any], timeout: float, interval: float = 0.2, what: str = "condition"
) -> Any:
    """Poll `check` until it returns something truthy; TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def ratio(subject: float | None, reference: float | None) -> float | None:
    if not subject or not reference:
        return None
    return round(subject / reference, 3)


def run(args: list[str], timeout: float = 60, check: bool = True, **kw: Any) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def kubectl(*args: str, stdin: str | None = None, timeout: float = 60, check: bool = True) -> str:
    return run(["kubectl", "--context", CONTEXT, *args], timeout, check, input=stdin)
