"""Readers of the plain dicts the API server returns (pods, WorkerClusters, Events, times)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from workerlab.api.resource import GROUP, KIND, LABEL_TEMPLATE_HASH

Obj = dict[str, Any]


def parse_time(value: str | datetime | None) -> datetime | None:
    """RFC 3339 timestamps as the API server writes them (`2025-01-02T03:04:05Z`)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(stamp: str | None) -> float | None:
    """Seconds since the epoch of an RFC 3339 stamp; None when absent or malformed."""
    try:
        parsed = parse_time(stamp)
    except ValueError:
        return None
    return parsed.timestamp() if parsed else None


def created_at(obj: Obj) -> float | None:
    return epoch((obj.get("metadata") or {}).get("creationTimestamp"))


def event_time(event: Obj) -> str:
    """When an Event last happened, whichever of its three time fields the sender filled."""
    return str(
        event.get("lastTimestamp")
        or event.get("eventTime")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or ""
    )


def find_condition(obj: Obj, kind: str) -> Obj | None:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return dict(condition)
    return None


def condition_is_true(obj: Obj, kind: str) -> bool:
    found = find_condition(obj, kind)
    return bool(found and found.get("status") == "True")


def conditions_by_type(obj: Obj) -> dict[str, Obj]:
    return {c.get("type", "?"): c for c in (obj.get("status") or {}).get("conditions") or []}


def env_value(wc: Obj, name: str) -> str | None:
    for entry in (wc.get("spec") or {}).get("env") or []:
        if entry.get("name") == name:
            value = entry.get("value")
            return None if value is None else str(value)
    return None


def worker_port(wc: Obj) -> int:
    return int((wc.get("spec") or {}).get("port") or 8000)


# --- pods -------------------------------------------------------------------------------------


def pod_ready(pod: Obj) -> bool:
    return condition_is_true(pod, "Ready")


def pod_restarts(pod: Obj) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return sum(int(c.get("restartCount", 0)) for c in statuses)


def pod_waiting_reason(pod: Obj) -> str | None:
    """The first container's waiting reason (`CrashLoopBackOff`, ...), if one is waiting."""
    for c in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = (c.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            return str(waiting["reason"])
    return None


def pod_terminating(pod: Obj) -> bool:
    return (pod.get("metadata") or {}).get("deletionTimestamp") is not None


def pod_template_hash(pod: Obj) -> str | None:
    return ((pod.get("metadata") or {}).get("labels") or {}).get(LABEL_TEMPLATE_HASH)


def controller_uid(obj: Obj) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def scaled_message(direction: str, replicas: int) -> str:
    """The message of the operator's `Scaled` event; `direction` is "up" or "down"."""
    return f"Scaled {direction} to {replicas} pods"


def scaled_direction(message: str) -> str | None:
    """ "up" or "down" from a `Scaled` event's message (scaled_message); None otherwise."""
    words = message.split()
    if len(words) >= 2 and words[0] == "Scaled" and words[1] in ("up", "down"):
        return words[1]
    return None


# Why the operator created or deleted a pod, as its pod Events say it (after "NAME: "): the
# steps of a rollout or a scale, which are no fault (the dashboard, the labs' checks read them).
ROLLING_UPDATE, SCALE_UP, SCALE_DOWN = "rolling update", "scale up", "scale down"


def on_purpose(why: str) -> bool:
    """A pod the operator deleted for a rollout or a scale-down step, not after a fault."""
    return why.startswith((ROLLING_UPDATE, SCALE_DOWN))


def pod_action_message(verb: str, pod: str, why: str) -> str:
    """The message of the operator's Events about one pod: "Created pod NAME: why" (CreatedPod,
    ReplacedPod) or "Deleted pod NAME: why" (DeletedPod)."""
    return f"{verb} pod {pod}: {why}"


def pod_action(message: str) -> tuple[str, str, str] | None:
    """(verb, pod, why) from a pod_action_message; None for any other message."""
    head, sep, why = message.partition(": ")
    words = head.split()
    if not sep or len(words) != 3 or words[1] != "pod" or words[0] not in ("Created", "Deleted"):
        return None
    return words[0], words[2], why


NO_RESTART = "no restart"


def changed_in_place_message(pod: str, change: str) -> str:
    """The message of the operator's ChangedInPlace Event: "Changed pod NAME in place: processes
    2→4, no restart" (`change` as inplace.ChangeInPlace.summary says it)."""
    return f"Changed pod {pod} in place: {change}, {NO_RESTART}"


def changed_in_place(message: str) -> tuple[str, str] | None:
    """(pod, change) from a changed_in_place_message; None for any other message."""
    head, sep, rest = message.partition(" in place: ")
    words = head.split()
    if not sep or len(words) != 3 or words[:2] != ["Changed", "pod"]:
        return None
    return words[2], rest.removesuffix(f", {NO_RESTART}")


def process_replaced_message(
    pod: str,
    arbiter_pid: int | None,
    dead_pid: int,
    exit: str | None,
    successor_pid: int,
    slot: int | None,
) -> str:
    """The message of the operator's ProcessReplaced Event: a pod's arbiter re-forked a process."""
    arbiter = f" (pid {arbiter_pid})" if arbiter_pid else ""
    how = f" ({exit})" if exit else ""
    return (
        f"The arbiter{arbiter} of pod {pod} replaced process {dead_pid}{how} with process "
        f"{successor_pid} in slot {slot}: the pod and its container kept running"
    )


def process_replaced(message: str) -> tuple[str, int] | None:
    """(pod, dead pid) from a process_replaced_message; None for any other message."""
    _, sep, rest = message.partition(" of pod ")
    words = rest.split()
    if not sep or len(words) < 4 or words[1:3] != ["replaced", "process"] or not words[3].isdigit():
        return None
    return words[0], int(words[3])


def hpa_new_size(message: str) -> int | None:
    """The replica count an HPA's SuccessfulRescale event announces ("New size: 4; reason: ...")."""
    _, sep, rest = message.partition("New size:")
    digits = rest.split(";")[0].strip()
    return int(digits) if sep and digits.isdigit() else None


def hpa_targets(hpa: Obj, wc_name: str) -> bool:
    """Whether an HorizontalPodAutoscaler scales the WorkerCluster `wc_name` (same namespace)."""
    ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
    group = str(ref.get("apiVersion", "")).partition("/")[0]
    return ref.get("kind") == KIND and ref.get("name") == wc_name and group == GROUP


def hpa_cpu_utilization(hpa: Obj) -> tuple[int | None, int | None]:
    """(current, target) average CPU utilisation in percent of the request, as autoscaling/v2
    (or v1) reports it; None where the HPA has no CPU metric or no reading yet."""
    spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
    target = spec.get("targetCPUUtilizationPercentage")  # autoscaling/v1
    current = status.get("currentCPUUtilizationPercentage")
    for metric in spec.get("metrics") or []:
        resource = metric.get("resource") or {}
        if metric.get("type") == "Resource" and resource.get("name") == "cpu":
            target = (resource.get("target") or {}).get("averageUtilization")
    for metric in status.get("currentMetrics") or []:
        resource = metric.get("resource") or {}
        if metric.get("type") == "Resource" and resource.get("name") == "cpu":
            current = (resource.get("current") or {}).get("averageUtilization")
    return current, target
