"""The bench's own namespace, with the same Pod Security level as the lab's namespaces."""

from __future__ import annotations

from common import NAMESPACE

from api import Api, ApiError
from workerlab.api.resource import LABEL_NAME


def ensure_namespace(api: Api) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": NAMESPACE,
            "labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                LABEL_NAME: "workerlab-bench",
            },
        },
    }
    try:
        api.post("/api/v1/namespaces", body)
    except ApiError as error:
        if error.status != 409:
            raise
