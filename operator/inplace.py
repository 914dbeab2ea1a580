"""What changes in a running pod without a restart, and when that fails. Pure.

Two things are changed in place, each through its own master:
- the process count: the pod's ANNOTATION_PROCESSES, which its arbiter follows through a
  downward API file (the worker's WORKER_PROCESSES_FILE): it forks or retires processes;
- CPU and memory: the `resize` subresource (Kubernetes >= 1.33): the kubelet changes the
  container's cgroup, no restart (resizePolicy NotRequired, the default).

Neither is in the template hash (templates.hashed_template): only the QoS class the resources
give is, because a resize may not change it. What cannot be done in place rolls the pods as
before: any other template change (image, env, probes...), a QoS class change, and a pod that
refuses: the kubelet finds the resize infeasible, defers it past IN_PLACE_DEADLINE_S, the API
server rejects it, or the arbiter does not run the count in time (the shell marks the pod with
ANNOTATION_IN_PLACE_REFUSED; the core then counts it as outdated).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from workerlab.api.resource import ANNOTATION_IN_PLACE_REFUSED
from workerlab.operator.model import ObservedPod

IN_PLACE_DEADLINE_S = 60.0
STALL_WINDOW_S = 120.0  # after the deadline: when a pod still not at its count is refused

_SUFFIXES = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12),
    "P": Decimal(10**15), "E": Decimal(10**18),
    "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30), "Ti": Decimal(2**40),
    "Pi": Decimal(2**50), "Ei": Decimal(2**60),
}  # fmt: skip


def quantity(value: object) -> Decimal | None:
    """A Kubernetes quantity as a number ("500m" and "0.5" are equal); None if unreadable."""
    text = str(value).strip()
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if suffix and text.endswith(suffix):
            number, scale = text[: -len(suffix)], _SUFFIXES[suffix]
            break
    else:
        number, scale = text, Decimal(1)
    try:
        return Decimal(number) * scale
    except InvalidOperation:
        return None


def normalized(resources: dict[str, Any] | None) -> dict[str, dict[str, Decimal | None]]:
    """requests/limits of cpu and memory as numbers, for comparing what the API server echoes
    (canonical quantities) with what a spec says."""
    out: dict[str, dict[str, Decimal | None]] = {}
    for kind in ("requests", "limits"):
        values = (resources or {}).get(kind) or {}
        picked = {k: quantity(values[k]) for k in ("cpu", "memory") if k in values}
        if picked:
            out[kind] = picked
    return out


def qos_class(resources: dict[str, Any]) -> str:
    """The pod QoS class one container with these resources gets (Kubernetes' rules)."""
    amounts = normalized(resources)
    limits, requests = amounts.get("limits", {}), amounts.get("requests", {})
    if not limits and not requests:
        return "BestEffort"
    if all(k in limits for k in ("cpu", "memory")) and all(
        requests.get(k, limits[k]) == limits[k] for k in ("cpu", "memory")
    ):
        return "Guaranteed"
    return "Burstable"


def resources_text(resources: dict[str, Any]) -> str:
    """cpu/memory as a person reads them: "cpu 500m/1, memory 128Mi/256Mi" (request/limit)."""
    parts = []
    for name in ("cpu", "memory"):
        request = ((resources.get("requests") or {}).get(name)) or "-"
        limit = ((resources.get("limits") or {}).get(name)) or "-"
        if request != "-" or limit != "-":
            parts.append(f"{name} {request}/{limit}")
    return ", ".join(parts) or "no requests or limits"


@dataclass(frozen=True)
class ChangeInPlace:
    """Tell a running pod a new process count and/or resize it: no restart, same pod."""

    name: str
    uid: str
    processes: tuple[int | None, int] | None = None  # (told before, now)
    resources: tuple[dict[str, Any], dict[str, Any]] | None = None  # (asked before, now)

    @property
    def summary(self) -> str:
        """ "processes 2→4, cpu 50m/-→200m/-": what the Events and status say."""
        parts = []
        if self.processes is not None:
            before, after = self.processes
            parts.append(f"processes {before if before is not None else '?'}→{after}")
        if self.resources is not None:
            parts.append(
                f"{resources_text(self.resources[0])} → {resources_text(self.resources[1])}"
            )
        return ", ".join(parts)


def covers(asked: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Every amount `wanted` states is what the pod asks for. Amounts it does not state are
    not compared: admission may add them (a namespace's LimitRange defaults a CPU limit)."""
    have = normalized(asked)
    return all(
        have.get(kind, {}).get(name) == amount
        for kind, amounts in normalized(wanted).items()
        for name, amount in amounts.items()
    )


def merged(asked: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """The pod's resources with the wanted amounts set: what admission added stays (a resize
    may not remove a request or limit)."""
    out = {kind: dict(asked.get(kind) or {}) for kind in ("requests", "limits") if asked.get(kind)}
    for kind in ("requests", "limits"):
        if wanted.get(kind):
            out.setdefault(kind, {}).update(wanted[kind])
    return out


def change_for(pod: ObservedPod, processes: int, resources: dict[str, Any]) -> ChangeInPlace | None:
    """What to change in place so that a current pod runs `processes` with `resources`."""
    told = None if pod.processes_told == processes else (pod.processes_told, processes)
    asked = pod.resources
    resize = None if covers(asked, resources) else (asked, merged(asked, resources))
    if told is None and resize is None:
        return None
    return ChangeInPlace(pod.name, pod.uid, told, resize)


def resize_done(pod: ObservedPod) -> bool:
    """The kubelet applied what the pod's spec asks (or does not say: no pending condition)."""
    if pod.resize is not None:
        return False
    if pod.resources_applied is None:
        return True
    return normalized(pod.resources_applied) == normalized(pod.resources)


def not_in_place(pod: ObservedPod, now: datetime) -> str | None:
    """Why this pod cannot take its change in place (it is rolled instead), or None."""
    if pod.in_place_refused:
        return pod.in_place_refused
    if pod.resize == "Infeasible":
        return f"the kubelet cannot resize it: {pod.resize_message or 'infeasible'}"
    late = (
        pod.changed_at is not None and (now - pod.changed_at).total_seconds() > IN_PLACE_DEADLINE_S
    )
    if late and pod.resize == "Deferred":
        waited = f"{IN_PLACE_DEADLINE_S:.0f} s"
        return f"the kubelet deferred its resize over {waited}: {pod.resize_message}"
    return None


def stalled(pod: ObservedPod, processes: int, now: datetime) -> str | None:
    """A pod told a count IN_PLACE_DEADLINE_S ago that still runs another: why (the shell marks
    it refused, unless it saw the pod run the count since the change: a process re-forking
    later is no refusal). Only within STALL_WINDOW_S after the deadline: a change older than
    that was taken or refused already. Counts are only known to the shell, so it asks this."""
    if pod.changed_at is None or pod.processes_alive is None or pod.processes_alive == processes:
        return None
    since = (now - pod.changed_at).total_seconds()
    if not IN_PLACE_DEADLINE_S < since <= IN_PLACE_DEADLINE_S + STALL_WINDOW_S:
        return None
    return (
        f"its arbiter runs {pod.processes_alive} processes {IN_PLACE_DEADLINE_S:.0f} s after it "
        f"was told {processes} (an image that does not follow WORKER_PROCESSES_FILE?)"
    )


def describe(
    pod: ObservedPod, processes: int, resources: dict[str, Any], now: datetime
) -> str | None:
    """What a current pod is still taking in place, as status.pods[].inPlace says it. Another
    count than the one told is a change still under way only within IN_PLACE_DEADLINE_S of it:
    later, a process the arbiter is re-forking (a crash, a drill) is no change in place."""
    if (change := change_for(pod, processes, resources)) is not None:
        return change.summary
    if not resize_done(pod):
        return f"resize {(pod.resize or 'pending').lower()}: {resources_text(pod.resources)}"
    recent = (
        pod.changed_at is not None and (now - pod.changed_at).total_seconds() <= IN_PLACE_DEADLINE_S
    )
    if recent and pod.processes_alive is not None and pod.processes_alive != processes:
        return f"processes {pod.processes_alive}→{processes}"
    return None


def refusal_patch(why: str) -> dict[str, Any]:
    """The pod's mark that it could not take its change in place (the core rolls it)."""
    return {"metadata": {"annotations": {ANNOTATION_IN_PLACE_REFUSED: why[:500]}}}
