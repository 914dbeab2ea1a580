"""The two workloads at scale and what the benchmark waits for, seen through one pod watch.

N WorkerClusters and N Deployments with the same pod template (the Deployment's is built by the
operator's own `pod_template()` from the WorkerCluster it is compared with; only the managed-by
and instance label values differ), each pinned to kwok's fake nodes by a nodeSelector and a
toleration. A watch of the namespace's pods (the operator's informer code, in a thread) keeps
the live pods per workload; "settled" means every workload has exactly its replicas live (not
terminating), all Ready. Any moment a workload has more live pods than it ever asked for is a
duplicate.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from rig import NAMESPACE, NODE_LABEL, TOLERATION, log

from workerlab.api.objects import pod_ready
from workerlab.api.resource import API_VERSION, LABEL_INSTANCE, LABEL_MANAGED_BY, LABEL_NAME, PLURAL
from workerlab.operator.informer import Informer, Store
from workerlab.operator.kube import MERGE_PATCH, ApiError, Kube
from workerlab.operator.model import WorkerCluster
from workerlab.operator.templates import pod_template

WC, DEP = "WorkerCluster", "Deployment"
DEP_MANAGER = "bench-deployment"
CLIENT_THREADS = 8


def cluster_body(name: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "WorkerCluster",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas,
            "processesPerPod": 2,
            "resources": {"requests": {"cpu": "10m", "memory": "128Mi"}},
            "podTemplate": {"nodeSelector": dict(NODE_LABEL), "tolerations": [dict(TOLERATION)]},
        },
    }


def deployment_body(name: str, replicas: int) -> dict[str, Any]:
    cluster = cluster_body(name, replicas)
    template = pod_template(WorkerCluster.from_body(copy.deepcopy(cluster)))
    template["metadata"]["labels"][LABEL_MANAGED_BY] = DEP_MANAGER
    strategy = {"maxSurge": "25%", "maxUnavailable": 0}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {LABEL_NAME: "workerlab-worker", LABEL_INSTANCE: name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": strategy},
            "template": template,
        },
    }


def names(kind: str, n: int) -> list[str]:
    prefix = "wc" if kind == WC else "dep"
    return [f"{prefix}-{i:04d}" for i in range(n)]


def collection(kind: str) -> str:
    if kind == WC:
        return f"/apis/{API_VERSION}/namespaces/{NAMESPACE}/{PLURAL}"
    return f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"


def parallel(fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        return list(pool.map(fn, items))


@dataclass
class Side:
    """One controller's workloads: desired replicas per instance, and the worst excess seen."""

    kind: str
    desired: dict[str, int] = field(default_factory=dict)
    ceiling: dict[str, int] = field(default_factory=dict)  # most replicas ever asked for
    duplicates: int = 0  # worst (live - ceiling) seen for any instance
    duplicate_instances: set[str] = field(default_factory=set)


