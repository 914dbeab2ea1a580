"""The self-testing course: every cluster lab's steps, run verbatim on kind, make its check pass;
right after `workerlab lab reset N` (a fresh, wrong state) the check fails with a hint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from workerlab.labs import course

pytestmark = pytest.mark.e2e

# Same helpers as test_cli.py (importlib mode: test modules cannot import each other).
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CACHE = Path(os.environ.get("WORKERLAB_CACHE", Path.home() / ".cache" / "workerlab"))
CONTEXT = os.environ.get("WORKERLAB_KUBE_CONTEXT", "kind-workerlab")


def lab_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    kube_bins = [str(p.parent) for p in sorted((CACHE / "k8s").glob("v*/bin/kubectl"))]
    env["PATH"] = ":".join([str(BIN), *kube_bins, str(CACHE / "bin"), env.get("PATH", "")])
    env["WORKERLAB_LAB_HOME"] = str(tmp_path / "lab-home")
    return env


def require_cluster(env: dict[str, str]) -> None:
    """Fail (never skip) with the reason when the lab cluster or its sample is not there."""
    probe = subprocess.run(
        ["kubectl", "--context", CONTEXT, "get", "--raw", "/readyz"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if probe.returncode != 0:
        pytest.fail(
            f"the kind cluster is unreachable ({CONTEXT}): {probe.stderr.strip()} "
            "-- run `make up` first"
        )
    done = subprocess.run(
        ["workerlab", "status", "demo", "--wait", "240", "--no-processes"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=REPO,
    )
    if done.returncode != 0:
        pytest.fail(f"wc/demo is not Ready: {done.stderr.strip()} -- run `make up`")


CLUSTER_LABS = [lab.number for lab in course.LABS if lab.needs_cluster]
STEPS_TIMEOUT_S = 900


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    environ = lab_env(tmp_path_factory.mktemp("labs"))
    require_cluster(environ)
    yield environ
    # Leave the sample as `make up` left it, and nothing the labs created.
    subprocess.run(
        ["kubectl", "-n", "workerlab", "delete", "wc", "first", "crashy", "--ignore-not-found"],
        env=environ,
        capture_output=True,
        timeout=180,
        check=False,
    )
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
