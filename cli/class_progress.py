"""`workerlab class`: a learner's recorded passes (ConfigMap `workerlab-progress` in their
namespace) and the instructor's learner x lab grid. Pure."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_RECORDED_RUNS = 20


def lab_key(number: int) -> str:
    return f"lab-{number}"


def progress_entry(items: list[Any], runs: list[dict], at: float) -> str:
    """The record of a passed check: when, what passed, and the learner's load runs it used
    (they happened on the learner's machine; `class check` re-judges the cluster with them)."""
    return json.dumps(
        {
            "passed_at": at,
            "items": [getattr(i, "name", str(i)) for i in items],
            "runs": runs[-MAX_RECORDED_RUNS:],
        },
        sort_keys=True,
    )


def progress_of(configmap: dict | None) -> dict[int, dict]:
    """lab number -> its record, from the progress ConfigMap; malformed entries are skipped."""
    found: dict[int, dict] = {}
    for key, value in ((configmap or {}).get("data") or {}).items():
        if not key.startswith("lab-") or not key[4:].isdigit():
            continue
        try:
            record = json.loads(value)
        except ValueError:
            continue
        if isinstance(record, dict):
            found[int(key[4:])] = record
    return found


@dataclass(frozen=True)
class GridLab:
    number: int
    cluster_admin: bool  # not doable with a learner's rights: shown as "-"


def grid_rows(
    progress: dict[str, dict[int, dict]], labs: list[GridLab]
) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the learner x lab grid: `ok` passed (recorded), `.` not yet, `-` the
    lab needs cluster-admin (the instructor's)."""
    header = ["learner", *(str(lab.number) for lab in labs), "passed"]
    rows = []
    for learner in sorted(progress):
        done = progress[learner]
        cells = [
            "ok" if lab.number in done else ("-" if lab.cluster_admin else ".") for lab in labs
        ]
        doable = [lab for lab in labs if not lab.cluster_admin]
        passed = sum(lab.number in done for lab in doable)
        rows.append([learner, *cells, f"{passed}/{len(doable)}"])
    return header, rows