class PodWatch:
    """All worker pods of the namespace, by side and instance, fed by a watch."""

    def __init__(self, kube: Kube) -> None:
        self.store = Store()  # indexed by instance label
        self.sides = {WC: Side(WC), DEP: Side(DEP)}
        self._lock = threading.Lock()
        self.informer = Informer(
            kube,
            f"/api/v1/namespaces/{NAMESPACE}/pods",
            self.store,
            f"{LABEL_NAME}=workerlab-worker",
            self._on_event,
            name="bench-pod-watch",
            namespace=NAMESPACE,
        )
        self.informer.start()

    def stop(self) -> None:
        self.informer.stop()

    @staticmethod
    def side_of(pod: dict[str, Any]) -> str | None:
        manager = (pod["metadata"].get("labels") or {}).get(LABEL_MANAGED_BY)
        return DEP if manager == DEP_MANAGER else WC if manager else None

    def live(self, instance: str, kind: str) -> list[dict[str, Any]]:
        pods = self.store.select(NAMESPACE, {LABEL_INSTANCE: instance})
        return [
            p
            for p in pods
            if self.side_of(p) == kind and not p["metadata"].get("deletionTimestamp")
        ]

    def _on_event(self, event_type: str, obj: dict[str, Any]) -> None:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        instance, kind = labels.get(LABEL_INSTANCE), self.side_of(obj)
        if instance is None or kind is None:
            return
        side = self.sides[kind]
        ceiling = side.ceiling.get(instance)
        if ceiling is None:
            return
        excess = len(self.live(instance, kind)) - ceiling
        if excess > 0:
            with self._lock:
                side.duplicates = max(side.duplicates, excess)
                side.duplicate_instances.add(instance)

    def want(self, kind: str, instances: Iterable[str], replicas: int) -> None:
        side = self.sides[kind]
        for name in instances:
            side.desired[name] = replicas
            side.ceiling[name] = max(side.ceiling.get(name, 0), replicas)

    def lowered(self, kind: str) -> None:
        """After a scale-down settled: the ceiling follows the lower spec."""
        side = self.sides[kind]
        side.ceiling = dict(side.desired)

    def unsettled(self, kind: str) -> int:
        """How many instances are not exactly at their replicas, all live pods Ready."""
        side = self.sides[kind]
        bad = 0
        for name, replicas in side.desired.items():
            live = self.live(name, kind)
            if len(live) != replicas or not all(pod_ready(p) for p in live):
                bad += 1
        return bad

    def all_live(self, kind: str) -> list[dict[str, Any]]:
        return [
            p
            for p in self.store.items()
            if self.side_of(p) == kind and not p["metadata"].get("deletionTimestamp")
        ]

    def wait_settled_all(
        self, kinds: list[str], timeout: float, what: str, started: float | None = None
    ) -> dict[str, float]:
        """{kind: seconds from `started` (monotonic; default now) until its workloads settled};
        a kind missing timed out (logged)."""
        started = time.monotonic() if started is None else started
        last_log = started
        done: dict[str, float] = {}
        while True:
            now = time.monotonic()
            for kind in kinds:
                if kind not in done and self.unsettled(kind) == 0:
                    done[kind] = round(time.monotonic() - started, 2)
            if len(done) == len(kinds):
                return done
            if now - started > timeout:
                for kind in kinds:
                    if kind not in done:
                        log(f"TIMEOUT after {timeout:.0f}s: {what}: {self.unsettled(kind)} {kind}s")
                return done
            if now - last_log > 30:
                waiting = {k: self.unsettled(k) for k in kinds if k not in done}
                log(f"  {what}: not settled yet {waiting} ({now - started:.0f}s)")
                last_log = now
            time.sleep(0.5)

    def wait_settled(self, kind: str, timeout: float, what: str) -> float | None:
        """Seconds until settled, or None on timeout (logged, never raised: the run goes on)."""
        started = time.monotonic()
        last_log = started
        while True:
            bad = self.unsettled(kind)
            now = time.monotonic()
            if bad == 0:
                return round(now - started, 2)
            if now - started > timeout:
                log(f"TIMEOUT after {timeout:.0f}s: {what}: {bad} {kind}s not settled")
                return None
            if now - last_log > 30:
                log(f"  {what}: {bad} {kind}s not settled yet ({now - started:.0f}s)")
                last_log = now
            time.sleep(0.5)


class Driver:
    """The bench's own writes: apply, delete pods, scale; as fast as 8 client threads go."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.errors: list[str] = []

    def _try(self, method: str, path: str, body: Any = None, **kw: Any) -> None:
        try:
            self.kube._call(method, path, body, **kw)
        except ApiError as error:
            if not (method == "DELETE" and error.status == 404):
                self.errors.append(str(error)[:300])

    def apply(self, kind: str, instances: list[str], replicas: int) -> None:
        build = cluster_body if kind == WC else deployment_body
        parallel(lambda n: self._try("POST", collection(kind), build(n, replicas)), instances)

    def scale(self, kind: str, instances: list[str], replicas: int) -> None:
        patch = {"spec": {"replicas": replicas}}
        parallel(
            lambda n: self._try(
                "PATCH", f"{collection(kind)}/{n}", patch, content_type=MERGE_PATCH
            ),
            instances,
        )

    def delete_pods(self, pods: list[dict[str, Any]]) -> None:
        parallel(
            lambda p: self._try(
                "DELETE", f"/api/v1/namespaces/{NAMESPACE}/pods/{p['metadata']['name']}"
            ),
            pods,
        )
