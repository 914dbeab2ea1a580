"""The course's texts: every lab has its sections, runnable steps and a working solution."""

import re
import shutil

import pytest
from workerlab.labs import course
from workerlab.labs.checks import lab09_extend_master as lab09
from workerlab.labs.checks.base import CheckContext
from workerlab.labs.cli import app
from workerlab.labs.paths import package_dir

SECTIONS = (
    "## Background",
    "## Steps",
    "## Expected output",
    "## Questions",
    "## Hints",
    "## Solution",
    "## Concept bridge",
)
LABS = [lab.number for lab in course.LABS]


def test_ten_labs_in_order_with_their_files():
    assert list(range(1, 11)) == LABS
    for lab in course.LABS:
        assert lab.path.is_file(), lab.path


@pytest.mark.parametrize("number", LABS)
def test_lab_has_every_section(number):
    text = course.text(course.get(number))
    assert text.startswith(f"# Lab {number} ")
    assert "**Goal:**" in text
    for section in SECTIONS:
        assert section in text, f"lab {number} lacks {section}"


@pytest.mark.parametrize("number", LABS)
def test_steps_start_with_reset_and_use_existing_commands(number):
    steps = course.steps(course.get(number))
    assert steps.splitlines()[0] == f"workerlab lab reset {number}"
    known = {c.name or c.callback.__name__ for c in app.registered_commands}
    known |= {g.name for g in app.registered_groups}
    for used in re.findall(r"^\s*(?:\S+=\S+\s+)*workerlab (\S+)", steps, flags=re.M):
        assert used in known, f"lab {number} uses unknown command workerlab {used}"
    # host traffic goes to loopback only
    for host in re.findall(r"https?://([^/:'\s]+)", steps):
        assert host in {"127.0.0.1", "redis"}, f"lab {number} sends traffic to {host}"


@pytest.mark.parametrize("number", [4, 10])
def test_fault_drills_name_who_healed_it(number):
    assert "## Who healed it?" in course.text(course.get(number))


def test_unknown_lab_is_a_usage_error():
    with pytest.raises(Exception, match="there is no lab 11"):
        course.get(11)


def test_lab9_stub_matches_the_shipped_exercise():
    shipped = package_dir() / "exercises" / "lab09" / "autoscaler.py"
    assert shipped.read_text() == lab09.stub_text()


@pytest.fixture
def exercise_copy(tmp_path, monkeypatch):
    shutil.copytree(package_dir() / "exercises" / "lab09", tmp_path / "lab09")
    monkeypatch.setenv("WORKERLAB_EXERCISES_DIR", str(tmp_path))
    return tmp_path / "lab09"


def test_lab9_fails_on_the_stub_and_passes_with_the_solution(exercise_copy):
    ctx = CheckContext(kube=None)  # lab 9 needs no cluster
    fresh = lab09.evaluate(lab09.gather(ctx))
    assert not all(i.passed for i in fresh)
    assert "first failing test" in fresh[-1].hint
    (exercise_copy / "autoscaler.py").write_text(course.solution_code(course.get(9)))
    solved = lab09.evaluate(lab09.gather(ctx))
    assert all(i.passed for i in solved), solved
    lab09.reset(ctx)
    assert (exercise_copy / "autoscaler.py").read_text() == lab09.stub_text()


def test_demo_starting_state_forces_the_course_baseline(tmp_path):
    from workerlab.labs.starting_state import demo_manifest

    sample = tmp_path / "demo.yaml"
    sample.write_text(
        "apiVersion: workerlab.dev/v1alpha1\nkind: WorkerCluster\nmetadata: {name: demo}\n"
        "spec: {replicas: 5, image: 'x:1', labMode: false, env: [{name: A, value: b}]}\n"
    )
    manifest = demo_manifest("workerlab", sample)
    spec = manifest["spec"]
    assert spec["image"] == "x:1"  # what the sample runs is kept
    assert (spec["replicas"], spec["processesPerPod"], spec["labMode"]) == (2, 2, True)
    assert "env" not in spec and spec["service"] == {"type": "NodePort", "nodePort": 30080}
    assert manifest["metadata"] == {"name": "demo", "namespace": "workerlab"}
