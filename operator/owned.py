"""The objects a WorkerCluster owns besides its pods: the Service, the optional Ingress and the
optional NetworkPolicy. Each is created when missing, restored when it differs from the spec on
the fields we own, deleted when no longer wanted, and left alone (a Degraded condition, one
Warning) when someone else's object holds its name. A write the API server refuses is held back
with backoff (`writes.Writes`) and stated in status; the other objects are still looked after.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from workerlab.api.resource import Reason
from workerlab.operator.endpoints import (
    build_ingress,
    build_network_policy,
    build_service,
    ingress_update,
    network_policy_update,
    service_update,
)
from workerlab.operator.model import WorkerCluster
from workerlab.operator.recorder import Recorder
from workerlab.operator.status import conflict
from workerlab.operator.writes import Writes, digest


class OwnedClient(Protocol):
    async def cluster_exists(self, namespace: str, name: str, uid: str) -> bool: ...
    async def get_service(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    async def create_service(self, namespace: str, body: dict[str, Any]) -> Any: ...
    async def replace_service(self, namespace: str, body: dict[str, Any]) -> Any: ...
    async def get_ingress(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    async def create_ingress(self, namespace: str, body: dict[str, Any]) -> Any: ...
    async def replace_ingress(self, namespace: str, body: dict[str, Any]) -> Any: ...
    async def delete_ingress(self, namespace: str, name: str) -> None: ...
    async def get_network_policy(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    async def create_network_policy(self, namespace: str, body: dict[str, Any]) -> Any: ...
    async def replace_network_policy(self, namespace: str, body: dict[str, Any]) -> Any: ...
    async def delete_network_policy(self, namespace: str, name: str) -> None: ...


def controlled(cluster: WorkerCluster, obj: dict[str, Any]) -> bool:
    refs = obj["metadata"].get("ownerReferences") or []
    return any(r.get("controller") and r.get("uid") == cluster.uid for r in refs)


@dataclass
class Owned:
    """One reconcile's look after the owned objects of one WorkerCluster."""

    kube: OwnedClient
    recorder: Recorder
    writes: Writes
    cluster: WorkerCluster
    body: dict[str, Any]
    now: datetime
    owner_exists: bool | None = None  # None: not asked yet this reconcile

    async def owner_still_exists(self) -> bool:
        """A live GET, once per reconcile, before the first create (the WorkerCluster was read
        from the cache, which may not know yet that it is gone)."""
        if self.owner_exists is None:
            cluster = self.cluster
            self.owner_exists = await self.kube.cluster_exists(
                cluster.namespace, cluster.name, cluster.uid
            )
        return self.owner_exists

    async def ensure_all(self) -> None:
        cluster, kube = self.cluster, self.kube
        namespace, name = cluster.namespace, cluster.name
        await self._sync(
            "Service",
            build_service(cluster),
            await kube.get_service(namespace, name),
            service_update,
            kube.create_service,
            kube.replace_service,
            None,  # always wanted
            (Reason.CREATED_SERVICE, f"Created {cluster.spec.service.type} Service {name}"),
            Reason.UPDATED_SERVICE,
            "",  # never deleted: it goes with the WorkerCluster
        )
        await self._sync(
            "Ingress",
            build_ingress(cluster),
            await kube.get_ingress(namespace, name),
            ingress_update,
            kube.create_ingress,
            kube.replace_ingress,
            kube.delete_ingress,
            (Reason.CREATED_INGRESS, f"Created Ingress {name} for {cluster.spec.ingress.host}"),
            Reason.UPDATED_INGRESS,
            Reason.DELETED_INGRESS,
        )
        await self._sync(
            "NetworkPolicy",
            build_network_policy(cluster),
            await kube.get_network_policy(namespace, name),
            network_policy_update,
            kube.create_network_policy,
            kube.replace_network_policy,
            kube.delete_network_policy,
            (
                Reason.CREATED_NETWORK_POLICY,
                f"Created NetworkPolicy {name}: port {cluster.spec.port} from this namespace, "
                "the Ingress controller and the listed sources",
            ),
            Reason.UPDATED_NETWORK_POLICY,
            Reason.DELETED_NETWORK_POLICY,
        )

    async def _sync(
        self,
        kind: str,
        desired: dict[str, Any] | None,
        actual: dict[str, Any] | None,
        update_of: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any] | None],
        create: Callable[[str, dict[str, Any]], Awaitable[Any]],
        replace: Callable[[str, dict[str, Any]], Awaitable[Any]],
        delete: Callable[[str, str], Awaitable[None]] | None,
        created: tuple[str, str],
        updated: str,
        deleted: str,
    ) -> None:
        """Create, restore or delete one owned object; someone else's is left alone."""
        namespace, name, writes = self.cluster.namespace, self.cluster.name, self.writes
        if actual is not None and not controlled(self.cluster, actual):
            if desired is not None:
                writes.conflict(conflict(kind, name))
            return
        if desired is None:
            if actual is None or delete is None:
                return
            if await writes.attempt(kind, "delete", name, "-", lambda: delete(namespace, name)):
                await self._say(deleted, f"Deleted {kind} {name}")
            return
        wanted = digest(desired)
        if actual is None:
            if not await self.owner_still_exists():
                return
            body = desired
            if await writes.attempt(kind, "create", name, wanted, lambda: create(namespace, body)):
                await self._say(*created)
            return
        update = update_of(desired, actual)
        if update is not None and await writes.attempt(
            kind, "update", name, wanted, lambda: replace(namespace, update)
        ):
            await self._say(updated, f"{kind} {name} differed from the spec; restored")

    async def _say(self, reason: str, message: str) -> None:
        await self.recorder.event(self.body, "Normal", reason, message, self.now)
