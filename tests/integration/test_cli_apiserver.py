"""The CLI's kubectl layer against a real API server (etcd + kube-apiserver from the toolchain,
on 127.0.0.1; no kubelet, so no pod ever runs): CRD discovery, WorkerCluster lookups, the
lab reset's create/replace of wc/demo, Events, and the one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from workerlab.labs.errors import MissingPrerequisite
from workerlab.labs.kube import Kube
from workerlab.labs.starting_state import reset_demo

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("WORKERLAB_CACHE", Path.home() / ".cache" / "workerlab"))
K8S_BIN = CACHE / "k8s" / "v1.34.4" / "bin"
WORKERLAB = str(Path(sys.executable).with_name("workerlab"))
TOKEN = "cli-test-admin-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """KUBECONFIG env for a fresh control plane with context `it`; stopped by pid afterwards."""
    work = tmp_path_factory.mktemp("apiserver")
    etcd = shutil.which("etcd") or next(iter(sorted((CACHE / "node-bin").glob("etcd*"))), None)
    apiserver = K8S_BIN / "kube-apiserver"
    if etcd is None or not apiserver.exists():
        pytest.fail(f"etcd or {apiserver} missing: build the toolchain (hack/build-k8s.sh)")
    client, peer, port = free_port(), free_port(), free_port()
    subprocess.run(
        ["openssl", "genrsa", "-out", str(work / "sa.key"), "2048"], check=True, capture_output=True
    )
    (work / "tokens.csv").write_text(f'{TOKEN},admin,admin,"system:masters"\n')
    procs = []
    for name, argv in (
        (
            "etcd",
            [
                str(etcd),
                f"--data-dir={work / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{client}",
                f"--advertise-client-urls=http://127.0.0.1:{client}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=default=http://127.0.0.1:{peer}",
            ],
        ),
        (
            "apiserver",
            [
                str(apiserver),
                f"--etcd-servers=http://127.0.0.1:{client}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={work / 'certs'}",
                f"--token-auth-file={work / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                f"--service-account-key-file={work / 'sa.key'}",
                f"--service-account-signing-key-file={work / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc",
                "--service-cluster-ip-range=10.96.0.0/16",
            ],
        ),
    ):
        log = (work / f"{name}.log").open("wb")
        procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))
    kubeconfig = work / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "it",
                "clusters": [
                    {
                        "name": "it",
                        "cluster": {
                            "server": f"https://127.0.0.1:{port}",
                            "insecure-skip-tls-verify": True,
                        },
                    }
                ],
                "users": [{"name": "it", "user": {"token": TOKEN}}],
                "contexts": [{"name": "it", "context": {"cluster": "it", "user": "it"}}],
            }
        )
    )
    env = dict(
        os.environ,
        KUBECONFIG=str(kubeconfig),
        WORKERLAB_KUBE_CONTEXT="it",
        WORKERLAB_LAB_HOME=str(work / "lab-home"),
    )
    kubectl = str(K8S_BIN / "kubectl")

    def ready() -> bool:
        probe = subprocess.run(
            [kubectl, "get", "--raw", "/readyz"],
            env=env,
            capture_output=True,
            timeout=10,
            check=False,
        )
        return probe.returncode == 0

    try:
        wait_for(ready, 90, "kube-apiserver")
        subprocess.run(
            [kubectl, "create", "namespace", "workerlab"],
            env=env,
            check=True,
            capture_output=True,
            timeout=30,
        )
        yield env
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in reversed(procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def kube(api, monkeypatch):
    for key in ("KUBECONFIG", "WORKERLAB_KUBE_CONTEXT", "WORKERLAB_LAB_HOME"):
        monkeypatch.setenv(key, api[key])
    return Kube()


def workerlab(env, *args) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [WORKERLAB, *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def test_order_of_events(api, kube):
    """One story, in order: no CRD, CRD, no wc, reset creates demo, reset replaces it."""
    with pytest.raises(MissingPrerequisite, match="CRD is not installed"):
        kube.worker_clusters()
    no_crd = workerlab(api, "status")
    assert no_crd.returncode == 2 and "CRD" in no_crd.stderr

    kube.run(
        "apply",
        "-f",
        str(REPO / "manifests" / "crd" / "workerclusters.workerlab.dev.yaml"),
        namespaced=False,
    )
    kube.run(
        "wait",
        "--for",
        "condition=established",
        "--timeout=60s",
        "crd/workerclusters.workerlab.dev",
        namespaced=False,
    )
    assert kube.worker_clusters() == []
    with pytest.raises(MissingPrerequisite, match="'demo' not found"):
        kube.worker_cluster("demo")
    missing = workerlab(api, "status", "demo")
    assert missing.returncode == 2 and "not found" in missing.stderr

    reset_demo(kube, wait=False)  # create
    created = kube.worker_cluster("demo")
    kube.run(
        "patch",
        "wc",
        "demo",
        "--type",
        "merge",
        "-p",
        '{"spec":{"replicas":5,"env":[{"name":"ROLLOUT","value":"v2"}]}}',
    )
    reset_demo(kube, wait=False)  # replace: the learner's patch is gone
    replaced = kube.worker_cluster("demo")
    assert replaced["metadata"]["uid"] == created["metadata"]["uid"]
    assert replaced["spec"]["replicas"] == 2 and not replaced["spec"].get("env")
    service = replaced["spec"]["service"]  # the API server adds its defaults (port: 80)
    assert (service["type"], service["nodePort"]) == ("NodePort", 30080)

    assert kube.events_for("WorkerCluster", "demo") == []
    status = workerlab(api, "status", "--no-processes", "--json")
    assert status.returncode == 0 and json.loads(status.stdout)[0]["name"] == "demo"


def test_lab3_check_without_operator_fails_with_hints(api, kube):
    done = workerlab(api, "lab", "check", "3")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL the operator (the cluster's master) is running" in done.stdout
    assert "hint:" in done.stdout
