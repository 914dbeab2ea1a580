"""Lab mode off by default, bounded work, and bad input answered with 4xx JSON."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("path", ["/crash", "/hang", "/leak?mb=1"])
def test_faults_are_404_outside_lab_mode(plain_worker, path):
    response = plain_worker.post(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert plain_worker.get("/").json()["lab_mode"] is False


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/work/cpu?ms=5001", 422),  # above the documented maximum
        ("GET", "/work/cpu?ms=-1", 422),
        ("GET", "/work/cpu?ms=abc", 422),
        ("GET", "/work/cpu", 422),
        ("GET", "/work/io?ms=30001", 422),
        ("GET", "/no/such/path", 404),
        ("DELETE", "/", 405),
        ("PUT", "/counter", 405),
    ],
)
def test_bad_input_gets_a_4xx_json_error(plain_worker, method, path, status):
    response = plain_worker.request(method, path)
    assert response.status_code == status
    assert "detail" in response.json()


def test_work_endpoints_answer_within_their_bounds(plain_worker):
    cpu = plain_worker.get("/work/cpu?ms=50").json()
    assert cpu["ms"] == 50 and cpu["elapsed_ms"] >= 50 and cpu["hash_rounds"] > 0
    io = plain_worker.get("/work/io?ms=50").json()
    assert io["elapsed_ms"] >= 50
    assert plain_worker.get("/healthz").json()["status"] == "ok"
    assert plain_worker.get("/readyz").json()["ready"] is True


@pytest.mark.parametrize(
    "env",
    [
        {"WORKER_PROCESSES": "many"},
        {"WORKER_PROCESSES": "0"},
        {"PORT": "70000"},
        {"GRACEFUL_TIMEOUT": "soon"},
        {"WORKERLAB_LAB_MODE": "maybe"},
        {"REDIS_URL": "http://example"},
    ],
)
def test_invalid_environment_is_one_line_and_exit_code_2(tmp_path, env):
    base = {k: v for k, v in os.environ.items() if k not in env}
    result = subprocess.run(
        [sys.executable, "-m", "workerlab.worker", "--bind", "127.0.0.1:1"],
        cwd=tmp_path,
        env=base | env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert next(iter(env)) in result.stderr
