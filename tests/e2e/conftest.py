"""Shared e2e fixtures for the kind cluster (context kind-workerlab, override with
WORKERLAB_KUBE_CONTEXT).

- `kube`: a kubectl bound to that context (`run`, `ok`, `get`, `apply`).
- `cluster`: fails (never skips) with the reason when the cluster is unreachable.
- `namespace` / `module_namespace`: factories of throwaway namespaces enforcing the
  `restricted` Pod Security Standard, deleted after the test / the module.
- `node_port_service`: a NodePort Service on the first free one of the suite's spare ports.
- `worker_image`: the worker image reference the lab's operator uses (from the lab's registry).
- `wait_for`: poll a check until it returns something truthy, bounded in time.
- `figures`: print measured figures and write them to /tmp/workerlab-e2e-figures/NAME.json.

Test modules cannot import each other (--import-mode=importlib), hence fixtures.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.paths import CACHE, REPO
from support.polling import wait_until

CONTEXT = os.environ.get("WORKERLAB_KUBE_CONTEXT", "kind-workerlab")
FIGURES_DIR = Path(os.environ.get("WORKERLAB_E2E_FIGURES", "/tmp/workerlab-e2e-figures"))
# kubectl's words when the API server is away (stopped, restarting) rather than answering. Just
# restarted, it also refuses the cluster's admin until its authorizer has read the role
# bindings: the admin is never forbidden otherwise.
UNREACHABLE_SIGNS = (
    "Unable to connect to the server",
    "The connection to the server",
    "the server is currently unable to handle the request",
    'is forbidden: User "kubernetes-admin" cannot',
    "connection reset by peer",
    "connection refused",
    "i/o timeout",
    "TLS handshake timeout",
)
UNREACHABLE_S = 180  # lab 10 stops the API server for 30 s, plus its restart
# kind maps these node ports to 127.0.0.1 (hack/kind-config.yaml: 30083-30086 are the e2e suite's
# spares). Tried from the top down so the suite's fixed users, who start at 30083, rarely collide.
SPARE_NODE_PORTS = (30086, 30085, 30084, 30083)


# Tests that change the lab's cluster for everyone run apart from the others (hack/test.sh makes
# the other lanes wait); in one session, the sort below keeps the same order. It is stable:
# every other test keeps its place.
FIRST, LAST = (
    # lab 3 and test_kind apply manifests/ over make up's operator: its default worker image is
    # another tag, so every WorkerCluster without spec.image rolls; before anyone else's tests
    "replaces_operator",
    # lab 10's drill stops the API server: no later test meets the outage
    "stops_api_server",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def place(item: pytest.Item) -> int:
        if item.get_closest_marker(FIRST):
            return -1
        return 1 if item.get_closest_marker(LAST) else 0

    items.sort(key=place)


def _kubectl_binary() -> str:
    # The toolchain's kubectl matches the cluster's version; fall back to PATH.
    for found in sorted(CACHE.glob("k8s/v*/bin/kubectl"), reverse=True):
        return str(found)
    return shutil.which("kubectl") or "kubectl"


@dataclass(frozen=True)
class Kubectl:
    context: str = CONTEXT
    binary: str = ""

    def run(
        self, *args: str, stdin: str | None = None, timeout: float = 300, retry: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """kubectl, retried while the API server is away (up to UNREACHABLE_S): lab 10, in the
        shared lane, stops it for a while on purpose, and the other lanes' tests are not about
        that. Any other answer, success or error, is final; so is any answer with retry off."""
        deadline = time.monotonic() + (UNREACHABLE_S if retry else 0)
        while True:
            result = subprocess.run(
                [self.binary or _kubectl_binary(), "--context", self.context, *args],
                input=stdin,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            unreachable = result.returncode != 0 and any(
                sign in result.stderr for sign in UNREACHABLE_SIGNS
            )
            if not unreachable or time.monotonic() > deadline:
                return result
            time.sleep(3)

    def ok(self, *args: str, stdin: str | None = None, timeout: float = 300) -> str:
        result = self.run(*args, stdin=stdin, timeout=timeout)
        assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr.strip()}"
        return result.stdout

    def get(self, *args: str) -> dict[str, Any]:
        return json.loads(self.ok("get", *args, "-o", "json"))

    def apply(self, manifest: dict[str, Any] | str) -> str:
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        return self.ok("apply", "-f", "-", stdin=text)


@pytest.fixture(scope="session")
def kube() -> Kubectl:
    return Kubectl(binary=_kubectl_binary())


@pytest.fixture(scope="session")
def cluster(kube: Kubectl) -> Kubectl:
    try:
        # No retry: with no cluster at all, say so at once rather than after UNREACHABLE_S.
        probe = kube.run(
            "get", "--raw", "/readyz", "--request-timeout=10s", timeout=30, retry=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        pytest.fail(f"kind cluster not reachable (context {kube.context}): {error}; run `make up`")
    if probe.returncode != 0:
        pytest.fail(
            f"kind cluster not reachable (context {kube.context}): "
            f"{probe.stderr.strip()[:300]}; run `make up` first"
        )
    return kube


def _namespaces(cluster: Kubectl) -> Iterator[Callable[[str], str]]:
    created: list[str] = []

    def make(prefix: str = "e2e") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": name,
                    "labels": {
                        "pod-security.kubernetes.io/enforce": "restricted",
                        "pod-security.kubernetes.io/enforce-version": "latest",
                    },
                },
            }
        )
        created.append(name)
        return name

    yield make
    for name in created:  # don't wait: pods drain in the background
        cluster.run("delete", "namespace", name, "--wait=false", timeout=60)


@pytest.fixture
def namespace(cluster: Kubectl) -> Iterator[Callable[[str], str]]:
    """namespace("prefix") creates `prefix-<random>` (restricted PSS), deleted after the test."""
    yield from _namespaces(cluster)


@pytest.fixture(scope="module")
def module_namespace(cluster: Kubectl) -> Iterator[Callable[[str], str]]:
    """As `namespace`, for a module's shared objects: deleted after the module."""
    yield from _namespaces(cluster)


