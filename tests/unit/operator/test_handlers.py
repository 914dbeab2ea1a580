"""kopf's WorkerCluster events feed the cache and, once one is gone, the queue's and the
controller's forgetting; kopf runs each uid's events in a task of its own, so they can come out
of order across a delete and a create under the same name."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import kopf

from workerlab.operator.cache import Caches
from workerlab.operator.handlers import cluster_event


class Forgetful:
    def __init__(self) -> None:
        self.forgotten: list[tuple[str, str]] = []

    def forget(self, key: tuple[str, str]) -> None:
        self.forgotten.append(key)


def cluster(uid: str, rv: int) -> dict:
    meta = {"namespace": "ns", "name": "c", "uid": uid, "resourceVersion": str(rv)}
    return {"apiVersion": "workerlab.dev/v1alpha1", "kind": "WorkerCluster", "metadata": meta}


def memo() -> SimpleNamespace:
    return SimpleNamespace(caches=Caches(), queue=Forgetful(), controller=Forgetful())


def event(memo: SimpleNamespace, kind: str, obj: dict) -> None:
    raw = kopf.RawEvent(type=kind, object=obj)  # type: ignore[typeddict-item]
    asyncio.run(cluster_event(event=raw, namespace="ns", name="c", memo=memo))  # type: ignore[arg-type]


def test_a_late_delete_of_the_predecessor_keeps_the_new_incarnation_and_its_timers():
    m = memo()
    event(m, "ADDED", cluster("old", 1))
    event(m, "ADDED", cluster("new", 5))  # created again before kopf ran the old one's DELETED
    event(m, "MODIFIED", cluster("old", 2))
    event(m, "DELETED", cluster("old", 3))
    assert m.caches.clusters.get("ns", "c")["metadata"]["uid"] == "new"
    assert m.queue.forgotten == [] and m.controller.forgotten == []


def test_a_delete_in_order_empties_the_cache_and_forgets_the_key():
    m = memo()
    event(m, "ADDED", cluster("old", 1))
    event(m, "DELETED", cluster("old", 3))
    assert m.caches.clusters.get("ns", "c") is None
    assert m.queue.forgotten == [("ns", "c")] and m.controller.forgotten == [("ns", "c")]
