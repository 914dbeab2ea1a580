"""Lab 3: the master is installed (CRD, RBAC, operator); your first WorkerCluster runs."""

from __future__ import annotations

from workerlab.api.objects import epoch, event_time, find_condition
from workerlab.api.resource import LABEL_INSTANCE, OPERATOR_DEPLOYMENT, OPERATOR_NAMESPACE, RESOURCE
from workerlab.common.kube import Kube
from workerlab.common.wcstate import converged
from workerlab.labs.checking import CheckContext, Checker, Item, item
from workerlab.labs.starting_state import delete_wc

NAME = "first"


def gather(ctx: CheckContext) -> dict:
    kube = ctx.kube
    system = Kube(kube.context, OPERATOR_NAMESPACE, kube.kubectl)
    facts: dict = {
        "crd": kube.get("crd", RESOURCE, namespaced=False),
        "operator": system.get("deployment", OPERATOR_DEPLOYMENT),
        "wc": None,
        "pods": [],
        "events": [],
        "started_at": ctx.started_at,
    }
    if facts["crd"] is not None:
        facts["wc"] = kube.get(RESOURCE, NAME)
        # Also when it is gone: its Events outlive it, and say that it was there.
        facts["pods"] = kube.pods_of(NAME)
        facts["events"] = kube.events_for("WorkerCluster", NAME)
    return facts


def evaluate(facts: dict) -> list[Item]:
    crd = facts["crd"]
    established = bool(
        crd
        and any(
            c.get("type") == "Established" and c.get("status") == "True"
            for c in (crd.get("status") or {}).get("conditions") or []
        )
    )
    items = [
        item(
            "the WorkerCluster CRD is installed",
            established,
            f"{RESOURCE} established" if established else "",
            "kubectl apply -k manifests/",
        )
    ]
    operator = facts["operator"]
    available = int(((operator or {}).get("status") or {}).get("availableReplicas") or 0)
    items.append(
        item(
            "the operator (the cluster's master) is running",
            available >= 1,
            f"{available} available",
            f"kubectl -n {OPERATOR_NAMESPACE} rollout status deployment/{OPERATOR_DEPLOYMENT}; "
            f"if stuck: kubectl -n {OPERATOR_NAMESPACE} logs deploy/{OPERATOR_DEPLOYMENT}",
        )
    )
    wc = facts["wc"]
    gone = ""
    started = facts.get("started_at") or 0
    recorded = [e for e in facts["events"] if (epoch(event_time(e)) or 0) >= started - 1]
    if wc is None and recorded:
        left = len(facts["pods"])
        gone = (
            f"wc/{NAME} was created (the operator recorded {len(recorded)} Events) and "
            f"has been deleted since; its pods went with it ({left} left)"
        )
    items.append(
        item(
            f"your WorkerCluster {NAME!r} exists",
            wc is not None,
            gone,
            f"apply the manifest from the steps (metadata.name: {NAME}) in namespace workerlab",
        )
    )
    if wc is None:
        return items
    done, why = converged(wc)
    ready = find_condition(wc, "Ready") or {}
    items.append(
        item(
            "the operator reconciled it: status Ready, observedGeneration current",
            done,
            f"{why}; Ready={ready.get('status') or 'unknown'}"
            + (f" ({ready['reason']})" if ready.get("reason") else ""),
            f"kubectl -n workerlab describe wc {NAME}  (read Conditions and Events)",
        )
    )
    uid = wc["metadata"].get("uid")
    want = int((wc.get("spec") or {}).get("replicas", 0))
    owned = [
        p
        for p in facts["pods"]
        if any(
            r.get("uid") == uid and r.get("controller")
            for r in p["metadata"].get("ownerReferences") or []
        )
    ]
    items.append(
        item(
            "its pods are owned by it (ownerReferences: garbage collection will remove them)",
            want > 0 and len(owned) >= want,
            f"{len(owned)}/{want} pods owned",
            f"kubectl -n workerlab get pods -l {LABEL_INSTANCE}={NAME} "
            "-o jsonpath='{.items[*].metadata.ownerReferences}'",
        )
    )
    items.append(
        item(
            "the operator recorded Events for what it did",
            facts["events"],
            "; ".join(e.get("reason", "?") for e in facts["events"][-4:]),
            f"kubectl -n workerlab get events --field-selector involvedObject.name={NAME}",
        )
    )
    return items


def reset(ctx: CheckContext) -> list[str]:
    done = delete_wc(ctx.kube, NAME)
    return [done or f"wc/{NAME} did not exist"]


CHECKER = Checker(gather, evaluate, reset)
