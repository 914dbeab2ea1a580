"""The dashboard's view model: a pure fold of what the watches and polls saw.

Inputs (each with the time it was seen, so tests drive the clock):
  - `wc(type, obj)`, `pod(type, obj)`, `event(type, obj)`: watch events (ADDED, MODIFIED,
    DELETED) of WorkerClusters, pods and Events, or the items of a (re)list through `resync`;
  - `processes(pod_name, report)`: one answer of a pod's `GET /processes`.

Outputs: `view()` (view.py), a JSON-ready dict of both levels (WorkerCluster -> pods ->
processes, desired vs ready at each level, recent requests per process and per pod) and
`timeline`, the "who acted" entries (timeline.py says which level acts when).
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import Any

from workerlab.api.objects import (
    epoch,
    event_time,
    on_purpose,
    pod_ready,
    pod_restarts,
    pod_terminating,
)
from workerlab.api.processes import ProcessesReport
from workerlab.api.resource import LABEL_INSTANCE, Reason
from workerlab.cli.dashboard.heals import Heal, HealLedger
from workerlab.cli.dashboard.lanes import LaneBook
from workerlab.cli.dashboard.state import PodState, ProcState, replicas
from workerlab.cli.dashboard.timeline import (
    ARBITER,
    CLUSTER,
    KUBELET,
    OPERATOR,
    Entry,
    EventFacts,
    event_key,
    read_event,
)
from workerlab.cli.dashboard.view import state_view

TIMELINE_MAX = 300
SAMPLES_MAX = 120  # per process: request-count samples kept for the "recent requests" window
DEFAULT_WINDOW_S = 30.0
EVENT_HISTORY_S = 900.0  # Events older than this, found by a (re)list, stay off the timeline


class Model:
    def __init__(self, namespace: str, window_s: float = DEFAULT_WINDOW_S) -> None:
        self.namespace = namespace
        self.window_s = window_s
        self.wcs: dict[str, dict[str, Any]] = {}
        self.pods: dict[str, PodState] = {}  # by pod name
        self.timeline: deque[Entry] = deque(maxlen=TIMELINE_MAX)
        self._seq = itertools.count(1)
        self._seen_events: dict[str, tuple[Any, ...]] = {}  # event uid -> (count, time)
        self.heals = HealLedger()  # which pod changes were heals (heals.py)
        self.lanes = LaneBook()  # each pod's and process's life on the time axis (lanes.py)
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
        warning: bool = False,
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
            warning,
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
                why = "APIServerBack" if value else "APIServerLost"  # lanes.js draws the band
                self.add(CLUSTER, f"the API server is {what}", now, reason=why)
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
            if replicas(obj) < replicas(before):
                self._forget_scaled_down(name)
            self._changed()

    def _forget_scaled_down(self, wc: str) -> None:
        """The pod and WorkerCluster watches are separate streams: a pod removed by a scale-down
        can arrive before the lower spec.replicas does and look like a fault."""
        desired = int(((self.wcs.get(wc) or {}).get("spec") or {}).get("replicas", 0))
        live = sum(1 for p in self.pods.values() if p.wc == wc and not pod_terminating(p.obj))
        self.heals.scaled_down(wc, max(0, desired - live))

    # --- pods -------------------------------------------------------------------------------
    def pod(self, kind: str, obj: dict[str, Any], now: float) -> None:
        name = obj["metadata"]["name"]
        old = self.pods.get(name)
        if kind == "DELETED":
            if old is not None:
                self._pod_gone(old, now)
                self.lanes.gone(old.uid, now)
                del self.pods[name]
                self._changed()
            return
        if old is not None and old.uid != obj["metadata"].get("uid"):
            self._pod_gone(old, now)  # same name, new pod
            self.lanes.gone(old.uid, now)
            old = None
        uid = str(obj["metadata"].get("uid", ""))
        self.lanes.pod(uid, obj, (obj["metadata"].get("labels") or {}).get(LABEL_INSTANCE), now)
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
            self.lanes.restarted(old.uid, old.restart_fault_at)
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
        """A pod is terminating or gone: a fault, unless the operator removed it on purpose or
        enough pods are left (heals.py)."""
        wc = state.wc
        if wc is None:
            return
        live = [
            p
            for p in self.pods.values()
            if p.wc == wc and not pod_terminating(p.obj) and p.name != state.name
        ]
        self.heals.pod_gone(wc, state.name, len(live), replicas(self.wcs.get(wc)), now)

    def _pod_ready_transition(self, state: PodState, now: float) -> None:
        ready = pod_ready(state.obj) and not pod_terminating(state.obj)
        if ready and not state.was_ready:
            if state.restart_fault_at is not None:
                self.add(
                    KUBELET,
                    f"{state.name} Ready again after the kubelet restarted its container",
                    now,
                    wc=state.wc,
                    pod=state.name,
                    heal_s=now - state.restart_fault_at,
                )
                state.restart_fault_at = None
            else:
                self._tell_heal(self.heals.pod_ready(state.wc, state.name, now))
        state.was_ready = ready

    def _tell_heal(self, heal: Heal | None) -> None:
        if heal is None:
            return
        what = f"replaced {heal.replaced}" if heal.replaced else "replaced a deleted or failed pod"
        self.add(
            OPERATOR,
            f"operator {what}: new pod {heal.pod} is Ready",
            heal.at,
            wc=heal.wc,
            pod=heal.pod,
            reason=Reason.REPLACED_POD,
            heal_s=heal.heal_s,
        )

    # --- Events -----------------------------------------------------------------------------
    def event(self, kind: str, obj: dict[str, Any], now: float) -> None:
        if kind == "DELETED":
            return
        owners = {name: state.wc for name, state in self.pods.items()}
        facts = read_event(obj, owners)
        if facts is None:
            return
        uid = (obj.get("metadata") or {}).get("uid") or obj["metadata"].get("name", "")
        key = event_key(obj)
        if self._seen_events.get(uid) == key:
            return  # the same Event again (a relist after a watch restart)
        self._seen_events[uid] = key
        if len(self._seen_events) > 5 * TIMELINE_MAX:
            for old in list(self._seen_events)[:TIMELINE_MAX]:
                del self._seen_events[old]
        at = epoch(event_time(obj)) or now
        if at < now - EVENT_HISTORY_S:
            return  # an old Event from the first list: not news
        self._note_operator_action(facts, at)
        if facts.reforked is not None and not self.heals.first_refork(*facts.reforked):
            return  # the page saw this re-fork in /processes already
        self.add(
            facts.level,
            f"{facts.reason}: {facts.message}",
            at,
            wc=facts.wc,
            pod=facts.pod,
            reason=facts.reason,
            warning=facts.warning,
        )

    def _note_operator_action(self, facts: EventFacts, at: float) -> None:
        if facts.acted_on is None:
            return
        _, pod, why = facts.acted_on
        if facts.reason == Reason.DELETED_POD and on_purpose(why):
            self.heals.deleted_on_purpose(pod, at)
        elif facts.reason == Reason.REPLACED_POD:
            self._tell_heal(self.heals.replacement(facts.wc, pod, at))

    # --- /processes polls -------------------------------------------------------------------
    def processes(self, pod_name: str, report: dict[str, Any], now: float) -> None:
        state = self.pods.get(pod_name)
        if state is None:
            return
        parsed = ProcessesReport.from_dict(report)
        self.lanes.processes(state.uid, parsed.processes, now)
        fresh = {
            p.pid: ProcState(
                p.pid,
                p.index,
                p.started_at,
                p.requests_served,
                p.alive,
                p.exit,
                p.exited_at,
                p.control_served,
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
                if not self.heals.first_refork(pod_name, dead):
                    continue  # the operator's ProcessReplaced Event told it first
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
