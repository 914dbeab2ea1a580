"""The dashboard's time axis: each pod's life and each of its processes' lives over the last
minutes, kept after they are gone. Pure: the model feeds it what the watches and polls saw.

A pod lane is a list of (time, state) changes, state one of starting / ready / notready /
terminating, ended by `gone`; inside it, one span per process the pod's arbiter forked (pid,
slot, started, exited and how), with its request rate sampled on each /processes poll. The
page draws them (static/lanes.js) beside the timeline's marks, so a rollout (new lanes Ready
before old ones end), a heal (a lane ends, a new one starts, the operator's mark), a crash loop
(a lane that never gets Ready, restart marks) and an outage (nothing changes while the API
server is lost) each look different.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from workerlab.api.objects import created_at, pod_ready, pod_terminating
from workerlab.api.processes import ProcessRecord

SPAN_S = 300.0  # what the page shows at most, and how long a gone pod's lane is kept
MIN_SPAN_S = 60.0  # a page opened a moment ago still shows a minute
RATE_SAMPLES = 150  # per process: one per poll (2 s) over SPAN_S


@dataclass
class ProcessSpan:
    pid: int
    index: int | None
    started: float | None
    exited: float | None = None
    exit: str | None = None
    last: tuple[float, int] | None = None  # (when, requests_served) at the previous poll
    rate: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=RATE_SAMPLES))

    def to_dict(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "index": self.index,
            "started": self.started,
            "exited": self.exited,
            "exit": self.exit,
            "rate": [[round(t, 2), round(r, 2)] for t, r in self.rate],
        }


@dataclass
class PodLane:
    name: str
    wc: str | None
    node: str | None
    created: float
    states: list[tuple[float, str]] = field(default_factory=list)
    gone: float | None = None
    restarts: list[float] = field(default_factory=list)  # the kubelet restarted its container
    processes: dict[int, ProcessSpan] = field(default_factory=dict)

    @property
    def state(self) -> str | None:
        return self.states[-1][1] if self.states else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "wc": self.wc,
            "node": self.node,
            "created": self.created,
            "states": [[t, s] for t, s in self.states],
            "gone": self.gone,
            "restarts": self.restarts,
            "processes": [p.to_dict() for p in self.processes.values()],
        }


def pod_state(obj: dict[str, Any], was: str | None) -> str:
    if pod_terminating(obj):
        return "terminating"
    if pod_ready(obj):
        return "ready"
    return "notready" if was in ("ready", "notready") else "starting"


@dataclass
class LaneBook:
    lanes: dict[str, PodLane] = field(default_factory=dict)  # by pod uid (a name is reused)
    first_seen: float | None = None  # when the page began watching: the axis starts near it

    def pod(self, uid: str, obj: dict[str, Any], wc: str | None, now: float) -> None:
        if self.first_seen is None:
            self.first_seen = now
        lane = self.lanes.get(uid)
        if lane is None:
            name = str(obj["metadata"]["name"])
            created = created_at(obj) or now
            lane = self.lanes[uid] = PodLane(name, wc, None, min(created, now))
        lane.node = (obj.get("spec") or {}).get("nodeName") or lane.node
        state = pod_state(obj, lane.state)
        if state != lane.state:
            lane.states.append((lane.created if not lane.states else now, state))

    def gone(self, uid: str, now: float) -> None:
        lane = self.lanes.get(uid)
        if lane is not None and lane.gone is None:
            lane.gone = now

    def restarted(self, uid: str, at: float) -> None:
        if (lane := self.lanes.get(uid)) is not None:
            lane.restarts.append(at)
            for span in lane.processes.values():  # the container's processes died with it
                if span.exited is None:
                    span.exited, span.exit = at, "container restarted"

    def processes(self, uid: str, records: list[ProcessRecord], now: float) -> None:
        lane = self.lanes.get(uid)
        if lane is None:
            return
        for record in records:
            span = lane.processes.get(record.pid)
            if span is None and not record.alive and (record.exited_at or now) < now - SPAN_S:
                continue  # long dead, listed by the arbiter still: off the axis
            if span is None:
                span = lane.processes[record.pid] = ProcessSpan(
                    record.pid, record.index, record.started_at or now
                )
            if not record.alive and span.exited is None:
                span.exited, span.exit = record.exited_at or now, record.exit or "exited"
            served = record.requests_served
            if record.alive and served is not None:
                if span.last is not None and now > span.last[0]:
                    per_s = max(0, served - span.last[1]) / (now - span.last[0])
                    span.rate.append((now, per_s))
                span.last = (now, served)

    def prune(self, now: float, keep_s: float = SPAN_S) -> None:
        horizon = now - keep_s
        for uid in [u for u, lane in self.lanes.items() if lane.gone and lane.gone < horizon]:
            del self.lanes[uid]
        for lane in self.lanes.values():
            for pid in [p for p, s in lane.processes.items() if s.exited and s.exited < horizon]:
                del lane.processes[pid]

    def view(self, now: float, span_s: float = SPAN_S) -> dict[str, Any]:
        """The axis spans the last `span_s` seconds, or less while the page is younger: from a
        little before it began watching, so a fresh page is not a sliver at the right edge."""
        self.prune(now, span_s)
        lanes = sorted(self.lanes.values(), key=lambda lane: (lane.node or "", lane.created))
        began = (self.first_seen if self.first_seen is not None else now) - 10.0
        start = min(max(now - span_s, began), now - MIN_SPAN_S)
        return {"from": start, "to": now, "pods": [lane.to_dict() for lane in lanes]}
