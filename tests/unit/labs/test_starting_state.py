"""`lab reset` replaces wc/demo even when the operator writes to it in between."""

from __future__ import annotations

import json

import pytest

from workerlab.cli.errors import KubeError
from workerlab.labs import starting_state

CONFLICT = (
    'Error from server (Conflict): error when replacing "STDIN": Operation cannot be fulfilled '
    'on workerclusters.workerlab.dev "demo": the object has been modified; please apply your '
    "changes to the latest version and try again"
)


class RacingKube:
    """A kubectl stand-in whose object changes version `conflicts` times under the caller."""

    namespace = "workerlab"

    def __init__(self, conflicts: int) -> None:
        self.conflicts = conflicts
        self.version = 1
        self.replaced: list[dict] = []

    def get(self, resource: str, name: str) -> dict:
        return {"metadata": {"name": name, "resourceVersion": str(self.version)}}

    def run(self, verb: str, *args: str, stdin: str | None = None) -> str:
        assert verb == "replace"
        sent = json.loads(stdin or "{}")
        if self.conflicts:
            self.conflicts -= 1
            self.version += 1  # the operator patched its status meanwhile
            raise KubeError(CONFLICT)
        assert sent["metadata"]["resourceVersion"] == str(self.version)
        self.replaced.append(sent)
        return ""


def test_reset_retries_a_conflicting_replace(monkeypatch):
    monkeypatch.setattr(starting_state.time, "sleep", lambda _s: None)
    kube = RacingKube(conflicts=2)
    starting_state.reset_demo(kube, wait=False)
    assert len(kube.replaced) == 1
    assert kube.replaced[0]["spec"]["replicas"] == 2


def test_reset_gives_up_after_bounded_attempts(monkeypatch):
    monkeypatch.setattr(starting_state.time, "sleep", lambda _s: None)
    with pytest.raises(KubeError, match="has been modified"):
        starting_state.reset_demo(RacingKube(conflicts=starting_state.REPLACE_ATTEMPTS), wait=False)
