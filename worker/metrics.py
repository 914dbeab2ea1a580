"""Prometheus metrics in multiprocess mode, so one scrape of /metrics covers the whole pod.

prometheus_client picks its storage when first imported: PROMETHEUS_MULTIPROC_DIR must be set
(the entry point does it) before this module is imported in a forked process.
"""

from __future__ import annotations

import functools
import os
import time
from typing import Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

from workerlab.api.traffic import CONTROL, LEARNER, is_control

# Only known routes become label values: arbitrary paths would grow the series without bound.
KNOWN_PATHS = frozenset(
    {
        "/",
        "/work/cpu",
        "/work/io",
        "/crash",
        "/hang",
        "/leak",
        "/healthz",
        "/readyz",
        "/processes",
        "/metrics",
        "/counter",
    }
)

# Every request is counted here, `traffic` telling the learner's from the machinery's
# (workerlab.api.traffic), so `sum by (traffic)` needs no list of paths. It follows from `path`:
# no more series than before.
REQUESTS = Counter(
    "workerlab_http_requests_total",
    "HTTP requests answered by the pod's processes",
    ["method", "path", "status", "traffic"],
)
LATENCY = Histogram(
    "workerlab_http_request_duration_seconds",
    "Time from request start to the end of the response",
    ["path", "traffic"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
# "liveall" keeps a `pid` label per live process and drops a process's series when the
# arbiter marks it dead, so learners see requests spread across the current processes.
# The same two counts as each process's /processes record.
PROCESS_REQUESTS = Gauge(
    "workerlab_process_requests_served",
    "The learner's requests served by each live process since it was forked",
    multiprocess_mode="liveall",
)
PROCESS_CONTROL = Gauge(
    "workerlab_process_control_served",
    "Probes, /processes polls and /metrics scrapes served by each live process",
    multiprocess_mode="liveall",
)
LEAKED_BYTES = Gauge(
    "workerlab_process_leaked_bytes",
    "Memory deliberately leaked by POST /leak in each live process",
    multiprocess_mode="liveall",
)


KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else "other"


def path_label(path: str) -> str:
    return path if path in KNOWN_PATHS else "other"


@functools.cache
def _request_series(method: str, path: str, status: int, traffic: str):
    """The (counter, histogram) children for one label set: `.labels()` takes a lock and builds
    a key on every call, so each process resolves a label set once. Bounded: known labels only."""
    return REQUESTS.labels(method, path, str(status), traffic), LATENCY.labels(path, traffic)


class ProcessCounts(Protocol):
    """The process's own counts (workerlab.worker.process_state.ProcessState)."""

    def begin_request(self) -> None: ...  # a learner's request begins: one more in flight

    def count_request(self) -> int: ...  # a learner's request ended: returns the new total

    def count_control(self) -> int: ...  # a control request ended: returns the new total


class RequestMetrics:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware): counts and times every request,
    the learner's and the machinery's apart."""

    def __init__(self, app, process: ProcessCounts) -> None:
        self.app = app
        self.process = process

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        control = is_control(scope["path"])
        if not control:
            self.process.begin_request()

        async def send_and_watch(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            requests, latency = _request_series(
                method_label(scope["method"]),
                path_label(scope["path"]),
                status,
                CONTROL if control else LEARNER,
            )
            requests.inc()
            latency.observe(time.perf_counter() - started)
            if control:
                PROCESS_CONTROL.set(self.process.count_control())
            else:
                PROCESS_REQUESTS.set(self.process.count_request())


def exposition() -> tuple[bytes, str]:
    """All processes' metrics when running under the arbiter; this process's otherwise."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
