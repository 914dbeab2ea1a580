"""The shell's contract, with an in-memory stand-in for the API client (a unit test: the real
API server is exercised by tests/integration/operator/)."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from workerlab.api.resource import (
    ANNOTATION_IN_PLACE_REFUSED,
    ANNOTATION_PROCESSES,
    LABEL_INSTANCE,
    Reason,
)
from workerlab.operator.__main__ import main
from workerlab.operator.controller import Controller
from workerlab.operator.images import WorkerImage
from workerlab.operator.kube import ApiError
from workerlab.operator.metrics import Metrics
from workerlab.operator.nodeloss import NodeHealth
from workerlab.operator.processes import ProcessProbe

NS, NAME = "workerlab", "demo"


class RecordingKube:
    """Stores objects as dicts and records every write."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.cluster: dict[str, Any] = {
            "apiVersion": "workerlab.dev/v1alpha1",
            "kind": "WorkerCluster",
            "metadata": {"name": NAME, "namespace": NS, "uid": "uid-demo", "generation": 1},
            "spec": spec,
        }
        self.pods: dict[str, dict] = {}
        self.service: dict[str, Any] | None = None
        self.ingress: dict[str, Any] | None = None
        self.policy: dict[str, Any] | None = None
        self.writes: list[tuple[str, str]] = []
        self.events: list[tuple[str, str]] = []
        self._names = itertools.count()

    async def get_cluster(self, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.cluster)

    async def cluster_exists(self, namespace: str, name: str, uid: str) -> bool:
        return self.cluster is not None and self.cluster["metadata"].get("uid") == uid

    async def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return copy.deepcopy(list(self.pods.values()))

    async def create_pod(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        pod = copy.deepcopy(body)
        name = f"{body['metadata']['generateName']}{next(self._names)}"
        stamp = "2025-01-01T12:00:00Z"
        pod["metadata"].update(name=name, uid=f"uid-{name}", creationTimestamp=stamp)
        pod["status"] = {"phase": "Pending"}
        self.pods[name] = pod
        self.writes.append(("create", name))
        return pod

    async def delete_pod(
        self, namespace: str, name: str, uid: str, grace_seconds: int | None = None
    ) -> bool:
        self.writes.append(("delete", name) if grace_seconds is None else ("delete-now", name))
        return self.pods.pop(name, None) is not None

    async def patch_pod(
        self, namespace: str, name: str, uid: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        pod = self.pods[name]
        annotations = pod["metadata"].setdefault("annotations", {})
        annotations.update(patch.get("metadata", {}).get("annotations", {}))
        self.writes.append(("patch", name))
        return copy.deepcopy(pod)

    async def resize_pod(
        self, namespace: str, name: str, container: str, resources: dict[str, Any]
    ) -> dict[str, Any]:
        pod = self.pods[name]
        (worker,) = [c for c in pod["spec"]["containers"] if c["name"] == container]
        worker["resources"] = copy.deepcopy(resources)
        self.writes.append(("resize", name))
        return copy.deepcopy(pod)

    async def get_service(self, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.service)

    async def create_service(self, namespace: str, body: dict[str, Any]) -> None:
        self.service = copy.deepcopy(body)
        self.writes.append(("create", "service"))

    async def replace_service(self, namespace: str, body: dict[str, Any]) -> None:
        self.service = copy.deepcopy(body)
        self.writes.append(("replace", "service"))

    async def get_ingress(self, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.ingress)

    async def create_ingress(self, namespace: str, body: dict[str, Any]) -> None:
        self.ingress = copy.deepcopy(body)
        self.writes.append(("create", "ingress"))

    async def replace_ingress(self, namespace: str, body: dict[str, Any]) -> None:
        self.ingress = copy.deepcopy(body)
        self.writes.append(("replace", "ingress"))

    async def delete_ingress(self, namespace: str, name: str) -> None:
        self.ingress = None
        self.writes.append(("delete", "ingress"))

    async def get_network_policy(self, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.policy)

    async def create_network_policy(self, namespace: str, body: dict[str, Any]) -> None:
        self.policy = copy.deepcopy(body)
        self.writes.append(("create", "networkpolicy"))

    async def replace_network_policy(self, namespace: str, body: dict[str, Any]) -> None:
        self.policy = copy.deepcopy(body)
        self.writes.append(("replace", "networkpolicy"))

    async def delete_network_policy(self, namespace: str, name: str) -> None:
        self.policy = None
        self.writes.append(("delete", "networkpolicy"))

    async def patch_cluster_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        status = self.cluster.setdefault("status", {})
        for key, value in patch.items():
            if isinstance(value, dict) and isinstance(status.get(key), dict):
                status[key].update(value)
                status[key] = {k: v for k, v in status[key].items() if v is not None}
            else:
                status[key] = value
        self.writes.append(("status", ""))

    async def post_event(
        self,
        involved: dict[str, Any],
        event_type: str,
        reason: str,
        message: str,
        now: Any,
        name: str | None = None,
    ) -> None:
        self.events.append((reason, message))

    async def pod_processes(self, namespace: str, pod: str, port: int) -> dict[str, Any]:
        return {"pod": pod, "processes": [{"pid": 1, "alive": True}, {"pid": 2, "alive": True}]}

    def make_ready(self) -> None:
        for pod in self.pods.values():
            ready = [{"type": "Ready", "status": "True"}]
            pod["status"] = {"phase": "Running", "conditions": ready}


def controller_for(kube: RecordingKube, default_image: WorkerImage | None = None) -> Controller:
    probe = ProcessProbe(kube.pod_processes, ttl=0)
    if default_image is None:
        return Controller(kube, probe, Metrics())
    return Controller(kube, probe, Metrics(), default_image=default_image)


def test_reconcile_converges_then_writes_nothing():
    async def scenario():
        kube = RecordingKube({"replicas": 2, "processesPerPod": 2})
        ctl = controller_for(kube)
        await ctl.reconcile((NS, NAME))
        assert sorted(w[0] for w in kube.writes) == ["create", "create", "create", "status"]
        kube.make_ready()
        await ctl.reconcile((NS, NAME))
        status = kube.cluster["status"]
        assert status["phase"] == "Ready" and status["readyProcesses"] == 4
        before = len(kube.writes)
        for _ in range(3):
            again = await ctl.reconcile((NS, NAME))
        assert len(kube.writes) == before  # steady state: no writes at all
        assert again == ctl.poll_seconds  # only the modest process poll keeps running
        reasons = [r for r, _ in kube.events]
        assert reasons.count("CreatedPod") == 2 and "CreatedService" in reasons
        assert "Scaled" in reasons and "Ready" in reasons

    asyncio.run(scenario())


def test_a_new_operator_default_image_rolls_default_pods_and_shows_in_status():
    v1 = WorkerImage("registry.example/workerlab/worker:1.0", "IfNotPresent", ("regcred",))
    v2 = WorkerImage("registry.example/workerlab/worker:1.1", "Always", ("regcred",))
    pinned = "registry.example/team/worker:7"

    async def converge(kube: RecordingKube, ctl: Controller) -> None:
        for _ in range(10):
            await ctl.reconcile((NS, NAME))
            kube.make_ready()

    def images(kube: RecordingKube) -> set[str]:
        return {p["spec"]["containers"][0]["image"] for p in kube.pods.values()}

    async def scenario():
        following, fixed = RecordingKube({"replicas": 2}), RecordingKube({"image": pinned})
        for kube in (following, fixed):
            await converge(kube, controller_for(kube, v1))
        assert images(following) == {v1.reference} and images(fixed) == {pinned}
        assert following.cluster["status"]["image"] == v1.reference
        assert fixed.cluster["status"]["image"] == pinned
        pod = next(iter(following.pods.values()))
        assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]

        # A new operator version with a new default: its reconciles roll only the first.
        fixed.writes.clear()
        await converge(fixed, controller_for(fixed, v2))
        assert fixed.writes == [] and images(fixed) == {pinned}
        await converge(following, controller_for(following, v2))
        assert images(following) == {v2.reference} and len(following.pods) == 2
        assert following.cluster["status"]["image"] == v2.reference
        assert [w[0] for w in following.writes].count("delete") >= 2  # the v1 pods went

    asyncio.run(scenario())


def test_deleted_pod_is_replaced_with_an_event():
    async def scenario():
        kube = RecordingKube({"replicas": 2})
        ctl = controller_for(kube)
        await ctl.reconcile((NS, NAME))
        kube.make_ready()
        await ctl.reconcile((NS, NAME))
        kube.pods.pop(next(iter(kube.pods)))
        await ctl.reconcile((NS, NAME))
        assert len(kube.pods) == 2
        assert "ReplacedPod" in [r for r, _ in kube.events]
        assert ctl.metrics.pods_replaced._value.get() == 1

    asyncio.run(scenario())


def test_a_cached_cluster_deleted_meanwhile_gets_no_new_pods():
    """The reads come from a cache that may have missed the DELETED event: before creating
    pods the controller asks the API server itself, and a gone WorkerCluster gets nothing."""

    class StaleCache(RecordingKube):
        async def cluster_exists(self, namespace: str, name: str, uid: str) -> bool:
            return False  # deleted on the server; get_cluster still answers the cached body

    async def scenario():
        kube = StaleCache({"replicas": 3})
        again = await controller_for(kube).reconcile((NS, NAME))
        assert kube.pods == {} and kube.writes == [] and again is None

    asyncio.run(scenario())


def test_a_cached_cluster_deleted_meanwhile_gets_no_service_or_ingress_either():
    """Its pods all there (no pod to create), it still asks before creating what it owns: a
    Service made for a gone owner would hold the name against its successor until collected."""

    class StaleCache(RecordingKube):
        asked = 0

        async def cluster_exists(self, namespace: str, name: str, uid: str) -> bool:
            self.asked += 1
            return False

    async def scenario():
        kube = StaleCache({"replicas": 0, "ingress": {"enabled": True, "host": "demo.test"}})
        await controller_for(kube).reconcile((NS, NAME))
        assert kube.service is None and kube.ingress is None and kube.writes == []
        assert kube.asked == 1  # once per reconcile, not once per object

    asyncio.run(scenario())


def test_hand_edited_service_is_restored():
    async def scenario():
        kube = RecordingKube({"replicas": 1})
        ctl = controller_for(kube)
        await ctl.reconcile((NS, NAME))
        assert kube.service is not None
        kube.service["spec"]["selector"] = {"app": "hijacked"}
        await ctl.reconcile((NS, NAME))
        assert ("replace", "service") in kube.writes
        assert kube.service["spec"]["selector"][LABEL_INSTANCE] == NAME

    asyncio.run(scenario())


def test_main_without_cluster_fails_with_one_clear_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert main(["--namespace", "workerlab"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("workerlab operator: ") and "Traceback" not in err


def test_main_with_unreachable_api_server_names_it(tmp_path, monkeypatch, capsys):
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        """
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert main(["-A"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the Kubernetes API server at https://127.0.0.1:1" in err


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


QUOTA_MESSAGE = (
    'services "demo" is forbidden: exceeded quota: workerlab-learner, requested: '
    "services.nodeports=1, used: services.nodeports=0, limited: services.nodeports=0"
)


def degraded_of(kube: RecordingKube) -> dict[str, Any]:
    return {c["type"]: c for c in kube.cluster["status"]["conditions"]}["Degraded"]


def test_pod_refused_by_the_api_server_is_degraded_once_and_retried_with_backoff():
    class RefusingKube(RecordingKube):
        refuse = True
        tries = 0

        async def create_pod(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
            self.tries += 1
            if self.refuse:
                raise ApiError(422, "POST", "/pods", '{"message": "spec.affinity: Invalid value"}')
            return await super().create_pod(namespace, body)

    async def scenario():
        kube, clock = RefusingKube({"replicas": 2}), Clock()
        ctl = Controller(kube, ProcessProbe(kube.pod_processes, ttl=0), Metrics(), clock=clock)
        again = await ctl.reconcile((NS, NAME))  # no exception: the hold is the backoff
        assert again is not None and 10 <= again <= 11
        status = kube.cluster["status"]
        degraded = degraded_of(kube)
        assert (status["phase"], degraded["status"], degraded["reason"]) == (
            "Degraded",
            "True",
            "FailedCreate",
        )
        assert "spec.affinity" in degraded["message"]
        assert kube.tries == 1, "a refused first pod stops the rest"
        writes = len(kube.writes)
        for _ in range(20):  # pod events, resyncs: within the backoff nothing is tried again
            clock.advance(0.4)
            await ctl.reconcile((NS, NAME))
        assert kube.tries == 1 and len(kube.writes) == writes, "a held retry writes nothing"
        clock.advance(2.1)  # 10.1 s after the refusal
        await ctl.reconcile((NS, NAME))
        assert kube.tries == 2 and len(kube.writes) == writes  # same cause: no write, no Event
        assert [r for r, _ in kube.events].count("FailedCreate") == 1
        assert "Scaled" not in [r for r, _ in kube.events], "nothing was scaled yet"

        kube.refuse = False  # e.g. the quota was raised: seen at the next try (20 s later)
        clock.advance(19)
        await ctl.reconcile((NS, NAME))
        assert kube.tries == 2
        clock.advance(1.1)
        await ctl.reconcile((NS, NAME))
        assert len(kube.pods) == 2 and degraded_of(kube)["status"] == "False"
        reasons = [r for r, _ in kube.events]
        assert reasons.count("FailedCreate") == 1 and reasons.count("Recovered") == 1
        assert reasons.count("Scaled") == 1
        counted = {
            s.labels["result"]: s.value
            for metric in ctl.metrics.registry.collect()
            if metric.name == "workerlab_reconcile"
            for s in metric.samples
            if s.name == "workerlab_reconcile_total"
        }
        assert counted["error"] == 23 and counted["success"] == 1

    asyncio.run(scenario())


def test_a_pod_of_ours_going_away_is_worth_one_try_at_once():
    class QuotaKube(RecordingKube):
        room = 2
        tries = 0

        async def create_pod(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
            self.tries += 1
            if len(self.pods) >= self.room:
                message = 'pods "demo-x" is forbidden: exceeded quota: q, used: pods=2'
                raise ApiError(403, "POST", "/pods", json.dumps({"message": message}))
            return await super().create_pod(namespace, body)

    async def scenario():
        kube, clock = QuotaKube({"replicas": 4}), Clock()
        ctl = Controller(kube, ProcessProbe(kube.pod_processes, ttl=0), Metrics(), clock=clock)
        await ctl.reconcile((NS, NAME))  # batches 1, 2: the third pod is refused
        assert len(kube.pods) == 2 and kube.tries == 3
        clock.advance(1)
        await ctl.reconcile((NS, NAME))  # the same pods: held
        assert kube.tries == 3
        kube.pods.pop(next(iter(kube.pods)))  # deleted by hand: room for one
        clock.advance(1)
        await ctl.reconcile((NS, NAME))
        assert len(kube.pods) == 2 and kube.tries == 6  # one created, the next batch refused
        assert [r for r, _ in kube.events].count("FailedCreate") == 1
        assert "exceeded quota: q" in degraded_of(kube)["message"]

    asyncio.run(scenario())


def test_service_refused_by_a_quota_is_degraded_with_one_event_and_clears_on_a_spec_change():
    class QuotaKube(RecordingKube):
        service_tries = 0

        async def create_service(self, namespace: str, body: dict[str, Any]) -> None:
            self.service_tries += 1
            if body["spec"]["type"] == "NodePort":
                raise ApiError(403, "POST", "/services", json.dumps({"message": QUOTA_MESSAGE}))
            await super().create_service(namespace, body)

    async def scenario():
        kube, clock = QuotaKube({"replicas": 2, "service": {"type": "NodePort"}}), Clock()
        ctl = Controller(kube, ProcessProbe(kube.pod_processes, ttl=0), Metrics(), clock=clock)
        for _ in range(61):  # a reconcile a second for a minute
            await ctl.reconcile((NS, NAME))
            kube.make_ready()
            clock.advance(1)
        assert len(kube.pods) == 2, "the pods are looked after all the same"
        degraded = degraded_of(kube)
        assert (degraded["status"], degraded["reason"]) == ("True", "ServiceRefused")
        assert "exceeded quota: workerlab-learner" in degraded["message"]
        assert "services.nodeports" in degraded["message"]
        assert kube.cluster["status"]["phase"] == "Degraded"
        assert kube.service_tries == 3  # at 0, 10 and 30 s (backoff 10 s, 20 s; next at 70 s)
        assert [r for r, _ in kube.events].count("ServiceRefused") == 1

        kube.cluster["spec"]["service"] = {"type": "ClusterIP"}
        kube.cluster["metadata"]["generation"] = 2
        await ctl.reconcile((NS, NAME))  # a new spec is tried at once
        assert kube.service is not None and kube.service["spec"]["type"] == "ClusterIP"
        assert degraded_of(kube)["status"] == "False"
        reasons = [r for r, _ in kube.events]
        assert reasons.count("ServiceRefused") == 1 and reasons.count("Recovered") == 1

    asyncio.run(scenario())


def test_a_service_name_held_by_someone_else_is_a_conflict_not_a_retry_loop():
    class TakenKube(RecordingKube):
        tries = 0

        async def create_service(self, namespace: str, body: dict[str, Any]) -> None:
            self.tries += 1  # not in our label-filtered cache, but on the server
            message = 'services "demo" already exists'
            raise ApiError(409, "POST", "/services", json.dumps({"message": message}))

    async def scenario():
        kube, clock = TakenKube({"replicas": 1}), Clock()
        ctl = Controller(kube, ProcessProbe(kube.pod_processes, ttl=0), Metrics(), clock=clock)
        for _ in range(5):
            await ctl.reconcile((NS, NAME))
            clock.advance(1)
        degraded = degraded_of(kube)
        assert (degraded["status"], degraded["reason"]) == ("True", "ServiceConflict")
        assert "not owned by this WorkerCluster" in degraded["message"]
        assert kube.tries == 1 and [r for r, _ in kube.events].count("ServiceConflict") == 1

    asyncio.run(scenario())


def test_a_workercluster_created_again_under_its_name_does_not_inherit_the_old_backoff():
    """Deleted and created again before the operator saw the deletion (the work queue folds the
    DELETED event into the ADDED one): the old one's Service, still being collected, is in the
    way, but the new incarnation's backoff starts afresh, its Events are said again."""

    class CollectingKube(RecordingKube):
        leftover = True  # the previous incarnation's Service, not yet garbage-collected
        tries = 0

        async def create_service(self, namespace: str, body: dict[str, Any]) -> None:
            self.tries += 1
            if self.leftover:
                message = 'services "demo" already exists'
                raise ApiError(409, "POST", "/services", json.dumps({"message": message}))
            await super().create_service(namespace, body)

    async def scenario():
        kube, clock = CollectingKube({"replicas": 1}), Clock()
        ctl = Controller(kube, ProcessProbe(kube.pod_processes, ttl=0), Metrics(), clock=clock)
        for _ in range(80):  # refused at 0, 10, 30 and 70 s: the backoff has grown to 80 s
            await ctl.reconcile((NS, NAME))
            clock.advance(1)
        assert kube.tries == 4
        kube.cluster["metadata"]["uid"] = "uid-demo-again"  # deleted, created again
        kube.cluster["status"] = {}
        await ctl.reconcile((NS, NAME))
        assert kube.tries == 5  # tried at once
        for _ in range(11):
            clock.advance(1)
            await ctl.reconcile((NS, NAME))
        assert kube.tries == 6, "the new incarnation's first backoff is 10 s, not the old 160 s"
        assert [r for r, _ in kube.events].count("ServiceConflict") == 2  # said to each
        kube.leftover = False  # collected
        for _ in range(21):
            clock.advance(1)
            await ctl.reconcile((NS, NAME))
        assert kube.service is not None and degraded_of(kube)["status"] == "False"

    asyncio.run(scenario())


def test_a_transient_api_error_still_fails_the_reconcile_for_the_work_queue():
    class BusyKube(RecordingKube):
        async def create_service(self, namespace: str, body: dict[str, Any]) -> None:
            raise ApiError(500, "POST", "/services", '{"message": "etcdserver: timeout"}')

    async def scenario():
        kube = BusyKube({"replicas": 1})
        with pytest.raises(ApiError):
            await controller_for(kube).reconcile((NS, NAME))

    asyncio.run(scenario())


def test_reconciles_count_as_success_unless_the_core_asks_to_requeue():
    async def scenario():
        kube = RecordingKube({"replicas": 1})
        ctl = controller_for(kube)
        await ctl.reconcile((NS, NAME))
        kube.make_ready()
        await ctl.reconcile((NS, NAME))  # asks for the process poll: still a success
        samples = {
            s.labels["result"]: s.value
            for metric in ctl.metrics.registry.collect()
            if metric.name == "workerlab_reconcile"
            for s in metric.samples
            if s.name == "workerlab_reconcile_total"
        }
        assert samples == {"success": 2.0}

    asyncio.run(scenario())


def test_scale_down_deletes_concurrently_with_one_event_each():
    class SlowDeleteKube(RecordingKube):
        in_flight = peak = 0

        async def delete_pod(
            self, namespace: str, name: str, uid: str, grace_seconds: int | None = None
        ) -> bool:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            await asyncio.sleep(0.01)  # a round trip: the others start meanwhile
            self.in_flight -= 1
            return await super().delete_pod(namespace, name, uid)

    async def scenario():
        kube = SlowDeleteKube({"replicas": 6})
        ctl = controller_for(kube)
        await ctl.reconcile((NS, NAME))
        kube.make_ready()
        await ctl.reconcile((NS, NAME))
        kube.cluster["spec"]["replicas"] = 2
        await ctl.reconcile((NS, NAME))
        assert len(kube.pods) == 2 and kube.peak == 4
        assert [r for r, _ in kube.events].count("DeletedPod") == 4

    asyncio.run(scenario())


def test_pod_actions_do_not_wait_for_the_process_probe():
    class SlowProbeKube(RecordingKube):
        async def pod_processes(self, namespace: str, pod: str, port: int) -> dict[str, Any]:
            await asyncio.sleep(0.05)  # a pod proxy round trip
            self.writes.append(("probed", pod))
            return await super().pod_processes(namespace, pod, port)

    async def scenario():
        kube = SlowProbeKube({"replicas": 2, "processesPerPod": 2})
        ctl = controller_for(kube)
        await ctl.reconcile((NS, NAME))
        kube.make_ready()
        await ctl.reconcile((NS, NAME))
        kube.cluster["spec"]["replicas"] = 3
        kube.writes.clear()
        await ctl.reconcile((NS, NAME))
        kinds = [kind for kind, _ in kube.writes]
        assert kinds[0] == "create" and kinds.count("probed") == 2, kube.writes
        assert kinds[-1] == "status"  # written after the probe, with its counts
        assert kube.cluster["status"]["readyProcesses"] == 4

    asyncio.run(scenario())


def test_network_policy_is_opt_in_restored_after_a_hand_edit_and_removed_when_disabled():
    async def scenario():
        kube = RecordingKube({"replicas": 1})
        ctl = controller_for(kube)
        await ctl.reconcile((NS, NAME))
        assert kube.policy is None and ("create", "networkpolicy") not in kube.writes
        kube.cluster["spec"]["networkPolicy"] = {"enabled": True, "allowedNamespaces": ["lab"]}
        await ctl.reconcile((NS, NAME))
        assert kube.policy is not None
        assert kube.policy["metadata"]["ownerReferences"][0]["uid"] == "uid-demo"
        kube.policy["spec"]["ingress"] = [{}]  # someone opens it to everything
        await ctl.reconcile((NS, NAME))
        assert kube.policy["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8000}]
        before = len(kube.writes)
        await ctl.reconcile((NS, NAME))
        assert ("replace", "networkpolicy") not in kube.writes[before:]  # in sync: no write
        kube.cluster["spec"]["networkPolicy"] = {"enabled": False}
        await ctl.reconcile((NS, NAME))
        assert kube.policy is None
        reasons = [r for r, _ in kube.events]
        for reason in ("CreatedNetworkPolicy", "UpdatedNetworkPolicy", "DeletedNetworkPolicy"):
            assert reason in reasons

    asyncio.run(scenario())


def test_a_foreign_network_policy_is_left_alone_with_one_warning():
    async def scenario():
        kube = RecordingKube({"replicas": 1, "networkPolicy": {"enabled": True}})
        foreign = {"metadata": {"name": NAME, "namespace": NS}, "spec": {"podSelector": {}}}
        kube.policy = copy.deepcopy(foreign)
        ctl = controller_for(kube)
        for _ in range(2):
            await ctl.reconcile((NS, NAME))
        assert kube.policy == foreign
        assert [r for r, _ in kube.events].count("NetworkPolicyConflict") == 1
        degraded = degraded_of(kube)
        assert (degraded["status"], degraded["reason"]) == ("True", "NetworkPolicyConflict")

    asyncio.run(scenario())


def test_creates_go_in_slow_start_batches_and_events_in_the_background():
    class SlowKube(RecordingKube):
        in_flight = peak = 0
        posting: asyncio.Event

        async def create_pod(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            await asyncio.sleep(0.01)
            self.in_flight -= 1
            return await super().create_pod(namespace, body)

        async def post_event(self, involved, event_type, reason, message, now, name=None) -> None:
            # Held until the reconcile has returned: a sleep raced it on a loaded machine.
            await self.posting.wait()
            await super().post_event(involved, event_type, reason, message, now, name)

    async def scenario():
        kube = SlowKube({"replicas": 7})
        kube.posting = asyncio.Event()
        ctl = Controller(
            kube, ProcessProbe(kube.pod_processes, ttl=0), Metrics(), events_in_background=True
        )
        # Returns although no Event could be posted yet (waiting for one would time out).
        await asyncio.wait_for(ctl.reconcile((NS, NAME)), timeout=10)
        assert len(kube.pods) == 7 and kube.peak == 4  # batches of 1, 2, 4
        assert kube.events == []
        kube.posting.set()
        await ctl.drain_events()
        assert [r for r, _ in kube.events].count("CreatedPod") == 7

    asyncio.run(scenario())


def test_a_lost_nodes_pod_is_deleted_now_and_replaced_off_that_node():
    async def scenario():
        kube = RecordingKube({"replicas": 2, "processesPerPod": 1})
        now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
        heartbeats = {"w1": now, "w2": now - timedelta(seconds=45)}
        ctl = controller_for(kube)
        ctl.clock = lambda: now
        ctl.node_health = lambda: NodeHealth(heartbeats)
        await ctl.reconcile((NS, NAME))
        kube.make_ready()
        first, second = sorted(kube.pods)
        kube.pods[first]["spec"]["nodeName"] = "w1"
        kube.pods[second]["spec"]["nodeName"] = "w2"
        kube.writes.clear()
        await ctl.reconcile((NS, NAME))
        assert ("delete-now", second) in kube.writes
        (created,) = [name for kind, name in kube.writes if kind == "create"]
        terms = kube.pods[created]["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]["nodeSelectorTerms"]
        assert terms[0]["matchFields"][0] == {
            "key": "metadata.name",
            "operator": "NotIn",
            "values": ["w2"],
        }
        assert kube.cluster["status"]["lostNodes"] == [
            {"name": "w2", "lastHeartbeatTime": "2025-01-01T11:59:15Z"}
        ]
        reasons = [reason for reason, _ in kube.events]
        assert {"NodeLost", "DeletedPod", "ReplacedPod"} <= set(reasons), kube.events

    asyncio.run(scenario())


def test_an_arbiters_re_fork_is_told_once_stamped_when_the_process_died():
    async def scenario():
        kube = RecordingKube({"replicas": 1, "processesPerPod": 2})
        stamps: list[tuple[str, Any]] = []
        names: list[str | None] = []
        post = kube.post_event

        async def post_event(involved, event_type, reason, message, now, name=None):
            stamps.append((reason, now))
            names.append(name)
            await post(involved, event_type, reason, message, now, name)

        kube.post_event = post_event  # type: ignore[method-assign]
        ctl = controller_for(kube)
        await ctl.reconcile((NS, NAME))
        kube.make_ready()
        await ctl.reconcile((NS, NAME))
        died = time.time() + 1  # after the operator's start: news
        healed = {"arbiter_pid": 1, "processes": [
            {"pid": 3, "index": 0, "generation": 3, "alive": True},
            {"pid": 2, "index": 1, "generation": 2, "alive": True},
            {"pid": 1, "index": 0, "generation": 1, "alive": False, "exited_at": died,
             "exit": "killed by signal 9"},
        ]}  # fmt: skip

        async def pod_processes(namespace: str, pod: str, port: int) -> dict[str, Any]:
            return healed

        ctl.probe._fetch = pod_processes  # the pod's record now shows the re-fork
        for _ in range(2):
            await ctl.reconcile((NS, NAME))
        told = [(m, at) for (r, m), (_, at) in zip(kube.events, stamps, strict=True)
                if r == "ProcessReplaced"]  # fmt: skip
        assert len(told) == 1, kube.events
        message, at = told[0]
        assert "replaced process 1 (killed by signal 9) with process 3 in slot 0" in message
        assert at.timestamp() == pytest.approx(died)
        # one Event object per re-fork, whoever tells it: a restarted operator's copy is a 409
        assert [n for n in names if n and "processreplaced" in n] == [
            f"{sorted(kube.pods)[0]}.processreplaced.1"
        ]

    asyncio.run(scenario())


class ArbiterKube(RecordingKube):
    """Pods whose arbiter runs the count the pod's annotation tells it (at once)."""

    refuse_resize = False

    async def pod_processes(self, namespace: str, pod: str, port: int) -> dict[str, Any]:
        told = int(self.pods[pod]["metadata"]["annotations"][ANNOTATION_PROCESSES])
        return {"pod": pod, "processes": [{"pid": i, "alive": True} for i in range(told)]}

    async def resize_pod(
        self, namespace: str, name: str, container: str, resources: dict[str, Any]
    ) -> dict[str, Any]:
        if self.refuse_resize:
            self.writes.append(("resize-refused", name))
            raise ApiError(422, "PATCH", "pods/resize", '{"message": "QoS may not change"}')
        return await super().resize_pod(namespace, name, container, resources)


def test_a_new_process_count_is_told_to_the_running_pods_without_a_restart():
    async def scenario():
        kube = ArbiterKube({"replicas": 2, "processesPerPod": 2})
        ctl = controller_for(kube)
        for _ in range(3):
            await ctl.reconcile((NS, NAME))
            kube.make_ready()
        names = set(kube.pods)
        kube.cluster["spec"]["processesPerPod"] = 4
        kube.cluster["metadata"]["generation"] = 2
        kube.writes.clear()
        await ctl.reconcile((NS, NAME))
        kinds = sorted({w[0] for w in kube.writes})
        assert kinds == ["patch", "resize", "status"]  # the count, and memory sized by it
        assert set(kube.pods) == names
        told = {p["metadata"]["annotations"][ANNOTATION_PROCESSES] for p in kube.pods.values()}
        assert told == {"4"}
        changed = [m for r, m in kube.events if r == Reason.CHANGED_IN_PLACE]
        assert len(changed) == 2 and all("processes 2→4" in m for m in changed)
        assert all(m.endswith(", no restart") for m in changed)
        await ctl.reconcile((NS, NAME))
        status = kube.cluster["status"]
        assert status["phase"] == "Ready" and status["readyProcesses"] == 8
        assert set(kube.pods) == names

    asyncio.run(scenario())


def test_a_refused_resize_marks_the_pod_and_the_next_plan_rolls_it():
    async def scenario():
        kube = ArbiterKube({"replicas": 1, "resources": {"requests": {"cpu": "100m"}}})
        ctl = controller_for(kube)
        for _ in range(3):
            await ctl.reconcile((NS, NAME))
            kube.make_ready()
        (old,) = kube.pods
        kube.refuse_resize = True
        kube.cluster["spec"]["resources"] = {"requests": {"cpu": "200m"}}
        kube.cluster["metadata"]["generation"] = 2
        await ctl.reconcile((NS, NAME))
        refused = kube.pods[old]["metadata"]["annotations"][ANNOTATION_IN_PLACE_REFUSED]
        assert "refused the change (422): QoS may not change" in refused
        await ctl.reconcile((NS, NAME))
        assert len(kube.pods) == 2  # a new pod with the new resources, the old one still serving
        new = next(p for n, p in kube.pods.items() if n != old)
        assert new["spec"]["containers"][0]["resources"] == {"requests": {"cpu": "200m"}}
        warnings = [m for r, m in kube.events if r == Reason.IN_PLACE_FALLBACK]
        assert warnings and old in warnings[0] and "rolling update" in warnings[0]

    asyncio.run(scenario())


class StubbornKube(ArbiterKube):
    """An arbiter that runs `running` processes whatever it is told (None: what it is told)."""

    running: int | None = None

    async def pod_processes(self, namespace: str, pod: str, port: int) -> dict[str, Any]:
        if self.running is None:
            return await super().pod_processes(namespace, pod, port)
        return {"pod": pod, "processes": [{"pid": i, "alive": True} for i in range(self.running)]}


def stalled_scenario(running_after: int | None, reach_first: bool) -> dict[str, Any]:
    """processesPerPod 2→3 on 1 pod; the clock moves past the deadline; the pod's annotations."""
    clock = {"now": datetime(2026, 1, 1, tzinfo=UTC)}

    async def scenario() -> dict[str, Any]:
        kube = StubbornKube({"replicas": 1, "processesPerPod": 2})
        ctl = Controller(
            kube, ProcessProbe(kube.pod_processes, ttl=0), Metrics(), clock=lambda: clock["now"]
        )
        for _ in range(3):
            await ctl.reconcile((NS, NAME))
            kube.make_ready()
        kube.running = None if reach_first else 2
        kube.cluster["spec"]["processesPerPod"] = 3
        kube.cluster["metadata"]["generation"] = 2
        await ctl.reconcile((NS, NAME))
        await ctl.reconcile((NS, NAME))  # reads the count after the change
        kube.running = running_after
        clock["now"] += timedelta(seconds=61)
        await ctl.reconcile((NS, NAME))
        (pod,) = kube.pods.values()
        return dict(pod["metadata"]["annotations"])

    return asyncio.run(scenario())


def test_an_arbiter_that_does_not_follow_its_count_is_marked_refused_after_the_deadline():
    annotations = stalled_scenario(running_after=2, reach_first=False)
    assert "runs 2 processes 60 s after it was told 3" in annotations[ANNOTATION_IN_PLACE_REFUSED]


def test_a_process_re_forking_long_after_a_change_that_was_taken_is_no_refusal():
    annotations = stalled_scenario(running_after=2, reach_first=True)
    assert ANNOTATION_IN_PLACE_REFUSED not in annotations
