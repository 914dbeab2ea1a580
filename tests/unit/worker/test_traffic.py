"""The learner's requests and the machinery's control traffic are counted apart."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from workerlab.api.traffic import CONTROL_PATHS, is_control, traffic_of
from workerlab.worker.app import create_app
from workerlab.worker.config import Settings
from workerlab.worker.process_state import ProcessState
from workerlab.worker.siblings import ProcessIdentity, StateDir


def make_client(tmp_path, **env: str) -> TestClient:
    env = {"WORKERLAB_STATE_DIR": str(tmp_path), "POD_NAME": "pod-a"} | env
    return TestClient(create_app(Settings.from_env(env, cpus=lambda: 2)))


def own_record(client: TestClient) -> dict:
    (me,) = client.get("/processes").json()["processes"]
    return me


def test_the_machinery_paths_are_control():
    assert {"/healthz", "/readyz", "/processes", "/metrics"} == CONTROL_PATHS
    assert all(traffic_of(path) == "control" for path in CONTROL_PATHS)


@pytest.mark.parametrize(
    "path", ["/", "/work/cpu", "/counter", "/crash", "/hang", "/leak", "/docs", "/healthz/", "/x"]
)
def test_everything_else_is_the_learners(path):
    assert not is_control(path) and traffic_of(path) == "learner"


def test_control_requests_never_count_as_served_nor_in_flight(tmp_path):
    with make_client(tmp_path) as client:
        for _ in range(5):
            for path in sorted(CONTROL_PATHS):
                assert client.get(path).status_code == 200
        me = own_record(client)
    assert me["requests_served"] == 0 and me["in_flight"] == 0
    assert me["control_served"] == 20  # the 5 rounds; this last poll counts once answered


def test_learner_requests_are_counted_exactly(tmp_path):
    with make_client(tmp_path, WORKERLAB_LAB_MODE="1") as client:
        client.get("/healthz")
        for path in ("/", "/work/io?ms=1", "/counter", "/no/such/path"):
            client.get(path)
        client.post("/leak?mb=1")
        me = own_record(client)
    assert (me["requests_served"], me["in_flight"], me["control_served"]) == (5, 0, 1)


def test_hello_reports_the_learners_count_only(tmp_path):
    with make_client(tmp_path) as client:
        first = client.get("/").json()["requests_served"]
        client.get("/healthz")
        client.get("/metrics")
        assert client.get("/").json()["requests_served"] == first + 1


def test_metrics_label_the_traffic_and_keep_two_process_gauges(tmp_path):
    with make_client(tmp_path) as client:
        client.get("/")
        client.get("/readyz")
        text = client.get("/metrics").text
    assert 'path="/",status="200",traffic="learner"' in text
    assert 'path="/readyz",status="200",traffic="control"' in text
    assert 'workerlab_http_request_duration_seconds_count{path="/readyz",traffic="control"}' in text
    assert "workerlab_process_requests_served " in text
    assert "workerlab_process_control_served " in text


def test_process_state_publishes_both_counts(tmp_path):
    state = StateDir(tmp_path)
    state.prepare()
    process = ProcessState(ProcessIdentity(index=0, generation=1), state)
    process.begin_request()
    assert process.count_control() == 1
    assert process.in_flight == 1  # control traffic leaves the learner's in-flight count alone
    assert process.count_request() == 1
    process.publish()
    (record,) = state.read_records()
    assert (record.requests_served, record.in_flight, record.control_served) == (1, 0, 1)
