"""A synchronous view of the operator's own API transport (plain JSON, persistent connection).

Polling through one kept-alive HTTPS connection costs far less CPU than a kubectl process per
poll, which matters on a 2-CPU machine where the polling competes with what is measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common import CONTEXT

from workerlab.api.objects import pod_ready
from workerlab.api.resource import LABEL_INSTANCE, LABEL_NAME
from workerlab.operator.kube import MERGE_PATCH, ApiError, Kube

__all__ = ["Api", "ApiError", "PodView"]


@dataclass(frozen=True)
class PodView:
    name: str
    uid: str
    ready: bool
    terminating: bool
    env: dict[str, str]

    @classmethod
    def of(cls, pod: dict[str, Any]) -> PodView:
        meta = pod["metadata"]
        ready = pod_ready(pod)
        container = pod["spec"]["containers"][0]
        env = {e["name"]: e.get("value", "") for e in container.get("env") or []}
        return cls(meta["name"], meta["uid"], ready, "deletionTimestamp" in meta, env)


class Api:
    def __init__(self) -> None:
        self.kube = Kube.connect(CONTEXT)

    def call(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        return self.kube._call(method, path, body, **kw)

    def get(self, path: str, **query: str) -> Any:
        return self.call("GET", path, query=query or None)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.call("POST", path, body)

    def merge_patch(self, path: str, patch: dict[str, Any]) -> Any:
        return self.call("PATCH", path, patch, content_type=MERGE_PATCH)

    def delete(self, path: str, background: bool = True) -> None:
        body = {"propagationPolicy": "Background"} if background else None
        try:
            self.call("DELETE", path, body)
        except ApiError as error:
            if error.status != 404:
                raise

    def pods(self, namespace: str, selector: str) -> list[PodView]:
        found = self.get(f"/api/v1/namespaces/{namespace}/pods", labelSelector=selector)
        return [PodView.of(p) for p in found.get("items") or []]

    def instance_pods(self, namespace: str, instance: str) -> list[PodView]:
        return self.pods(namespace, f"{LABEL_NAME}=workerlab-worker,{LABEL_INSTANCE}={instance}")
