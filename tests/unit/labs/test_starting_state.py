"""`lab reset` replaces wc/demo even when the operator writes to it in between."""

from __future__ import annotations

import json

import pytest

from workerlab.common.errors import KubeError
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
        self.deleted: list[str] = []
        self.calls: list[str] = []
        self.hpas: list[dict] = []

    def get(self, resource: str, name: str) -> dict:
        return {"metadata": {"name": name, "resourceVersion": str(self.version)}}

    def list(self, resource: str) -> list[dict]:
        assert resource == "horizontalpodautoscalers.autoscaling"
        return self.hpas

    def run(self, verb: str, *args: str, stdin: str | None = None) -> str:
        self.calls.append(verb)
        if verb == "delete":
            self.deleted.append(args[1])
            return ""
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


def hpa(name: str, target: str) -> dict:
    ref = {"apiVersion": "workerlab.dev/v1alpha1", "kind": "WorkerCluster", "name": target}
    return {"metadata": {"name": name}, "spec": {"scaleTargetRef": ref}}


def test_reset_deletes_the_hpa_on_demo_first_and_only_that_one():
    kube = RacingKube(conflicts=0)
    kube.hpas = [hpa("demo", "demo"), hpa("other", "not-demo")]
    said = starting_state.reset_demo(kube, wait=False)
    assert kube.deleted == ["demo"] and kube.calls == ["delete", "replace"]
    assert said.endswith("deleted hpa/demo")


QUOTA_UNKNOWN = (
    'Error from server (Forbidden): error when creating "STDIN": workerclusters.workerlab.dev '
    '"demo" is forbidden: status unknown for quota: workerlab-learner, resources: '
    "count/workerclusters.workerlab.dev"
)


class NewNamespaceKube(RacingKube):
    """No demo yet, and a quota the quota controller has not computed for `unknown` tries."""

    def __init__(self, unknown: int, refusal: str = QUOTA_UNKNOWN) -> None:
        super().__init__(conflicts=0)
        self.unknown, self.refusal, self.created = unknown, refusal, 0

    def get(self, resource: str, name: str) -> dict | None:
        return None

    def run(self, verb: str, *args: str, stdin: str | None = None) -> str:
        assert verb == "create"
        if self.unknown:
            self.unknown -= 1
            raise KubeError(self.refusal)
        self.created += 1
        return ""


def test_the_first_reset_after_class_add_waits_for_the_quota_to_be_known(monkeypatch):
    monkeypatch.setattr(starting_state.time, "sleep", lambda _s: None)
    kube = NewNamespaceKube(unknown=3)
    starting_state.reset_demo(kube, wait=False)
    assert kube.created == 1


def test_a_quota_that_refuses_for_real_is_said_at_once(monkeypatch):
    monkeypatch.setattr(starting_state.time, "sleep", lambda _s: None)
    over = "exceeded quota: workerlab-learner, requested: count/workerclusters.workerlab.dev=1"
    with pytest.raises(KubeError, match="exceeded quota"):
        starting_state.reset_demo(NewNamespaceKube(unknown=1, refusal=over), wait=False)
