"""The dashboard's e2e fixtures: a throwaway namespace with a lab-mode WorkerCluster, the
dashboard as a real subprocess (`workerlab dashboard`), and a real Chromium page on it, opened
with the URL the CLI printed (`http://127.0.0.1:PORT/?token=...`), as a learner opens it.

Module-scoped, not session-scoped: Playwright's sync API keeps an event loop running in the
main thread while it is open, and every later test calling asyncio.run() would fail. The idle
test at the end of the module waits WORKERLAB_DASHBOARD_IDLE_S (600 s, the issue's 10 minutes;
`make test` runs this suite in a lane of its own, beside the others) since the last change.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from support.paths import REPO

ARTIFACTS = Path(os.environ.get("WORKERLAB_E2E_ARTIFACTS", "/tmp/workerlab-e2e-artifacts"))
CHROMIUM = os.environ.get("WORKERLAB_CHROMIUM", "/usr/bin/chromium")
IDLE_TEST = "test_stream_still_delivers_after_an_idle_period"
WC = "web"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Dashboard:
    ns: str
    url: str  # the clean URL the page ends up on
    page: object
    proc: subprocess.Popen
    log: Path
    opened_at: float
    printed_url: str = ""  # http://127.0.0.1:PORT/?token=... as `workerlab dashboard` printed it
    browser: object = None  # the page's (persistent) browser context
    playwright: object = None  # for tests that need another, cookie-less browser
    quiet_since: float = field(default_factory=time.monotonic)
    lab_home: str = ""  # the dashboard's WORKERLAB_LAB_HOME: where `lab reset` records a start

    @property
    def token(self) -> str:
        return self.printed_url.split("?token=", 1)[1]

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"dashboard-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def touched(self) -> None:
        """A test changed something in the namespace: the idle period starts again."""
        self.quiet_since = time.monotonic()


def worker_cluster(ns: str) -> dict:
    return {
        "apiVersion": "workerlab.dev/v1alpha1",
        "kind": "WorkerCluster",
        "metadata": {"name": WC, "namespace": ns},
        "spec": {"replicas": 2, "processesPerPod": 2, "labMode": True},
    }


def launch(
    ns: str, context: str, log: Path, env: dict[str, str]
) -> tuple[subprocess.Popen, str, str]:
    """`workerlab dashboard` as a subprocess on a free port, output into `log`; once it serves:
    (the process, its clean URL, the URL with the token it printed)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    workerlab = str(Path(sys.executable).parent / "workerlab")
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [workerlab, "dashboard", "--port", str(port), "--namespace", ns, "--context", context],
            cwd=REPO,
            env=dict(os.environ, PYTHONUNBUFFERED="1", **env),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    printed = re.compile(rf"http://127\.0\.0\.1:{port}/\?token=[A-Za-z0-9_-]{{32,}}")
    deadline = time.monotonic() + 30
    while True:
        try:  # without the token: 401 and a page saying how to get in
            if httpx.get(url, timeout=2, trust_env=False).status_code == 401:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"dashboard not serving: {log.read_text()[-2000:]}")
        time.sleep(0.3)
    found = printed.search(log.read_text())
    assert found, f"the URL with its token is printed: {log.read_text()[-2000:]}"
    return proc, url, found[0]


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def dashboard_tools() -> SimpleNamespace:
    """What a test needs to start a dashboard or a browser of its own (conftest is no module
    to import from)."""
    return SimpleNamespace(
        launch=launch,
        stop=stop,
        free_port=free_port,
        chromium=CHROMIUM,
        chromium_args=CHROMIUM_ARGS,
        artifacts=ARTIFACTS,
    )


@pytest.fixture(scope="module")
def dashboard(cluster) -> Iterator[Dashboard]:
    from playwright.sync_api import sync_playwright

    ns = f"dash-e2e-{uuid.uuid4().hex[:6]}"
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": ns,
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                },
            },
        }
    )
    proc = None
    # the page's load runs go into a journal of their own, not the user's
    lab_home = tempfile.mkdtemp(prefix="dash-lab-home-")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / f"dashboard-{ns}.log"
    try:
        cluster.apply(json.dumps(worker_cluster(ns)))
        cluster.ok("wait", "--for=condition=Ready", f"wc/{WC}", "-n", ns, "--timeout=240s")
        proc, url, printed_url = launch(ns, cluster.context, log, {"WORKERLAB_LAB_HOME": lab_home})
        with (
            tempfile.TemporaryDirectory(prefix="dash-chromium-") as profile,
            sync_playwright() as pw,
        ):
            browser = pw.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                args=CHROMIUM_ARGS,
                headless=True,
                viewport={"width": 1500, "height": 1000},
            )
            page = browser.new_page()
            page.goto(printed_url)
            assert page.url == url, "the token is swapped for a cookie and the URL cleaned"
            page.evaluate("window.__notReloaded = true")
            board = Dashboard(
                ns, url, page, proc, log, time.monotonic(), printed_url, browser, pw,
                lab_home=lab_home,
            )  # fmt: skip
            try:
                yield board
            finally:
                try:
                    board.shot("final")
                finally:
                    browser.close()
    finally:
        if proc is not None:
            stop(proc)
        cluster.run("delete", "namespace", ns, "--wait=false", timeout=60)
        shutil.rmtree(lab_home, ignore_errors=True)
