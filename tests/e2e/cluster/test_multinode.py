"""A multi-node kind cluster spreads a WorkerCluster's pods across nodes (issue 5).

Creates a SECOND kind cluster, `workerlab-multi` (hack/kind-config-multinode.yaml: 1 control plane
+ 2 workers, API server on 127.0.0.1, no host ports), from the same node image as the running
`workerlab` cluster, side-loads the worker and operator images, installs `kubectl apply -k
manifests/`, applies a WorkerCluster with 4 replicas and a topology spread constraint, and checks:
  - the pods sit 2 + 2 on the two worker nodes;
  - pod-to-pod traffic crosses nodes (the node image's workerlab-netd routes each node's podCIDR):
    a probe pod on one worker reaches every pod directly and through the Service, which answers
    from pods on both nodes.
The cluster is deleted at the end, also when a step fails. Its kubeconfig is a temporary file,
so the shared kubeconfig's current context never changes. Takes ~3-5 minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.paths import REPO

pytestmark = pytest.mark.e2e


CACHE = Path(os.environ.get("WORKERLAB_CACHE", Path.home() / ".cache" / "workerlab"))
NAME = "workerlab-multi"
MAIN_NODE = os.environ.get("CLUSTER_NAME", "workerlab") + "-control-plane"
IMAGES = ("workerlab/worker:dev", "workerlab/operator:dev")
WORKERS = (f"{NAME}-worker", f"{NAME}-worker2")

PROBE = r"""
import json, sys, urllib.request
targets = json.loads(sys.argv[1])
def get(url):
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return json.loads(r.read())["pod"]
    except Exception as e:
        return "error: %s" % e
