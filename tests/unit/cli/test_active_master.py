"""`workerlab status` names the active master when the operator runs with a Lease."""

from __future__ import annotations

from workerlab.common.errors import KubeError
from workerlab.common.kube import Kube
from workerlab.common.views import active_master


class LeaseKube(Kube):
    def __init__(self, answer: object, **where: str) -> None:
        super().__init__(**where)
        self.answer = answer

    def get(self, kind: str, name: str, *, namespaced: bool = True) -> dict | None:
        assert (kind, name, self.namespace) == ("lease", "workerlab-operator", "workerlab-system")
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer  # type: ignore[return-value]


def test_the_leases_holder_is_the_active_master(monkeypatch):
    lease = {"spec": {"holderIdentity": "workerlab-operator-7d9f-abcde"}}
    monkeypatch.setattr("workerlab.common.views.Kube", lambda **kw: LeaseKube(lease, **kw))
    assert active_master(Kube()) == "workerlab-operator-7d9f-abcde"


def test_no_lease_a_released_one_or_no_rights_name_nobody(monkeypatch):
    forbidden = KubeError('leases.coordination.k8s.io "workerlab-operator" is forbidden')
    for answer in (None, {"spec": {"holderIdentity": ""}}, forbidden):
        monkeypatch.setattr(
            "workerlab.common.views.Kube", lambda answer=answer, **kw: LeaseKube(answer, **kw)
        )
        assert active_master(Kube()) is None
