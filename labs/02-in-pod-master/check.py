"""Lab 2: the arbiter replaces a killed process, and TTIN/TTOU change the process count live.

Evidence comes from the learner's running local worker: its GET /processes (dead and live
records per slot) and /proc (which process is the parent of the replacement).
"""

from __future__ import annotations

from pathlib import Path

import httpx

from workerlab.api.processes import ProcessesReport
from workerlab.labs.checking import CheckContext, Checker, Item, item

DEFAULT_URL = "http://127.0.0.1:8002"
TARGET_PROCESSES = 3  # started with 2, one TTIN


def parent_pid(pid: int, proc: Path = Path("/proc")) -> int | None:
    try:
        for line in (proc / str(pid) / "status").read_text().splitlines():
            if line.startswith("PPid:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def gather(ctx: CheckContext) -> dict:
    url = ctx.options.get("url") or DEFAULT_URL
    try:
        report = httpx.get(f"{url}/processes", timeout=3, trust_env=False).json()
    except (httpx.HTTPError, ValueError) as error:
        return {"url": url, "error": f"{type(error).__name__}: {error}"}
    parents = {p.pid: parent_pid(p.pid) for p in ProcessesReport.from_dict(report).alive}
    return {"url": url, "report": report, "parents": parents}


def evaluate(facts: dict) -> list[Item]:
    url = facts["url"]
    start = (
        f"WORKER_PROCESSES=2 WORKERLAB_LAB_MODE=1 workerlab worker --bind {url.split('//')[1]} &"
    )
    if "error" in facts:
        return [item("your worker answers on " + url, False, facts["error"], f"start it: {start}")]
    report, parents = facts["report"], facts["parents"]
    parsed = ProcessesReport.from_dict(report)
    alive = parsed.alive
    dead = [r for r in parsed.processes if not r.alive]
    arbiter = parsed.arbiter_pid
    items = [item("your worker answers on " + url, True, f"arbiter pid {arbiter}")]
    items.append(
        item(
            "a process died and the arbiter reaped it",
            dead,
            ", ".join(f"pid {r.pid}" + (f" ({r.exit})" if r.exit else "") for r in dead[:3]),
            f"crash one: curl -s -X POST {url}/crash  (needs WORKERLAB_LAB_MODE=1)",
        )
    )
    # Each live process once, even when its slot has seen several deaths before it.
    replacements = [
        r
        for r in alive
        if any(r.index == d.index and (r.started_at or 0) >= (d.exited_at or 0) for d in dead)
    ]
    # JSON keys are strings: facts may have been through --json or a test's fixture file.
    parent = {int(pid): ppid for pid, ppid in parents.items()}
    healed_by_arbiter = [r for r in replacements if parent.get(r.pid) == arbiter]
    items.append(
        item(
            "who healed it? the arbiter forked a replacement into the same slot",
            healed_by_arbiter,
            ", ".join(
                f"pid {r.pid} in slot {r.index}, parent {parent.get(r.pid)}"
                for r in healed_by_arbiter[:3]
            ),
            "no live process has taken a dead one's slot with the arbiter as parent: "
            "crash a process, wait 2 s, then check again",
        )
    )
    items.append(
        item(
            f"scaled live to {TARGET_PROCESSES} processes with TTIN",
            len(alive) == TARGET_PROCESSES,
            f"{len(alive)} live processes",
            f"send kill -TTIN {arbiter} (one more) or kill -TTOU {arbiter} (one fewer) until "
            f"{TARGET_PROCESSES} are alive",
        )
    )
    return items


def reset(ctx: CheckContext) -> list[str]:
    return ["local lab: stop any worker you started for it (kill $WORKER), then follow the steps"]


CHECKER = Checker(gather, evaluate, reset)
