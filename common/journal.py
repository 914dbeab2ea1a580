"""The learner's lab notebook on disk: load runs and lab start times, read by the checkers.

Checkers judge what the learner did, not only the cluster's current state: lab 1 compares two of
the learner's own load runs, lab 7 needs a load run that spanned the rollout. So `workerlab load`
appends a summary of each run to a journal, and `workerlab lab reset N` records when lab N began.
Kept small and bounded (the last MAX_RUNS runs).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

MAX_RUNS = 200


def lab_home() -> Path:
    explicit = os.environ.get("WORKERLAB_LAB_HOME")
    if explicit:
        return Path(explicit)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "workerlab"


def _journal_path() -> Path:
    return lab_home() / "load-runs.jsonl"


def _state_path() -> Path:
    return lab_home() / "labs.json"


def record_run(run: dict) -> None:
    """Append one run; never let a read-only home break a load run."""
    path = _journal_path()
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = path.read_text().splitlines() if path.exists() else []
        lines.append(json.dumps(run, sort_keys=True))
        tmp = path.with_suffix(".tmp")
        tmp.write_text("\n".join(lines[-MAX_RUNS:]) + "\n")
        os.replace(tmp, path)


def load_runs(since: float | None = None) -> list[dict]:
    path = _journal_path()
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    runs = []
    for line in lines:
        try:
            run = json.loads(line)
        except ValueError:
            continue
        if isinstance(run, dict) and (since is None or run.get("started_at", 0) >= since):
            runs.append(run)
    return runs


def _read_state() -> dict:
    try:
        state = json.loads(_state_path().read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def mark_lab_started(number: int, at: float | None = None) -> float:
    state = _read_state()
    started = time.time() if at is None else at
    state.setdefault("started", {})[str(number)] = started
    path = _state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=1, sort_keys=True))
    return started


def lab_started_at(number: int) -> float | None:
    value = _read_state().get("started", {}).get(str(number))
    return float(value) if isinstance(value, int | float) else None
