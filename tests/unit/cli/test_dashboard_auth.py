"""Who may use the dashboard (the issue's finding: another local user read the token from `GET /`
and drove a learner's WorkerClusters): nothing but the static assets answers without the token;
the printed URL's token becomes an HttpOnly, SameSite=Strict cookie; the API refuses requests
without it (401), with a wrong one (403) and from another origin (403)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from workerlab.cli.dashboard.app import Hub, create_app
from workerlab.cli.dashboard.auth import Gate
from workerlab.cli.dashboard.model import Model

PORT = 8181
BASE = f"http://127.0.0.1:{PORT}"
TOKEN = "s3cret-t0ken-for-the-test"
COOKIE = f"workerlab-dashboard-{PORT}"
SESSION = Gate(TOKEN, PORT).session

ACTIONS = [
    ("/api/wc/demo/scale", {"replicas": 1}),
    ("/api/wc/demo/processes", {"processes_per_pod": 1}),
    ("/api/wc/demo/delete-pod", {"pod": "demo-a"}),
    ("/api/wc/demo/kill-process", {"pod": "demo-a"}),
    ("/api/wc/demo/load", {"requests": 1}),
    ("/api/labs/1/check", {}),
]
READS = ["/api/state", "/api/stream", "/api/labs", "/api/labs/1", "/api/nothing-here"]


class RecordingActions:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        async def call(*args):
            self.calls.append((name, *args[:2]))
            if name == "load":
                args[-1]("NodePort")
                return {"ok": 1, "errors": 0, "elapsed_s": 0.0}
            if name == "check_lab":
                return {"lab": args[0], "passed": True, "items": []}
            return {}

        return call


@pytest.fixture
def app_and_actions():
    model = Model("lab")
    model.wc("ADDED", {"metadata": {"name": "demo"}, "spec": {"replicas": 1, "labMode": True}}, 0)
    model.pod(
        "ADDED",
        {
            "metadata": {
                "name": "demo-a",
                "uid": "a",
                "labels": {"app.kubernetes.io/instance": "demo"},
            },
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
        },
        0,
    )
    actions = RecordingActions()
    app = create_app(
        Hub(model),
        actions,
        port=PORT,
        token=TOKEN,
        lab_numbers=lambda: [{"number": 1, "title": "one", "summary": "s"}],
        lab_text=lambda n: "# Lab 1",
    )
    return app, actions


@pytest.fixture
def stranger(app_and_actions):
    """Another local user: can reach 127.0.0.1:PORT, has no token."""
    return TestClient(app_and_actions[0], base_url=BASE, follow_redirects=False)


@pytest.fixture
def learner(app_and_actions):
    """The learner's browser after opening the printed URL."""
    client = TestClient(app_and_actions[0], base_url=BASE, follow_redirects=False)
    swap = client.get(f"/?token={TOKEN}")
    assert swap.status_code == 303
    return client


def post(client, path, body, **headers):
    return client.post(path, content=json.dumps(body), headers={
        "Content-Type": "application/json", **headers})  # fmt: skip


def assert_refused(response, status):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert isinstance(error, str) and error
    assert TOKEN not in response.text and SESSION not in response.text
    return error


# --- GET / and the cookie exchange --------------------------------------------------------------
def test_unauthenticated_page_says_how_to_get_in_and_holds_no_token(stranger):
    page = stranger.get("/")
    assert page.status_code == 401
    assert page.headers["content-type"].startswith("text/html")
    assert "not authorised" in page.text and "workerlab dashboard" in page.text
    assert "?token=" in page.text  # how the URL looks, not what it holds
    assert TOKEN not in page.text and SESSION not in page.text
    assert "set-cookie" not in page.headers
    assert "app.js" not in page.text  # the dashboard itself is not served


def test_a_wrong_token_in_the_url_gets_no_cookie(stranger):
    for wrong in ("nope", "", TOKEN[:-1], TOKEN + "x"):
        page = stranger.get("/", params={"token": wrong})
        assert page.status_code == 403 and "not this dashboard" in page.text
        assert "set-cookie" not in page.headers and TOKEN not in page.text
    assert stranger.get("/api/state").status_code == 401


def test_the_printed_url_becomes_an_httponly_strict_cookie_and_a_clean_url(stranger):
    swap = stranger.get(f"/?token={TOKEN}")
    assert swap.status_code == 303 and swap.headers["location"] == "/"
    cookie = swap.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}={SESSION};")
    attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= attributes
    assert TOKEN not in cookie  # the cookie holds a value derived from it
    assert swap.headers["cache-control"] == "no-store"
    assert swap.headers["referrer-policy"] == "no-referrer"
    page = stranger.get("/")  # the client kept the cookie: it is the learner's browser now
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert TOKEN not in page.text and SESSION not in page.text
    assert stranger.get("/api/state").json()["namespace"] == "lab"


def test_cookies_of_another_port_or_a_restarted_dashboard_do_not_count(app_and_actions):
    client = TestClient(app_and_actions[0], base_url=BASE)
    client.cookies.set(f"workerlab-dashboard-{PORT + 1}", SESSION)  # another dashboard's name
    assert_refused(client.get("/api/state"), 401)
    client.cookies.clear()
    client.cookies.set(COOKIE, Gate("an-older-token", PORT).session)
    error = assert_refused(client.get("/api/state"), 403)
    assert "restarted" in error
    assert client.get("/").status_code == 403


