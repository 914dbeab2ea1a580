"""The arbiter as master: requests spread over its processes, and the dead are replaced."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.integration

REPLACEMENT_DEADLINE_S = 5.0


def _pids_serving(worker, path: str, want: int, max_requests: int, concurrency: int) -> set[int]:
    """Fire concurrent requests (bounded) until `want` distinct pids have answered."""
    seen: set[int] = set()
    with ThreadPoolExecutor(concurrency) as pool:
        for _ in range(max_requests // concurrency):
            for response in pool.map(lambda _: worker.get(path), range(concurrency)):
                assert response.status_code == 200, response.text
                seen.add(response.json()["pid"])
            if len(seen) >= want:
                break
    return seen


def _assert_replaced(worker, before: set[int], victim: int) -> None:
    after, waited = worker.wait_for_alive(
        lambda pids: victim not in pids and len(pids) == len(before),
        REPLACEMENT_DEADLINE_S,
        f"waiting for a replacement of pid {victim}",
    )
    newcomers = after - before
    assert len(newcomers) == 1, (before, after)
    assert after - newcomers == before - {victim}, "a process other than the victim changed"
    records = {p["pid"]: p for p in worker.get("/processes").json()["processes"]}
    assert records[victim]["alive"] is False
    assert records[newcomers.pop()]["index"] == records[victim]["index"], "slot not reused"
    print(f"pid {victim} replaced after {waited:.2f}s")


def test_requests_are_served_by_more_than_one_pid(lab_worker):
    # CPU-bound requests keep one process busy, so the kernel hands connections to the other.
    pids = _pids_serving(lab_worker, "/work/cpu?ms=30", want=2, max_requests=200, concurrency=4)
    assert len(pids) >= 2
    assert pids <= lab_worker.alive_pids()


def test_hello_and_processes_document_the_pod(lab_worker):
    hello = lab_worker.get("/").json()
    assert hello["message"] == "Hello from Worker!"
    assert hello["pod"] == "test-pod"
    assert hello["arbiter_pid"] == lab_worker.arbiter_pid
    assert hello["process_index"] in (0, 1)
    assert hello["generation"] >= 1 and hello["uptime_s"] >= 0
    body = lab_worker.get("/processes").json()
    assert body["pod"] == "test-pod" and body["arbiter_pid"] == lab_worker.arbiter_pid
    alive = [p for p in body["processes"] if p["alive"]]
    assert sorted(p["index"] for p in alive) == [0, 1]
    for record in alive:
        assert {"pid", "started_at", "requests_served", "alive"} <= record.keys()


def test_crash_is_healed_by_the_arbiter(lab_worker):
    before = lab_worker.alive_pids()
    response = lab_worker.post("/crash")
    assert response.status_code == 202
    body = response.json()
    assert "arbiter" in body["healed_by"]
    _assert_replaced(lab_worker, before, body["pid"])


def test_sigkill_of_one_process_is_healed_by_the_arbiter(lab_worker):
    before = lab_worker.alive_pids()
    victim = min(before)
    os.kill(victim, signal.SIGKILL)  # a child of the arbiter this test module started
    _assert_replaced(lab_worker, before, victim)


def test_metrics_aggregate_all_processes(lab_worker):
    _pids_serving(lab_worker, "/work/cpu?ms=20", want=2, max_requests=120, concurrency=4)
    text = lab_worker.get("/metrics").text
    per_process = [
        line for line in text.splitlines() if line.startswith("workerlab_process_requests_served{")
    ]
    assert len(per_process) == 2, per_process  # live processes only, one series each
    learner = 'method="GET",path="/work/cpu",status="200",traffic="learner"'
    assert f"workerlab_http_requests_total{{{learner}}}" in text


def test_leak_reports_its_healer_and_is_bounded(lab_worker):
    response = lab_worker.post("/leak?mb=4")
    assert response.status_code == 200
    assert response.json()["leaked_mb_total"] >= 4
    assert "kubelet" in response.json()["healed_by"]
    assert lab_worker.post("/leak?mb=0").status_code == 422
    assert lab_worker.post("/leak?mb=100000").status_code == 422


def test_hang_is_healed_by_the_worker_timeout(start_worker):
    worker = start_worker(processes=2, WORKER_TIMEOUT="2")
    before = worker.alive_pids()
    response = worker.post("/hang")
    assert response.status_code == 202
    victim = response.json()["pid"]
    after, waited = worker.wait_for_alive(
        lambda pids: victim not in pids and len(pids) == 2, 10.0, f"waiting out hung pid {victim}"
    )
    assert after - {victim} >= before - {victim}
    print(f"hung pid {victim} replaced after {waited:.2f}s (WORKER_TIMEOUT=2)")


def test_max_requests_recycles_a_process(start_worker):
    worker = start_worker(processes=1, MAX_REQUESTS="10")
    pids = set()
    deadline = time.monotonic() + 15
    for _ in range(40):
        if len(pids) >= 2 or time.monotonic() > deadline:
            break
        try:
            pids.add(worker.get("/").json()["pid"])
        except Exception:  # the request that trips the recycle may race the restart
            time.sleep(0.1)
    assert len(pids) >= 2, "MAX_REQUESTS=10 never recycled the process"
