"""The self-testing course on kind: right after `workerlab lab reset N` (a fresh, wrong state) the
check fails with a hint; the lab's steps, run verbatim, make it pass; then the commands of the
lab's questions run in the same shell, and the check says what each lab declares below: green,
or red naming what the questions did on purpose."""

from __future__ import annotations

import re
import subprocess

import pytest
from support.course_run import GREEN, AfterQuestions, assert_outcome, red, script
from support.paths import REPO

from workerlab.labs import course

pytestmark = pytest.mark.e2e


# On the lab's one-node cluster; a lab that stops machines (workers: N) runs on the own-cluster
# suite's multi-node cluster (tests/e2e/owncluster/test_d_machine_loss.py).
CLUSTER_LABS = [lab.number for lab in course.labs() if lab.needs_cluster and not lab.workers]
MULTI_NODE_LABS = [lab.number for lab in course.labs() if lab.workers]
STEPS_TIMEOUT_S = 1200  # the steps and the questions' commands of one lab

# What `workerlab lab check N` says once the questions' commands ran, per cluster lab:
AFTER_QUESTIONS: dict[int, AfterQuestions] = {
    # Q3 deletes wc/first to show the garbage collector at work; the check says so.
    3: red("has been deleted since"),
    # Q3 fixes crashy: Degraded turns False; its Warning Event is the crash loop's evidence.
    4: GREEN,
    # Q3 reshapes demo to 6 pods x 1 process to compare: the check names the spec it finds.
    5: red("spec.replicas is 6"),
    # Q1 is another Service run, Q3 an Ingress run on :30081: the nginx evidence stands.
    6: GREEN,
    # Q1 rolls to v3 (maxUnavailable 1) under --no-keepalive load; Q4 rolls to v4 under a
    # keep-alive load, which cannot tell the server's mistakes from the close race.
    7: red("only keep-alive runs did"),
    # Q2 scales Redis to 0 and back: the in-memory counter restarts at 0.
    8: red("the counter went DOWN"),
    # Q1-Q3 only read (pods, events, the operator's log, its Deployment, kopf's peering).
    10: GREEN,
    # Q1 reads; Q3 scales demo by hand and the idle HPA takes it back down: more evidence of
    # the same up-then-down cycle.
    11: GREEN,
}


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


def test_every_cluster_lab_declares_its_outcome_after_the_questions():
    assert sorted(AFTER_QUESTIONS) == CLUSTER_LABS


@pytest.mark.parametrize("number", MULTI_NODE_LABS)
def test_a_multi_node_lab_on_one_node_says_what_it_needs(number, env):
    fresh = bash(f"workerlab lab reset {number}", env)
    assert fresh.returncode != 0
    said = fresh.stdout + fresh.stderr
    assert "make up NODES=3" in said and "Traceback" not in said, said


def cluster_wide_marks(number: int) -> list[pytest.MarkDecorator]:
    """What a lab does to the cluster for everyone: it runs apart (tests/e2e/conftest.py)."""
    text = course.text(course.get(number))
    marks = []
    if re.search(r"^kubectl apply -k manifests/$", text, re.M):  # lab 3 installs the operator
        marks.append(pytest.mark.replaces_operator)
    if "kube-apiserver.yaml" in text:  # lab 10's drill
        marks.append(pytest.mark.stops_api_server)
    return marks


@pytest.mark.parametrize(
    "number", [pytest.param(n, marks=cluster_wide_marks(n)) for n in CLUSTER_LABS]
)
def test_lab_fails_fresh_then_passes_after_its_steps_and_survives_its_questions(number, env):
    fresh = bash(f"workerlab lab reset {number}\nworkerlab lab check {number}", env)
    assert fresh.returncode == 1, f"fresh state should fail:\n{fresh.stdout}\n{fresh.stderr}"
    assert "hint:" in fresh.stdout
    lab = course.get(number)
    done = bash(script(number, course.steps(lab), course.question_steps(lab)), env)
    assert_outcome(number, done, AFTER_QUESTIONS[number])
