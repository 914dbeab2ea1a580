"""Labs 1 and 2 (local): their steps run verbatim in bash, then `workerlab lab check N` passes;
before the steps (fresh state) the check fails with a hint."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from workerlab.labs import course

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
PORTS = {1: (8001, 8002), 2: (8002,)}
STEPS_TIMEOUT_S = 180


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture
def env(tmp_path):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("WORKER")}
    environ["PATH"] = f"{BIN}:{environ.get('PATH', '')}"
    environ["WORKERLAB_LAB_HOME"] = str(tmp_path / "lab-home")
    environ["TMPDIR"] = str(tmp_path)
    return environ


def bash(script: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    # The trap stops every worker the steps started in the background, whatever happens.
    wrapped = (
        "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true; wait || true' EXIT\n"
        + script
    )
    return subprocess.run(
        ["bash", "-c", wrapped],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=STEPS_TIMEOUT_S,
        check=False,
    )


@pytest.mark.parametrize("number", [1, 2])
def test_local_lab_steps_make_the_check_pass(number, env, tmp_path):
    busy = [p for p in PORTS[number] if not port_is_free(p)]
    if busy:
        pytest.fail(f"lab {number} uses 127.0.0.1:{busy}, which something else holds")
    fresh = bash(f"workerlab lab check {number}", env, tmp_path)
    assert fresh.returncode == 1 and "hint:" in fresh.stdout, fresh.stdout
    script = course.steps(course.get(number)) + f"workerlab lab check {number}\n"
    done = bash(script, env, tmp_path)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert f"lab {number}:" in done.stdout and "passed" in done.stdout