@pytest.fixture(scope="session")
def node_port_service(cluster: Kubectl) -> Callable[..., int]:
    """node_port_service(ns, name, selector) creates a NodePort Service to the selected pods'
    port 8000 on the first free spare port, and returns that port (else: fail, with why)."""

    def create(ns: str, name: str, selector: dict[str, str]) -> int:
        errors = []
        for port in SPARE_NODE_PORTS:
            manifest = {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": ns},
                "spec": {
                    "type": "NodePort",
                    "selector": selector,
                    "ports": [{"port": 80, "targetPort": 8000, "nodePort": port}],
                },
            }
            result = cluster.run("create", "-f", "-", stdin=json.dumps(manifest))
            if result.returncode == 0:
                return port
            errors.append(f"{port}: {result.stderr.strip()}")
        pytest.fail(f"no free NodePort among the spares {SPARE_NODE_PORTS}:\n" + "\n".join(errors))

    return create


@pytest.fixture(scope="session")
def worker_image(cluster: Kubectl) -> str:
    """The worker image the lab runs, as the operator is configured with it (the chart's
    worker.image values): a reference into the lab's registry that every node can pull."""
    deployment = cluster.get("deployment", "workerlab-operator", "-n", "workerlab-system")
    env = deployment["spec"]["template"]["spec"]["containers"][0].get("env") or []
    image = next((e.get("value") for e in env if e["name"] == "WORKERLAB_WORKER_IMAGE"), None)
    if not image:
        pytest.fail("the operator has no WORKERLAB_WORKER_IMAGE: run `make up`")
    return image


@pytest.fixture(scope="session")
def wait_for() -> Callable[..., Any]:
    return wait_until


@pytest.fixture(scope="session")
def figures() -> Callable[..., dict[str, Any]]:
    """figures("scenario", key=value...) prints them and writes NAME.json for the notes."""

    def record(name: str, **values: Any) -> dict[str, Any]:
        FIGURES_DIR.mkdir(parents=True, exist_ok=True)
        values = {"scenario": name, **values}
        (FIGURES_DIR / f"{name}.json").write_text(json.dumps(values, indent=2, default=str))
        print(f"\nFIGURES {name}: {json.dumps(values, default=str)}")
        return values

    return record


@pytest.fixture(scope="module")
def learner_env(tmp_path_factory, cluster: Kubectl) -> dict[str, str]:
    """The environment a learner's shell has after `make up`: the venv's `workerlab`, the
    toolchain's kubectl and kind on PATH, a private lab home; wc/demo Ready (else: fail)."""
    env = dict(os.environ)
    kube_bins = [str(p.parent) for p in sorted(CACHE.glob("k8s/v*/bin/kubectl"))]
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = ":".join([venv_bin, *kube_bins, str(CACHE / "bin"), env.get("PATH", "")])
    env["WORKERLAB_LAB_HOME"] = str(tmp_path_factory.mktemp("lab-home"))
    demo = subprocess.run(
        ["workerlab", "status", "demo", "--wait", "240", "--no-processes"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if demo.returncode != 0:
        pytest.fail(f"wc/demo is not Ready: {demo.stderr.strip()} -- run `make up`")
    return env
