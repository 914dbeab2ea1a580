"""The CLI's kubectl layer against a real API server (the `control_plane` fixture: etcd and
kube-apiserver from the toolchain on 127.0.0.1; no kubelet, so no pod ever runs): CRD discovery,
WorkerCluster lookups, the lab reset's create/replace of wc/demo, Events, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.paths import REPO

from workerlab.common.errors import MissingPrerequisite
from workerlab.common.kube import Kube
from workerlab.labs.starting_state import reset_demo

pytestmark = pytest.mark.integration


WORKERLAB = str(Path(sys.executable).with_name("workerlab"))


@pytest.fixture(scope="module")
def api(control_plane, tmp_path_factory) -> dict[str, str]:
    """The environment of a learner's shell pointed at a fresh control plane (context `it`)."""
    control_plane.ok("create", "namespace", "workerlab")
    return dict(
        os.environ,
        KUBECONFIG=str(control_plane.kubeconfig),
        WORKERLAB_KUBE_CONTEXT="it",
        WORKERLAB_LAB_HOME=str(tmp_path_factory.mktemp("lab-home")),
    )


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
