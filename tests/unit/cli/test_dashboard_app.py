"""The dashboard app with a fake source: bad input -> 4xx JSON and nothing changes; good input
reaches the actions (which a fake records). Requests here hold the token as a script does
(`Authorization: Bearer`); the cookie flow and every refusal are test_dashboard_auth's."""

from __future__ import annotations

import asyncio
import json

import pytest
from fastapi.testclient import TestClient

from workerlab.cli.dashboard.app import Hub, create_app
from workerlab.cli.dashboard.model import Model
from workerlab.common.errors import WorkerlabError

PORT = 8080
BASE = f"http://127.0.0.1:{PORT}"
TOKEN = "t0ken"


class FakeActions:
    def __init__(self):
        self.calls = []
        self.unreachable = None

    async def scale(self, wc, replicas):
        self.calls.append(("scale", wc, replicas))
        return {}

    async def set_processes(self, wc, processes):
        self.calls.append(("processes", wc, processes))
        return {}

    async def delete_pod(self, wc, pod):
        self.calls.append(("delete", wc, pod))
        return {}

    async def kill_process(self, wc, pod):
        self.calls.append(("kill", wc["metadata"]["name"], pod))
        return {"pid": 42}

    async def load(self, wc, path, requests, concurrency, duration_s, on_ready):
        self.calls.append(("load", wc["metadata"]["name"], path, requests))
        if self.unreachable:
            raise WorkerlabError(self.unreachable, hint="workerlab status")
        on_ready("service proxy")
        await asyncio.sleep(0)
        return {"ok": requests, "errors": 0, "elapsed_s": 0.1}

    async def check_lab(self, number):
        self.calls.append(("check", number))
        return {"lab": number, "passed": False, "items": [{"name": "x", "passed": False}]}


def wc(name, lab=True):
    return {
        "metadata": {"name": name},
        "spec": {"replicas": 2, "processesPerPod": 2, "labMode": lab},
        "status": {},
    }


def pod(name, wc_name):
    return {
        "metadata": {"name": name, "uid": name, "labels": {"app.kubernetes.io/instance": wc_name}},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }


@pytest.fixture
def setup():
    model = Model("lab")
    model.wc("ADDED", wc("demo"), 0)
    model.wc("ADDED", wc("plain", lab=False), 0)
    model.pod("ADDED", pod("demo-a", "demo"), 0)
    model.pod("ADDED", pod("plain-a", "plain"), 0)
    actions = FakeActions()
    app = create_app(
        Hub(model),
        actions,
        port=PORT,
        token=TOKEN,
        lab_numbers=lambda: [{"number": 1, "title": "one", "summary": "s"}],
        lab_text=lambda n: (
            "# Lab 1 — one\n"
            if n == 1
            else (_ for _ in ()).throw(WorkerlabError(f"there is no lab {n}"))
        ),
    )
    client = TestClient(app, base_url=BASE, headers={"Authorization": f"Bearer {TOKEN}"})
    return client, actions, model


def post(client, path, body, **headers):
    return client.post(path, content=json.dumps(body), headers={
        "Content-Type": "application/json", **headers})  # fmt: skip


def test_page_is_served_with_its_assets_and_holds_no_token(setup):
    client, _, _ = setup
    page = client.get("/")
    assert page.status_code == 200 and TOKEN not in page.text
    assert "/static/app.js" in page.text and "cdn" not in page.text.lower()
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/style.css").status_code == 200


def test_state_is_the_models_view(setup):
    client, _, _ = setup
    state = client.get("/api/state").json()
    assert [c["name"] for c in state["clusters"]] == ["demo", "plain"]


