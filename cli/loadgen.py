"""A bounded HTTP load generator (httpx + asyncio): N requests, C at a time, within D seconds.

Bounded in count AND time: workers stop issuing at the request budget or at the deadline,
whichever comes first, and each request has its own timeout, so a run never outlives
duration + timeout. An optional probe sends a light request on a fresh connection at a fixed
interval: its latency is what *another* user feels while the load keeps the processes busy.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from workerlab.common.loadstats import LoadSummary, Sample, summarize


@dataclass(frozen=True)
class LoadPlan:
    url: str
    requests: int = 200
    concurrency: int = 8
    method: str = "GET"
    timeout_s: float = 10.0
    duration_s: float = 60.0
    keepalive: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    probe_url: str | None = None
    probe_interval_s: float = 0.1

    def __post_init__(self) -> None:
        if self.requests < 1 or self.concurrency < 1:
            raise ValueError("requests and concurrency must be at least 1")
        if self.duration_s <= 0 or self.timeout_s <= 0:
            raise ValueError("duration and timeout must be positive")


def classify_error(error: Exception) -> str:
    if isinstance(error, httpx.TimeoutException):
        return "timeout"
    if isinstance(error, httpx.ConnectError):
        return "connect"
    if isinstance(error, httpx.RemoteProtocolError | httpx.ReadError):
        return "disconnected"  # e.g. the process died mid-request
    return type(error).__name__


def sample_from_response(response: httpx.Response, latency_s: float, probe: bool) -> Sample:
    pod = pid = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        pod = body.get("pod") if isinstance(body.get("pod"), str) else None
        pid = body.get("pid") if isinstance(body.get("pid"), int) else None
    error = None if response.status_code < 400 else f"http {response.status_code}"
    return Sample(latency_s, response.status_code, error, pod, pid, probe)


async def _timed(client: httpx.AsyncClient, method: str, url: str, probe: bool) -> Sample:
    started = time.perf_counter()
    try:
        response = await client.request(method, url)
    except httpx.HTTPError as error:
        return Sample(time.perf_counter() - started, None, classify_error(error), probe=probe)
    return sample_from_response(response, time.perf_counter() - started, probe)


def _client(plan: LoadPlan, keepalive: bool, connections: int) -> httpx.AsyncClient:
    headers = dict(plan.headers)
    if not keepalive:
        headers.setdefault("Connection", "close")  # one TCP connection per request
    return httpx.AsyncClient(
        timeout=plan.timeout_s,
        headers=headers,
        trust_env=False,  # never route lab traffic through a proxy from the environment
        limits=httpx.Limits(
            max_connections=connections,
            max_keepalive_connections=connections if keepalive else 0,
        ),
    )


async def run_load(
    plan: LoadPlan, on_progress: Callable[[Sample], None] | None = None
) -> LoadSummary:
    samples: list[Sample] = []
    issued = 0
    started = time.perf_counter()
    deadline = started + plan.duration_s
    stopped_by = "requests"
    done = asyncio.Event()

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal issued, stopped_by
        while issued < plan.requests:
            if time.perf_counter() >= deadline:
                stopped_by = "duration"
                return
            issued += 1  # no await between the check and the increment: no over-issue
            sample = await _timed(client, plan.method, plan.url, probe=False)
            samples.append(sample)
            if on_progress:
                on_progress(sample)

    async def prober() -> None:
        assert plan.probe_url is not None
        async with _client(plan, keepalive=False, connections=1) as client:
            while not done.is_set() and time.perf_counter() < deadline:
                samples.append(await _timed(client, "GET", plan.probe_url, probe=True))
                with contextlib.suppress(TimeoutError):  # the interval passed: probe again
                    await asyncio.wait_for(done.wait(), plan.probe_interval_s)

    async with _client(plan, plan.keepalive, plan.concurrency) as client:
        probe_task = asyncio.create_task(prober()) if plan.probe_url else None
        workers = min(plan.concurrency, plan.requests)
        await asyncio.gather(*(worker(client) for _ in range(workers)))
        done.set()
        if probe_task:
            await probe_task
    return summarize(samples, time.perf_counter() - started, stopped_by)


def journal_record(
    plan: LoadPlan,
    summary: LoadSummary,
    *,
    started_at: float,
    ended_at: float,
    target: str,
    base_url: str,
    wc: str | None,
    namespace: str | None,
    path: str,
    probe: str | None = None,
    target_processes: int | None = None,
    target_balance: str | None = None,
) -> dict:
    """One run as the lab journal keeps it (`workerlab load` and the dashboard both record
    runs, so `workerlab lab check` sees load started from either)."""
    return {
        "started_at": started_at,
        "ended_at": ended_at,
        "target": target,
        "base_url": base_url,
        "wc": wc,
        "namespace": namespace,
        "path": path,
        "method": plan.method,
        "requests": plan.requests,
        "concurrency": plan.concurrency,
        "keepalive": plan.keepalive,
        "probe": probe,
        "target_processes": target_processes,
        # How the target's processes get connections (BALANCE), as its /processes said.
        "target_balance": target_balance,
        "summary": summary.to_dict(),
    }
