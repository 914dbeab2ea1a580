"""A WorkerCluster's pods spread across nodes, and pod traffic crosses them (issue 5), on the
instructor's own cluster (conftest.py: `workerlab-multi`, 1 control plane + 2 workers, the operator
installed by `helm install` alone, images from the lab's registry). Checks:
  - the pods sit 2 + 2 on the two worker nodes;
  - pod-to-pod traffic crosses nodes (the node image's workerlab-netd routes each node's podCIDR):
    a probe pod on one worker reaches every pod directly and through the Service, which answers
    from pods on both nodes.
"""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest
from support.own_cluster import NAME, WORKERS, OwnCluster

pytestmark = pytest.mark.e2e

NS = "spread-e2e"

PROBE = r"""
import json, sys, time, urllib.request
targets = json.loads(sys.argv[1])
def get(url):
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return json.loads(r.read())["pod"]
    except Exception as e:
        return "error: %s" % e
direct = {ip: get("http://%s:8000/" % ip) for ip in targets["pod_ips"]}
# Fresh connections until every pod has answered (at most targets["requests"] of them, for 30 s):
# each node's kube-proxy programs the Service in its own time, so a fixed count can be too early.
service, stop = [], time.monotonic() + 30
while len(service) < targets["requests"] and time.monotonic() < stop:
    if set(targets["pods"]) <= set(service):
        break
    service.append(get(targets["service"]))
print(json.dumps({"direct": direct, "service": service}))
"""


def endpoints_ready(multi: OwnCluster, service: str) -> set[str]:
    """The pods the Service's EndpointSlices list as ready."""
    selector = f"kubernetes.io/service-name={service}"
    slices = multi.get("endpointslices", "-n", NS, "-l", selector)["items"]
    return {
        endpoint["targetRef"]["name"]
        for eps in slices
        for endpoint in eps.get("endpoints") or []
        if endpoint.get("conditions", {}).get("ready") and endpoint.get("targetRef")
    }


def test_pods_spread_across_both_workers_and_talk_across_nodes(
    own_cluster: OwnCluster, figures
) -> None:
    multi = own_cluster
    nodes = multi.get("nodes")["items"]
    names = sorted(n["metadata"]["name"] for n in nodes)
    assert names == sorted([f"{NAME}-control-plane", *WORKERS]), names

    started = time.monotonic()
    multi.kubectl(
        "-n", "workerlab-system", "rollout", "status", "deployment/workerlab-operator",
        "--timeout=180s",
    )  # fmt: skip
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": NS, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
    }
    multi.kubectl("apply", "-f", "-", stdin=json.dumps(namespace))
    operator_ready_s = time.monotonic() - started

    selector = {"matchLabels": {"app.kubernetes.io/instance": "spread"}}
    wc = {
        "apiVersion": "workerlab.dev/v1alpha1",
        "kind": "WorkerCluster",
        "metadata": {"name": "spread", "namespace": NS},
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
    multi.kubectl("-n", NS, "wait", "--for=condition=Ready", "wc/spread", "--timeout=180s")
    wc_ready_s = time.monotonic() - mark
    pods = multi.get("pods", "-n", NS, "-l", "app.kubernetes.io/instance=spread")["items"]
    pods = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    by_node = Counter(p["spec"]["nodeName"] for p in pods)
    node_of = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in pods}
    pod_ips = {p["status"]["podIP"]: p["metadata"]["name"] for p in pods}
    assert dict(by_node) == {WORKERS[0]: 2, WORKERS[1]: 2}, dict(by_node)

    deadline = time.monotonic() + 60
    while endpoints_ready(multi, "spread") != set(node_of) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert endpoints_ready(multi, "spread") == set(node_of), "the Service never listed every pod"

    # A probe on the first worker: the second worker's pods are a node hop away.
    probe = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "probe", "namespace": NS},
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
                    "image": multi.image("worker"),
                    "command": ["python", "-c", PROBE],
                    "args": [
                        json.dumps(
                            {
                                "pod_ips": sorted(pod_ips),
                                "service": f"http://spread.{NS}.svc.cluster.local/",
                                "pods": sorted(node_of),
                                "requests": 400,
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
        phase = multi.get("pod", "probe", "-n", NS)["status"].get("phase", "")
        if phase in ("Succeeded", "Failed"):
            break
        time.sleep(1)
    logs = multi.kubectl("logs", "probe", "-n", NS)
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


def test_a_workerclusters_pods_spread_over_the_nodes_by_default(own_cluster: OwnCluster) -> None:
    """No podTemplate at all, as the sample demo: the operator's default spread (by hostname,
    ScheduleAnyway) puts its 2 pods on the 2 workers, never both on one."""
    multi = own_cluster
    wc = {
        "apiVersion": "workerlab.dev/v1alpha1",
        "kind": "WorkerCluster",
        "metadata": {"name": "pair", "namespace": NS},
        "spec": {"replicas": 2, "processesPerPod": 1},
    }
    multi.kubectl("apply", "-f", "-", stdin=json.dumps(wc))
    multi.kubectl("-n", NS, "wait", "--for=condition=Ready", "wc/pair", "--timeout=180s")
    pods = multi.get("pods", "-n", NS, "-l", "app.kubernetes.io/instance=pair")["items"]
    pods = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    (spread,) = pods[0]["spec"]["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname", spread
    assert sorted(p["spec"]["nodeName"] for p in pods) == sorted(WORKERS), [
        (p["metadata"]["name"], p["spec"]["nodeName"]) for p in pods
    ]
