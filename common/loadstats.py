"""What a load run saw, summarised: pure functions over per-request samples.

A sample says which pod and which process answered (the worker puts both in every JSON body), so
the summary shows the distribution at both levels of the master-worker pattern: across pods (the
Service or Ingress balanced) and across processes within a pod (the kernel balanced).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sample:
    latency_s: float
    status: int | None = None  # None: no HTTP response at all (connect error, timeout)
    error: str | None = None  # "timeout", "connect", "http 503", ...
    pod: str | None = None
    pid: int | None = None
    probe: bool = False  # a side request measuring what *another* user experiences

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and self.status < 400


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100): always a value that was really observed."""
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0..100")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class LatencySummary:
    count: int = 0
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    mean_ms: float | None = None

    @classmethod
    def of(cls, latencies_s: list[float]) -> LatencySummary:
        if not latencies_s:
            return cls()
        ms = [v * 1000 for v in latencies_s]

        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 1)

        return cls(
            count=len(ms),
            p50_ms=r(percentile(ms, 50)),
            p90_ms=r(percentile(ms, 90)),
            p99_ms=r(percentile(ms, 99)),
            max_ms=r(max(ms)),
            mean_ms=r(sum(ms) / len(ms)),
        )


@dataclass
class LoadSummary:
    requests: int = 0
    ok: int = 0
    errors: int = 0
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    status_codes: dict[str, int] = field(default_factory=dict)
    by_pod: dict[str, int] = field(default_factory=dict)
    by_process: dict[str, int] = field(default_factory=dict)  # "pod/pid" -> requests
    latency: LatencySummary = field(default_factory=LatencySummary)
    probe: LatencySummary = field(default_factory=LatencySummary)
    probe_errors: int = 0
    elapsed_s: float = 0.0
    stopped_by: str = "requests"  # or "duration"
    # Who should have answered, when known (asked before the run): zeros count in the fairness.
    expected_pods: list[str] | None = None
    expected_processes: list[str] | None = None  # "pod/pid"

    @property
    def rps(self) -> float:
        return round(self.requests / self.elapsed_s, 1) if self.elapsed_s > 0 else 0.0

    @property
    def pods_seen(self) -> int:
        return len(self.by_pod)

    @property
    def processes_seen(self) -> int:
        return len(self.by_process)

    def processes_per_pod(self) -> dict[str, int]:
        per_pod: Counter[str] = Counter()
        for key in self.by_process:
            per_pod[key.rsplit("/", 1)[0]] += 1
        return dict(per_pod)

    def fairness(self) -> dict[str, float | None]:
        """min/max spread and Jain's index across pods and across processes, zeros included."""
        return {
            "spread_pods": spread(self.by_pod, self.expected_pods),
            "jain_pods": jain(self.by_pod, self.expected_pods),
            "spread_processes": spread(self.by_process, self.expected_processes),
            "jain_processes": jain(self.by_process, self.expected_processes),
        }

    def to_dict(self) -> dict:
        return {
            "requests": self.requests,
            "ok": self.ok,
            "errors": self.errors,
            "errors_by_kind": self.errors_by_kind,
            "status_codes": self.status_codes,
            "rps": self.rps,
            "elapsed_s": round(self.elapsed_s, 3),
            "stopped_by": self.stopped_by,
            "pods_seen": self.pods_seen,
            "processes_seen": self.processes_seen,
            "by_pod": self.by_pod,
            "by_process": self.by_process,
            "latency_ms": vars(self.latency),
            "probe_latency_ms": vars(self.probe),
            "probe_errors": self.probe_errors,
            "expected_pods": self.expected_pods,
            "expected_processes": self.expected_processes,
            "fairness": self.fairness(),
        }


def summarize(samples: list[Sample], elapsed_s: float, stopped_by: str = "requests") -> LoadSummary:
    main = [s for s in samples if not s.probe]
    probes = [s for s in samples if s.probe]
    errors_by_kind: Counter[str] = Counter(s.error or f"http {s.status}" for s in main if not s.ok)
    status_codes: Counter[str] = Counter(str(s.status) for s in main if s.status is not None)
    by_pod: Counter[str] = Counter(s.pod for s in main if s.ok and s.pod)
    by_process: Counter[str] = Counter(
        f"{s.pod}/{s.pid}" for s in main if s.ok and s.pod and s.pid is not None
    )
    return LoadSummary(
        requests=len(main),
        ok=sum(1 for s in main if s.ok),
        errors=sum(1 for s in main if not s.ok),
        errors_by_kind=dict(sorted(errors_by_kind.items())),
        status_codes=dict(sorted(status_codes.items())),
        by_pod=dict(sorted(by_pod.items())),
        by_process=dict(sorted(by_process.items())),
        latency=LatencySummary.of([s.latency_s for s in main if s.ok]),
        probe=LatencySummary.of([s.latency_s for s in probes if s.ok]),
        probe_errors=sum(1 for s in probes if not s.ok),
        elapsed_s=elapsed_s,
        stopped_by=stopped_by,
    )


def with_expected(counts: dict[str, int], expected: Iterable[str] | None = None) -> dict[str, int]:
    """`counts` plus a 0 for every expected key that got nothing.

    Without the expected set, a process that was never reached is simply missing from the counts,
    and 20 of 20 requests on one of three processes would look perfectly even.
    """
    return {key: 0 for key in expected or ()} | counts


def spread(counts: dict[str, int], expected: Iterable[str] | None = None) -> float | None:
    """min/max share over the keys, zeros of `expected` included (1.0 = even, 0 = one got none)."""
    values = list(with_expected(counts, expected).values())
    if not values or max(values) == 0:
        return None
    return round(min(values) / max(values), 3)


def jain(counts: dict[str, int], expected: Iterable[str] | None = None) -> float | None:
    """Jain's fairness index (sum x)^2 / (n * sum x^2), zeros of `expected` included.

    1.0 when every key got the same; 1/n when one key got everything. Unlike min/max, one
    outlier moves it only a little, so it reads as "the fraction of keys fairly served".
    """
    values = list(with_expected(counts, expected).values())
    squares = sum(v * v for v in values)
    if not values or squares == 0:
        return None
    return round(sum(values) ** 2 / (len(values) * squares), 3)