direct = {ip: get("http://%s:8000/" % ip) for ip in targets["pod_ips"]}
service = [get(targets["service"]) for _ in range(targets["requests"])]
print(json.dumps({"direct": direct, "service": service}))
"""


def tool(name: str) -> str:
    for folder in (CACHE / "bin", *sorted(CACHE.glob("k8s/v*/bin"), reverse=True)):
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found (in {CACHE}/bin or PATH): run `make up` first")
    return found


def run(*args: str, timeout: float = 300, stdin: str | None = None) -> str:
    result = subprocess.run(
        args, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{' '.join(args[:4])}...: {result.stderr.strip()[-2000:]}"
    return result.stdout


class Multi:
    def __init__(self, kubeconfig: str) -> None:
        self.kubeconfig = kubeconfig
        self.kubectl_bin = tool("kubectl")

    def kubectl(self, *args: str, stdin: str | None = None, timeout: float = 200) -> str:
        return run(
            self.kubectl_bin,
            "--kubeconfig",
            self.kubeconfig,
            "--context",
            f"kind-{NAME}",
            *args,
            stdin=stdin,
            timeout=timeout,
        )

    def get(self, *args: str) -> dict[str, Any]:
        return json.loads(self.kubectl("get", *args, "-o", "json"))


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


@pytest.fixture(scope="module")
def multi(figures) -> Iterator[Multi]:
    if shutil.which("docker") is None:
        pytest.fail("docker not found: the multi-node test needs docker and kind (make up)")
    kind = tool("kind")
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="workerlab-multi-") as tmp:
        kubeconfig = str(Path(tmp) / "kubeconfig")
        # A leftover from an interrupted run would make `kind create` fail.
        if NAME in run(kind, "get", "clusters", timeout=60).split():
            run(kind, "delete", "cluster", "--name", NAME, "--kubeconfig", kubeconfig)
        image = node_image()
        started = time.monotonic()
        try:
            run(
                kind,
                "create",
                "cluster",
                "--name",
                NAME,
                "--image",
                image,
                "--config",
                str(REPO / "hack" / "kind-config-multinode.yaml"),
                "--kubeconfig",
                kubeconfig,
                "--wait",
                "240s",
                timeout=420,
            )
            timings["create_cluster_s"] = time.monotonic() - started
            mark = time.monotonic()
            # Only the workers run these images (the control plane is tainted): 1/3 less to copy.
            nodes = ",".join(WORKERS)
            run(
                kind, "load", "docker-image", "--name", NAME, "--nodes", nodes, *IMAGES, timeout=600
            )
            timings["load_images_s"] = time.monotonic() - mark
            yield Multi(kubeconfig)
        finally:
            mark = time.monotonic()
            subprocess.run(
                [kind, "delete", "cluster", "--name", NAME, "--kubeconfig", kubeconfig],
                capture_output=True,
                timeout=300,
                check=False,
            )
            timings["delete_cluster_s"] = time.monotonic() - mark
            timings["total_s"] = time.monotonic() - started
            figures(
                "multinode-cluster",
                node_image=image,
                **{k: round(v, 1) for k, v in timings.items()},
            )
            leftover = run(kind, "get", "clusters", timeout=60).split()
            assert NAME not in leftover, f"kind cluster {NAME} was not deleted"


def test_pods_spread_across_both_workers_and_talk_across_nodes(multi: Multi, figures) -> None:
    nodes = multi.get("nodes")["items"]
    names = sorted(n["metadata"]["name"] for n in nodes)
    assert names == sorted([f"{NAME}-control-plane", *WORKERS]), names

    started = time.monotonic()
    multi.kubectl("apply", "-k", str(REPO / "manifests"))
    multi.kubectl(
        "wait", "--for=condition=established", "crd/workerclusters.workerlab.dev", "--timeout=60s"
    )
    multi.kubectl(
        "-n",
        "workerlab-system",
        "rollout",
        "status",
        "deployment/workerlab-operator",
        "--timeout=180s",
    )
    operator_ready_s = time.monotonic() - started

    selector = {"matchLabels": {"app.kubernetes.io/instance": "spread"}}
    wc = {
        "apiVersion": "workerlab.dev/v1alpha1",
        "kind": "WorkerCluster",
        "metadata": {"name": "spread", "namespace": "workerlab"},
        "spec": {
            "replicas": 4,
            "processesPerPod": 1,
            "podTemplate": {
                # maxSkew 1 over hostnames; Honor: the tainted control plane is not a domain.
                "topologySpreadConstraints": [
                    {
                        "maxSkew": 1,
                        "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "DoNotSchedule",
                        "nodeTaintsPolicy": "Honor",
                        "labelSelector": selector,
                    }
                ]
            },
        },
    }
    mark = time.monotonic()
    multi.kubectl("apply", "-f", "-", stdin=json.dumps(wc))
    multi.kubectl("-n", "workerlab", "wait", "--for=condition=Ready", "wc/spread", "--timeout=180s")
    wc_ready_s = time.monotonic() - mark
    pods = multi.get("pods", "-n", "workerlab", "-l", "app.kubernetes.io/instance=spread")["items"]
    pods = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    by_node = Counter(p["spec"]["nodeName"] for p in pods)
    node_of = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in pods}
    pod_ips = {p["status"]["podIP"]: p["metadata"]["name"] for p in pods}
    assert dict(by_node) == {WORKERS[0]: 2, WORKERS[1]: 2}, dict(by_node)

    # A probe on the first worker: the second worker's pods are a node hop away.
    probe = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "probe", "namespace": "workerlab"},
        "spec": {
            "nodeName": WORKERS[0],
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "probe",
                    "image": "workerlab/worker:dev",
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python", "-c", PROBE],
                    "args": [
                        json.dumps(
                            {
                                "pod_ips": sorted(pod_ips),
                                "service": "http://spread.workerlab.svc.cluster.local/",
                                "requests": 40,
                            }
                        )
                    ],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }
    multi.kubectl("apply", "-f", "-", stdin=json.dumps(probe))
    deadline = time.monotonic() + 120
    phase = ""
    while time.monotonic() < deadline:
        phase = multi.get("pod", "probe", "-n", "workerlab")["status"].get("phase", "")
        if phase in ("Succeeded", "Failed"):
            break
        time.sleep(1)
    logs = multi.kubectl("logs", "probe", "-n", "workerlab")
    assert phase == "Succeeded", f"probe pod {phase}: {logs}"
    result = json.loads(logs.strip().splitlines()[-1])
    direct = {ip: pod for ip, pod in result["direct"].items()}
    via_service = Counter(result["service"])
    service_nodes = Counter(node_of.get(pod, pod) for pod in result["service"])
    figures(
        "multinode-spread",
        pods_by_node=dict(by_node),
        operator_ready_s=round(operator_ready_s, 1),
        wc_ready_s=round(wc_ready_s, 1),
        probe_node=WORKERS[0],
        direct={ip: f"{pod} on {node_of.get(pod, '?')}" for ip, pod in direct.items()},
        service_by_pod=dict(via_service),
        service_by_node=dict(service_nodes),
    )
    assert direct == pod_ips, f"pod-to-pod (direct) failed: {direct}"
    assert set(service_nodes) == set(WORKERS), f"Service answered only from {dict(service_nodes)}"
