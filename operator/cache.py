"""Watch-fed caches of what a reconcile reads, as controller-runtime reads from informers.

Without them one reconcile costs a GET of its WorkerCluster, a LIST of its pods and a GET each of
its Service, Ingress and NetworkPolicy: at 1,000 WorkerClusters polled every 10 s that alone is
hundreds of requests per second. With them a reconcile reads memory; the API server only sees
one LIST and one long-lived WATCH per resource (and namespace served), and the writes.

- `Caches`: one `informer.Store` per resource, each filled by an `informer.Informer` (per
  namespace served, or cluster-wide).
- WorkerClusters are not watched twice: kopf's own watch feeds their store
  (`handlers.cluster_event`); one kopf has not shown yet is read once with a GET.
- `CachedKube`: the controller's `KubeClient`, reading from the stores and writing through
  `kube.Kube`; the controller itself is unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from workerlab.operator.informer import (
    OWNED_SELECTOR,
    Informer,
    Obj,
    Store,
    Streamer,
    parse_selector,
)
from workerlab.operator.kube import Kube


@dataclass
class Caches:
    """The stores the controller reads, and the informers that fill them."""

    clusters: Store = field(default_factory=lambda: Store(index_label=None))
    pods: Store = field(default_factory=Store)
    services: Store = field(default_factory=Store)
    ingresses: Store = field(default_factory=Store)
    network_policies: Store = field(default_factory=Store)
    informers: list[Informer] = field(default_factory=list)

    def all(self) -> list[Store]:
        return [self.clusters, self.pods, self.services, self.ingresses, self.network_policies]

    def start(
        self,
        connect: Callable[[], Streamer],
        namespaces: list[str] | None,
        on_event: Callable[[str, Obj], None],
    ) -> None:
        """One informer per resource and namespace (None: cluster-wide), each its own client."""
        # WorkerClusters come from kopf's own watch (handlers.cluster_event), not a second one.
        resources = [
            (self.pods, "/api/v1", "pods", OWNED_SELECTOR),
            (self.services, "/api/v1", "services", OWNED_SELECTOR),
            (self.ingresses, "/apis/networking.k8s.io/v1", "ingresses", OWNED_SELECTOR),
            (
                self.network_policies,
                "/apis/networking.k8s.io/v1",
                "networkpolicies",
                OWNED_SELECTOR,
            ),
        ]
        scopes: list[str | None] = list(namespaces) if namespaces else [None]
        for store, prefix, plural, selector in resources:
            for namespace in scopes:
                path = f"{prefix}/{plural}"
                if namespace is not None:
                    path = f"{prefix}/namespaces/{namespace}/{plural}"
                informer = Informer(
                    connect(),
                    path,
                    store,
                    selector,
                    on_event,
                    name=f"informer-{plural}-{namespace or 'all'}",
                    namespace=namespace,
                )
                self.informers.append(informer)
        for informer in self.informers:
            informer.start()

    def synced(self) -> bool:
        if not self.informers:
            return False
        return all(i.lists > 0 for i in self.informers)

    async def wait_synced(self, poll: float = 0.05) -> None:
        while not self.synced():
            await asyncio.sleep(poll)

    def stop(self) -> None:
        for informer in self.informers:
            informer.stop()


class CachedKube:
    """The controller's KubeClient: reads from the caches, writes through `kube` and records
    each write in the cache at once (the next reconcile must not miss what this one did)."""

    def __init__(self, kube: Kube, caches: Caches) -> None:
        self.kube = kube
        self.caches = caches
        self.fallback_gets = 0

    async def get_cluster(self, namespace: str, name: str) -> Obj | None:
        await self.caches.wait_synced()
        found = self.caches.clusters.get(namespace, name)
        if found is not None:
            return found
        # Not (yet) in our watch although kopf saw it: ask once, then the watch takes over.
        self.fallback_gets += 1
        body = await self.kube.get_cluster(namespace, name)
        if body is not None:
            self.caches.clusters.put(body)
        return body

    async def cluster_exists(self, namespace: str, name: str, uid: str) -> bool:
        """A live GET (one per reconcile that creates pods); a WorkerCluster gone or replaced
        leaves the cache here, whatever events were missed."""
        if await self.kube.cluster_exists(namespace, name, uid):
            return True
        gone = {"metadata": {"namespace": namespace, "name": name, "uid": uid}}
        self.caches.clusters.apply("DELETED", gone)
        return False

    async def list_pods(self, namespace: str, selector: str) -> list[Obj]:
        await self.caches.wait_synced()
        return self.caches.pods.select(namespace, parse_selector(selector))

    async def create_pod(self, namespace: str, body: Obj) -> Obj:
        created = await self.kube.create_pod(namespace, body)
        created.setdefault("kind", "Pod")
        self.caches.pods.put(created)
        return created

    async def delete_pod(
        self, namespace: str, name: str, uid: str, grace_seconds: int | None = None
    ) -> bool:
        deleted = await self.kube.delete_pod(namespace, name, uid, grace_seconds)
        self.caches.pods.mark_terminating(namespace, name, uid, datetime.now(UTC))
        return deleted

    async def patch_pod(self, namespace: str, name: str, uid: str, patch: Obj) -> Obj:
        patched = await self.kube.patch_pod(namespace, name, uid, patch)
        self.caches.pods.put({"kind": "Pod", **patched})
        return patched

    async def resize_pod(self, namespace: str, name: str, container: str, resources: Obj) -> Obj:
        resized = await self.kube.resize_pod(namespace, name, container, resources)
        self.caches.pods.put({"kind": "Pod", **resized})
        return resized

    async def get_service(self, namespace: str, name: str) -> Obj | None:
        await self.caches.wait_synced()
        return self.caches.services.get(namespace, name)

    async def create_service(self, namespace: str, body: Obj) -> None:
        self.caches.services.put(await self.kube.create_service(namespace, body))

    async def replace_service(self, namespace: str, body: Obj) -> None:
        self.caches.services.put(await self.kube.replace_service(namespace, body))

    async def get_ingress(self, namespace: str, name: str) -> Obj | None:
        await self.caches.wait_synced()
        return self.caches.ingresses.get(namespace, name)

    async def create_ingress(self, namespace: str, body: Obj) -> None:
        self.caches.ingresses.put(await self.kube.create_ingress(namespace, body))

    async def replace_ingress(self, namespace: str, body: Obj) -> None:
        self.caches.ingresses.put(await self.kube.replace_ingress(namespace, body))

    async def delete_ingress(self, namespace: str, name: str) -> None:
        await self.kube.delete_ingress(namespace, name)
        self.caches.ingresses.apply("DELETED", {"metadata": {"namespace": namespace, "name": name}})

    async def get_network_policy(self, namespace: str, name: str) -> Obj | None:
        await self.caches.wait_synced()
        return self.caches.network_policies.get(namespace, name)

    async def create_network_policy(self, namespace: str, body: Obj) -> None:
        self.caches.network_policies.put(await self.kube.create_network_policy(namespace, body))

    async def replace_network_policy(self, namespace: str, body: Obj) -> None:
        self.caches.network_policies.put(await self.kube.replace_network_policy(namespace, body))

    async def delete_network_policy(self, namespace: str, name: str) -> None:
        await self.kube.delete_network_policy(namespace, name)
        stub = {"metadata": {"namespace": namespace, "name": name}}
        self.caches.network_policies.apply("DELETED", stub)

    async def patch_cluster_status(self, namespace: str, name: str, patch: Obj) -> None:
        self.caches.clusters.put(await self.kube.patch_cluster_status(namespace, name, patch))

    async def post_event(
        self,
        involved: Obj,
        event_type: str,
        reason: str,
        message: str,
        now: Any,
        name: str | None = None,
    ) -> None:
        await self.kube.post_event(involved, event_type, reason, message, now, name)
