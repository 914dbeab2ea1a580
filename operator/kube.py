"""The operator's only door to the API server: plain JSON over the official client's transport.

The generated typed API coerces bodies into model classes, which can silently drop fields it
does not know. The operator builds its manifests as plain dicts, so it sends and receives plain
dicts: the `kubernetes` package is used only for kubeconfig/in-cluster auth and HTTP. Calls are
blocking, so each runs in a worker thread to keep kopf's event loop free.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import urllib3
from kubernetes import client, config

from workerlab.api.objects import format_time
from workerlab.api.resource import GROUP, LABEL_NAME, PLURAL, VERSION

# A kubeconfig with insecure-skip-tls-verify is the user's choice: say so once, not per request.
warnings.filterwarnings("once", category=urllib3.exceptions.InsecureRequestWarning)

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
# The API server's own --request-timeout, which client-go's controllers wait for: on a loaded
# server a 15-s client timeout failed reconciles whose write the server may still complete (a
# pod created behind a timeout is known only when its watch event comes).
REQUEST_TIMEOUT = 60.0
PROXY_TIMEOUT = 3.0
COMPONENT = "workerlab-operator"
# Leader election's fence (operator/leadership.py), set by __main__ when it campaigns: called
# before every write, it returns while this process may still write and never returns (the
# process exits) once it may not. None: a single instance, no Lease, nothing to fence.
write_fence: Callable[[], None] | None = None


class ApiError(Exception):
    def __init__(self, status: int, method: str, path: str, body: str) -> None:
        try:
            message = json.loads(body).get("message", body)
        except ValueError:
            message = body
        super().__init__(f"{method} {path}: HTTP {status}: {message[:500]}")
        self.status = status
        self.message = message


def load_client_config(context: str | None = None) -> client.Configuration:
    """In-cluster service account first, then the kubeconfig (current or given context)."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        # Read KUBECONFIG now, not when the kubernetes package was imported.
        config.load_kube_config(
            config_file=os.environ.get("KUBECONFIG") or None,
            context=context,
            client_configuration=configuration,
        )
    return configuration


