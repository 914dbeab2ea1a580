"""The dashboard's JSON view of the model (model.py): WorkerCluster -> pods -> processes, desired
vs ready at each level, recent requests per process and per pod, health and the timeline."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from workerlab.api.objects import (
    conditions_by_type,
    pod_ready,
    pod_restarts,
    pod_template_hash,
    pod_terminating,
    pod_waiting_reason,
)

if TYPE_CHECKING:
    from workerlab.cli.dashboard.model import Model
    from workerlab.cli.dashboard.state import PodState


def window_delta(samples: deque[tuple[float, int]] | None, now: float, window_s: float) -> int:
    """Requests served in the last `window_s` seconds, from cumulative samples: the newest minus
    the newest one at or before the window's start (or the oldest in the window)."""
    if not samples:
        return 0
    start = now - window_s
    base = None
    for t, value in samples:
        if t <= start:
            base = value
        else:
            if base is None:
                base = value
            break
    latest = samples[-1][1]
    return max(0, latest - (base if base is not None else latest))


def state_view(model: Model, now: float) -> dict[str, Any]:
    clusters = []
    for name in sorted(model.wcs):
        clusters.append(_cluster_view(model, name, model.wcs[name], now))
    orphans = [p for p in model.pods.values() if p.wc and p.wc not in model.wcs]
    return {
        "namespace": model.namespace,
        "version": model.version,
        "now": now,
        "window_s": model.window_s,
        "health": dict(model.health),
        "clusters": clusters,
        "orphan_pods": sorted(p.name for p in orphans),
        "timeline": [e.to_dict() for e in reversed(model.timeline)],
        "lanes": model.lanes.view(now),
    }


def _cluster_view(model: Model, name: str, wc: dict[str, Any], now: float) -> dict[str, Any]:
    spec, status = wc.get("spec") or {}, wc.get("status") or {}
    current_hash = status.get("templateHash")
    pods = [
        _pod_view(model, p, current_hash, now)
        for p in sorted(model.pods.values(), key=lambda p: p.name)
        if p.wc == name
    ]
    serving = [p for p in pods if not p["terminating"]]
    alive = [proc for p in serving for proc in p["processes"] or [] if proc["alive"]]
    return {
        "name": name,
        "desired": int(spec.get("replicas", 0)),
        "processes_per_pod": int(spec.get("processesPerPod", 0)),
        "desired_processes": int(spec.get("replicas", 0)) * int(spec.get("processesPerPod", 0)),
        "lab_mode": bool(spec.get("labMode")),
        "ready_replicas": int(status.get("readyReplicas") or 0),
        "ready_pods_seen": sum(1 for p in pods if p["ready"]),
        "ready_processes": status.get("readyProcesses"),
        "alive_processes_seen": len(alive),
        "phase": status.get("phase"),
        "template_hash": current_hash,
        "generation": wc["metadata"].get("generation"),
        "observed_generation": status.get("observedGeneration"),
        "conditions": {
            k: {"status": c.get("status"), "reason": c.get("reason")}
            for k, c in conditions_by_type(wc).items()
        },
        "node_port": ((spec.get("service") or {}).get("nodePort")),
        "requests_recent": sum(p["requests_recent"] for p in pods),
        "pods": pods,
    }


def _pod_view(model: Model, p: PodState, current_hash: str | None, now: float) -> dict[str, Any]:
    obj = p.obj
    phash = pod_template_hash(obj)
    procs = None
    if p.processes is not None:
        procs = [
            {
                "pid": proc.pid,
                "index": proc.index,
                "age_s": round(now - proc.started_at, 1)
                if proc.alive and proc.started_at
                else None,
                "requests_served": proc.requests_served,
                "requests_recent": window_delta(p.samples.get(proc.pid), now, model.window_s),
                "control_served": proc.control_served,
                "alive": proc.alive,
                "exit": proc.exit,
            }
            for proc in sorted(
                p.processes.values(), key=lambda x: (not x.alive, x.index or 0, x.pid)
            )
        ]
    return {
        "name": p.name,
        "uid": p.uid,
        "phase": (obj.get("status") or {}).get("phase", "Unknown"),
        "ready": pod_ready(obj),
        "terminating": pod_terminating(obj),
        "waiting_reason": pod_waiting_reason(obj),
        "restarts": pod_restarts(obj),
        "node": (obj.get("spec") or {}).get("nodeName"),
        "template_hash": phash,
        "up_to_date": None if not current_hash or not phash else phash == current_hash,
        "arbiter_pid": p.arbiter_pid,
        "processes": procs,
        "processes_error": p.processes_error,
        "requests_recent": sum(x["requests_recent"] for x in procs or []),
    }