def test_good_actions_reach_the_actions_and_the_timeline(setup):
    client, actions, model = setup
    assert post(client, "/api/wc/demo/scale", {"replicas": 3}).json()["ok"]
    assert post(client, "/api/wc/demo/processes", {"processes_per_pod": 4}).status_code == 200
    assert post(client, "/api/wc/demo/delete-pod", {"pod": "demo-a"}).status_code == 200
    assert post(client, "/api/wc/demo/kill-process", {"pod": "demo-a"}).json()["pid"] == 42
    assert actions.calls == [
        ("scale", "demo", 3), ("processes", "demo", 4), ("delete", "demo", "demo-a"),
        ("kill", "demo", "demo-a"),
    ]  # fmt: skip
    assert [e.level for e in model.timeline] == ["you"] * 4


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/api/wc/nope/scale", {"replicas": 1}, 404),
        ("/api/wc/demo/scale", {"replicas": -1}, 422),
        ("/api/wc/demo/scale", {"replicas": 10**6}, 422),
        ("/api/wc/demo/scale", {"replicas": "many"}, 422),
        ("/api/wc/demo/scale", {}, 422),
        ("/api/wc/demo/processes", {"processes_per_pod": 0}, 422),
        ("/api/wc/demo/processes", {"processes_per_pod": 65}, 422),
        ("/api/wc/demo/delete-pod", {"pod": "plain-a"}, 404),
        ("/api/wc/demo/delete-pod", {"pod": "../etc"}, 422),
        ("/api/wc/demo/kill-process", {"pod": "nope"}, 404),
        ("/api/wc/plain/kill-process", {"pod": "plain-a"}, 409),
        ("/api/wc/demo/load", {"requests": 10**7}, 422),
        ("/api/wc/demo/load", {"path": "http://evil.example/"}, 422),
        ("/api/wc/demo/load", {"duration_s": 3600}, 422),
        ("/api/labs/99/check", {}, 404),
    ],
)
def test_bad_input_is_a_clear_4xx_json_and_changes_nothing(setup, path, body, status):
    client, actions, model = setup
    response = post(client, path, body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert isinstance(response.json().get("error"), str) and response.json()["error"]
    assert actions.calls == [] and list(model.timeline) == []


def test_a_foreign_host_header_is_refused_even_for_reads(setup):
    client, _, _ = setup
    for path in ("/", "/api/state"):
        response = client.get(path, headers={"Host": "evil.example:8080"})
        assert response.status_code == 421 and "error" in response.json()
    assert client.get("/", headers={"Host": f"localhost:{PORT}"}).status_code == 200


def test_load_starts_in_the_background_once_the_target_answered(setup):
    client, actions, model = setup
    with client:
        answer = post(client, "/api/wc/demo/load", {"requests": 10}).json()
    assert answer["started"] and answer["via"] == "service proxy"
    assert ("load", "demo", "/", 10) in actions.calls
    messages = [e.message for e in model.timeline]
    assert "started load on wc/demo/ (service proxy)" in messages[0]
    assert "done: 10 ok, 0 errors" in messages[1]


def test_load_that_cannot_reach_its_target_is_not_reported_started(setup):
    client, actions, model = setup
    actions.unreachable = "wc/demo (service proxy) answered HTTP 403: services/proxy forbidden"
    with client:
        response = post(client, "/api/wc/demo/load", {"requests": 10})
        assert response.status_code == 502, response.text
        assert response.json()["error"].startswith("load not started: wc/demo")
        assert "hint: workerlab status" in response.json()["error"]
        assert list(model.timeline) == []
        actions.unreachable = None  # the next run may go (nothing stayed "running")
        assert post(client, "/api/wc/demo/load", {"requests": 5}).json()["started"]


def test_labs_and_check(setup):
    client, actions, _ = setup
    assert client.get("/api/labs").json()["labs"][0]["number"] == 1
    assert client.get("/api/labs/1").json()["text"].startswith("# Lab 1")
    assert client.get("/api/labs/7").status_code == 404
    result = post(client, "/api/labs/1/check", {}).json()
    assert result["passed"] is False and actions.calls == [("check", 1)]


def test_stream_sends_the_state_first(setup):
    client, _, _ = setup
    with client.stream("GET", "/api/stream") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = []
        for line in response.iter_lines():
            lines.append(line)
            if line.startswith("data:"):
                break
    state = json.loads(lines[-1][5:])
    assert state["namespace"] == "lab"
