"""What a pod says about a change in place (ObservedPod's fields for it), read from the pod
object as the API server returns it. Pure."""

from __future__ import annotations

from typing import Any

from workerlab.api.objects import parse_time
from workerlab.api.resource import (
    ANNOTATION_CHANGED_AT,
    ANNOTATION_IN_PLACE_REFUSED,
    ANNOTATION_PROCESSES,
)


def in_place_facts(pod: dict[str, Any]) -> dict[str, Any]:
    """ObservedPod's in-place fields: the operator's annotations, the worker container's
    resources as asked (spec) and as applied (status), and the resize's state (conditions)."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    status = pod.get("status") or {}
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    container: dict[str, Any] = containers[0]
    applied = next(
        (
            cs.get("resources")
            for cs in status.get("containerStatuses") or []
            if cs.get("name") == container.get("name") and "resources" in cs
        ),
        None,
    )
    resize = message = None
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "PodResizePending":
            resize, message = condition.get("reason") or "Deferred", condition.get("message")
        elif condition.get("type") == "PodResizeInProgress" and resize is None:
            resize, message = "InProgress", condition.get("message")
    told = str(annotations.get(ANNOTATION_PROCESSES) or "")
    return {
        "processes_told": int(told) if told.isdigit() else None,
        "image": container.get("image"),
        "resources": dict(container.get("resources") or {}),
        "resources_applied": dict(applied) if applied is not None else None,
        "resize": resize,
        "resize_message": message,
        "changed_at": parse_time(annotations.get(ANNOTATION_CHANGED_AT)),
        "in_place_refused": annotations.get(ANNOTATION_IN_PLACE_REFUSED) or None,
    }
