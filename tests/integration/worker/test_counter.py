"""The seed's state-sharing lesson with real processes and a real redis-server."""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.integration


def _post_counter(worker, requests: int, concurrency: int) -> list[dict]:
    with ThreadPoolExecutor(concurrency) as pool:
        responses = list(pool.map(lambda _: worker.post("/counter"), range(requests)))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses][:3]
    return [r.json() for r in responses]


def test_counter_without_redis_disagrees_across_processes(start_worker):
    worker = start_worker(processes=2)
    bodies: list[dict] = []
    for _ in range(10):  # bounded: stop once two processes have counted
        bodies += _post_counter(worker, requests=32, concurrency=8)
        if len({b["pid"] for b in bodies}) >= 2:
            break
    by_pid: dict[int, list[int]] = defaultdict(list)
    for body in bodies:
        assert body["backend"] == "process"
        by_pid[body["pid"]].append(body["count"])
    assert len(by_pid) >= 2, "all increments landed on one process"
    for counts in by_pid.values():  # each process counts only what it served
        assert sorted(counts) == list(range(1, len(counts) + 1))
    assert max(b["count"] for b in bodies) < len(bodies), "the processes agree: state is shared?"
    print({pid: max(counts) for pid, counts in by_pid.items()}, "total", len(bodies))


def test_counter_with_redis_is_exact_under_concurrent_increments(start_worker, redis_url):
    worker = start_worker(processes=2, REDIS_URL=redis_url)
    start = worker.get("/counter").json()["count"]
    requests = 200
    bodies = _post_counter(worker, requests=requests, concurrency=16)
    assert {b["backend"] for b in bodies} == {"redis"}
    assert sorted(b["count"] for b in bodies) == list(range(start + 1, start + requests + 1))
    assert len({b["pid"] for b in bodies}) >= 2, "increments should come from both processes"
    assert worker.get("/counter").json()["count"] == start + requests


def test_unreachable_redis_is_a_503_json_error(start_worker, unused_port):
    worker = start_worker(processes=1, REDIS_URL=f"redis://127.0.0.1:{unused_port}/0")
    for method in ("GET", "POST"):
        response = worker.request(method, "/counter")
        assert response.status_code == 503
        assert response.json()["error"] == "redis unavailable"
    assert worker.get("/healthz").status_code == 200  # liveness does not depend on Redis
    assert worker.get("/").status_code == 200


def test_first_post_after_a_redis_restart_succeeds(start_worker, redis_server):
    # One process: its pool holds exactly one connection, which the restart leaves stale.
    worker = start_worker(processes=1, REDIS_URL=redis_server.url)
    assert [worker.post("/counter").json()["count"] for _ in range(3)] == [1, 2, 3]
    redis_server.restart()  # no persistence: the counter is gone, like lab 8's Redis at 0 and back
    first = worker.post("/counter")
    assert first.status_code == 200, first.text
    assert first.json() == {**first.json(), "backend": "redis", "count": 1}
    assert worker.get("/counter").json()["count"] == 1
