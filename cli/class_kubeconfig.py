"""`workerlab class`: the learner's kubeconfig (one context in their namespace, a token), where
the instructor's context points, and writing it readable by its owner only."""

from __future__ import annotations

import base64
import contextlib
import os
from pathlib import Path
from typing import Any

import yaml

from workerlab.api.resource import LEARNER_NAMESPACE_PREFIX
from workerlab.cli.class_names import context_of, namespace_of
from workerlab.common.errors import WorkerlabError

CLUSTER_NAME = "workerlab-class"


def render_kubeconfig(name: str, server: str, ca_data: str | None, token: str) -> str:
    """A kubeconfig with one context, `workerlab-NAME`, in the learner's namespace."""
    cluster: dict[str, Any] = {"server": server}
    if ca_data:
        cluster["certificate-authority-data"] = ca_data
    user = f"{LEARNER_NAMESPACE_PREFIX}{name}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CLUSTER_NAME, "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {
                "name": context_of(name),
                "context": {"cluster": CLUSTER_NAME, "user": user, "namespace": namespace_of(name)},
            }
        ],
        "current-context": context_of(name),
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False)


def cluster_of(config: dict[str, Any], context: str) -> tuple[str, str | None]:
    """(server, CA data) of a context in a `kubectl config view --raw -o json` document."""
    ctx = next((c for c in config.get("contexts") or [] if c.get("name") == context), None)
    if ctx is None:
        raise WorkerlabError(f"kubectl context {context!r} not found in your kubeconfig")
    cluster_name = (ctx.get("context") or {}).get("cluster")
    entry = next((c for c in config.get("clusters") or [] if c.get("name") == cluster_name), None)
    cluster = (entry or {}).get("cluster") or {}
    if not cluster.get("server"):
        raise WorkerlabError(f"context {context!r} names no cluster with a server address")
    ca = cluster.get("certificate-authority-data")
    if not ca and cluster.get("certificate-authority"):
        with contextlib.suppress(OSError):
            ca = base64.b64encode(Path(cluster["certificate-authority"]).read_bytes()).decode()
    return str(cluster["server"]), ca


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (0600 from the start, never world-readable)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)
