"""`workerlab class`: a learner's recorded passes (ConfigMap `workerlab-progress` in their
namespace) and the instructor's learner x lab grid. Pure."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_RECORDED_RUNS = 20


def lab_key(number: int) -> str:
    return f"lab-{number}"


def progress_entry(
    items: list[Any], runs: list[dict], at: float, started_at: float | None = None
) -> str:
    """The record of a passed check: when the lab was started (`lab reset N`) and passed, what
    passed, and the learner's load runs it used (they happened on the learner's machine;
    `class check` re-judges the cluster with them, from the same start)."""
    return json.dumps(
        {
            "started_at": started_at,
            "passed_at": at,
            "items": [getattr(i, "name", str(i)) for i in items],
            "runs": runs[-MAX_RECORDED_RUNS:],
        },
        sort_keys=True,
    )


def verified_entry(record: dict, at: float) -> str:
    """The instructor's note that a re-run of the learner's recorded pass passed at `at`."""
    return json.dumps({"verified_at": at, "passed_at": record.get("passed_at")}, sort_keys=True)


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


@dataclass(frozen=True)
class Standing:
    """A learner's passes: claimed (their own record) and verified (the instructor's re-run
    passed, after the record it re-checked). A record newer than its verification is a claim
    again: the learner passed once more since."""

    claimed: dict[int, dict]
    verified: dict[int, dict]

    def is_verified(self, number: int) -> bool:
        record, seen = self.claimed.get(number), self.verified.get(number)
        if not record or not seen:
            return False
        return seen.get("passed_at") == record.get("passed_at")

    def only_claimed(self, number: int) -> bool:
        return number in self.claimed and not self.is_verified(number)


LEGEND = (
    "ok verified (`workerlab class check NAME N` re-ran it and it passed)  "
    "c claimed (the learner's own record, not re-checked yet)  . not yet  "
    "- the instructor's lab (needs cluster-admin)"
)


def _cell(standing: Standing, lab: GridLab) -> str:
    if lab.cluster_admin:
        return "-"
    if standing.is_verified(lab.number):
        return "ok"
    return "c" if lab.number in standing.claimed else "."


def grid_rows(
    standings: dict[str, Standing], labs: list[GridLab]
) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the learner x lab grid (see LEGEND); the last columns count the labs a
    learner can do: verified, and claimed only."""
    header = ["learner", *(str(lab.number) for lab in labs), "verified", "claimed"]
    doable = [lab for lab in labs if not lab.cluster_admin]
    rows = []
    for learner in sorted(standings):
        standing = standings[learner]
        cells = [_cell(standing, lab) for lab in labs]
        verified = sum(standing.is_verified(lab.number) for lab in doable)
        claimed = sum(standing.only_claimed(lab.number) for lab in doable)
        rows.append([learner, *cells, f"{verified}/{len(doable)}", str(claimed)])
    return header, rows
