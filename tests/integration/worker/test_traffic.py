"""Only the learner's traffic counts as requests, on a real arbiter with real sockets.

The machinery that watches a pod (the kubelet's probes, the operator's and the dashboard's
/processes polls, Prometheus' scrapes) keeps asking while nobody sends load; every record's
`requests_served` must stay 0 meanwhile, and then count the learner's requests exactly.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

pytestmark = pytest.mark.integration

PROCESSES = 3
CONTROL_ROUNDS = 20  # each GETs the four control paths, on fresh connections
LEARNER_PATHS = (("GET", "/"), ("GET", "/work/io?ms=1"), ("GET", "/work/cpu?ms=1"))
LEARNER_ROUNDS = 20
PUBLISH_DEADLINE_S = 5.0  # each process republishes its record within 0.5 s of a change


def alive_records(worker) -> dict[int, dict]:
    report = worker.get("/processes").json()
    return {p["pid"]: p for p in report["processes"] if p["alive"]}


def metric_sum(text: str, name: str, *labels: str) -> float:
    """The sum of a metric's samples carrying every given `key="value"` label."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(label in line for label in labels):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_probes_and_polls_leave_requests_at_zero_then_learner_requests_count_exactly(
    start_worker,
):
    worker = start_worker(processes=PROCESSES, lab_mode=False)
    pids = worker.alive_pids()
    for _ in range(CONTROL_ROUNDS):
        for path in ("/healthz", "/readyz", "/processes", "/metrics"):
            assert worker.get(path).status_code == 200, path
            records = alive_records(worker)  # a poll between each: more control traffic
            assert all(r["requests_served"] == 0 for r in records.values()), records
            assert all(r["in_flight"] == 0 for r in records.values()), records
    sent = CONTROL_ROUNDS * 4 * 2  # each request above, and each poll after it

    # The control counter grows (the records are published within 0.5 s); requests stay at 0.
    def control_total(records: dict[int, dict]) -> int:
        return sum(r["control_served"] for r in records.values())

    deadline = time.monotonic() + PUBLISH_DEADLINE_S
    while control_total(records := alive_records(worker)) < sent:
        assert time.monotonic() < deadline, f"control_served short of {sent}: {records}"
        time.sleep(0.2)
    assert set(records) == pids, "a process was replaced meanwhile"
    assert all(r["requests_served"] == 0 for r in records.values()), records
    text = worker.get("/metrics").text
    assert metric_sum(text, "workerlab_http_requests_total", 'traffic="learner"') == 0
    assert metric_sum(text, "workerlab_http_requests_total", 'traffic="control"') >= sent
    assert metric_sum(text, "workerlab_process_requests_served") == 0
    assert metric_sum(text, "workerlab_process_control_served") >= sent

    # Now the learner: each request on a fresh connection, whichever process the kernel picks.
    answered: Counter[int] = Counter()
    for _ in range(LEARNER_ROUNDS):
        for method, path in LEARNER_PATHS:
            response = worker.request(method, path)
            assert response.status_code == 200, response.text
            answered[response.json()["pid"]] += 1
    learner = LEARNER_ROUNDS * len(LEARNER_PATHS)
    expected = {pid: answered[pid] for pid in pids}
    assert sum(expected.values()) == learner, f"answered by an unknown process: {answered}"

    text = worker.get("/metrics").text  # the counters are shared files: exact at once
    assert metric_sum(text, "workerlab_http_requests_total", 'traffic="learner"') == learner
    assert metric_sum(text, "workerlab_process_requests_served") == learner

    def served(records: dict[int, dict]) -> dict[int, int]:
        return {pid: records[pid]["requests_served"] for pid in pids}

    deadline = time.monotonic() + PUBLISH_DEADLINE_S
    while served(records := alive_records(worker)) != expected:
        assert time.monotonic() < deadline, f"records {served(records)} != answered {expected}"
        time.sleep(0.2)
    # More polls and probes, across more than a publishing period: the counts do not move.
    for _ in range(6):
        worker.get("/healthz")
        time.sleep(0.1)
        records = alive_records(worker)
        assert served(records) == expected, records
        assert all(r["in_flight"] == 0 for r in records.values()), records
