"""Lab 9: the learner implements an autoscaler decision; its tests (shipped failing) must pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from workerlab.labs.checks.base import CheckContext, Checker, Item, item
from workerlab.labs.paths import package_dir

PYTEST_TIMEOUT_S = 120
EXERCISE = "autoscaler.py"


def exercise_dir() -> Path:
    override = os.environ.get("WORKERLAB_EXERCISES_DIR")
    base = Path(override) if override else package_dir() / "exercises"
    return base / "lab09"


def stub_text() -> str:
    """The pristine stub, kept next to this checker so `lab reset 9` can restore it."""
    return (Path(__file__).with_name("lab09_stub.py.txt")).read_text()


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
            "test_autoscaler.py",
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
        return [item("the exercise is there", False, exercise, "workerlab lab reset 9")]
    items = [
        item(
            "you changed the stub",
            not facts["is_stub"],
            exercise,
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
            else f"run: cd {facts['folder']} && python -m pytest -q test_autoscaler.py",
        )
    )
    return items


def reset(ctx: CheckContext) -> list[str]:
    target = exercise_dir() / EXERCISE
    target.write_text(stub_text())
    return [f"restored the stub {target}"]


CHECKER = Checker(gather, evaluate, reset)
