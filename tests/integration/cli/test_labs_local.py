"""The local labs (1, 2, 9): before the steps (fresh state) the check fails with a hint; the
steps, run verbatim in bash, make `workerlab lab check N` pass; then the commands of the lab's
questions run in the same shell and the check says what each test declares (green, or red naming
what the questions did)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support.course_run import GREEN, AfterQuestions, assert_outcome, script

from workerlab.labs import course

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
PORTS = {1: (8001, 8002), 2: (8002,), 9: (8009,)}
STEPS_TIMEOUT_S = 240

# What the check says once the questions' commands ran, per lab:
AFTER_QUESTIONS: dict[int, AfterQuestions] = {
    # Q2 runs the 2-process worker with --concurrency 2 (no process to spare): the check keeps
    # judging the steps' run, which had one.
    1: GREEN,
    # Q1 crashes three more, Q2 goes down to 1 with TTOU and back to 3 with TTIN, Q3 hangs one
    # (the arbiter kills it after WORKER_TIMEOUT and forks a replacement): still 3, all healed.
    2: GREEN,
    # Q2 prints floats, Q3 reads a worker's /processes and /metrics: the solution is untouched.
    9: GREEN,
}


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


def learner_code(number: int) -> str:
    """What the learner writes between the steps and the check: lab 9's solution."""
    if number != 9:
        return ""
    solution = course.solution_code(course.get(9))
    assert "PY" not in solution.splitlines()
    return f"cat > \"$WORKERLAB_LAB_HOME/lab09/autoscaler.py\" <<'PY'\n{solution}PY\n"


@pytest.mark.parametrize("number", sorted(AFTER_QUESTIONS))
def test_local_lab_steps_pass_and_its_questions_keep_the_check_honest(number, env, tmp_path):
    lab = course.get(number)
    assert not lab.needs_cluster
    busy = [p for p in PORTS[number] if not port_is_free(p)]
    if busy:
        pytest.fail(f"lab {number} uses 127.0.0.1:{busy}, which something else holds")
    fresh = bash(f"workerlab lab check {number}", env, tmp_path)
    assert fresh.returncode == 1 and "hint:" in fresh.stdout, fresh.stdout
    run = script(number, course.steps(lab), course.question_steps(lab), learner_code(number))
    done = bash(run, env, tmp_path)
    assert_outcome(number, done, AFTER_QUESTIONS[number])


def test_every_local_lab_declares_its_outcome_after_the_questions():
    assert sorted(AFTER_QUESTIONS) == [lab.number for lab in course.labs() if not lab.needs_cluster]
