"""The dashboard is the learner's alone (issue 25): against a real `workerlab dashboard` and the
kind cluster, in Chromium.

- an unauthenticated `GET /` is a "not authorised" page with no token in it;
- `/api/state`, `/api/stream` and every action refuse without the token (and with a wrong one);
- another client given the page's public HTML (served at the dashboard's own origin) cannot act,
  and another origin cannot act with the learner's cookie;
- the page opened with the printed URL works: the URL is cleaned, the page is live, scale and
  load (through the API server's service proxy: the namespace has ClusterIP Services only) run;
- a revoked kubeconfig token (the ServiceAccount deleted, as `workerlab class remove` does)
  shows on the page as "not authorised" within seconds, not as the last healthy view.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.e2e

WC = "web"
ACTIONS = [
    (f"/api/wc/{WC}/scale", {"replicas": 5}),
    (f"/api/wc/{WC}/processes", {"processes_per_pod": 5}),
    (f"/api/wc/{WC}/delete-pod", {"pod": "x"}),
    (f"/api/wc/{WC}/kill-process", {"pod": "x"}),
    (f"/api/wc/{WC}/load", {"requests": 5}),
    ("/api/labs/1/check", {}),
]
# "At once": the dashboard asks every 2 s, but the API server itself keeps accepting a token it
# accepted for up to 10 s (kube-apiserver's token success cache); measured: 10.1 s.
REVOKED_S = 20


def client(url: str, **headers: str) -> httpx.Client:
    return httpx.Client(base_url=url.rstrip("/"), trust_env=False, timeout=10, headers=headers)


def unchanged(cluster, ns: str) -> None:
    spec = cluster.get("wc", WC, "-n", ns)["spec"]
    assert (spec["replicas"], spec["processesPerPod"]) == (2, 2), spec


def your_entries(dashboard) -> list[str]:
    with client(dashboard.url, Authorization=f"Bearer {dashboard.token}") as c:
        timeline = c.get("/api/state").json()["timeline"]
    return [e["message"] for e in timeline if e["level"] == "you"]


def test_unauthenticated_get_of_the_page_holds_no_token(dashboard):
    with client(dashboard.url) as c:
        page = c.get("/")
        wrong = c.get("/", params={"token": "guess"})
    assert page.status_code == 401 and "not authorised" in page.text
    assert "workerlab dashboard" in page.text and "app.js" not in page.text
    assert wrong.status_code == 403 and "set-cookie" not in wrong.headers
    for answer in (page, wrong):
        assert dashboard.token not in answer.text
    # the learner's own page holds no token either, and its cookie is out of the script's reach
    assert dashboard.token not in dashboard.page.content()
    assert "workerlab-dashboard" not in dashboard.page.evaluate("document.cookie")
    assert "token" not in dashboard.page.url


def test_state_stream_and_every_action_refuse_without_the_token(dashboard, cluster):
    with client(dashboard.url) as c:
        for path in ("/api/state", "/api/labs", "/api/labs/1"):
            answer = c.get(path)
            assert answer.status_code == 401, (path, answer.text)
            assert "not authorised" in answer.json()["error"]
        with c.stream("GET", "/api/stream") as stream:
            assert stream.status_code == 401
            assert stream.headers["content-type"].startswith("application/json")
        for path, body in ACTIONS:
            for headers, status in (
                ({}, 401),
                ({"Origin": dashboard.url.rstrip("/")}, 401),
                ({"Authorization": "Bearer wrong"}, 403),
            ):
                answer = c.post(path, json=body, headers=headers)
                assert answer.status_code == status, (path, headers, answer.text)
                assert answer.json()["error"]
    unchanged(cluster, dashboard.ns)
    assert your_entries(dashboard) == []


def test_another_client_with_the_public_html_cannot_act(
    dashboard, dashboard_tools, cluster, wait_for
):
    with client(dashboard.url, Authorization=f"Bearer {dashboard.token}") as c:
        public_html = c.get("/").text  # exactly what the learner's browser was served
    assert dashboard.token not in public_html
    browser = dashboard.playwright.chromium.launch(
        executable_path=dashboard_tools.chromium, args=dashboard_tools.chromium_args, headless=True
    )
    try:
        other = browser.new_context().new_page()
        other.goto(dashboard.url)
        assert "not authorised" in other.text_content("body")
        assert other.query_selector("#clusters") is None
        # The page's HTML, served at the dashboard's own origin: its script runs, its stream
        # and its actions are refused, and it says so.
        other.route(
            dashboard.url,
            lambda route: route.fulfill(status=200, content_type="text/html", body=public_html),
        )
        other.goto(dashboard.url)
        wait_for(
            lambda: other.text_content("#live") == "not authorised", 20, "'not authorised' pill"
        )
        assert "open the URL `workerlab dashboard` printed" in other.text_content("#banner")
        statuses = other.evaluate(
            """async (actions) => {
              const out = [];
              for (const [path, body] of actions) {
                const r = await fetch(path, {method: "POST", body: JSON.stringify(body),
                  headers: {"Content-Type": "application/json"}});
                out.push(r.status);
              }
              const s = await fetch("/api/state");
              out.push(s.status);
              return out;
            }""",
            ACTIONS,
        )
        assert statuses == [401] * (len(ACTIONS) + 1), statuses
        # Another origin in the learner's own browser (the cookie rides along: cookies ignore
        # ports, so 127.0.0.1:OTHER is the same site) is refused by Origin.
        evil = f"http://127.0.0.1:{dashboard_tools.free_port()}/"
        page = dashboard.browser.new_page()
        page.route(evil, lambda route: route.fulfill(status=200, content_type="text/html",
                                                     body="<p>another local page</p>"))  # fmt: skip
        page.goto(evil)
        page.evaluate(
            """async ([base, actions]) => {
              for (const [path, body] of actions) {
                await fetch(base + path, {method: "POST", mode: "no-cors",
                  credentials: "include", body: JSON.stringify(body)}).catch(() => null);
              }
            }""",
            [dashboard.url.rstrip("/"), ACTIONS],
        )
        page.close()
    finally:
        browser.close()
    unchanged(cluster, dashboard.ns)
    assert your_entries(dashboard) == []
    dashboard.shot("security-other-clients")


def test_the_page_opened_with_the_printed_url_works(dashboard, cluster, wait_for):
    page = dashboard.page
    assert page.url == dashboard.url
    wait_for(lambda: page.text_content("#live").startswith("live"), 30, "a live stream")
    wait_for(lambda: page.query_selector(f'[data-wc="{WC}"]'), 60, f"wc/{WC} on the page")
    page.fill(f'[data-wc="{WC}"] input[aria-label="replicas"]', "2")
    page.click(f'[data-wc="{WC}"] button[data-act="scale"]')
    wait_for(
        lambda: [m for m in your_entries(dashboard) if f"scaled wc/{WC} to 2" in m], 20, "scaled"
    )
    # load: the namespace's Service is a ClusterIP, so the run goes through the service proxy
    page.fill(f'[data-wc="{WC}"] input[aria-label="requests"]', "20")
    page.fill(f'[data-wc="{WC}"] input[aria-label="path"]', "/")
    page.click(f'[data-wc="{WC}"] button[data-act="load"]')
    started = wait_for(
        lambda: [m for m in your_entries(dashboard) if "started load" in m], 40, "load started"
    )
    assert "(service proxy)" in started[0], started
    done = wait_for(
        lambda: [m for m in your_entries(dashboard) if "load on" in m and "done" in m], 60, "done"
    )
    assert "20 ok, 0 errors" in done[0], done
    unchanged(cluster, dashboard.ns)
    dashboard.shot("security-printed-url")


def learner_kubeconfig(cluster, ns: str, path: Path) -> str:
    """A ServiceAccount with namespaced rights and a kubeconfig holding its token, as `workerlab
    class add` makes one; returns the context's name."""
    rules = [
        {
            "apiGroups": ["workerlab.dev"],
            "resources": ["workerclusters", "workerclusters/scale"],
            "verbs": ["get", "list", "watch", "patch", "update"],
        },
        {"apiGroups": [""], "resources": ["pods", "events"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["pods/proxy"], "verbs": ["get"]},
    ]
    for manifest in (
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "learner"}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "learner"},
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "learner"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "learner"},
            "subjects": [{"kind": "ServiceAccount", "name": "learner", "namespace": ns}],
        },
    ):
        cluster.ok("apply", "-n", ns, "-f", "-", stdin=json.dumps(manifest))
    token = cluster.ok("create", "token", "learner", "-n", ns, "--duration=15m").strip()
    config = json.loads(cluster.ok("config", "view", "--minify", "--raw", "-o", "json"))
    server = config["clusters"][0]["cluster"]
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": server}],
        "users": [{"name": "learner", "user": {"token": token}}],
        "contexts": [
            {"name": "learner", "context": {"cluster": "c", "user": "learner", "namespace": ns}}
        ],
        "current-context": "learner",
    }
    path.write_text(json.dumps(kubeconfig))
    path.chmod(0o600)
    return "learner"


