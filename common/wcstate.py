"""Reading a WorkerCluster's status the way `kubectl rollout status` reads a Deployment's."""

from __future__ import annotations

import time

from workerlab.api.objects import condition_is_true
from workerlab.api.resource import ConditionType
from workerlab.common.errors import WorkerlabError
from workerlab.common.kube import Kube


def converged(wc: dict) -> tuple[bool, str]:
    """Done when the operator saw the latest spec and every wanted pod is up to date and Ready.

    observedGeneration guards against reading a stale Ready just after a change.
    """
    meta, spec, status = wc.get("metadata") or {}, wc.get("spec") or {}, wc.get("status") or {}
    want = int(spec.get("replicas", 0))
    gen, seen = meta.get("generation"), status.get("observedGeneration")
    if seen is None or gen is None or int(seen) < int(gen):
        return False, f"operator has not observed generation {gen} yet (observed {seen})"
    counts = {k: int(status.get(k) or 0) for k in ("replicas", "updatedReplicas", "readyReplicas")}
    if counts["updatedReplicas"] != want or counts["readyReplicas"] != want:
        return False, (
            f"{counts['readyReplicas']}/{want} ready, {counts['updatedReplicas']}/{want} updated"
        )
    if counts["replicas"] != want:
        return False, f"{counts['replicas']} pods exist, {want} wanted (old pods draining)"
    if want > 0 and not condition_is_true(wc, ConditionType.READY):
        return False, "condition Ready is not True"
    return True, f"{want}/{want} pods ready and up to date"


def wait_converged(kube: Kube, name: str, timeout_s: float, poll_s: float = 1.0) -> dict:
    deadline = time.monotonic() + timeout_s
    why = "not checked"
    while True:
        try:
            wc = kube.worker_cluster(name)
        except WorkerlabError as error:  # e.g. the API server restarting (lab 10): keep polling
            why = str(error)
        else:
            done, why = converged(wc)
            if done:
                return wc
        if time.monotonic() >= deadline:
            raise WorkerlabError(
                f"wc/{name} did not converge within {timeout_s:.0f}s: {why}",
                hint=f"kubectl -n {kube.namespace} describe wc {name}",
            )
        time.sleep(poll_s)
