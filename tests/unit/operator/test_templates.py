"""The manifests the operator owns: restricted pod security, labels, owners, drift detection."""

from __future__ import annotations

import copy
from dataclasses import replace

from workerlab.api.resource import ANNOTATION_PROCESSES
from workerlab.operator.endpoints import (
    build_ingress,
    build_network_policy,
    build_service,
    ingress_update,
    network_policy_update,
    service_update,
)
from workerlab.operator.images import FALLBACK_IMAGE
from workerlab.operator.model import DEFAULT_BALANCE, ObservedPod, WorkerClusterSpec
from workerlab.operator.simulation import make_cluster
from workerlab.operator.templates import build_pod, template_hash


def test_pod_meets_restricted_pod_security_and_carries_owner_and_labels():
    wc = make_cluster(replicas=2, processesPerPod=3, labMode=True)
    pod = build_pod(wc)
    meta, spec = pod["metadata"], pod["spec"]
    assert meta["generateName"].startswith("demo-")
    assert meta["labels"] == {
        "app.kubernetes.io/name": "workerlab-worker",
        "app.kubernetes.io/instance": "demo",
        "app.kubernetes.io/managed-by": "workerlab-operator",
        "app.kubernetes.io/component": "worker",
        "workerlab.dev/template-hash": template_hash(wc),
    }
    (owner,) = meta["ownerReferences"]
    assert owner["controller"] is True and owner["uid"] == wc.uid
    assert owner["kind"] == "WorkerCluster"

    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = spec["containers"]
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["runAsUser"] == 10001
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["image"] == FALLBACK_IMAGE  # no operator setting given to the core
    assert "imagePullSecrets" not in spec
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


def test_pod_env_probes_and_graceful_shutdown():
    wc = make_cluster(processesPerPod=3, labMode=True, port=8001, env=[{"name": "X", "value": "1"}])
    pod = build_pod(wc)
    (container,) = pod["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    # The count is the pod's annotation, which the arbiter follows through a downward API file.
    assert "WORKER_PROCESSES" not in env
    assert env["WORKER_PROCESSES_FILE"]["value"] == "/etc/workerlab/processes"
    assert pod["metadata"]["annotations"][ANNOTATION_PROCESSES] == "3"
    (told,) = [v for v in pod["spec"]["volumes"] if "downwardAPI" in v]
    (item,) = told["downwardAPI"]["items"]
    assert item["fieldRef"]["fieldPath"] == f"metadata.annotations['{ANNOTATION_PROCESSES}']"
    assert {"name": told["name"], "mountPath": "/etc/workerlab", "readOnly": True} in container[
        "volumeMounts"
    ]
    assert env["PORT"]["value"] == "8001"
    assert env["WORKERLAB_LAB_MODE"]["value"] == "true"
    assert env["WORKERLAB_STATE_DIR"]["value"] == "/tmp/workerlab"
    assert env["BALANCE"]["value"] == DEFAULT_BALANCE
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert container["env"][-1] == {"name": "X", "value": "1"}  # user env comes last
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["lifecycle"]["preStop"] == {"sleep": {"seconds": 5}}
    assert container["ports"] == [{"name": "http", "containerPort": 8001, "protocol": "TCP"}]
    # preStop 5 s + graceful 20 s + margin: SIGKILL only for a worker that overran its deadline.
    assert build_pod(wc)["spec"]["terminationGracePeriodSeconds"] == 30


def test_default_resources_grow_with_processes():
    small = build_pod(make_cluster(processesPerPod=1))["spec"]["containers"][0]["resources"]
    big = build_pod(make_cluster(processesPerPod=8))["spec"]["containers"][0]["resources"]
    assert small["limits"]["memory"] != big["limits"]["memory"]
    custom = {"requests": {"cpu": "100m"}, "limits": {"memory": "1Gi"}}
    assert build_pod(make_cluster(resources=custom))["spec"]["containers"][0]["resources"] == custom


def test_pod_template_extras_are_copied():
    extras = {
        "labels": {"team": "lab"},
        "annotations": {"note": "x"},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "k", "operator": "Exists"}],
    }
    pod = build_pod(make_cluster(podTemplate=extras))
    assert pod["metadata"]["labels"]["team"] == "lab"
    assert pod["metadata"]["annotations"] == {"note": "x", ANNOTATION_PROCESSES: "2"}
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["spec"]["tolerations"] == [{"key": "k", "operator": "Exists"}]


