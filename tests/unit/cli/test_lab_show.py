"""`workerlab lab show`: code blocks reach the terminal exactly as written, at any width, and the
solution stays folded away until asked for."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from workerlab.cli.main import app
from workerlab.labs import course

LABS = [lab.number for lab in course.labs()]
WORKERLAB = Path(sys.executable).with_name("workerlab")

# rich reads COLUMNS when its console is created (at import), so each width gets a fresh
# interpreter; inside it, the real CLI app shows every lab with its solution.
SHOW_EVERY_LAB = """
import json, sys
from typer.testing import CliRunner
from workerlab.cli.main import app
numbers = json.loads(sys.argv[1])
shown = {n: CliRunner().invoke(app, ["lab", "show", str(n), "--solution"]) for n in numbers}
json.dump({n: [r.exit_code, r.output] for n, r in shown.items()}, sys.stdout)
"""


def code_lines(number: int) -> list[str]:
    text = course.text(course.get(number))
    return [
        line
        for segment in course.segments(text)
        if segment.is_code
        for line in segment.text.splitlines()[1:-1]
    ]


def show_every_lab(columns: int) -> dict[int, str]:
    env = {**os.environ, "COLUMNS": str(columns)}
    done = subprocess.run(
        [sys.executable, "-c", SHOW_EVERY_LAB, json.dumps(LABS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    shown = json.loads(done.stdout)
    for number, (exit_code, output) in shown.items():
        assert exit_code == 0, f"lab {number}: {output}"
    return {int(number): output for number, (_, output) in shown.items()}


@pytest.mark.parametrize("columns", [60, 200])
def test_every_code_line_of_every_lab_is_printed_byte_identical(columns):
    for number, output in show_every_lab(columns).items():
        printed = set(output.splitlines())
        wanted = code_lines(number)
        assert wanted, f"lab {number} has no code"
        missing = [line for line in wanted if line not in printed]
        assert not missing, f"lab {number} at {columns} columns mangled: {missing}"
        # the width did apply: the prose is wrapped to it
        prose = [line for line in output.splitlines() if line not in set(wanted)]
        assert max(len(line) for line in prose) <= columns, f"lab {number}"


def test_the_installed_command_keeps_lab_8s_patch_whole_in_a_narrow_terminal():
    patch = next(line for line in code_lines(8) if "kubectl -n workerlab patch" in line)
    assert len(patch) > 60
    done = subprocess.run(
        [str(WORKERLAB), "lab", "show", "8"],
        env={**os.environ, "COLUMNS": "60"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert patch in done.stdout.splitlines()


def invoke(*args):
    return CliRunner().invoke(app, ["lab", "show", *args])


def words(text: str) -> str:
    """The words only: rich drops Markdown's marks and wraps prose at the terminal's width."""
    return " ".join(re.findall(r"\w+", text))


@pytest.mark.parametrize("number", LABS)
def test_the_solution_is_folded_away_unless_asked_for(number):
    solution = course.text(course.get(number)).split("## Solution", 1)[1].split("\n## ", 1)[0]
    solution_words = words(solution)

    folded = invoke(str(number))
    assert folded.exit_code == 0, folded.output
    assert f"workerlab lab show {number} --solution" in folded.output
    assert solution_words not in words(folded.output)
    assert "Concept bridge" in folded.output  # only the solution is folded

    whole = invoke(str(number), "--solution")
    assert whole.exit_code == 0, whole.output
    assert solution_words in words(whole.output)
    assert "Folded away" not in whole.output


def test_raw_prints_the_markdown_source_without_front_matter():
    lab = course.get(9)
    raw = invoke("9", "--raw")
    assert raw.exit_code == 0
    assert raw.output == course.text(lab)
    assert not raw.output.startswith("---") and "needs:" not in raw.output
    assert "## Solution\n\n```python" in raw.output


def test_fold_solution_stops_at_the_next_section_and_ignores_headings_in_code():
    text = "# Lab\n\n## Solution\n\n```sh\n## not a heading\n```\n\nanswers\n\n## Next\n\nkept\n"
    folded = course.fold_solution(text, "NOTE")
    assert folded == "# Lab\n\n## Solution\n\nNOTE\n\n## Next\n\nkept\n"


def test_lab_check_says_each_piece_of_evidence_once():
    from workerlab.cli.commands import lab as lab_command
    from workerlab.labs.checking import Item

    items = [
        Item("changed the template: env ROLLOUT=v2", True, "ROLLOUT=v2"),  # the name says it
        Item("you changed the stub", False, "/x/autoscaler.py", "open /x/autoscaler.py and edit"),
        Item("the operator converged", True, "observedGeneration 3 of 3"),
    ]
    with lab_command.out.capture() as captured:
        lab_command.render_items(7, items)
    text = captured.get()
    assert text.count("ROLLOUT=v2") == 1, text
    assert text.count("/x/autoscaler.py") == 1, text
    assert "(observedGeneration 3 of 3)" in text, text


LEARNER_LABS = [
    lab.number for lab in course.labs() if lab.needs_cluster and not lab.needs_cluster_admin
]


@pytest.mark.parametrize("number", LEARNER_LABS)
def test_a_learners_lab_text_names_their_namespace_only(number):
    """Every command a learner pastes must work in `learner-NAME`: no `-n workerlab`, no raw
    API path into `workerlab`, in the steps, the questions or the solution."""
    result = CliRunner().invoke(
        app, ["lab", "show", str(number), "--solution", "--namespace", "learner-ada"]
    )
    assert result.exit_code == 0, result.output
    assert "for namespace learner-ada" in result.output
    for stale in (" -n workerlab ", "--namespace workerlab", "/namespaces/workerlab/"):
        assert stale not in result.output, f"lab {number}: {stale!r} left in its text"
    assert "-n learner-ada" in result.output


def test_the_solo_lab_keeps_its_namespace_and_raw_keeps_the_source():
    solo = CliRunner().invoke(app, ["lab", "show", "5", "--namespace", "workerlab"])
    assert "kubectl -n workerlab scale wc/demo --replicas=3" in solo.output
    assert "for namespace" not in solo.output
    raw = CliRunner().invoke(app, ["lab", "show", "5", "--raw", "--namespace", "learner-ada"])
    assert raw.output == course.text(course.get(5))


@pytest.mark.parametrize(
    ("text", "aimed"),
    [
        ("kubectl -n workerlab get wc", "kubectl -n learner-ada get wc"),
        ("kubectl top pods -n workerlab -l x=y", "kubectl top pods -n learner-ada -l x=y"),
        ("--namespace=workerlab", "--namespace=learner-ada"),
        ("/apis/g/v1/namespaces/workerlab/x", "/apis/g/v1/namespaces/learner-ada/x"),
        ("  namespace: workerlab\n", "  namespace: learner-ada\n"),
        # other namespaces and the API group are left alone
        ("kubectl -n workerlab-metrics logs x", "kubectl -n workerlab-metrics logs x"),
        ("apiVersion: workerlab.dev/v1alpha1", "apiVersion: workerlab.dev/v1alpha1"),
        ("workerlab lab check 5", "workerlab lab check 5"),
    ],
)
def test_for_namespace_rewrites_the_namespace_and_nothing_else(text, aimed):
    assert course.for_namespace(text, "learner-ada") == aimed
    assert course.for_namespace(text, "workerlab") == text


def test_a_checks_hints_are_aimed_at_the_learners_namespace():
    """`lab check` in a learner's namespace: the hints' commands are theirs to paste."""
    from workerlab.cli.commands.lab import aimed

    fresh = {"started_at": 0, "demo": {"metadata": {"name": "demo"}}, "pods": [], "runs": []}
    items = course.checker(course.get(7)).evaluate(fresh)
    hints = [it.hint for it in items if it.hint]
    assert any(" -n workerlab " in hint for hint in hints), hints  # the solo lab's own text
    for it in aimed(items, "learner-ada"):
        assert " -n workerlab " not in it.hint, it
    assert any(
        "kubectl -n learner-ada patch wc demo" in it.hint for it in aimed(items, "learner-ada")
    )
