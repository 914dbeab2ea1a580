"""The FastAPI app in-process (TestClient): response shapes, bounds, lab mode, errors."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from workerlab.api.processes import ProcessesReport
from workerlab.worker import counter, faults
from workerlab.worker.app import Hello, create_app
from workerlab.worker.config import MAX_CPU_MS, Settings
from workerlab.worker.process_state import RECORD_FLUSH_S
from workerlab.worker.siblings import StateDir


def make_client(tmp_path, **env: str) -> TestClient:
    env = {"WORKERLAB_STATE_DIR": str(tmp_path), "POD_NAME": "pod-a"} | env
    return TestClient(create_app(Settings.from_env(env, cpus=lambda: 2)))


@pytest.fixture
def client(tmp_path):
    with make_client(tmp_path) as c:
        yield c


@pytest.fixture
def lab_client(tmp_path):
    with make_client(tmp_path, WORKERLAB_LAB_MODE="1") as c:
        yield c


def test_hello_matches_its_documented_model(client):
    first = client.get("/")
    assert first.headers["content-type"] == "application/json"
    body = Hello.model_validate_json(first.content)  # the pre-encoded body is the model
    assert body.message == "Hello from Worker!" and body.pod == "pod-a"
    assert body.lab_mode is False
    later = Hello.model_validate_json(client.get("/").content)
    assert later.requests_served == body.requests_served + 1
    assert later.uptime_s >= body.uptime_s
    schema = client.get("/openapi.json").json()["paths"]["/"]["get"]["responses"]["200"]
    assert schema["content"]["application/json"]["schema"]["$ref"].endswith("/Hello")


def test_processes_shape(client):
    client.get("/")
    body = client.get("/processes").json()
    assert {"pod", "arbiter_pid", "processes"} <= body.keys()
    assert body["balance"] == "shared"
    (me,) = body["processes"]
    assert {"pid", "started_at", "requests_served", "in_flight", "control_served"} <= me.keys()
    assert me["alive"] is True and me["requests_served"] == 1  # the GET /, not this poll
    assert me["in_flight"] == 0  # this very /processes request is control traffic
    assert body == ProcessesReport.from_dict(body).to_dict()  # exactly the shared record


def test_processes_reports_the_balance_mode(tmp_path):
    with make_client(tmp_path, BALANCE="reuseport") as c:
        assert c.get("/processes").json()["balance"] == "reuseport"


def test_in_flight_counts_requests_until_they_are_answered(tmp_path):
    app = create_app(Settings.from_env({"WORKERLAB_STATE_DIR": str(tmp_path)}, cpus=lambda: 1))
    seen: list[int] = []

    @app.get("/probe-in-flight")
    async def probe() -> dict:
        records = StateDir(tmp_path).read_records()
        seen.append(records[0].in_flight)
        return {}

    with TestClient(app) as c:
        time.sleep(RECORD_FLUSH_S + 0.1)  # idle long enough for its record to be stale
        c.get("/probe-in-flight")  # so it publishes as the request begins
        after = c.get("/processes").json()["processes"][0]
    assert seen == [1]
    assert after["in_flight"] == 0 and after["requests_served"] == 1  # /processes is control


def test_readiness_follows_the_draining_flag(client, tmp_path):
    assert client.get("/readyz").status_code == 200
    StateDir(tmp_path).mark_draining()
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["ready"] is False
    assert client.get("/healthz").status_code == 200  # alive while draining


def test_cpu_work_is_bounded(client):
    assert client.get("/work/cpu?ms=5").json()["hash_rounds"] > 0
    response = client.get(f"/work/cpu?ms={MAX_CPU_MS + 1}")
    assert response.status_code == 422 and "detail" in response.json()


@pytest.mark.parametrize("path", ["/work/cpu?ms=x", "/work/io?ms=-1", "/work/io"])
def test_bad_input_is_422_json(client, path):
    response = client.get(path)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize("path", ["/crash", "/hang", "/leak"])
def test_faults_absent_outside_lab_mode(client, path):
    assert client.post(path).status_code == 404


def test_crash_answers_then_exits(lab_client, monkeypatch):
    exits = []
    monkeypatch.setattr(faults.os, "_exit", exits.append)
    response = lab_client.post("/crash")
    assert response.status_code == 202 and "arbiter" in response.json()["healed_by"]
    assert exits == [faults.CRASH_EXIT_CODE]
    assert faults.CRASH_EXIT_CODE not in (3, 4)  # gunicorn would halt the whole pod on those


def test_hang_answers_then_blocks(lab_client, monkeypatch):
    monkeypatch.setattr(faults, "HANG_MAX_S", 0)
    response = lab_client.post("/hang")
    assert response.status_code == 202 and "WORKER_TIMEOUT" in response.json()["healed_by"]


def test_leak_grows_and_is_bounded(lab_client, monkeypatch):
    monkeypatch.setattr(faults, "_leaked", [])
    assert lab_client.post("/leak?mb=1").json()["leaked_mb_total"] == 1
    assert lab_client.post("/leak?mb=2").json()["leaked_mb_total"] == 3
    assert lab_client.post("/leak?mb=0").status_code == 422


def test_process_counter(client):
    assert client.get("/counter").json() == client.get("/counter").json() | {"count": 0}
    assert [client.post("/counter").json()["count"] for _ in range(3)] == [1, 2, 3]
    assert client.get("/counter").json()["backend"] == "process"


class BrokenRedis:
    name = "redis"

    async def increment(self) -> int:
        raise counter.CounterUnavailable("ConnectionError: refused")

    value = increment

    async def close(self) -> None:
        return None


def test_unreachable_counter_store_is_503_json(tmp_path, monkeypatch):
    monkeypatch.setattr("workerlab.worker.app.make_counter", lambda url: BrokenRedis())
    with make_client(tmp_path, REDIS_URL="redis://127.0.0.1:1/0") as c:
        for method in ("GET", "POST"):
            response = c.request(method, "/counter")
            assert response.status_code == 503
            assert response.json()["error"] == "redis unavailable"


def test_metrics_exposition(client):
    client.get("/")
    text = client.get("/metrics").text
    assert "workerlab_http_requests_total" in text
    assert 'path="/"' in text


def test_unknown_paths_share_one_metrics_label(client):
    client.get("/a/b/c")
    text = client.get("/metrics").text
    assert 'path="other"' in text and "/a/b/c" not in text


def test_unknown_methods_share_one_metrics_label(client):
    client.request("BREW", "/")
    text = client.get("/metrics").text
    assert 'method="other"' in text and "BREW" not in text


def test_405_allow_header_names_every_method_of_the_path(client):
    options = client.options("/counter")
    assert options.status_code == 405
    assert options.headers["allow"] == "GET, POST"  # two routes serve /counter
    assert "detail" in options.json()
    delete = client.delete("/")
    assert (delete.status_code, delete.headers["allow"]) == (405, "GET")


def test_metrics_is_documented_as_text_like_it_is_served(client):
    operation = client.get("/openapi.json").json()["paths"]["/metrics"]["get"]
    assert list(operation["responses"]["200"]["content"]) == ["text/plain"]
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")
