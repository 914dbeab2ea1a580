"""The watch-fed caches the controller reads instead of GET + LIST per reconcile."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from workerlab.operator.cache import CachedKube, Caches
from workerlab.operator.informer import Gone, Informer, Store, parse_selector, trim

NS = "ns"


def pod(name: str, rv: int, instance: str = "a", uid: str | None = None, **meta: Any) -> dict:
    return {
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": uid or f"uid-{name}",
            "resourceVersion": str(rv),
            "labels": {"app.kubernetes.io/instance": instance},
            "managedFields": [{"manager": "x"}] * 3,
            **meta,
        },
        "spec": {
            "containers": [
                {
                    "name": "worker",
                    "image": "i",
                    "resources": {"requests": {"cpu": "50m"}},
                    "env": [{"name": "BULK", "value": "x" * 100}],
                    "readinessProbe": {"httpGet": {"path": "/readyz"}},
                }
            ],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
            "nodeName": "n1",
        },
        "status": {"phase": "Running"},
    }


def test_trim_drops_managed_fields_and_the_pods_spec_but_what_a_change_in_place_compares():
    trimmed = trim(pod("p", 1))
    assert "managedFields" not in trimmed["metadata"]
    worker = {"name": "worker", "image": "i", "resources": {"requests": {"cpu": "50m"}}}
    assert trimmed["spec"] == {"nodeName": "n1", "containers": [worker]}
    assert trimmed["status"] == {"phase": "Running"}


def test_selector_parsing():
    assert parse_selector("a=b,c=d") == {"a": "b", "c": "d"}
    assert parse_selector("a==b") == {"a": "b"}
    assert parse_selector("") == {}


def test_select_uses_the_instance_index_and_every_label():
    store = Store()
    store.apply("ADDED", pod("p1", 1, "a"))
    store.apply("ADDED", pod("p2", 2, "b"))
    names = [p["metadata"]["name"] for p in store.select(NS, {"app.kubernetes.io/instance": "a"})]
    assert names == ["p1"]
    assert store.select(NS, {"app.kubernetes.io/instance": "a", "other": "x"}) == []
    assert store.select("elsewhere", {"app.kubernetes.io/instance": "a"}) == []
    store.apply("DELETED", pod("p1", 3, "a"))
    assert store.select(NS, {"app.kubernetes.io/instance": "a"}) == []


def test_an_older_event_never_overwrites_a_newer_object():
    store = Store()
    store.put(pod("p", 5, status_note="written"))
    assert store.apply("MODIFIED", pod("p", 4)) is False
    assert store.get(NS, "p")["metadata"]["resourceVersion"] == "5"
    assert store.apply("MODIFIED", pod("p", 6)) is True


def test_a_late_event_of_a_deleted_object_never_replaces_the_one_created_again_under_its_name():
    # kopf runs each uid's events in a task of its own: the old one's last MODIFIED and its
    # DELETED may come after the ADDED of its successor.
    store = Store()
    store.apply("ADDED", pod("p", 10, uid="new"))
    assert store.apply("MODIFIED", pod("p", 7, uid="old")) is False
    assert store.apply("DELETED", pod("p", 8, uid="old")) is False
    assert store.get(NS, "p")["metadata"]["uid"] == "new"


def test_a_deleted_pod_stays_terminating_whatever_stale_events_say():
    store = Store()
    store.apply("ADDED", pod("p", 1))
    store.mark_terminating(NS, "p", "uid-p", datetime(2026, 1, 1, tzinfo=UTC))
    store.apply("MODIFIED", pod("p", 2))  # e.g. "became Ready", sent before our delete landed
    assert store.get(NS, "p")["metadata"]["deletionTimestamp"] == "2026-01-01T00:00:00Z"


def test_mark_terminating_ignores_a_new_pod_of_the_same_name():
    store = Store()
    store.apply("ADDED", pod("p", 1, uid="new"))
    store.mark_terminating(NS, "p", "old", datetime(2026, 1, 1, tzinfo=UTC))
    assert "deletionTimestamp" not in store.get(NS, "p")["metadata"]


def test_relist_keeps_what_we_wrote_after_the_list_and_drops_the_rest():
    store = Store()
    store.apply("ADDED", pod("gone", 1))
    store.put(pod("mine", 12))  # created by the operator after the LIST at version 10
    store.put(pod("old-write", 8))  # written before the LIST, absent from it: deleted since
    store.replace([pod("kept", 9)], list_version=10)
    assert {p["metadata"]["name"] for p in store.items()} == {"kept", "mine"}


def test_relist_of_one_namespace_leaves_the_others_alone():
    store = Store()
    other = pod("p", 1)
    other["metadata"]["namespace"] = "other"
    store.apply("ADDED", other)
    store.replace([], list_version=5, namespace=NS)
    assert store.get("other", "p") is not None


class FakeStreamer:
    """An API server that answers one LIST page then one watch stream, then 410 Gone."""

    def __init__(self, items: list[dict], events: list[dict]) -> None:
        self.items, self.events = items, events
        self.lists = 0

    def _call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        self.lists += 1
        return {"kind": "PodList", "metadata": {"resourceVersion": "10"}, "items": self.items}

    def stream(self, path: str, query: dict[str, str], timeout: float):
        assert query["resourceVersion"] == "10" and query["watch"] == "1"
        for event in self.events:
            yield json.dumps(event).encode()


def test_informer_lists_then_applies_watch_events_and_calls_back():
    seen: list[tuple[str, str]] = []
    store = Store()
    events = [
        {"type": "ADDED", "object": pod("p2", 11)},
        {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "12"}}},
        {"type": "DELETED", "object": pod("p1", 13)},
        {"type": "ERROR", "object": {"code": 410, "message": "too old"}},
    ]
    streamer = FakeStreamer([pod("p1", 9)], events)
    informer = Informer(
        streamer, "/api/v1/pods", store, "", lambda t, o: seen.append((t, o["metadata"]["name"]))
    )
    version = informer._list()
    assert version == 10 and store.get(NS, "p1") is not None
    try:
        informer._watch(version)
    except Gone:
        pass
    else:
        raise AssertionError("410 must end the watch with Gone (relist)")
    assert seen == [("ADDED", "p1"), ("ADDED", "p2"), ("DELETED", "p1")]
    assert [p["metadata"]["name"] for p in store.items()] == ["p2"]


class RecordingWrites:
    def __init__(self) -> None:
        self.gets = 0

    async def get_cluster(self, namespace: str, name: str) -> dict | None:
        self.gets += 1
        return {"metadata": {"namespace": namespace, "name": name, "resourceVersion": "3"}}

    async def create_pod(self, namespace: str, body: dict) -> dict:
        return pod("new", 20)

    async def delete_pod(
        self, namespace: str, name: str, uid: str, grace_seconds: int | None = None
    ) -> bool:
        return True

    async def patch_cluster_status(self, namespace: str, name: str, patch: dict) -> dict:
        return {
            "metadata": {"namespace": namespace, "name": name, "resourceVersion": "4"},
            "status": patch,
        }


class Listed:
    lists = 1


def test_cached_kube_reads_memory_and_writes_through():
    async def scenario() -> None:
        caches = Caches()
        caches.informers = [Listed()]  # type: ignore[list-item]
        writes = RecordingWrites()
        kube = CachedKube(writes, caches)  # type: ignore[arg-type]
        # A create is visible to the very next read, before any watch event.
        await kube.create_pod(NS, {})
        assert [
            p["metadata"]["name"] for p in await kube.list_pods(NS, "app.kubernetes.io/instance=a")
        ] == ["new"]
        # A delete makes the pod terminating at once.
        await kube.delete_pod(NS, "new", "uid-new")
        (deleted,) = await kube.list_pods(NS, "app.kubernetes.io/instance=a")
        assert deleted["metadata"]["deletionTimestamp"]
        # A WorkerCluster kopf saw before our watch did: one GET, then from memory.
        assert (await kube.get_cluster(NS, "wc"))["metadata"]["name"] == "wc"
        await kube.get_cluster(NS, "wc")
        assert writes.gets == 1
        # The status we wrote is what the next reconcile reads.
        await kube.patch_cluster_status(NS, "wc", {"readyReplicas": 2})
        assert (await kube.get_cluster(NS, "wc"))["status"] == {"readyReplicas": 2}

    asyncio.run(scenario())


def test_our_own_write_answered_after_the_watch_told_of_its_deletion_stays_deleted():
    # Garbage collection removes an object whose owner is gone within milliseconds: the watch's
    # ADDED and DELETED can both come before the create's answer is written through.
    store = Store()
    store.apply("ADDED", pod("p", 3))
    store.apply("DELETED", pod("p", 4))
    store.put(pod("p", 3))
    assert store.get(NS, "p") is None
    store.put(pod("p", 5, uid="next"))  # another object under that name is welcome
    assert store.get(NS, "p")["metadata"]["uid"] == "next"
