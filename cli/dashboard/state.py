"""What the dashboard knows of each pod and its processes, between two watch events."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from workerlab.api.resource import LABEL_INSTANCE


@dataclass
class ProcState:
    pid: int
    index: int | None
    started_at: float | None
    requests_served: int | None  # the learner's requests (workerlab.api.traffic)
    alive: bool
    exit: str | None = None
    exited_at: float | None = None
    control_served: int | None = None  # probes, polls and scrapes: shown apart, never summed in


@dataclass
class PodState:
    obj: dict[str, Any]
    first_seen: float
    was_ready: bool = False
    processes: dict[int, ProcState] | None = None
    processes_error: str | None = None
    arbiter_pid: int | None = None
    # pid -> deque[(t, requests_served)]: the learner's requests only
    samples: dict[int, deque[tuple[float, int]]] = field(default_factory=dict)
    # pids gone without a replacement seen yet: pid -> when it exited
    open_process_faults: dict[int, float] = field(default_factory=dict)
    restart_fault_at: float | None = None  # restartCount went up, not Ready again yet

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def uid(self) -> str:
        return str(self.obj["metadata"].get("uid", ""))

    @property
    def wc(self) -> str | None:
        return ((self.obj["metadata"].get("labels") or {}).get(LABEL_INSTANCE)) or None


def replicas(wc: dict[str, Any] | None) -> int:
    return int(((wc or {}).get("spec") or {}).get("replicas", 0))
