"""The record a worker publishes on `GET /processes`: its arbiter and each forked process.

The worker writes it, the operator counts live processes from it, the CLI and the checkers show
and judge it: one definition, so "alive" means the same everywhere.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ProcessRecord:
    """One process the arbiter forked; dead ones stay listed (bounded) so a learner sees them."""

    pid: int
    index: int | None = None  # the slot 0..N-1 a replacement reuses
    generation: int | None = None
    started_at: float | None = None  # epoch seconds
    requests_served: int | None = None  # the learner's requests answered (see api.traffic)
    in_flight: int | None = None  # the learner's requests begun and not yet answered
    control_served: int | None = None  # probes, polls and scrapes answered; None: an older worker
    alive: bool = False  # a record that does not say it is alive is not counted as alive
    exited_at: float | None = None
    exit: str | None = None  # how it ended, as the arbiter saw it

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ProcessRecord:
        return cls(
            pid=int(raw["pid"]),
            index=raw.get("index"),
            generation=raw.get("generation"),
            started_at=raw.get("started_at"),
            requests_served=raw.get("requests_served"),
            in_flight=raw.get("in_flight"),
            control_served=raw.get("control_served"),
            alive=bool(raw.get("alive", False)),
            exited_at=raw.get("exited_at"),
            exit=raw.get("exit"),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ProcessesReport:
    """The whole answer of `GET /processes`."""

    pod: str | None = None
    arbiter_pid: int | None = None
    served_by: int | None = None  # the process that answered this request
    balance: str | None = None  # how connections reach the processes: "shared" or "reuseport"
    processes: list[ProcessRecord] = field(default_factory=list)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ProcessesReport:
        records = [r for r in raw.get("processes") or [] if isinstance(r, dict) and "pid" in r]
        return cls(
            pod=raw.get("pod"),
            arbiter_pid=raw.get("arbiter_pid"),
            served_by=raw.get("served_by"),
            balance=raw.get("balance"),
            processes=[ProcessRecord.from_dict(r) for r in records],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "pod": self.pod,
            "arbiter_pid": self.arbiter_pid,
            "served_by": self.served_by,
            "balance": self.balance,
            "processes": [p.to_dict() for p in self.processes],
        }

    @property
    def alive(self) -> list[ProcessRecord]:
        return [p for p in self.processes if p.alive]

    @property
    def alive_count(self) -> int:
        return len(self.alive)


@dataclass(frozen=True)
class Replacement:
    """A dead process and the live one its arbiter forked into the same slot after it."""

    dead: ProcessRecord
    successor: ProcessRecord


@dataclass(frozen=True)
class PodReplacement:
    """A replacement seen in one pod's record, with the arbiter that made it."""

    pod: str
    arbiter_pid: int | None
    replacement: Replacement


def replacements(report: ProcessesReport) -> list[Replacement]:
    """The dead processes the arbiter has already replaced (a dead one without a successor yet,
    or retired by a scale-down, is not listed): the arbiter's heals, as the record shows them."""
    found = []
    for dead in report.processes:
        if dead.alive or dead.index is None:
            continue
        after = [
            p
            for p in report.alive
            if p.index == dead.index and (p.generation or 0) > (dead.generation or 0)
        ]
        if after:
            found.append(Replacement(dead, min(after, key=lambda p: p.generation or 0)))
    return found


def alive_count(raw: dict[str, Any]) -> int:
    """Processes alive in a raw `/processes` answer."""
    return ProcessesReport.from_dict(raw).alive_count
