"""py-spy on a server process under wrk load: a flamegraph (SVG) and a top summary computed
from the collapsed stacks (self time and inclusive time per function)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from common import log, run
from wrk import wrk

PY_SPY = str(Path(sys.executable).parent / "py-spy")


def _children(pid: int) -> list[int]:
    out = run(["pgrep", "-P", str(pid)], check=False)
    return [int(p) for p in out.split()]


def summarize(collapsed: Path, top: int = 15) -> dict:
    own: Counter = Counter()
    inclusive: Counter = Counter()
    by_package: Counter = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1] for f in stack.split(";") if f]
        n = int(count)
        total += n
        if frames:
            own[frames[-1]] += n
            by_package[_package(frames[-1])] += n
        for frame in set(frames):
            inclusive[frame] += n

    def share(counter: Counter) -> list[dict]:
        return [
            {"function": f, "percent": round(100 * n / total, 1)}
            for f, n in counter.most_common(top)
        ]

    return {
        "samples": total,
        "self_by_package": share(by_package),
        "self": share(own),
        "inclusive": share(inclusive),
    }


def _package(frame: str) -> str:
    """'f (starlette/routing.py:255)' -> 'starlette'; stdlib files and frozen modules: 'stdlib'."""
    where = frame.rsplit(" (", 1)[-1].rstrip(")")
    if "/" not in where:
        return "stdlib"
    return where.split("/")[0]


def profile_server(pid: int, url: str, out_dir: Path, name: str, seconds: float = 8) -> dict:
    """Record the first forked process of the arbiter `pid` while wrk loads `url`."""
    if not Path(PY_SPY).exists() and not shutil.which("py-spy"):
        return {"skipped": "py-spy not installed (.venv/bin/pip install py-spy)"}
    target = (_children(pid) or [pid])[0]
    collapsed, svg = out_dir / f"{name}.collapsed.txt", out_dir / f"{name}.svg"
    results = {}
    for fmt, path in (("raw", collapsed), ("flamegraph", svg)):
        loader = subprocess.Popen(
            ["wrk", "-t1", "-c32", f"-d{seconds + 3}s", url], stdout=subprocess.DEVNULL
        )
        try:
            cmd = [PY_SPY, "record", "-p", str(target), "-d", str(int(seconds)), "-r", "250"]
            run([*cmd, "--format", fmt, "-o", str(path), "--nonblocking"], timeout=seconds + 60)
        finally:
            loader.wait(seconds + 30)
        results[fmt] = str(path.relative_to(out_dir.parent.parent))
    log(f"py-spy: {name} profiled (pid {target})")
    return {"files": results, **summarize(collapsed)}


__all__ = ["profile_server", "summarize", "wrk"]
