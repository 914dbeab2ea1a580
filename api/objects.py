"""Readers of the plain dicts the API server returns (pods, WorkerClusters, Events, times)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from workerlab.api.resource import LABEL_TEMPLATE_HASH

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
