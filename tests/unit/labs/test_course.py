"""The course's texts: every lab has its sections, runnable steps and a working solution."""

import re
import shutil
import sys

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


def test_twelve_labs_in_order_each_a_folder_with_text_and_checker():
    assert list(range(1, 13)) == LABS
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


@pytest.mark.parametrize("number", LABS)
def test_questions_carry_their_own_bounded_loopback_commands(number):
    lab = course.get(number)
    commands = course.question_steps(lab)
    assert commands.strip(), f"lab {number}'s questions have no ```sh block to run"
    assert "workerlab lab reset" not in commands, "the questions continue the steps' state"
    known = {c.name or c.callback.__name__ for c in app.registered_commands}
    known |= {g.name for g in app.registered_groups}
    for used in re.findall(r"^\s*(?:\S+=\S+\s+)*workerlab (\S+)", commands, flags=re.M):
        assert used in known, f"lab {number}'s questions use unknown command workerlab {used}"
    for host in re.findall(r"https?://([^/:'\s]+)", commands):
        assert host == "127.0.0.1", f"lab {number}'s questions send traffic to {host}"
    for line in commands.splitlines():
        words = line.split()
        assert not {"-w", "--watch", "-f", "--follow"} & set(words) or "apply" in words, (
            f"lab {number}: an unbounded watch or follow: {line}"
        )
        assert not re.match(r"\s*(while|until)\b", line), f"lab {number}: unbounded loop: {line}"
        if re.match(r"\s*workerlab load\b", line):
            assert "--requests" in line or "--duration" in line, f"unbounded load: {line}"


def test_question_steps_are_the_sh_blocks_under_questions_only():
    markdown = (
        "# Lab 1 — x\n\n## Steps\n\n```sh\necho step\n```\n\n## Questions\n\n1. Why?\n\n"
        "```sh\necho one\n```\n\n```text\nnot run\n```\n\n2. And?\n\n```sh\necho two\n```\n\n"
        "## Hints\n\n```sh\necho hint\n```\n"
    )
    assert course._fenced_blocks(markdown, "Questions", "sh") == ["echo one\n", "echo two\n"]


@pytest.mark.parametrize("number", [4, 10, 12])
def test_fault_drills_name_who_healed_it(number):
    assert "## Who healed it?" in course.text(course.get(number))


def test_unknown_lab_is_a_usage_error():
    with pytest.raises(Exception, match="there is no lab 13"):
        course.get(13)


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


def naive(solution: str) -> str:
    """The lab's solution without its float guard: the bug the shipped tests must catch."""
    guarded = "math.ceil(current * ratio - EPSILON)"
    assert guarded in solution
    return solution.replace(guarded, "math.ceil(current * ratio)")


NAIVE_MEAN_OVER_TARGET = """
import math

def desired_replicas(current, utilization, target=0.6, tolerance=0.1, min_replicas=1,
                     max_replicas=10):
    if target <= 0:
        raise ValueError(target)
    if current == 0 or not utilization:
        return current
    mean = sum(utilization) / len(utilization)
    if abs(mean / target - 1.0) <= tolerance:
        return current
    return max(min_replicas, min(max_replicas, math.ceil(current * mean / target)))
"""


@pytest.mark.parametrize("unguarded", ["solution without EPSILON", "current * mean / target"])
def test_lab9_tests_catch_float_noise_that_only_the_guard_handles(workspace, unguarded):
    ctx = CheckContext(kube=None)
    lab09.reset(ctx)
    solution = course.solution_code(course.get(9))
    code = naive(solution) if unguarded.startswith("solution") else NAIVE_MEAN_OVER_TARGET
    (workspace / "autoscaler.py").write_text(code)
    failed = lab09.evaluate(lab09.gather(ctx))
    assert not failed[-1].passed
    assert "test_float_noise_does_not_add_a_pod" in failed[-1].hint
    assert "1 failed, 9 passed" in failed[-1].detail
    (workspace / "autoscaler.py").write_text(solution)
    assert all(i.passed for i in lab09.evaluate(lab09.gather(ctx)))


def test_lab9_float_example_is_what_python_prints():
    text = course.text(course.get(9))
    assert repr(3 * 0.8 / 0.6) == "4.000000000000001"
    assert repr(2 * 0.9 / 0.6) == "3.0"
    assert "`3 * 0.8 / 0.6` is exactly 4, but Python prints `4.000000000000001`" in text
    assert "3 * 0.8 / 0.6 == 4.000000000000001" in course.solution_code(course.get(9))
    assert "3.0000000000000004" not in text


