"""`workerlab status | load | chaos` on the kind cluster, against the sample wc/demo."""

from __future__ import annotations

import json
import subprocess

import pytest
from support.paths import REPO

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def env(learner_env) -> dict[str, str]:
    environ = dict(learner_env)
    reset = subprocess.run(
        ["workerlab", "lab", "reset", "5"],
        env=environ,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert reset.returncode == 0, reset.stdout + reset.stderr
    return environ


def workerlab(env, *args, timeout=300) -> subprocess.CompletedProcess:
    done = subprocess.run(
        ["workerlab", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def test_status_shows_pods_and_their_processes(env):
    done = workerlab(env, "status", "demo", "--json")
    assert done.returncode == 0, done.stderr
    (view,) = json.loads(done.stdout)
    serving = [p for p in view["pods"] if not p["terminating"]]  # a drill's pods may drain
    assert view["name"] == "demo" and len(serving) == 2
    for pod in serving:
        assert pod["ready"] and pod["template_hash"] and pod["node"]
        alive = [p for p in pod["processes"] if p["alive"]]
        assert len(alive) == 2 and all(p["uptime_s"] is not None for p in alive)
    human = workerlab(env, "status")
    assert human.returncode == 0 and "wc/demo" in human.stdout and "arbiter pid" in human.stdout


def test_load_reaches_every_pod_and_process(env):
    done = workerlab(
        env,
        "load",
        "wc/demo",
        "--path",
        "/work/cpu?ms=20",
        "--requests",
        "300",
        "--concurrency",
        "8",
        "--no-keepalive",
        "--duration",
        "60",
        "--json",
    )
    run = json.loads(done.stdout)
    summary = run["summary"]
    assert done.returncode == 0 and summary["errors"] == 0, summary
    assert summary["pods_seen"] == 2 and summary["processes_seen"] == 4, summary["by_process"]
    assert run["base_url"] == "http://127.0.0.1:30080/"


def test_kill_process_is_healed_by_the_arbiter(env):
    done = workerlab(env, "chaos", "kill-process", "wc/demo", "--count", "2", "--json")
    results = json.loads(done.stdout)
    assert done.returncode == 0, results
    assert [r["healed_by"] for r in results] == ["arbiter", "arbiter"]


def test_kill_pod_is_healed_by_the_operator(env):
    done = workerlab(env, "chaos", "kill-pod", "wc/demo", "--json")
    (result,) = json.loads(done.stdout)
    assert done.returncode == 0, result
    assert result["healed_by"] == "operator"
    assert any("ReplacedPod" in line for line in result["evidence"]), result


def test_missing_things_are_one_line_errors_with_exit_2(env):
    missing = workerlab(env, "status", "no-such-wc")
    assert missing.returncode == 2 and "not found" in missing.stderr
    wrong = dict(env, WORKERLAB_KUBE_CONTEXT="no-such-context")
    unreachable = workerlab(wrong, "status")
    assert unreachable.returncode == 2 and "make up" in unreachable.stderr
