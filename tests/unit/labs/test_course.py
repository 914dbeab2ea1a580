"""The course's texts: every lab has its sections, runnable steps and a working solution."""

import re
import shutil

import pytest

from workerlab.cli.main import app
from workerlab.labs import course
from workerlab.labs.checking import CheckContext

SECTIONS = (
    "## Background",
    "## Steps",
    "## Expected output",
    "## Questions",
    "## Hints",
    "## Solution",
    "## Concept bridge",
)
LABS = [lab.number for lab in course.labs()]
lab09 = course.check_module(course.get(9))


def test_eleven_labs_in_order_each_a_folder_with_text_and_checker():
    assert list(range(1, 12)) == LABS
    for lab in course.labs():
        assert lab.folder.name == f"{lab.number:02d}-{lab.slug}"
        assert lab.path.is_file(), lab.path
        assert (lab.folder / "check.py").is_file()
        assert course.checker(lab) is course.check_module(lab).CHECKER


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
    with pytest.raises(Exception, match="there is no lab 12"):
        course.get(12)


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKERLAB_EXERCISES_DIR", str(tmp_path))
    return tmp_path / "lab09"


def test_lab9_check_before_reset_says_how_to_get_the_exercise(workspace):
    items = lab09.evaluate(lab09.gather(CheckContext(kube=None)))
    assert not items[0].passed and "lab reset 9" in items[0].hint


def test_lab9_fails_on_the_stub_and_passes_with_the_solution(workspace):
    ctx = CheckContext(kube=None)  # lab 9 needs no cluster
    lab09.reset(ctx)
    fresh = lab09.evaluate(lab09.gather(ctx))
    assert not all(i.passed for i in fresh)
    assert "first failing test" in fresh[-1].hint
    (workspace / "autoscaler.py").write_text(course.solution_code(course.get(9)))
    solved = lab09.evaluate(lab09.gather(ctx))
    assert all(i.passed for i in solved), solved


def test_lab9_reset_keeps_the_learners_work(workspace):
    ctx = CheckContext(kube=None)
    lab09.reset(ctx)
    (workspace / "autoscaler.py").write_text("# my attempt\n")
    said = lab09.reset(ctx)
    assert (workspace / "autoscaler.py").read_text() == lab09.stub_text()
    backups = list(workspace.glob("autoscaler.py.*.bak"))
    assert [b.read_text() for b in backups] == ["# my attempt\n"]
    assert any(str(backups[0]) in line for line in said)


def test_a_twelfth_lab_is_one_new_folder(tmp_path, monkeypatch):
    shutil.copytree(
        course.course_dir(), tmp_path / "course", ignore=shutil.ignore_patterns("__pycache__")
    )
    extra = tmp_path / "course" / "12-custom-metrics"
    extra.mkdir()
    (extra / "lab.md").write_text(
        "---\nsummary: scale on request rate\nneeds: kind\n---\n\n# Lab 12 — Custom metrics\n"
    )
    (extra / "check.py").write_text(
        "from workerlab.labs.checking import Checker, item\n"
        "CHECKER = Checker(lambda ctx: {}, lambda facts: [item('ok', True)], lambda ctx: [])\n"
    )
    monkeypatch.setattr(course, "course_dir", lambda: tmp_path / "course")
    course.labs.cache_clear()
    try:
        lab = course.get(12)
        assert (lab.title, lab.summary, lab.needs_cluster) == (
            "Custom metrics",
            "scale on request rate",
            True,
        )
        assert course.checker(lab).evaluate({})[0].passed
    finally:
        course.labs.cache_clear()


def test_a_malformed_lab_folder_is_a_clear_error(tmp_path):
    folder = tmp_path / "12-broken"
    folder.mkdir()
    (folder / "lab.md").write_text("# no front matter\n")
    with pytest.raises(Exception, match="front matter"):
        course.load_lab(folder)


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