def test_lab9_text_points_to_the_workspace_and_the_check_not_to_bare_python():
    text = course.text(course.get(9))
    assert "labs/exercises" not in text
    assert "~/.local/state/workerlab/lab09/" in text
    assert not re.search(r"(?<![/\w])python -m pytest", text)
    # the hint it quotes is the one the check prints
    hint = lab09.evaluate(
        {
            "folder": "/home/you/.local/state/workerlab/lab09",
            "missing": False,
            "rc": 4,
            "output": "ERROR collecting",
            "is_stub": False,
        }
    )[-1].hint
    example = hint.replace(sys.executable, "/home/you/workerlab/.venv/bin/python")
    assert f"hint: {example}" in text


def test_lab9_reset_keeps_the_learners_work(workspace):
    ctx = CheckContext(kube=None)
    lab09.reset(ctx)
    (workspace / "autoscaler.py").write_text("# my attempt\n")
    said = lab09.reset(ctx)
    assert (workspace / "autoscaler.py").read_text() == lab09.stub_text()
    backups = list(workspace.glob("autoscaler.py.*.bak"))
    assert [b.read_text() for b in backups] == ["# my attempt\n"]
    assert any(str(backups[0]) in line for line in said)


def test_a_thirteenth_lab_is_one_new_folder(tmp_path, monkeypatch):
    shutil.copytree(
        course.course_dir(), tmp_path / "course", ignore=shutil.ignore_patterns("__pycache__")
    )
    extra = tmp_path / "course" / "13-custom-metrics"
    extra.mkdir()
    (extra / "lab.md").write_text(
        "---\nsummary: scale on request rate\nneeds: kind\n---\n\n# Lab 13 — Custom metrics\n"
    )
    (extra / "check.py").write_text(
        "from workerlab.labs.checking import Checker, item\n"
        "CHECKER = Checker(lambda ctx: {}, lambda facts: [item('ok', True)], lambda ctx: [])\n"
    )
    monkeypatch.setattr(course, "course_dir", lambda: tmp_path / "course")
    course.labs.cache_clear()
    try:
        lab = course.get(13)
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


@pytest.mark.parametrize("number", [lab.number for lab in course.labs() if not lab.needs_cluster])
def test_local_reset_names_only_shell_variables_the_steps_define(number, workspace):
    lab = course.get(number)
    defined = set(re.findall(r"\b([A-Z][A-Z0-9_]*)=\$!", course.steps(lab)))
    said = " ".join(course.checker(lab).reset(CheckContext(kube=None)))
    for name in re.findall(r"\$([A-Z][A-Z0-9_]*)", said):
        assert name in defined, f"lab {number}'s reset names ${name}; its steps define {defined}"


def test_lab2_asks_nothing_the_learner_cannot_do():
    # which process a request reaches is the kernel's choice: nobody can crash "the same slot"
    assert "crash the same slot" not in course.text(course.get(2)).lower()


def test_the_two_levels_are_drawn_in_the_readme_and_labs_1_and_3():
    from support.paths import REPO

    texts = {"README.md": (REPO / "README.md").read_text()}
    texts |= {f"lab {n}": course.text(course.get(n)) for n in (1, 3)}
    for where, text in texts.items():
        drawings = [
            s.text for s in course.segments(text) if s.is_code and s.text.startswith("```text")
        ]
        assert any(
            "CLUSTER LEVEL" in d and "POD LEVEL" in d and "operator" in d and "arbiter" in d
            for d in drawings
        ), f"{where} has no drawing of the two levels"


def test_lab3_shows_the_columns_plain_and_wide_kubectl_get_print():
    import yaml
    from support.paths import REPO

    crd = yaml.safe_load((REPO / "manifests/crd/workerclusters.workerlab.dev.yaml").read_text())
    columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    plain = ["NAME"] + [c["name"].upper() for c in columns if not c.get("priority")]
    wide = ["NAME"] + [c["name"].upper() for c in columns]
    headers = [
        s.text.splitlines()[1].split()
        for s in course.segments(course.text(course.get(3)))
        if s.is_code and s.text.splitlines()[1].startswith("NAME ")
    ]
    assert headers[:2] == [plain, wide], headers
