"""Putting the cluster into a lab's starting state (`workerlab lab reset N`).

In a learner's namespace on a shared cluster (`workerlab class add`), `demo` gets a ClusterIP
Service: node ports are one range for the whole cluster, so a fixed nodePort 30080 would collide
between learners. `workerlab load wc/demo` reaches it through the API server's service proxy.

The sample WorkerCluster `demo` is *replaced* (PUT), not applied: `kubectl apply` would keep
fields a learner added with `kubectl patch`, and a reset must really reset.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

from workerlab.api.objects import hpa_targets
from workerlab.api.resource import API_VERSION, HPA_RESOURCE, RESOURCE
from workerlab.common.errors import KubeError, MissingPrerequisite
from workerlab.common.kube import Kube, is_learner_namespace
from workerlab.common.paths import repo_root
from workerlab.common.views import list_hpas
from workerlab.common.wcstate import wait_converged

DEMO = "demo"
DEMO_NODE_PORT = 30080
CONVERGE_TIMEOUT_S = 240
REPLACE_ATTEMPTS = 5


def demo_runs(runs: list[dict]) -> list[dict]:
    """The journal's load runs that went to the sample `demo` (by name or by its NodePort)."""
    return [
        r
        for r in runs
        if r.get("wc") == DEMO or str(r.get("base_url", "")).endswith(f":{DEMO_NODE_PORT}/")
    ]


def demo_manifest(namespace: str, sample: Path | None = None) -> dict:
    """The sample's spec (its image etc.), forced to the course's known starting point."""
    body: dict = {}
    if sample is not None and sample.is_file():
        docs = [d for d in yaml.safe_load_all(sample.read_text()) if d]
        body = next((d for d in docs if d.get("kind") == "WorkerCluster"), {})
    spec = dict(body.get("spec") or {})
    spec.update(replicas=2, processesPerPod=2, labMode=True, service=demo_service(namespace))
    spec.pop("env", None)
    return {
        "apiVersion": API_VERSION,
        "kind": "WorkerCluster",
        "metadata": {"name": DEMO, "namespace": namespace},
        "spec": spec,
    }


def demo_service(namespace: str) -> dict:
    """NodePort 30080 for the solo lab; ClusterIP in a learner's namespace (no port clashes)."""
    if is_learner_namespace(namespace):
        return {"type": "ClusterIP"}
    return {"type": "NodePort", "nodePort": DEMO_NODE_PORT}


def _sample_path() -> Path | None:
    try:
        return repo_root() / "manifests" / "samples" / "demo.yaml"
    except MissingPrerequisite:
        return None


def delete_demo_hpas(kube: Kube) -> list[str]:
    """An HPA on demo (lab 11) would scale the reset straight back: every lab's reset removes it."""
    names = [h["metadata"]["name"] for h in list_hpas(kube) if hpa_targets(h, DEMO)]
    for name in names:
        kube.run("delete", HPA_RESOURCE, name, "--ignore-not-found", "--wait=true")
    return names


QUOTA_UNKNOWN = "status unknown for quota"  # a quota made a moment ago (`class add`)
QUOTA_WAIT_S = 30.0


def _create_when_quota_known(kube: Kube, manifest: dict) -> None:
    """Create demo; the API server refuses creates that a ResourceQuota counts until the quota
    controller has computed the quota's status (a learner's first reset right after `class
    add`): that refusal is retried for QUOTA_WAIT_S, any other is the learner's to see."""
    deadline = time.monotonic() + QUOTA_WAIT_S
    while True:
        try:
            kube.run("create", "-f", "-", stdin=json.dumps(manifest))
            return
        except KubeError as error:
            if QUOTA_UNKNOWN not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def reset_demo(kube: Kube, wait: bool = True) -> str:
    hpas = delete_demo_hpas(kube)
    manifest = demo_manifest(kube.namespace, _sample_path())
    for attempt in range(REPLACE_ATTEMPTS):
        current = kube.get(RESOURCE, DEMO)
        if current is None:
            _create_when_quota_known(kube, manifest)
            break
        # Custom resources allow no unconditional update: replace the version we just read.
        # The operator may write (status, its annotations) in between: read again and retry.
        manifest["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        try:
            kube.run("replace", "-f", "-", stdin=json.dumps(manifest))
            break
        except KubeError as error:
            if "the object has been modified" not in str(error) or attempt == REPLACE_ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    if wait:
        wait_converged(kube, DEMO, CONVERGE_TIMEOUT_S)
    removed = "".join(f", deleted hpa/{name}" for name in hpas)
    service = manifest["spec"]["service"]
    reach = (
        f"NodePort {service['nodePort']}"
        if service.get("nodePort")
        else "ClusterIP (workerlab load wc/demo goes through the API server's service proxy)"
    )
    return f"wc/{DEMO} reset to 2 pods x 2 processes, labMode on, {reach}{removed}"


def delete_wc(kube: Kube, name: str) -> str | None:
    if kube.get(RESOURCE, name) is None:
        return None
    kube.run("delete", RESOURCE, name, "--wait=true", "--timeout=120s")
    return f"deleted wc/{name}"


def delete_addon(kube: Kube, name: str) -> str | None:
    path = repo_root() / "manifests" / "addons" / name
    if not path.is_dir():
        return None
    out = kube.run(
        "delete",
        "-k",
        str(path),
        "--ignore-not-found",
        "--wait=true",
        "--timeout=120s",
        namespaced=False,
    )
    return f"removed add-on {name}" if out.strip() else None


def require_operator(kube: Kube) -> None:
    if kube.get("crd", RESOURCE, namespaced=False) is None:
        raise MissingPrerequisite(
            "the WorkerCluster CRD is not installed",
            hint="make up  (or kubectl apply -k manifests/)",
        )
