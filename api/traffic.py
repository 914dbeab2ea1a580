"""Whose request is it: the learner's, or the machinery's that watches the pod.

A worker at rest still answers the kubelet's probes, the operator's and the dashboard's
`/processes` polls and Prometheus' scrapes. Counted as requests, they made an idle pod look busy
("last 30s: 41 req" with no load at all), so the worker counts them apart: `requests_served`
is the learner's traffic only, `control_served` the machinery's.

Control is the machinery that asks on a schedule, by itself. The lab-mode faults (`/crash`,
`/hang`, `/leak`) are the learner's requests: a person sends them on purpose (curl, `workerlab
chaos`, the dashboard's button), and a hung process should show its request in flight. So is
everything else, `/docs` and unknown paths (404) included.
"""

from __future__ import annotations

from typing import Literal

CONTROL_PATHS = frozenset({"/healthz", "/readyz", "/processes", "/metrics"})

LEARNER: Literal["learner"] = "learner"
CONTROL: Literal["control"] = "control"
Traffic = Literal["learner", "control"]


def is_control(path: str) -> bool:
    """The path as the worker sees it (the pod proxy strips its own prefix), no query string."""
    return path in CONTROL_PATHS


def traffic_of(path: str) -> Traffic:
    return CONTROL if is_control(path) else LEARNER