def test_a_revoked_token_shows_as_not_authorised_at_once(
    dashboard, dashboard_tools, cluster, wait_for, figures
):
    ns, tools = dashboard.ns, dashboard_tools
    with tempfile.TemporaryDirectory(prefix="dash-learner-") as home:
        kubeconfig = Path(home) / "learner.kubeconfig"
        context = learner_kubeconfig(cluster, ns, kubeconfig)
        env = {"KUBECONFIG": str(kubeconfig), "WORKERLAB_LAB_HOME": home}
        log = tools.artifacts / f"dashboard-{ns}-learner.log"
        proc, _, printed = tools.launch(ns, context, log, env)
        page = dashboard.browser.new_page()
        try:
            page.goto(printed)
            wait_for(
                lambda: page.query_selector(f'[data-wc="{WC}"] .pod'), 60, "the learner's pods"
            )
            assert page.text_content("#live").startswith("live")
            cluster.ok("delete", "serviceaccount", "learner", "-n", ns)  # revokes its tokens
            revoked = time.monotonic()
            wait_for(
                lambda: page.text_content("#live") == "not authorised", REVOKED_S, "not authorised"
            )
            shown_after = time.monotonic() - revoked
            banner = page.text_content("#banner")
            assert "Not authorised" in banner and "401" in banner, banner
            assert page.query_selector(f'[data-wc="{WC}"]') is None, "no stale cluster shown"
            assert "not authorised" in page.text_content("#clusters")
            page.screenshot(path=str(tools.artifacts / "dashboard-revoked.png"), full_page=True)
            figures("dashboard-revoked-token", shown_after_s=round(shown_after, 1))
        finally:
            page.close()
            tools.stop(proc)
