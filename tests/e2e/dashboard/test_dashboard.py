"""`workerlab dashboard` in a real Chromium against the kind cluster: both levels live, "who
healed it" naming the operator and the arbiter, a scale from the page, bad input refused, and a
stream that survives an operator restart and a long idle period, all without reloading the page.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.paths import REPO

pytestmark = pytest.mark.e2e

WC = "web"
INSTANCE = "app.kubernetes.io/instance"
IDLE_S = float(os.environ.get("WORKERLAB_DASHBOARD_IDLE_S", "600"))  # the 10 minutes
UPDATE_S = 120  # how long a change may take to show on the page (pod start included)


def pods(kube, ns) -> list[dict]:
    items = kube.get("pods", "-n", ns, "-l", f"{INSTANCE}={WC}")["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def ready_names(kube, ns) -> set[str]:
    return {
        p["metadata"]["name"]
        for p in pods(kube, ns)
        if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p["status"].get("conditions", [])
        )
    }


def page_pods(page) -> list[str]:
    return page.eval_on_selector_all(
        f'[data-wc="{WC}"] .pod:not(.terminating)', "els => els.map(e => e.dataset.pod)"
    )


def page_pids(page, pod: str) -> set[int]:
    return set(
        page.eval_on_selector_all(
            f'[data-pod="{pod}"] tr.proc:not(.dead)', "els => els.map(e => +e.dataset.pid)"
        )
    )


def timeline(page, level: str) -> list[str]:
    return page.eval_on_selector_all(
        f'#timeline li[data-level="{level}"]', "els => els.map(e => e.textContent)"
    )


LANES_JS = """els => els.map(e => {
  const t = (k) => (e.dataset[k] === "" ? null : +e.dataset[k]);
  return {pod: e.dataset.pod, created: t("created"), ready: t("ready"), ended: t("ended"),
          gone: t("gone")};
})"""


def lanes(page) -> list[dict]:
    """The time axis' pod lanes of the WorkerCluster (static/lanes.js's data attributes)."""
    return page.eval_on_selector_all(f'svg.lanes[data-wc="{WC}"] g.pod-lane', LANES_JS)


def marks(page, level: str) -> list[dict]:
    return page.eval_on_selector_all(
        f'svg.lanes[data-wc="{WC}"] g.mark[data-level="{level}"]',
        "els => els.map(e => ({reason: e.dataset.reason, pod: e.dataset.pod, "
        "heal: e.dataset.heal, title: e.querySelector('title').textContent}))",
    )


ARTIFACTS = Path(os.environ.get("WORKERLAB_E2E_ARTIFACTS", "/tmp/workerlab-e2e-artifacts"))


def save_record(dashboard, name: str, docs: bool = False) -> Path:
    """The page's "save as HTML" link, downloaded like a user would; with
    WORKERLAB_UPDATE_DOCS_SCREENSHOT set, it and its screenshot go to docs/images/."""
    with dashboard.page.expect_download() as download:
        dashboard.page.click("#record")
    path = ARTIFACTS / f"record-{name}.html"
    download.value.save_as(path)
    if docs and os.environ.get("WORKERLAB_UPDATE_DOCS_SCREENSHOT"):
        shutil.copy(path, REPO / "docs" / "images" / f"record-{name}.html")
        shot = REPO / "docs" / "images" / f"record-{name}.png"
        dashboard.page.locator("#time").screenshot(path=str(shot))
    return path


AT_REST_S = 60.0


def counters(page) -> dict[str, tuple[int, int, int]]:
    """pod/pid -> (the learner's requests served, in the page's window, and the probes' and
    polls' count), from the page's own /api/state (its cookie)."""
    state = page.evaluate("fetch('/api/state').then(r => r.json())")
    return {
        f"{pod['name']}/{proc['pid']}": (
            proc["requests_served"],
            proc["requests_recent"],
            proc["control_served"],
        )
        for wc in state["clusters"]
        for pod in wc["pods"]
        for proc in pod["processes"] or []
        if proc["alive"] and proc.get("control_served") is not None
    }


def not_reloaded(page) -> bool:
    return page.evaluate("window.__notReloaded === true")


def test_page_shows_both_levels(dashboard, wait_for):
    page = dashboard.page
    wait_for(lambda: len(page_pods(page)) == 2, 60, "2 pods on the page")
    for pod in page_pods(page):
        wait_for(lambda p=pod: len(page_pids(page, p)) == 2, 60, f"2 processes of {pod}")
    # the header counts the processes this page read, as the pod boxes do
    wait_for(
        lambda: "2/2" in (h := page.text_content(f'[data-wc="{WC}"] .head')) and "4/4" in h,
        60,
        "2/2 pods and 4/4 processes ready in the header",
    )
    assert "Ready" in page.text_content(f'[data-wc="{WC}"] .pods')
    assert page.text_content("#live").startswith("live")
    shot = dashboard.shot("both-levels")
    docs = REPO / "docs" / "images" / "dashboard.png"
    if os.environ.get("WORKERLAB_UPDATE_DOCS_SCREENSHOT"):
        docs.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, docs)


def test_a_rollout_draws_new_pods_ready_before_the_old_ones_leave_and_no_heal(
    dashboard, cluster, wait_for
):
    page, ns = dashboard.page, dashboard.ns
    first = wait_for(lambda: len(x := lanes(page)) == 2 and x, 60, "2 pod lanes")
    old = {lane["pod"] for lane in first}
    healed_before = [t for t in timeline(page, "operator") if "healed in" in t]
    patch = '{"spec":{"env":[{"name":"ROLLOUT","value":"lanes"}]}}'
    cluster.ok("patch", "wc", WC, "-n", ns, "--type", "merge", "-p", patch)
    dashboard.touched()

    def rolled() -> list[dict] | None:
        now = lanes(page)
        new = [lane for lane in now if lane["pod"] not in old and lane["ready"]]
        left = [lane for lane in now if lane["pod"] in old and (lane["ended"] or lane["gone"])]
        return now if len(new) == 2 and len(left) == 2 else None

    done = wait_for(rolled, UPDATE_S * 2, "2 new lanes Ready, the 2 old ones ended")
    new = [lane for lane in done if lane["pod"] not in old]
    gone = [lane for lane in done if lane["pod"] in old]
    # maxUnavailable 0: each old pod left only after a new one was Ready, and the axis shows it
    first_ready = min(lane["ready"] for lane in new)
    assert all((lane["ended"] or lane["gone"]) >= first_ready for lane in gone), done
    assert [t for t in timeline(page, "operator") if "healed in" in t] == healed_before
    assert not [m for m in marks(page, "operator") if m["heal"]], "a rollout is no heal"
    dashboard.shot("rollout-lanes")
    record = save_record(dashboard, "rollout", docs=True)
    assert record.stat().st_size > 0
    dashboard.touched()


def test_deleted_pod_is_replaced_and_the_timeline_names_the_operator(dashboard, cluster, wait_for):
    page, ns = dashboard.page, dashboard.ns
    before = ready_names(cluster, ns)
    victim = sorted(before)[0]
    cluster.ok("delete", "pod", victim, "-n", ns, "--wait=false")
    dashboard.touched()
    started = time.monotonic()
    wait_for(
        lambda: (set(page_pods(page)) - before) and len(page_pods(page)) == 2,
        UPDATE_S,
        "a replacement pod on the page",
    )
    entry = wait_for(
        lambda: [t for t in timeline(page, "operator") if f"replaced {victim}" in t],
        UPDATE_S,
        "an operator entry naming the deleted pod",
    )
    assert "healed in" in entry[0], entry
    assert [t for t in timeline(page, "operator") if "CreatedPod" in t or "ReplacedPod" in t]
    # on the time axis: the victim's lane ends, a new one starts, the heal mark names the operator
    ended = wait_for(
        lambda: [x for x in lanes(page) if x["pod"] == victim and (x["ended"] or x["gone"])],
        30,
        "the deleted pod's lane ended",
    )
    assert [x for x in lanes(page) if x["created"] > ended[0]["created"] and x["ready"]]
    heal = [m for m in marks(page, "operator") if m["heal"] and f"replaced {victim}" in m["title"]]
    assert heal and "operator" in heal[0]["title"], marks(page, "operator")
    assert not_reloaded(page)
    dashboard.shot("operator-healed")
    save_record(dashboard, "heal", docs=True)
    print(f"\nFIGURES dashboard pod replaced on the page after {time.monotonic() - started:.1f}s")
    dashboard.touched()


def test_killed_process_gets_a_new_pid_and_the_timeline_names_the_arbiter(
    dashboard, cluster, wait_for
):
    page, ns = dashboard.page, dashboard.ns
    wait_for(lambda: len(page_pods(page)) == 2, UPDATE_S, "2 pods")
    pod = sorted(page_pods(page))[0]
    before = wait_for(lambda: len(p := page_pids(page, pod)) == 2 and p, 60, "2 pids")
    answer = json.loads(
        cluster.ok(
            "create",
            "--raw",
            f"/api/v1/namespaces/{ns}/pods/{pod}:8000/proxy/crash",
            "-f",
            "-",
            stdin="{}",
        )
    )
    dashboard.touched()
    killed = answer["pid"]
    assert killed in before
    after = wait_for(
        lambda: killed not in (p := page_pids(page, pod)) and len(p) == 2 and p,
        60,
        "a new pid on the page",
    )
    new_pid = (after - before).pop()
    # the page's own poll ("pid K ...; the arbiter forked pid N") or the operator's
    # ProcessReplaced Event ("replaced process K ... with process N"), whichever came first
    entry = wait_for(
        lambda: [t for t in timeline(page, "arbiter") if re.search(rf"\b{killed}\b", t)],
        30,
        "an arbiter entry naming the killed pid",
    )
    assert re.search(rf"\b{new_pid}\b", entry[0]) and pod in entry[0], entry
    assert len(entry) == 1, f"the re-fork is told once: {entry}"
    # on the time axis: an exit mark on the killed pid's span, a fork mark on the new one's,
    # and the arbiter's mark on that pod
    lane = f'svg.lanes[data-wc="{WC}"] g.proc-lane[data-pod="{pod}"]'
    wait_for(
        lambda: (
            page.locator(f'{lane} path.exit[data-pid="{killed}"]').count()
            and page.locator(f'{lane} circle.fork[data-pid="{new_pid}"]').count()
        ),
        30,
        "the exit and the re-fork on the process lane",
    )
    assert [m for m in marks(page, "arbiter") if m["pod"] == pod], marks(page, "arbiter")
    assert not_reloaded(page)
    dashboard.shot("arbiter-healed")


def test_kill_process_button_in_lab_mode(dashboard, wait_for):
    page = dashboard.page
    pod = sorted(page_pods(page))[-1]
    before = wait_for(lambda: len(p := page_pids(page, pod)) == 2 and p, 60, "2 pids")
    page.click(f'[data-pod="{pod}"] button:has-text("kill a process")')
    dashboard.touched()
    wait_for(lambda: len(p := page_pids(page, pod)) == 2 and p != before, 60, "a re-forked process")
    wait_for(lambda: [t for t in timeline(page, "you") if "killed a process" in t], 10, "entry")


def test_scale_from_the_page_changes_the_pod_count(dashboard, cluster, wait_for):
    page, ns = dashboard.page, dashboard.ns
    page.fill(f'[data-wc="{WC}"] input[aria-label="replicas"]', "3")
    page.click(f'[data-wc="{WC}"] button[data-act="scale"]')
    dashboard.touched()
    wait_for(
        lambda: cluster.get("wc", WC, "-n", ns)["spec"]["replicas"] == 3, 30, "spec.replicas 3"
    )
    wait_for(lambda: len(page_pods(page)) == 3, UPDATE_S, "3 pods on the page")
    wait_for(lambda: "3/3" in page.text_content(f'[data-wc="{WC}"] .head'), UPDATE_S, "3/3 ready")
    dashboard.shot("scaled")
    page.fill(f'[data-wc="{WC}"] input[aria-label="replicas"]', "2")
    page.click(f'[data-wc="{WC}"] button[data-act="scale"]')
    wait_for(lambda: len(page_pods(page)) == 2, UPDATE_S, "back to 2 pods")
    dashboard.touched()


def test_bad_input_from_the_page_is_refused_and_changes_nothing(dashboard, cluster):
    page, ns = dashboard.page, dashboard.ns
    results = page.evaluate(
        """async () => {
          const post = async (path, body, headers = {}) => {
            const r = await fetch(path, {method: "POST", body: JSON.stringify(body),
              headers: {"Content-Type": "application/json", ...headers}});
            return [r.status, await r.json()];
          };
          return [
            await post("/api/wc/web/scale", {replicas: -1}),
            await post("/api/wc/web/scale", {replicas: 1000000}),
            await post("/api/wc/nope/scale", {replicas: 1}),
            await post("/api/wc/web/scale", {replicas: 1}, {Authorization: "Bearer wrong"}),
          ];
        }"""
    )
    assert [status for status, _ in results] == [422, 422, 404, 403], results
    assert all("error" in body for _, body in results)
    assert cluster.get("wc", WC, "-n", ns)["spec"]["replicas"] == 2


def test_stream_survives_an_operator_restart(dashboard, cluster, wait_for):
    page, ns = dashboard.page, dashboard.ns
    cluster.ok("-n", "workerlab-system", "rollout", "restart", "deploy/workerlab-operator")
    cluster.ok(
        "-n", "workerlab-system", "rollout", "status", "deploy/workerlab-operator",
        "--timeout=180s",
    )  # fmt: skip
    before = set(page_pods(page))
    victim = sorted(before)[0]
    cluster.ok("delete", "pod", victim, "-n", ns, "--wait=false")
    dashboard.touched()
    wait_for(
        lambda: [t for t in timeline(page, "operator") if f"replaced {victim}" in t],
        UPDATE_S,
        "the new operator's replacement on the page",
    )
    assert not_reloaded(page)
    dashboard.touched()


@pytest.mark.timeout(IDLE_S + 300)
def test_stream_still_delivers_after_an_idle_period(dashboard, cluster, wait_for, figures):
    """Last in the module: waits what remains of WORKERLAB_DASHBOARD_IDLE_S since the last
    change, then a change must still reach the same page, without a reload."""
    page, ns = dashboard.page, dashboard.ns
    before = counters(page)
    # at least a minute with the page open and no load, whatever WORKERLAB_DASHBOARD_IDLE_S says
    time.sleep(max(AT_REST_S, IDLE_S - (time.monotonic() - dashboard.quiet_since)))
    idle_s = time.monotonic() - dashboard.quiet_since
    open_s = time.monotonic() - dashboard.opened_at
    assert not_reloaded(page)
    # At rest the learner's request counters stay still while the probes and polls go on: the
    # machinery's traffic is counted apart (control), never as requests.
    after = counters(page)
    assert after, "the page shows the pods' processes"
    assert all(recent == 0 for _, recent, _ in after.values()), after
    assert sum(control for _, _, control in after.values()) > 0, after  # the probes go on
    # a process alive through the whole period: its learner count never moved, its control did
    for key in set(before) & set(after):
        assert after[key][0] == before[key][0] and after[key][2] > before[key][2], (before, after)
    header = page.text_content(f'[data-wc="{WC}"] .head')
    assert re.search(r"last \d+s: 0 req", header), header
    version_before = page.text_content("#live")
    victim = sorted(ready_names(cluster, ns))[0]
    cluster.ok("delete", "pod", victim, "-n", ns, "--wait=false")
    wait_for(
        lambda: [t for t in timeline(page, "operator") if f"replaced {victim}" in t],
        UPDATE_S,
        "an update after the idle period",
    )
    assert dashboard.proc.poll() is None, "the dashboard is still running"
    figures(
        "dashboard-idle-stream",
        idle_s=round(idle_s),
        stream_open_s=round(open_s),
        live_before=version_before,
        live_after=page.text_content("#live"),
    )


def test_the_lab_panel_follows_lab_reset_and_renders_the_markdown(dashboard, wait_for):
    """`workerlab lab reset N` in a terminal (the same lab home): the panel shows lab N without
    a reload, its lists and tables as lists and tables."""
    page = dashboard.page
    env = dict(os.environ, WORKERLAB_LAB_HOME=dashboard.lab_home)
    workerlab = str(Path(sys.executable).parent / "workerlab")
    for number in (2, 1):
        subprocess.run(
            [workerlab, "lab", "reset", str(number)], env=env, cwd=REPO, check=True,
            capture_output=True, timeout=60,
        )  # fmt: skip
        wait_for(
            lambda n=number: page.input_value("#lab-select") == str(n),
            15,
            f"the panel on lab {number}",
        )
        wait_for(lambda: page.locator("#lab-text table.md").count() >= 1, 15, "a table")
        assert page.locator("#lab-text ol li, #lab-text ul li").count() >= 2
        assert page.locator("#lab-text pre").count() >= 1
        assert "|---" not in page.text_content("#lab-text")
    assert not_reloaded(page)


def test_a_crash_loop_shows_the_workers_own_error(dashboard, cluster, wait_for):
    """A WorkerCluster whose worker cannot start: the page shows why, in the worker's words
    (the operator's Warning quotes them), marked as a warning, whatever its reason."""
    page, ns = dashboard.page, dashboard.ns
    crashy = {
        "apiVersion": "workerlab.dev/v1alpha1",
        "kind": "WorkerCluster",
        "metadata": {"name": "crashy", "namespace": ns},
        "spec": {"replicas": 1, "processesPerPod": 1,
                 "env": [{"name": "REDIS_URL", "value": "not-a-url"}]},
    }  # fmt: skip
    cluster.apply(json.dumps(crashy))
    dashboard.touched()
    try:
        said = wait_for(
            lambda: [
                t
                for t in page.eval_on_selector_all(
                    "#timeline li.warn", "els => els.map(e => e.textContent)"
                )
                if "crashy" in t and "not-a-url" in t
            ],
            UPDATE_S * 2,
            "the worker's error about REDIS_URL on the page, as a warning",
        )
        print(f"\nFIGURES dashboard crash loop said: {said[0][:200]}")
        dashboard.shot("crash-loop")
    finally:
        cluster.run("delete", "wc", "crashy", "-n", ns, "--wait=false")
        dashboard.touched()


def test_a_saved_record_opens_with_no_network_and_shows_the_same_lanes(dashboard, dashboard_tools):
    page = dashboard.page
    live = {lane["pod"] for lane in lanes(page)}
    record = save_record(dashboard, "now")
    browser = dashboard.playwright.chromium.launch(
        executable_path=dashboard_tools.chromium,
        args=dashboard_tools.chromium_args,
        headless=True,
    )
    try:
        context = browser.new_context(offline=True)  # a projector's laptop with no network
        asked: list[str] = []

        def only_the_file(route) -> None:
            asked.append(route.request.url)
            if route.request.url.startswith("file:"):
                route.continue_()
            else:
                route.abort()

        context.route("**/*", only_the_file)
        shown = context.new_page()
        shown.goto(record.as_uri())
        recorded = set(
            shown.eval_on_selector_all(f'svg.lanes[data-wc="{WC}"] g.pod-lane', "els => "
                                       "els.map(e => e.dataset.pod)")
        )  # fmt: skip
        assert recorded == live, (recorded, live)
        assert asked == [record.as_uri()], asked
        shown.screenshot(path=str(ARTIFACTS / "record-now.png"), full_page=True)
    finally:
        browser.close()  # the projector's browser, whatever the verdict
