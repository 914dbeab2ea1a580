"""The course's tested path, shared by the local (integration) and kind (e2e) lab tests:

reset -> the lab's steps verbatim -> `lab check` (must pass) -> the commands of its questions
-> `lab check` again, whose outcome each test declares: green, or red naming what happened.
All in one bash, as a learner's shell runs them (the questions use the steps' variables).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

QUESTIONS_MARK = "@@ now the commands of the questions"
RC_MARK = "@@ check after the questions: rc="


@dataclass(frozen=True)
class AfterQuestions:
    """What `workerlab lab check N` says once the questions' commands ran."""

    passed: bool
    says: str = ""  # a red check must name what the questions did, in these words

    def __str__(self) -> str:
        return "green" if self.passed else f"red, saying {self.says!r}"


GREEN = AfterQuestions(passed=True)


def red(says: str) -> AfterQuestions:
    assert says, "a red outcome must name the phrase the check prints"
    return AfterQuestions(passed=False, says=says)


def script(number: int, steps: str, questions: str, between: str = "") -> str:
    """`between` runs after the steps, before the first check (lab 9: the learner's code)."""
    assert questions.strip(), f"lab {number} has no commands under ## Questions"
    return (
        steps
        + between
        + f"workerlab lab check {number}\n"
        + f"echo '{QUESTIONS_MARK}'\n"
        + questions
        + "set +e\n"
        + f"workerlab lab check {number}\n"
        + f'echo "{RC_MARK}$?"\n'
    )


def assert_outcome(number: int, done: subprocess.CompletedProcess, expected: AfterQuestions):
    out, err = done.stdout, done.stderr
    assert QUESTIONS_MARK in out, (
        f"lab {number}: the steps or the check after them failed (rc {done.returncode}):\n"
        f"{out[-4000:]}\n{err[-4000:]}"
    )
    after_steps, after_questions = out.split(QUESTIONS_MARK, 1)
    assert f"lab {number}:" in after_steps and "passed" in after_steps.splitlines()[-1]
    assert RC_MARK in after_questions, (
        f"lab {number}: a question's command failed (rc {done.returncode}):\n"
        f"{after_questions[-4000:]}\n{err[-4000:]}"
    )
    check_output, rc = after_questions.rsplit(RC_MARK, 1)
    verdict = check_output[check_output.rfind(f"lab {number}:") :]
    said = f"lab {number} after its questions ({verdict.strip()}):\n{check_output[-3000:]}"
    if expected.passed:
        assert rc.strip() == "0", said
    else:
        assert rc.strip() == "1", said
        assert "FAIL" in check_output, said
        assert expected.says in check_output, f"expected {expected}; {said}"