def test_static_assets_answer_without_the_token_and_hold_nothing_secret(stranger):
    for asset in ("/static/app.js", "/static/style.css", "/static/index.html"):
        response = stranger.get(asset)
        assert response.status_code == 200, asset
        assert TOKEN not in response.text and "{{TOKEN}}" not in response.text
    assert "workerlab-token" not in stranger.get("/static/index.html").text


def test_no_api_docs_or_schema_answer(stranger, learner):
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert stranger.get(path).status_code == 401
        assert learner.get(path).status_code == 404


# --- the API without the token ------------------------------------------------------------------
@pytest.mark.parametrize("path", READS)
def test_reads_refuse_without_the_token(stranger, path):
    error = assert_refused(stranger.get(path), 401)
    assert "open the URL `workerlab dashboard` printed" in error
    assert_refused(stranger.get(path, headers={"Authorization": "Bearer wrong"}), 403)
    assert_refused(stranger.get(path, headers={"Authorization": f"Basic {TOKEN}"}), 401)
    assert_refused(stranger.get(path, headers={"X-Workerlab-Token": TOKEN}), 401)  # old header
    assert_refused(stranger.get(path, params={"token": TOKEN}), 401)  # only `/` swaps a token


@pytest.mark.parametrize(("path", "body"), ACTIONS)
def test_actions_refuse_without_the_token(app_and_actions, stranger, path, body):
    _, actions = app_and_actions
    assert_refused(post(stranger, path, body), 401)
    assert_refused(post(stranger, path, body, Origin=BASE), 401)
    assert_refused(post(stranger, path, body, Authorization="Bearer wrong"), 403)
    assert_refused(post(stranger, path, body, Authorization=f"Bearer {TOKEN}x"), 403)
    assert_refused(post(stranger, f"{path}?token={TOKEN}", body, Origin=BASE), 401)
    assert actions.calls == []


def test_the_stream_refuses_before_it_starts(stranger):
    with stranger.stream("GET", "/api/stream") as response:
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/json")


# --- the learner's page, and what other origins can do with the cookie --------------------------
@pytest.mark.parametrize(("path", "body"), ACTIONS)
def test_the_learners_page_acts_with_its_cookie_from_its_origin(
    app_and_actions, learner, path, body
):
    _, actions = app_and_actions
    with learner:
        for origin in (BASE, f"http://localhost:{PORT}"):
            response = post(learner, path, body, Origin=origin)
            assert response.status_code == 200, response.text
            if path.endswith("/load"):
                break  # one run at a time
    assert actions.calls


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://127.0.0.1:9999"},  # same site (cookies ignore ports), other origin
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": BASE, "Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "cross-site"},
        {},  # a cookie-carrying POST must say where it came from
    ],
)
@pytest.mark.parametrize(("path", "body"), ACTIONS)
def test_the_cookie_does_not_act_for_another_origin(app_and_actions, learner, path, body, headers):
    _, actions = app_and_actions
    assert_refused(post(learner, path, body, **headers), 403)
    assert actions.calls == []


def test_reads_with_the_cookie_refuse_other_origins(learner):
    assert learner.get("/api/state").status_code == 200
    assert_refused(learner.get("/api/state", headers={"Origin": "http://127.0.0.1:9"}), 403)
    assert_refused(learner.get("/api/labs", headers={"Sec-Fetch-Site": "same-site"}), 403)


def test_a_script_acts_with_the_bearer_token(app_and_actions, stranger):
    _, actions = app_and_actions
    response = post(stranger, "/api/wc/demo/scale", {"replicas": 1},
                    Authorization=f"Bearer {TOKEN}")  # fmt: skip
    assert response.status_code == 200 and actions.calls == [("scale", "demo", 1)]


def test_every_answer_forbids_framing_and_sniffing(stranger, learner):
    for response in (stranger.get("/"), learner.get("/"), learner.get("/api/state")):
        assert response.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"


def test_a_foreign_host_is_refused_before_the_token_is_looked_at(learner):
    for path in ("/", f"/?token={TOKEN}", "/api/state", "/static/app.js"):
        response = learner.get(path, headers={"Host": f"evil.example:{PORT}"})
        assert response.status_code == 421 and "set-cookie" not in response.headers


def test_a_revoked_kubeconfig_shows_as_not_authorised_not_as_the_last_view(app_and_actions):
    """The source sets health `auth` False on the API server's 401/403; the state then holds
    none of the namespace's objects, so the page cannot show a stale healthy cluster."""
    app, _ = app_and_actions
    client = TestClient(app, base_url=BASE, headers={"Authorization": f"Bearer {TOKEN}"})
    assert [c["name"] for c in client.get("/api/state").json()["clusters"]] == ["demo"]
    model = app.state.hub.model
    model.set_health("auth", False, 1.0)
    model.set_health("auth_error", "HTTP 401 Unauthorized: Unauthorized", 1.0)
    state = client.get("/api/state").json()
    assert state["clusters"] == [] and state["health"]["auth"] is False
    assert "401" in state["health"]["auth_error"]
