"""Learners at their own machines (issue 22, item 5): the instructor runs `workerlab class add
--server https://HOST_IP:6443` on the cluster installed by `helm install` alone; each learner's
machine is a network namespace that reaches the API server only at that non-loopback address,
with the kubeconfig it was handed. From there, both learners at once do labs 4 and 5 (their
steps as `workerlab lab show` prints them for the learner's namespace) to a passing
`workerlab lab check`, then a bounded `workerlab load wc/demo`; the instructor sees the passes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support.own_cluster import API_PORT, HOST_IP, LEARNERS, NAME, OwnCluster, netns_name
from support.paths import REPO
from support.tools import tool

from workerlab.labs import course

pytestmark = pytest.mark.e2e

LAB_TIMEOUT_S = 900


def learner_script(learner: str) -> str:
    """Labs 4 and 5 as `workerlab lab show` prints them for the learner's namespace, each
    checked, then a bounded load."""
    parts = ["set -euo pipefail"]
    for number in (4, 5):
        steps = course.steps(course.get(number), f"learner-{learner}")
        assert "-n workerlab " not in steps, f"lab {number} still names the namespace: {steps}"
        parts += [f"echo '@@ lab {number} steps'", steps, f"workerlab lab check {number}"]
    parts += [
        "echo '@@ load'",
        "workerlab load wc/demo --requests 200 --concurrency 8 --no-keepalive --duration 60",
        # Nothing serves the learner on its own loopback: the lab is only at HOST_IP.
        "if curl -s -m 3 -o /dev/null http://127.0.0.1:30080/; then echo LOOPBACK-ANSWERED; fi",
        "echo '@@ done'",
    ]
    return "\n".join(parts) + "\n"


def in_netns(learner: str, env: dict[str, str], script: str) -> subprocess.CompletedProcess:
    """The script in the learner's machine, in a session of its own: on a timeout its whole
    process group goes (a `kubectl wait` or `workerlab load` it started included)."""
    args = ["ip", "netns", "exec", netns_name(learner), "bash", "-c", script]
    with subprocess.Popen(
        args, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    ) as process:  # fmt: skip
        try:
            out, err = process.communicate(timeout=LAB_TIMEOUT_S * 2)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            err += f"\n(killed after {LAB_TIMEOUT_S * 2} s)"
    return subprocess.CompletedProcess(args, process.returncode, out, err)


@pytest.fixture(scope="module")
def classroom(own_cluster: OwnCluster, class_net, tmp_path_factory):
    out = tmp_path_factory.mktemp("class")
    instructor = dict(own_cluster.env, WORKERLAB_KUBE_CONTEXT=f"kind-{NAME}")
    done = subprocess.run(
        ["workerlab", "class", "add", *LEARNERS, "--out", str(out), "--duration", "1h",
         "--server", own_cluster.server],
        env=instructor, cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    learners = {}
    venv_bin, kubectl_bin = str(Path(sys.executable).parent), str(Path(tool("kubectl")).parent)
    for learner in LEARNERS:
        env = {
            "PATH": os.pathsep.join([venv_bin, kubectl_bin, "/usr/bin:/bin"]),
            "HOME": str(tmp_path_factory.mktemp(f"home-{learner}")),
            "KUBECONFIG": str(out / f"{learner}.kubeconfig"),
            "LANG": "C.UTF-8",
        }
        env["WORKERLAB_LAB_HOME"] = env["HOME"]
        learners[learner] = env
    yield {"out": out, "instructor": instructor, "learners": learners}
    subprocess.run(
        ["workerlab", "class", "remove", *LEARNERS, "--out", str(out)],
        env=instructor, cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_the_api_server_is_published_on_the_classroom_address_only(own_cluster, classroom):
    ports = subprocess.run(
        ["docker", "port", f"{NAME}-control-plane", "6443/tcp"],
        capture_output=True, text=True, timeout=30, check=False,
    ).stdout.split()  # fmt: skip
    assert ports == [f"{HOST_IP}:{API_PORT}"], ports
    for learner in LEARNERS:
        config = (classroom["out"] / f"{learner}.kubeconfig").read_text()
        assert f"server: https://{HOST_IP}:{API_PORT}" in config, config
        assert "127.0.0.1" not in config


@pytest.mark.timeout(LAB_TIMEOUT_S * 2 + 120)
def test_two_learners_on_their_machines_pass_labs_4_and_5(own_cluster, classroom, figures):
    results: dict[str, subprocess.CompletedProcess] = {}
    seconds: dict[str, float] = {}

    def learn(learner: str) -> None:
        started = time.monotonic()
        env = classroom["learners"][learner]
        results[learner] = in_netns(learner, env, learner_script(learner))
        seconds[learner] = round(time.monotonic() - started, 1)

    threads = [threading.Thread(target=learn, args=(name,)) for name in LEARNERS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=LAB_TIMEOUT_S * 2 + 60)
    for learner, done in results.items():
        said = f"{learner} (rc {done.returncode}):\n{done.stdout[-5000:]}\n{done.stderr[-3000:]}"
        assert done.returncode == 0 and "@@ done" in done.stdout, said
        assert "Traceback" not in done.stderr, said
        assert "LOOPBACK-ANSWERED" not in done.stdout, said
        for number in (4, 5):
            assert f"lab {number}:" in done.stdout and "passed" in done.stdout, said
    assert set(results) == set(LEARNERS), f"a learner did not finish: {sorted(results)}"

    grid = json.loads(
        subprocess.run(
            ["workerlab", "class", "status", "--json"],
            env=classroom["instructor"], cwd=REPO, capture_output=True, text=True,
            timeout=120, check=True,
        ).stdout
    )  # fmt: skip
    for learner in LEARNERS:
        assert {4, 5} <= set(grid[learner]["claimed"]), grid
    said = {
        learner: [
            line.strip()
            for line in done.stdout.split("@@ load")[0].splitlines()
            if line.startswith(("lab 4:", "lab 5:"))
        ]
        + done.stdout.split("@@ load")[1].split("@@ done")[0].strip().splitlines()[:4]
        for learner, done in results.items()
    }
    figures("class-from-other-machines", seconds=seconds, server=own_cluster.server, said=said)
