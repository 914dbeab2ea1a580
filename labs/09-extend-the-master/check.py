"""Lab 9: the learner implements an autoscaler decision; its tests (shipped failing) must pass."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from workerlab.common.journal import lab_home
from workerlab.labs.checking import CheckContext, Checker, Item, item

PYTEST_TIMEOUT_S = 120
EXERCISE = "autoscaler.py"
TESTS = "test_autoscaler.py"
# The shipped exercise is the pristine copy; the learner works on a copy of it in their workspace.
SHIPPED = Path(__file__).with_name("exercise")


def exercise_dir() -> Path:
    """The learner's workspace: $WORKERLAB_EXERCISES_DIR/lab09, else the lab home's lab09/."""
    override = os.environ.get("WORKERLAB_EXERCISES_DIR")
    return (Path(override) if override else lab_home()) / "lab09"


def stub_text() -> str:
    return (SHIPPED / EXERCISE).read_text()


def gather(ctx: CheckContext) -> dict:
    folder = exercise_dir()
    if not (folder / EXERCISE).is_file():
        return {"folder": str(folder), "missing": True}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--no-header",
            "-o",
            "addopts=",
            TESTS,
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=PYTEST_TIMEOUT_S,
        check=False,
    )
    return {
        "folder": str(folder),
        "missing": False,
        "rc": done.returncode,
        "output": done.stdout[-4000:],
        "is_stub": (folder / EXERCISE).read_text() == stub_text(),
    }


def first_failure(output: str) -> str | None:
    for line in output.splitlines():
        if line.startswith("FAILED "):
            return line.removeprefix("FAILED ").strip()
    return None


def evaluate(facts: dict) -> list[Item]:
    exercise = f"{facts['folder']}/{EXERCISE}"
    if facts["missing"]:
        return [
            item(
                "the exercise is in your workspace",
                False,
                exercise,
                "workerlab lab reset 9 copies it there",
            )
        ]
    items = [
        item(
            "you changed the stub",
            not facts["is_stub"],
            exercise if not facts["is_stub"] else "",  # else the hint names the file
            f"open {exercise} and implement desired_replicas",
        )
    ]
    summary = (facts["output"].strip().splitlines() or ["no output"])[-1]
    failure = first_failure(facts["output"])
    items.append(
        item(
            "the autoscaler's tests pass",
            facts["rc"] == 0,
            summary,
            f"first failing test: {failure}"
            if failure
            else f"run: cd {facts['folder']} && {sys.executable} -m pytest -q {TESTS}",
        )
    )
    return items


def reset(ctx: CheckContext) -> list[str]:
    """Copy the shipped exercise into the workspace; the learner's own work is kept aside."""
    folder = exercise_dir()
    folder.mkdir(parents=True, exist_ok=True)
    said = []
    mine = folder / EXERCISE
    if mine.is_file() and mine.read_text() != stub_text():
        backup = folder / f"{EXERCISE}.{time.strftime('%Y%m%d-%H%M%S')}.bak"
        mine.replace(backup)
        said.append(f"kept your previous work as {backup}")
    for name in (EXERCISE, TESTS):
        shutil.copyfile(SHIPPED / name, folder / name)
    said.append(f"your exercise: {mine} (tests: {folder / TESTS})")
    return said


CHECKER = Checker(gather, evaluate, reset)