def test_pods_spread_over_nodes_by_default_each_revision_on_its_own():
    (spread,) = build_pod(make_cluster())["spec"]["topologySpreadConstraints"]
    assert spread == {
        "maxSkew": 1,
        "topologyKey": "kubernetes.io/hostname",
        "whenUnsatisfiable": "ScheduleAnyway",
        "nodeTaintsPolicy": "Honor",
        "labelSelector": {"matchLabels": {"app.kubernetes.io/instance": "demo"}},
        "matchLabelKeys": ["workerlab.dev/template-hash"],
    }


def test_the_specs_spread_replaces_the_default_and_an_empty_one_turns_it_off():
    zones = [{"maxSkew": 2, "topologyKey": "topology.kubernetes.io/zone"}]
    given = build_pod(make_cluster(podTemplate={"topologySpreadConstraints": zones}))
    assert given["spec"]["topologySpreadConstraints"] == zones
    off = build_pod(make_cluster(podTemplate={"topologySpreadConstraints": []}))
    assert "topologySpreadConstraints" not in off["spec"]
    # other extras leave the default in place
    assert (
        build_pod(make_cluster(podTemplate={"labels": {"a": "b"}}))["spec"][
            "topologySpreadConstraints"
        ][0]["topologyKey"]
        == "kubernetes.io/hostname"
    )


def test_service_selects_instance_and_name_only():
    wc = make_cluster(service={"type": "NodePort", "nodePort": 30080})
    svc = build_service(wc)
    assert svc["metadata"]["name"] == "demo"
    assert svc["spec"]["selector"] == {
        "app.kubernetes.io/name": "workerlab-worker",
        "app.kubernetes.io/instance": "demo",
    }
    assert svc["spec"]["type"] == "NodePort"
    assert svc["spec"]["ports"][0]["nodePort"] == 30080
    assert svc["spec"]["ports"][0]["targetPort"] == "http"


def as_live(obj):
    """What the API server gives back: the same object plus fields it fills in."""
    live = copy.deepcopy(obj)
    live["metadata"].update(resourceVersion="42", uid="svc-uid", creationTimestamp="2025-01-01")
    live["spec"].update(clusterIP="10.96.0.10", clusterIPs=["10.96.0.10"], ipFamilies=["IPv4"])
    live["status"] = {"loadBalancer": {}}
    return live


def test_service_without_drift_needs_no_write():
    wc = make_cluster(service={"type": "NodePort"})
    desired = build_service(wc)
    live = as_live(desired)
    live["spec"]["ports"][0]["nodePort"] = 31234  # allocated by the API server
    live["metadata"]["labels"]["added-by-someone"] = "yes"
    assert service_update(desired, live) is None


def test_hand_edited_service_is_restored_keeping_server_fields():
    wc = make_cluster(service={"type": "NodePort"})
    desired = build_service(wc)
    live = as_live(desired)
    live["spec"]["ports"][0]["nodePort"] = 31234
    live["spec"]["selector"] = {"app": "something-else"}
    update = service_update(desired, live)
    assert update is not None
    assert update["spec"]["selector"] == desired["spec"]["selector"]
    assert update["spec"]["clusterIP"] == "10.96.0.10"
    assert update["spec"]["ports"][0]["nodePort"] == 31234  # no churn of the allocated port
    assert update["metadata"]["resourceVersion"] == "42"  # optimistic concurrency on PUT
    assert "status" not in update


def test_service_type_change_is_drift():
    desired = build_service(make_cluster())
    live = as_live(build_service(make_cluster(service={"type": "NodePort", "nodePort": 30080})))
    update = service_update(desired, live)
    assert update["spec"]["type"] == "ClusterIP"
    assert "nodePort" not in update["spec"]["ports"][0]


def test_ingress_only_when_enabled_and_drift_detection():
    assert build_ingress(make_cluster()) is None
    wc = make_cluster(ingress={"enabled": True, "host": "demo.localtest.me", "className": "nginx"})
    desired = build_ingress(wc)
    rule = desired["spec"]["rules"][0]
    assert rule["host"] == "demo.localtest.me"
    backend = rule["http"]["paths"][0]["backend"]
    assert backend["service"] == {"name": "demo", "port": {"name": "http"}}
    assert desired["spec"]["ingressClassName"] == "nginx"
    live = as_live(desired)
    assert ingress_update(desired, live) is None
    live["spec"]["rules"][0]["host"] = "other.example"
    assert ingress_update(desired, live)["spec"]["rules"][0]["host"] == "demo.localtest.me"
    live["spec"]["ingressClassName"] = "traefik"  # someone changed the class we asked for
    assert ingress_update(desired, live)["spec"]["ingressClassName"] == "nginx"


