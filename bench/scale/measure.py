"""What the scale benchmark reads: the API server's audit log (requests by client), /proc (CPU
seconds, peak RSS) and the operator's own Prometheus metrics (reconcile latency, queue depth).

kube-apiserver v1.34's `apiserver_request_total` has no client label (`component` is the
server's own), so requests are attributed from the audit log, which records each request's user
and user agent: the operator runs as its service account; kube-controller-manager as its own
user, one user agent per controller (".../deployment-controller", ".../replicaset-controller",
".../shared-informers", ".../leader-election", ...).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rig import KCM_USER, OPERATOR_USER

READS = {"get", "list", "watch"}
WRITES = {"create", "update", "patch", "delete", "deletecollection"}
COORDINATION = {"leases", "clusterkopfpeerings", "kopfpeerings"}
# The Deployment controller's work in kube-controller-manager: its two controllers and the
# informers they share. The garbage collector, namespace and service-account controllers run for
# both sides alike and are not counted.
REFERENCE_AGENTS = ("deployment-controller", "replicaset-controller", "shared-informers")
TICK = os.sysconf("SC_CLK_TCK")


def classify(event: dict[str, Any]) -> tuple[str, str] | None:
    """(client, class) of one audit event; class: read, write, event, proxy, coordination."""
    user = event.get("user", {}).get("username")
    agent = str(event.get("userAgent", "")).rsplit("/", 1)[-1]
    if user == OPERATOR_USER:
        client = "operator"
    elif user == KCM_USER:
        client = "reference" if agent in REFERENCE_AGENTS else "kcm-other"
    else:
        return None
    ref = event.get("objectRef") or {}
    verb = event.get("verb", "")
    if ref.get("subresource") == "proxy":
        return client, "proxy"
    if ref.get("resource") in COORDINATION or agent == "leader-election":
        return client, "coordination"
    if ref.get("resource") == "events":
        return client, "event"  # both controllers post one per pod created or deleted
    if verb in READS:
        return client, "read"
    if verb in WRITES:
        return client, "write"
    return client, "other"


def _stamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class AuditLog:
    """Counts of audited requests per window. The API server's log writer rotates a file at its
    size limit (100 MB when unset: N = 1,000 writes more) into audit-<time>.log beside it, so a
    read takes the rotated files, oldest first, then the current one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.events: list[tuple[float, str, str]] = []  # (received, client, class)

    def files(self) -> list[Path]:
        rotated = sorted(self.path.parent.glob(f"{self.path.stem}-*{self.path.suffix}"))
        return [*rotated, self.path] if self.path.exists() else rotated

    def read(self) -> None:
        self.events = []
        for path in self.files():
            with path.open("rb") as f:
                for line in f:
                    if not line.endswith(b"\n"):
                        break  # a line still being written
                    event = json.loads(line)
                    found = classify(event)
                    if found is not None:
                        stamp = event.get("requestReceivedTimestamp") or event["stageTimestamp"]
                        self.events.append((_stamp(stamp), *found))

    def counts(self, start: float, end: float) -> dict[str, dict[str, int]]:
        out: dict[str, Counter[str]] = {}
        for when, client, kind in self.events:
            if start <= when < end:
                out.setdefault(client, Counter())[kind] += 1
        return {client: dict(c) for client, c in out.items()}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def rss_mib(pid: int, peak: bool = True) -> float:
    key = "VmHWM:" if peak else "VmRSS:"
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


_SAMPLE = re.compile(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+([-+0-9.eEinfNa]+)$")


def parse_metrics(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def quantile(metrics: dict[str, float], name: str, q: float) -> float | None:
    """A quantile from a Prometheus histogram's cumulative buckets, linearly interpolated."""
    buckets = []
    for key, value in metrics.items():
        if key.startswith(f"{name}_bucket{{"):
            le = re.search(r'le="([^"]+)"', key)
            if le:
                buckets.append((float(le.group(1)), value))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return None
    target = q * buckets[-1][1]
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= target:
            if le == float("inf"):
                return prev_le
            share = (target - prev_count) / (count - prev_count) if count > prev_count else 0
            return round(prev_le + (le - prev_le) * share, 4)
        prev_le, prev_count = le, count
    return None


@dataclass
class Sampler:
    """Every `every` seconds: the operator's queue depth (peak kept) and its RSS."""

    fetch: Any  # () -> metrics text or None
    pid: int
    every: float = 2.0
    peak_depth: float = 0.0
    depth_series: list[tuple[float, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._run, name="sampler", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            text = self.fetch()
            if text is None:
                continue
            depth = parse_metrics(text).get("workerlab_workqueue_depth", 0.0)
            self.peak_depth = max(self.peak_depth, depth)
            self.depth_series.append((time.time(), depth))
