"""The scale rig: a real control plane on loopback, kwok's fake nodes, the operator as a process.

- etcd, kube-apiserver (with an audit log of the two controllers' requests),
  kube-controller-manager (its Deployment and ReplicaSet controllers are the reference, with
  its production defaults: leader election on, 20 QPS) and kube-scheduler, from the toolchain's
  cache: the launcher is the integration tests' own (tests/support/control_plane.py).
- kwok (hack/build-kwok.sh) makes the fake nodes Ready and moves scheduled pods to Running and
  Ready (bench/scale/stages.yaml). Pod IPs are loopback addresses: the API server refuses to
  proxy to them, so a pod's /processes is unreadable at once and no packet leaves the host.
- the operator: `python -m workerlab.operator` with the production Deployment's arguments, its
  service account's token and RBAC (manifests/rbac), exactly as in the cluster.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests"))  # support.control_plane: the shared launcher

from support.control_plane import CACHE, ControlPlane, free_port  # noqa: E402

from workerlab.operator.kube import Kube  # noqa: E402

KWOK_VERSION = os.environ.get("KWOK_VERSION", "v0.8.0")
KWOK = CACHE / "bin" / f"kwok-{KWOK_VERSION}"
NAMESPACE = "scale"
OPERATOR_USER = "system:serviceaccount:workerlab-system:workerlab-operator"
KCM_USER = "kube-controller-manager"
NODE_LABEL = {"type": "kwok"}
NODE_TAINT = {"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}
TOLERATION = {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}
PODS_PER_NODE = 1000  # bench/scale/stages.yaml: allocatable pods

# Each request of the two controllers once: at its end, or for a watch when it starts.
AUDITED = [OPERATOR_USER, KCM_USER]
AUDIT_POLICY: dict[str, Any] = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {
            "level": "Metadata",
            "users": AUDITED,
            "verbs": ["watch"],
            "omitStages": ["ResponseComplete"],
        },
        {"level": "Metadata", "users": AUDITED, "omitStages": ["ResponseStarted"]},
        {"level": "None"},
    ],
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def kube_for(kubeconfig: Path, pool: int = 16) -> Kube:
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    configuration.connection_pool_maxsize = pool
    return Kube(client.ApiClient(configuration))


class Rig:
    def __init__(self, workdir: Path | None = None, nodes: int = 4) -> None:
        self.dir = workdir or Path(tempfile.mkdtemp(prefix="workerlab-scale-"))
        self.nodes = nodes
        users = {
            u: secrets.token_hex(16)
            for u in ("kube-controller-manager", "kube-scheduler", "kwok", "bench")
        }
        self.plane = ControlPlane(
            self.dir,
            controllers=(
                "garbagecollector",
                "serviceaccount",
                "namespace",
                "deployment",
                "replicaset",
            ),
            leader_elect=True,
            scheduler=True,
            users=users,
            audit_policy=AUDIT_POLICY,
        )
        self.kwok: subprocess.Popen | None = None
        self.operator: subprocess.Popen | None = None
        self.metrics_port = 0
        self.operator_log = self.dir / "operator.log"
        self.api: Kube | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self, operator_args: list[str] | None = None) -> None:
        if not KWOK.exists():
            raise RuntimeError(f"{KWOK} missing: build it with `bash hack/build-kwok.sh`")
        log(f"control plane in {self.dir}")
        self.plane.start()
        self.api = kube_for(self.plane.user_kubeconfig("bench"))
        self._start_kwok()
        self._install()
        self._make_nodes()
        self.start_operator(operator_args or [])

    def _start_kwok(self) -> None:
        log_file = open(self.dir / "kwok.log", "wb")  # noqa: SIM115 (kept open for the process)
        self.kwok = subprocess.Popen(
            [
                str(KWOK),
                f"--kubeconfig={self.plane.user_kubeconfig('kwok')}",
                f"--config={HERE / 'stages.yaml'}",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--cidr=127.64.0.0/12",
                "--node-ip=127.0.0.1",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )

    def _install(self) -> None:
        ok = self.plane.ok
        ok("apply", "-f", str(REPO / "manifests" / "operator" / "namespaces.yaml"))
        ok("apply", "-k", str(REPO / "manifests" / "crd"))
        ok("apply", "-k", str(REPO / "manifests" / "rbac"))
        namespace = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": NAMESPACE,
                "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
            },
        }
        ok("apply", "-f", "-", stdin=json.dumps(namespace))
        self.plane.wait(
            lambda: self.plane.kubectl("get", "sa", "default", "-n", NAMESPACE).returncode == 0,
            60,
            "default service account",
        )
        ok(
            "wait",
            "--for=condition=Established",
            "crd/workerclusters.workerlab.dev",
            "--timeout=60s",
        )

    def _make_nodes(self) -> None:
        assert self.api is not None
        for i in range(self.nodes):
            node = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": f"kwok-node-{i}",
                    "annotations": {"kwok.x-k8s.io/node": "fake"},
                    "labels": {**NODE_LABEL, "kubernetes.io/hostname": f"kwok-node-{i}"},
                },
                "spec": {"taints": [NODE_TAINT]},
            }
            self.api._call("POST", "/api/v1/nodes", node)

        def ready() -> bool:
            nodes = self.api._call("GET", "/api/v1/nodes", query={"labelSelector": "type=kwok"})
            return (
                sum(
                    1
                    for n in nodes["items"]
                    for c in (n.get("status") or {}).get("conditions") or []
                    if c["type"] == "Ready" and c["status"] == "True"
                )
                == self.nodes
            )

        self.plane.wait(ready, 60, f"{self.nodes} kwok nodes Ready")
        # The API server taints a new node not-ready; the node lifecycle controller (not run
        # here: kwok keeps the nodes Ready) would lift it. Keep only the kwok taint.
        for i in range(self.nodes):
            self.api._call(
                "PATCH",
                f"/api/v1/nodes/kwok-node-{i}",
                {"spec": {"taints": [NODE_TAINT]}},
                content_type="application/merge-patch+json",
            )
        log(f"{self.nodes} kwok nodes Ready")

    def start_operator(self, extra: list[str]) -> None:
        token = self.plane.ok(
            "create", "token", "workerlab-operator", "-n", "workerlab-system", "--duration=6h"
        ).strip()
        kubeconfig = self.dir / "operator.kubeconfig"
        self.plane.write_kubeconfig(kubeconfig, token)
        self.metrics_port = free_port()
        home = self.dir / "operator-home"
        home.mkdir(exist_ok=True)
        # The production Deployment's arguments (manifests/operator/deployment.yaml), on loopback.
        argv = [
            sys.executable,
            "-m",
            "workerlab.operator",
            "--all-namespaces",
            f"--liveness=http://127.0.0.1:{free_port()}/healthz",
            "--metrics-address=127.0.0.1",
            f"--metrics-port={self.metrics_port}",
            "--log-format=json",
            *extra,
        ]
        log_file = open(self.operator_log, "ab")  # noqa: SIM115
        env = {k: v for k, v in os.environ.items() if not k.startswith("KOPF")}
        self.operator = subprocess.Popen(
            argv,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**env, "KUBECONFIG": str(kubeconfig)},
            cwd=home,  # never the repo root: operator/ would shadow the standard library
        )
        self.plane.wait(lambda: self.operator_metrics_text() is not None, 60, "operator metrics")
        log(f"operator running (pid {self.operator.pid})")

    def stop(self) -> None:
        for proc in (self.operator, self.kwok):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        self.plane.stop()

    # -- observing -----------------------------------------------------------------------------

    def operator_metrics_text(self) -> str | None:
        try:
            url = f"http://127.0.0.1:{self.metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode()
        except OSError:
            return None

    def pids(self) -> dict[str, int]:
        out = {"kube-controller-manager": self.plane.pid("kube-controller-manager")}
        if self.operator is not None:
            out["operator"] = self.operator.pid
        return out
