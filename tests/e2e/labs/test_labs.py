"""The self-testing course: every cluster lab's steps, run verbatim on kind, make its check pass;
right after `workerlab lab reset N` (a fresh, wrong state) the check fails with a hint."""

from __future__ import annotations

import subprocess

import pytest
from support.paths import REPO

from workerlab.labs import course

pytestmark = pytest.mark.e2e


CLUSTER_LABS = [lab.number for lab in course.labs() if lab.needs_cluster]
STEPS_TIMEOUT_S = 900


@pytest.fixture(scope="module")
def env(learner_env):
    environ = dict(learner_env)
    yield environ
    # Leave the sample as `make up` left it, and nothing the labs created.
    subprocess.run(
        ["kubectl", "-n", "workerlab", "delete", "wc", "first", "crashy", "--ignore-not-found"],
        env=environ,
        capture_output=True,
        timeout=180,
        check=False,
    )
    # `lab reset 5` also deletes lab 11's HPA on demo, which would otherwise own its replicas.
    subprocess.run(
        ["workerlab", "lab", "reset", "5"],
        env=environ,
        cwd=REPO,
        capture_output=True,
        timeout=300,
        check=False,
    )


def bash(script: str, env: dict, timeout: float = STEPS_TIMEOUT_S) -> subprocess.CompletedProcess:
    wrapped = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + script
    return subprocess.run(
        ["bash", "-c", wrapped],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize("number", CLUSTER_LABS)
def test_lab_fails_fresh_then_passes_after_its_steps(number, env):
    fresh = bash(f"workerlab lab reset {number}\nworkerlab lab check {number}", env)
    assert fresh.returncode == 1, f"fresh state should fail:\n{fresh.stdout}\n{fresh.stderr}"
    assert "hint:" in fresh.stdout
    done = bash(course.steps(course.get(number)) + f"workerlab lab check {number}\n", env)
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    assert "passed" in done.stdout.splitlines()[-1]