def test_ingress_without_class_keeps_the_default_class_the_api_server_filled_in():
    desired = build_ingress(make_cluster(ingress={"enabled": True, "host": "demo.localtest.me"}))
    assert "ingressClassName" not in desired["spec"]  # the cluster default, at admission
    live = as_live(desired)
    live["spec"]["ingressClassName"] = "traefik"  # DefaultIngressClass admission did this
    assert ingress_update(desired, live) is None, "the defaulted class is not drift"
    live["spec"]["rules"][0]["host"] = "other.example"
    update = ingress_update(desired, live)
    assert update["spec"]["rules"][0]["host"] == "demo.localtest.me"
    assert update["spec"]["ingressClassName"] == "traefik", "an update must not drop the class"


def test_network_policy_only_when_enabled_admits_the_listed_sources_on_the_worker_port():
    assert build_network_policy(make_cluster()) is None
    wc = make_cluster(
        port=9000,
        networkPolicy={
            "enabled": True,
            "allowedNamespaces": ["team-b", "workerlab"],
            "allowedCIDRs": ["172.18.0.0/16"],
        },
    )
    policy = build_network_policy(wc)
    spec = policy["spec"]
    assert spec["podSelector"]["matchLabels"] == dict(wc.selector)
    assert spec["policyTypes"] == ["Ingress"]  # egress (DNS, Redis) untouched
    (rule,) = spec["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 9000}]
    same_ns, by_name, block = rule["from"]
    assert same_ns == {"podSelector": {}}  # no namespaceSelector: its own namespace only
    (expression,) = by_name["namespaceSelector"]["matchExpressions"]
    # its own namespace is covered already; the Ingress controller's always is
    assert expression["values"] == ["team-b", "workerlab-ingress"]
    assert block == {"ipBlock": {"cidr": "172.18.0.0/16"}}
    assert policy["metadata"]["ownerReferences"][0]["controller"] is True
    live = copy.deepcopy(policy)
    live["metadata"].update(resourceVersion="7", uid="np-uid")
    assert network_policy_update(policy, live) is None
    live["spec"]["ingress"][0]["from"].append({"ipBlock": {"cidr": "0.0.0.0/0"}})
    assert network_policy_update(policy, live)["spec"] == spec


def test_network_policy_in_the_ingress_namespace_lists_no_empty_selector():
    wc = replace(make_cluster(networkPolicy={"enabled": True}), namespace="workerlab-ingress")
    assert build_network_policy(wc)["spec"]["ingress"][0]["from"] == [{"podSelector": {}}]


def test_spec_defaults_match_the_crd():
    spec = WorkerClusterSpec.from_dict({})
    assert (spec.replicas, spec.processes_per_pod, spec.port) == (2, 2, 8000)
    assert spec.update_strategy.max_surge == "25%" and spec.update_strategy.max_unavailable == 0
    assert spec.service.type == "ClusterIP" and not spec.ingress.enabled and not spec.paused
    assert not spec.network_policy.enabled
    assert spec.image is None and spec.image_pull_policy is None  # the operator's default


def test_observed_pod_parses_a_crash_looping_pod():
    raw = {
        "metadata": {
            "name": "demo-abc12-xyz",
            "uid": "u1",
            "creationTimestamp": "2025-01-01T12:00:00Z",
            "labels": {"workerlab.dev/template-hash": "h1"},
            "ownerReferences": [{"uid": "uid-demo", "controller": True, "kind": "WorkerCluster"}],
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [
                {
                    "restartCount": 4,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 3, "message": "boom\n"}},
                }
            ],
        },
    }
    pod = ObservedPod.from_pod(raw)
    assert pod.controller_uid == "uid-demo" and pod.template_hash == "h1"
    assert (pod.ready, pod.restarts, pod.waiting_reason) == (False, 4, "CrashLoopBackOff")
    assert (pod.last_exit_code, pod.last_exit_message) == (3, "boom")
    assert pod.stuck and not pod.terminating


def test_balance_reaches_the_worker_and_rolls_the_pods():
    shared, reuseport = make_cluster(balance="shared"), make_cluster(balance="reuseport")
    (container,) = build_pod(reuseport)["spec"]["containers"]
    assert {"name": "BALANCE", "value": "reuseport"} in container["env"]
    assert WorkerClusterSpec.from_dict({}).balance == DEFAULT_BALANCE
    assert template_hash(shared) != template_hash(reuseport)
