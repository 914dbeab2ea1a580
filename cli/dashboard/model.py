"""The dashboard's view model: a pure fold of what the watches and polls saw.

Inputs (each with the time it was seen, so tests drive the clock):
  - `wc(type, obj)`, `pod(type, obj)`, `event(type, obj)`: watch events (ADDED, MODIFIED,
    DELETED) of WorkerClusters, pods and Events, or the items of a (re)list through `resync`;
  - `processes(pod_name, report)`: one answer of a pod's `GET /processes`.

Outputs: `view()` (view.py), a JSON-ready dict of both levels (WorkerCluster -> pods ->
processes, desired vs ready at each level, recent requests per process and per pod) and
`timeline`, the
"who healed it" entries, each tagged with the level that acted:

  operator  the operator's Events on a WorkerCluster (CreatedPod, ReplacedPod, ...), and a
            replacement pod turning Ready after a pod vanished (time from fault to healed);
  kubelet   a container's restartCount went up (restarted in place), healed when Ready again;
  arbiter   a pid vanished from a pod's /processes and a new one appeared in the same pod
            with the restart count unchanged (gunicorn forked a replacement).
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from workerlab.api.objects import (
    epoch,
    event_time,
    pod_ready,
    pod_restarts,
    pod_terminating,
)
from workerlab.api.processes import ProcessesReport
from workerlab.api.resource import KIND, LABEL_INSTANCE
from workerlab.cli.dashboard.view import state_view

OPERATOR, KUBELET, ARBITER, YOU, CLUSTER = "operator", "kubelet", "arbiter", "you", "cluster"
TIMELINE_MAX = 300
SAMPLES_MAX = 120  # per process: request-count samples kept for the "recent requests" window
DEFAULT_WINDOW_S = 30.0
EVENT_HISTORY_S = 900.0  # Events older than this, found by a (re)list, stay off the timeline


@dataclass
class Entry:
    seq: int
    at: float  # epoch seconds: when it happened (healed), as best known
    level: str  # operator | kubelet | arbiter | you | cluster
    wc: str | None
    pod: str | None
    message: str
    reason: str | None = None
    heal_s: float | None = None  # fault -> healed, where known

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ProcState:
    pid: int
    index: int | None
    started_at: float | None
    requests_served: int | None
    alive: bool
    exit: str | None = None
    exited_at: float | None = None


@dataclass
class PodState:
    obj: dict[str, Any]
    first_seen: float
    was_ready: bool = False
    processes: dict[int, ProcState] | None = None
    processes_error: str | None = None
    arbiter_pid: int | None = None
    # pid -> deque[(t, requests_served)]
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


def _replicas(wc: dict[str, Any] | None) -> int:
    return int(((wc or {}).get("spec") or {}).get("replicas", 0))


class Model:
    def __init__(self, namespace: str, window_s: float = DEFAULT_WINDOW_S) -> None:
        self.namespace = namespace
        self.window_s = window_s
        self.wcs: dict[str, dict[str, Any]] = {}
        self.pods: dict[str, PodState] = {}  # by pod name
        self.timeline: deque[Entry] = deque(maxlen=TIMELINE_MAX)
        self._seq = itertools.count(1)
        self._seen_events: dict[str, tuple[Any, ...]] = {}  # event uid -> (count, time)
        self._gone_pods: dict[str, list[tuple[str, float]]] = {}  # wc -> [(pod, when)]
        self._known_uids: set[str] = set()
        self.version = 0  # bumps on every change the page should see
        self.health: dict[str, Any] = {"cluster": None, "cluster_error": None, "operator": None}
        # The cluster-level master: who holds the operator's Lease, and the standbys (with a
        # standby, `make up NODES=3`); None while unknown or unreadable (a learner's rights).
        self.health["master"] = None

    # --- helpers -----------------------------------------------------------------------------
    def _changed(self) -> None:
        self.version += 1

    def add(
        self,
        level: str,
        message: str,
        at: float,
        wc: str | None = None,
        pod: str | None = None,
        reason: str | None = None,
        heal_s: float | None = None,
    ) -> Entry:
        entry = Entry(
            next(self._seq),
            at,
            level,
            wc,
            pod,
            message,
            reason,
            None if heal_s is None else round(max(0.0, heal_s), 2),
        )
        self.timeline.append(entry)
        self._changed()
        return entry

    def set_health(self, key: str, value: Any, now: float, error: str | None = None) -> None:
        before = dict(self.health)
        self.health[key] = value
        if key == "cluster":
            self.health["cluster_error"] = error
        if before != self.health:
            if key == "cluster" and before["cluster"] is not None and value != before["cluster"]:
                what = "reachable again" if value else f"unreachable: {error}"
                self.add(CLUSTER, f"the API server is {what}", now)
            self._changed()

    # --- WorkerClusters ---------------------------------------------------------------------
    def wc(self, kind: str, obj: dict[str, Any], now: float) -> None:
        name = obj["metadata"]["name"]
        if kind == "DELETED":
            if self.wcs.pop(name, None) is not None:
                self._changed()
            return
        before = self.wcs.get(name)
        if before != obj:
            self.wcs[name] = obj
            if _replicas(obj) < _replicas(before):
                self._forget_scaled_down(name)
            self._changed()

    def _forget_scaled_down(self, wc: str) -> None:
        """The pod and WorkerCluster watches are separate streams: a pod removed by a scale-down
        can arrive before the lower spec.replicas does and look like a fault. When the lower
        spec arrives, keep only as many open faults as pods are really missing (the newest)."""
        gone = self._gone_pods.get(wc)
        if not gone:
            return
        desired = int(((self.wcs.get(wc) or {}).get("spec") or {}).get("replicas", 0))
        live = sum(1 for p in self.pods.values() if p.wc == wc and not pod_terminating(p.obj))
        missing = max(0, desired - live)
        del gone[: len(gone) - missing]

    # --- pods -------------------------------------------------------------------------------
    def pod(self, kind: str, obj: dict[str, Any], now: float) -> None:
        name = obj["metadata"]["name"]
        old = self.pods.get(name)
        if kind == "DELETED":
            if old is not None:
                self._pod_gone(old, now)
                del self.pods[name]
                self._changed()
            return
        if old is not None and old.uid != obj["metadata"].get("uid"):
            self._pod_gone(old, now)  # same name, new pod
            old = None
        if old is None:
            state = PodState(obj, now)
            self.pods[name] = state
            if state.uid:
                self._known_uids.add(state.uid)
            self._pod_ready_transition(state, now)
            self._changed()
            return
        before = old.obj
        old.obj = obj
        if pod_terminating(obj) and not pod_terminating(before):
            self._pod_gone(old, now)
        if pod_restarts(obj) > pod_restarts(before):
            old.restart_fault_at = self._terminated_at(obj) or now
            self.add(
                KUBELET,
                f"container of {name} restarted in place: restartCount "
                f"{pod_restarts(before)} -> {pod_restarts(obj)}"
                + (f" ({why})" if (why := self._last_reason(obj)) else ""),
                now,
                wc=old.wc,
                pod=name,
            )
            old.processes = None  # a new arbiter: its pids are not replacements of the old
            old.samples.clear()
            old.open_process_faults.clear()
        self._pod_ready_transition(old, now)
        if before != obj:
            self._changed()

    @staticmethod
    def _terminated_at(pod: dict[str, Any]) -> float | None:
        for c in (pod.get("status") or {}).get("containerStatuses") or []:
            finished = ((c.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
            if finished:
                return epoch(finished)
        return None

    @staticmethod
    def _last_reason(pod: dict[str, Any]) -> str | None:
        for c in (pod.get("status") or {}).get("containerStatuses") or []:
            reason = ((c.get("lastState") or {}).get("terminated") or {}).get("reason")
            if reason:
                return str(reason)
        return None

    def _pod_gone(self, state: PodState, now: float) -> None:
        """A pod is terminating or gone: a fault at the cluster level, unless it was a
        scale-down (more pods than desired)."""
        wc = state.wc
        if wc is None or any(n == state.name for n, _ in self._gone_pods.get(wc, [])):
            return
        spec = (self.wcs.get(wc) or {}).get("spec") or {}
        desired = int(spec.get("replicas", 0))
        live = [
            p
            for p in self.pods.values()
            if p.wc == wc and not pod_terminating(p.obj) and p.name != state.name
        ]
        if len(live) >= desired:
            return  # scaled down or rolled: nothing to heal
        self._gone_pods.setdefault(wc, []).append((state.name, now))

    def _pod_ready_transition(self, state: PodState, now: float) -> None:
        ready = pod_ready(state.obj) and not pod_terminating(state.obj)
        if ready and not state.was_ready:
            wc = state.wc
            if state.restart_fault_at is not None:
                self.add(
                    KUBELET,
                    f"{state.name} Ready again after the kubelet restarted its container",
                    now,
                    wc=wc,
                    pod=state.name,
                    heal_s=now - state.restart_fault_at,
                )
                state.restart_fault_at = None
            elif wc is not None and self._gone_pods.get(wc):
                gone, since = self._gone_pods[wc].pop(0)
                self.add(
                    OPERATOR,
                    f"operator replaced {gone}: new pod {state.name} is Ready",
                    now,
                    wc=wc,
                    pod=state.name,
                    heal_s=now - since,
                )
        state.was_ready = ready

    # --- Events -----------------------------------------------------------------------------
    def event(self, kind: str, obj: dict[str, Any], now: float) -> None:
        if kind == "DELETED":
            return
        involved = obj.get("involvedObject") or {}
        reason = str(obj.get("reason") or "")
        if involved.get("kind") != KIND:
            return  # only the master (the operator, kopf) posts on WorkerClusters: all of it
        uid = (obj.get("metadata") or {}).get("uid") or obj["metadata"].get("name", "")
        key = (obj.get("count"), event_time(obj))
        if self._seen_events.get(uid) == key:
            return  # the same Event again (a relist after a watch restart)
        self._seen_events[uid] = key
        if len(self._seen_events) > 5 * TIMELINE_MAX:
            for old in list(self._seen_events)[:TIMELINE_MAX]:
                del self._seen_events[old]
        at = epoch(event_time(obj)) or now
        if at < now - EVENT_HISTORY_S:
            return  # an old Event from the first list: not news
        message = str(obj.get("message") or "").strip()
        self.add(OPERATOR, f"{reason}: {message}", at, wc=involved.get("name"), reason=reason)

    # --- /processes polls -------------------------------------------------------------------
    def processes(self, pod_name: str, report: dict[str, Any], now: float) -> None:
        state = self.pods.get(pod_name)
        if state is None:
            return
        parsed = ProcessesReport.from_dict(report)
        fresh = {
            p.pid: ProcState(
                p.pid, p.index, p.started_at, p.requests_served, p.alive, p.exit, p.exited_at
            )
            for p in parsed.processes
        }
        alive_now = {pid for pid, p in fresh.items() if p.alive}
        if state.processes is not None and state.arbiter_pid == parsed.arbiter_pid:
            alive_before = {pid for pid, p in state.processes.items() if p.alive}
            for pid in sorted(alive_before - alive_now):
                died = fresh.get(pid)
                state.open_process_faults[pid] = (died.exited_at if died else None) or now
            born = sorted(alive_now - alive_before)
            for pid in born:
                if not state.open_process_faults:
                    break
                dead = min(state.open_process_faults, key=lambda d: state.open_process_faults[d])
                died_at = state.open_process_faults.pop(dead)
                started = fresh[pid].started_at or now
                how = fresh[dead].exit if dead in fresh and fresh[dead].exit else "exited"
                self.add(
                    ARBITER,
                    f"pid {dead} {how}; the arbiter forked pid {pid} in {pod_name} "
                    f"(restartCount unchanged)",
                    started,
                    wc=state.wc,
                    pod=pod_name,
                    heal_s=started - died_at,
                )
        for pid in alive_now:
            served = fresh[pid].requests_served
            if served is None:
                continue
            samples = state.samples.setdefault(pid, deque(maxlen=SAMPLES_MAX))
            samples.append((now, int(served)))
        for pid in [pid for pid in state.samples if pid not in alive_now]:
            del state.samples[pid]
        changed = (
            state.processes != fresh
            or state.processes_error is not None
            or state.arbiter_pid != parsed.arbiter_pid
        )
        state.processes = fresh
        state.processes_error = None
        state.arbiter_pid = parsed.arbiter_pid
        if changed:
            self._changed()

    def processes_failed(self, pod_name: str, error: str) -> None:
        state = self.pods.get(pod_name)
        if state is not None and state.processes_error != error:
            state.processes_error = error
            self._changed()

    def pods_to_poll(self) -> list[tuple[str, str]]:
        """(pod name, WorkerCluster) of each Ready, non-terminating pod."""
        return [
            (p.name, p.wc)
            for p in sorted(self.pods.values(), key=lambda p: p.name)
            if p.wc and pod_ready(p.obj) and not pod_terminating(p.obj)
        ]

    # --- resync: the full list after a (re)started watch ----------------------------------
    def resync(self, kind: str, items: list[dict[str, Any]], now: float) -> None:
        names = {i["metadata"]["name"] for i in items} if kind != "event" else set()
        if kind == "wc":
            for name in [n for n in self.wcs if n not in names]:
                self.wc("DELETED", self.wcs[name], now)
            for item in items:
                self.wc("MODIFIED", item, now)
        elif kind == "pod":
            for name in [n for n in self.pods if n not in names]:
                self.pod("DELETED", self.pods[name].obj, now)
            for item in items:
                self.pod("MODIFIED", item, now)
        elif kind == "event":
            for item in sorted(items, key=event_time):
                self.event("ADDED", item, now)

    # --- the cluster-level master -----------------------------------------------------------
    def master(
        self, holder: str, acquired: float | None, operators: dict[str, str | None], now: float
    ) -> None:
        """The Lease's holder and the operator pods (name -> node). A new holder after a known
        one is a hand-over: the standby took the Lease (the active one died, froze or stopped)."""
        before = (self.health.get("master") or {}).get("active")
        standbys = [
            {"name": name, "node": node}
            for name, node in sorted(operators.items())
            if name != holder
        ]
        master = {"active": holder or None, "node": operators.get(holder), "standbys": standbys}
        if master != self.health.get("master"):
            self.health["master"] = master
            self._changed()
        if before and holder and holder != before:
            where = f" on {operators[holder]}" if operators.get(holder) else ""
            self.add(
                OPERATOR,
                f"master hand-over: {holder}{where} took the Lease from {before}",
                acquired or now,
                reason="HandOver",
            )

    # --- the view ---------------------------------------------------------------------------
    def view(self, now: float) -> dict[str, Any]:
        """The page's JSON (view.py): both levels, health and the timeline."""
        return state_view(self, now)
