"""The instructor's own cluster and the classroom network of tests/e2e/owncluster (its conftest
makes and removes them): names, addresses and the helpers its fixtures and tests share."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from support.paths import REPO
from workerlab.api.resource import (
    LABEL_NAME,
    OPERATOR_DEPLOYMENT,
    OPERATOR_LEASE,
    OPERATOR_NAMESPACE,
)

NAME = "workerlab-multi"
WORKERS = (f"{NAME}-worker", f"{NAME}-worker2")
MAIN_NODE = os.environ.get("CLUSTER_NAME", "workerlab") + "-control-plane"
# The classroom's network: a bridge on the host and one namespace per learner. A private range
# that nothing on this machine routes (checked before use).
BRIDGE = "wlbr-e2e"
HOST_IP = "10.231.0.1"
PREFIX = 24
API_PORT = 6443
LEARNERS = {"ada": "10.231.0.11", "bob": "10.231.0.12"}
REGISTRY_PORT = int(os.environ.get("REGISTRY_PORT", "5001"))


def run(*args: str, timeout: float = 300, stdin: str | None = None, env: dict | None = None) -> str:
    result = subprocess.run(
        args, input=stdin, capture_output=True, text=True, timeout=timeout, check=False, env=env
    )
    assert result.returncode == 0, f"{' '.join(args[:5])}...: {result.stderr.strip()[-2000:]}"
    return result.stdout


def netns_name(learner: str) -> str:
    return f"wl-e2e-{learner}"


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if check and done.returncode != 0:
        pytest.fail(
            f"`ip {' '.join(args)}` failed: {done.stderr.strip()} (needs root and iproute2)"
        )
    return done


def remove_class_net() -> None:
    for learner in LEARNERS:
        ip("netns", "delete", netns_name(learner), check=False)
        ip("link", "delete", f"{netns_name(learner)}-h", check=False)
    ip("link", "delete", BRIDGE, check=False)


@dataclass
class OwnCluster:
    kubeconfig: str
    tags: dict[str, str]  # component -> the immutable tag make up pushed
    env: dict[str, str] = field(default_factory=dict)
    kubectl_bin: str = ""
    helm_bin: str = ""

    @property
    def server(self) -> str:
        return f"https://{HOST_IP}:{API_PORT}"

    def kubectl(self, *args: str, stdin: str | None = None, timeout: float = 200) -> str:
        return run(self.kubectl_bin, *args, stdin=stdin, timeout=timeout, env=self.env)

    def kubectl_run(self, *args: str, timeout: float = 200) -> subprocess.CompletedProcess:
        return subprocess.run(
            [self.kubectl_bin, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=self.env,
        )

    def get(self, *args: str) -> dict[str, Any]:
        return json.loads(self.kubectl("get", *args, "-o", "json"))

    def helm(self, *args: str, timeout: float = 420) -> str:
        return run(self.helm_bin, *args, timeout=timeout, env=self.env)

    def image(self, component: str, tag: str | None = None) -> str:
        return f"localhost:{REGISTRY_PORT}/workerlab/{component}:{tag or self.tags[component]}"

    def install_args(self) -> list[str]:
        """`helm install`'s settings on a cluster pulling from the lab's registry."""
        return [
            "--set",
            f"image.registry=localhost:{REGISTRY_PORT}",
            "--set",
            f"operator.image.tag={self.tags['operator']}",
            "--set",
            f"worker.image.tag={self.tags['worker']}",
        ]


def node_image() -> str:
    """The running lab cluster's node image; else whatever hack/node-image.sh provides."""
    inspect = subprocess.run(
        ["docker", "inspect", "-f", "{{.Config.Image}}", MAIN_NODE],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if inspect.returncode == 0 and inspect.stdout.strip():
        return inspect.stdout.strip()
    return run("bash", str(REPO / "hack" / "node-image.sh"), timeout=3600).strip()


def pushed_tags() -> dict[str, str]:
    """The immutable tags of the images `make up` built and pushed (hack/registry.sh ref)."""
    tags = {}
    for component in ("operator", "worker"):
        ref = run("bash", str(REPO / "hack" / "registry.sh"), "ref", f"workerlab/{component}:dev")
        tags[component] = ref.strip().rsplit(":", 1)[1]
        have = subprocess.run(
            ["curl", "-fsS", "-o", "/dev/null", "-I", "-m", "5",
             "-H", "Accept: application/vnd.docker.distribution.manifest.v2+json",
             f"http://127.0.0.1:{REGISTRY_PORT}/v2/workerlab/{component}/manifests/{tags[component]}"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert have.returncode == 0, (
            f"the registry on 127.0.0.1:{REGISTRY_PORT} does not serve {ref.strip()}: run `make up`"
        )
    return tags


def kind_config(directory: Path) -> Path:
    """The multinode config, its API server published on the classroom's address only."""
    base = (REPO / "hack" / "kind-config-multinode.yaml").read_text()
    published = f"  apiServerAddress: {HOST_IP}\n  apiServerPort: {API_PORT}\n"
    assert "  apiServerAddress: 127.0.0.1\n" in base, "kind-config-multinode.yaml changed shape"
    path = directory / "kind-config.yaml"
    path.write_text(base.replace("  apiServerAddress: 127.0.0.1\n", published))
    return path


def with_standby(cluster: OwnCluster) -> tuple[str, dict[str, str]]:
    """`helm upgrade` to a standby master (leaderElection, 2 replicas), then wait until one
    replica runs on each worker and one of them holds the Lease: (the holder, {pod: node})."""
    cluster.helm(
        "upgrade", "workerlab", str(REPO / "charts" / "workerlab"), "-n", OPERATOR_NAMESPACE,
        "--reuse-values", "--set", "operator.leaderElection=true", "--set", "operator.replicas=2",
        "--wait", "--timeout", "300s",
    )  # fmt: skip
    selector = f"{LABEL_NAME}={OPERATOR_DEPLOYMENT}"
    deadline = time.monotonic() + 120
    while True:
        items = cluster.get("pods", "-n", OPERATOR_NAMESPACE, "-l", selector)["items"]
        pods = {p["metadata"]["name"]: str(p["spec"].get("nodeName")) for p in items}
        lease = cluster.get("lease", OPERATOR_LEASE, "-n", OPERATOR_NAMESPACE)
        holder = str(lease["spec"].get("holderIdentity") or "")
        # Every pod counts, terminating ones too: the replaced single master (no Lease) acts
        # until it has stopped, and a heal it did would pass for the standby's.
        if holder in pods and sorted(pods.values()) == sorted(WORKERS):
            return holder, pods
        assert time.monotonic() < deadline, f"no active master with a standby: {pods}, {holder}"
        time.sleep(1)