@dataclass
class Kube:
    api: client.ApiClient

    @classmethod
    def connect(cls, context: str | None = None, pool: int = 32, retries: bool = True) -> Kube:
        """`retries=False`: a failed call fails at once (urllib3 would retry a read timeout 3
        times, each on a new TLS connection): for callers that back off on their own."""
        configuration = load_client_config(context)
        # One kept-alive connection per concurrent call (the reconcilers' threads).
        configuration.connection_pool_maxsize = pool
        if not retries:
            configuration.retries = False
        return cls(client.ApiClient(configuration))

    # -- transport -----------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict[str, str] | None = None,
        content_type: str = JSON,
        timeout: float = REQUEST_TIMEOUT,
        raw: bool = False,
        guarded: bool = True,
    ) -> Any:
        """One request. A write (anything but GET) passes the fence first, unless `guarded` is
        False: the Lease's own reads and writes, which decide the fence."""
        if guarded and method != "GET" and write_fence is not None:
            write_fence()
        headers = {"Accept": JSON, "Content-Type": content_type}
        method, url, headers, body, _ = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(method, url, headers, body, _request_timeout=timeout)
        response.read()
        text = (response.data or b"").decode("utf-8", "replace")
        if not 200 <= response.status <= 299:
            raise ApiError(response.status, method, path, text)
        if raw:
            return text
        return json.loads(text) if text else {}

    async def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        return await asyncio.to_thread(self._call, method, path, body, **kwargs)

    def stream(self, path: str, query: dict[str, str], timeout: float) -> Iterator[bytes]:
        """The lines of a streamed GET (a watch), as they arrive; blocking, for a thread."""
        method, url, headers, _, _ = self.api.param_serialize(
            method="GET",
            resource_path=path,
            query_params=list(query.items()),
            header_params={"Accept": JSON},
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(method, url, headers, None, _request_timeout=(10.0, timeout))
        if response.status != 200:
            response.read()
            text = (response.data or b"").decode("utf-8", "replace")
            raise ApiError(response.status, method, path, text)
        raw = response.response
        try:
            rest = b""
            for chunk in raw.stream(65536, decode_content=True):
                *lines, rest = (rest + chunk).split(b"\n")
                for line in lines:
                    if line.strip():
                        yield line
        finally:
            raw.release_conn()

    # -- reads ---------------------------------------------------------------------------------

    def server_version(self, timeout: float = 5.0) -> dict[str, Any]:
        return self._call("GET", "/version", timeout=timeout)

    async def get_cluster(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get_or_none(_cluster_path(namespace, name))

    async def cluster_exists(self, namespace: str, name: str, uid: str) -> bool:
        """Asked of the API server itself, never a cache: before anything is created for it."""
        found = await self.get_cluster(namespace, name)
        return found is not None and found["metadata"].get("uid") == uid

    async def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        result = await self.call(
            "GET", f"/api/v1/namespaces/{namespace}/pods", query={"labelSelector": selector}
        )
        return result.get("items") or []

    async def get_service(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get_or_none(f"/api/v1/namespaces/{namespace}/services/{name}")

    async def get_ingress(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get_or_none(_ingress_path(namespace, name))

    async def get_network_policy(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get_or_none(_network_policy_path(namespace, name))

    async def pod_processes(self, namespace: str, pod: str, port: int) -> dict[str, Any]:
        """GET /processes of a pod through the API server's pod proxy (works from anywhere)."""
        target = quote(f"{pod}:{port}", safe="")
        text = await self.call(
            "GET",
            f"/api/v1/namespaces/{namespace}/pods/{target}/proxy/processes",
            timeout=PROXY_TIMEOUT,
            raw=True,
        )
        return json.loads(text)

    async def _get_or_none(self, path: str) -> dict[str, Any] | None:
        try:
            return await self.call("GET", path)
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    # -- writes --------------------------------------------------------------------------------

    async def create_pod(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.call("POST", f"/api/v1/namespaces/{namespace}/pods", body)

    async def delete_pod(
        self, namespace: str, name: str, uid: str, grace_seconds: int | None = None
    ) -> bool:
        """Delete exactly this pod (uid precondition); False if it is already gone.
        `grace_seconds` 0 removes it at once (its node is lost: no kubelet to confirm it)."""
        options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if uid:
            options["preconditions"] = {"uid": uid}
        if grace_seconds is not None:
            options["gracePeriodSeconds"] = grace_seconds
        try:
            await self.call("DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}", options)
        except ApiError as error:
            if error.status in (404, 409):
                return False
            raise
        return True

    async def patch_pod(
        self, namespace: str, name: str, uid: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        """A merge patch of exactly this pod (the uid in the patch is a precondition)."""
        body = {**patch, "metadata": {**patch.get("metadata", {}), "uid": uid}}
        path = f"/api/v1/namespaces/{namespace}/pods/{name}"
        return await self.call("PATCH", path, body, content_type=MERGE_PATCH)

    async def resize_pod(
        self, namespace: str, name: str, container: str, resources: dict[str, Any]
    ) -> dict[str, Any]:
        """Set the container's resources through the pod's `resize` subresource (Kubernetes
        >= 1.33): the kubelet applies them to the running container. The whole resources
        object is replaced (a merge would keep a limit the spec no longer has)."""
        patch = [
            {"op": "test", "path": "/spec/containers/0/name", "value": container},
            {"op": "replace", "path": "/spec/containers/0/resources", "value": resources},
        ]
        path = f"/api/v1/namespaces/{namespace}/pods/{name}/resize"
        return await self.call("PATCH", path, patch, content_type=JSON_PATCH)

    async def create_service(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.call("POST", f"/api/v1/namespaces/{namespace}/services", body)

    async def replace_service(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        return await self.call("PUT", f"/api/v1/namespaces/{namespace}/services/{name}", body)

    async def create_ingress(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        path = f"/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses"
        return await self.call("POST", path, body)

    async def replace_ingress(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.call("PUT", _ingress_path(namespace, body["metadata"]["name"]), body)

    async def delete_ingress(self, namespace: str, name: str) -> None:
        try:
            await self.call("DELETE", _ingress_path(namespace, name))
        except ApiError as error:
            if error.status != 404:
                raise

    async def create_network_policy(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        path = f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies"
        return await self.call("POST", path, body)

    async def replace_network_policy(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.call(
            "PUT", _network_policy_path(namespace, body["metadata"]["name"]), body
        )

    async def delete_network_policy(self, namespace: str, name: str) -> None:
        try:
            await self.call("DELETE", _network_policy_path(namespace, name))
        except ApiError as error:
            if error.status != 404:
                raise

    async def patch_cluster_status(
        self, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        path = _cluster_path(namespace, name) + "/status"
        return await self.call("PATCH", path, {"status": patch}, content_type=MERGE_PATCH)

    async def post_event(
        self,
        involved: dict[str, Any],
        event_type: str,
        reason: str,
        message: str,
        now: Any,
        name: str | None = None,
    ) -> None:
        """A core/v1 Event on the WorkerCluster: what `kubectl describe wc NAME` lists. With
        `name`, the Event is that object, so telling it twice is a 409 (AlreadyExists)."""
        meta = involved["metadata"]
        namespace = meta["namespace"]
        stamp = format_time(now)
        named = {"name": name} if name else {"generateName": f"{meta['name']}."}
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {**named, "namespace": namespace},
            "involvedObject": {
                "apiVersion": involved.get("apiVersion", f"{GROUP}/{VERSION}"),
                "kind": involved.get("kind", "WorkerCluster"),
                "name": meta["name"],
                "namespace": namespace,
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": event_type,
            "reason": reason,
            "message": message[:1000],
            "source": {"component": COMPONENT},
            "reportingComponent": f"{GROUP}/operator",
            "reportingInstance": socket.gethostname()[:128],
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        await self.call("POST", f"/api/v1/namespaces/{namespace}/events", body)

    def ensure_cluster_peering(self, name: str) -> str:
        """Create kopf's ClusterKopfPeering object if missing: 'created', 'exists' or 'no-crd'."""
        body = {
            "apiVersion": "kopf.dev/v1",
            "kind": "ClusterKopfPeering",
            "metadata": {"name": name, "labels": {LABEL_NAME: "workerlab"}},
        }
        try:
            self._call("POST", "/apis/kopf.dev/v1/clusterkopfpeerings", body, timeout=5.0)
        except ApiError as error:
            if error.status == 409:
                return "exists"
            if error.status == 404:
                return "no-crd"
            raise
        return "created"


def _cluster_path(namespace: str, name: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}"


def _ingress_path(namespace: str, name: str) -> str:
    return f"/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses/{name}"


def _network_policy_path(namespace: str, name: str) -> str:
    return f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies/{name}"
