"""What the page may do to the cluster, through the same code as `workerlab chaos` and `load`.

Each action starts the change and returns at once (blocking kubectl runs in a worker thread);
the healing that follows is what the watches and the timeline show. The app validates input
(known WorkerCluster, the pod belongs to it, lab mode for a crash, bounds) before calling here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from workerlab.api.objects import worker_port
from workerlab.api.resource import RESOURCE
from workerlab.cli import drills, targets
from workerlab.cli.healing import PodSnapshot
from workerlab.cli.loadgen import LoadPlan, journal_record, run_load
from workerlab.common import journal
from workerlab.common.errors import WorkerlabError
from workerlab.common.kube import Kube
from workerlab.common.loadstats import LoadSummary

MAX_LOAD_REQUESTS = 5000
MAX_LOAD_CONCURRENCY = 32
MAX_LOAD_DURATION_S = 60.0
PROBE_TIMEOUT_S = 10.0


class Actions(Protocol):
    async def scale(self, wc: str, replicas: int) -> dict[str, Any]: ...
    async def set_processes(self, wc: str, processes: int) -> dict[str, Any]: ...
    async def delete_pod(self, wc: str, pod: str) -> dict[str, Any]: ...
    async def kill_process(self, wc: dict[str, Any], pod: str) -> dict[str, Any]: ...
    async def load(
        self,
        wc: dict[str, Any],
        path: str,
        requests: int,
        concurrency: int,
        duration_s: float,
        on_ready: Callable[[str], None],
    ) -> dict[str, Any]:
        """Reach the target, call `on_ready(how)` once it answered, then run; raise
        WorkerlabError (before `on_ready`) when it cannot be reached."""
        ...

    async def check_lab(self, number: int) -> dict[str, Any]: ...


@dataclass
class KubeActions:
    kube: Kube

    async def scale(self, wc: str, replicas: int) -> dict[str, Any]:
        await asyncio.to_thread(self.kube.run, "scale", RESOURCE, wc, f"--replicas={replicas}")
        return {"scaled": wc, "replicas": replicas}

    async def set_processes(self, wc: str, processes: int) -> dict[str, Any]:
        patch = json.dumps({"spec": {"processesPerPod": processes}})
        await asyncio.to_thread(self.kube.run, "patch", RESOURCE, wc, "--type=merge", "-p", patch)
        return {"patched": wc, "processesPerPod": processes}

    async def delete_pod(self, wc: str, pod: str) -> dict[str, Any]:
        await asyncio.to_thread(drills.delete_pods, self.kube, [pod])
        return {"deleted": pod}

    async def kill_process(self, wc: dict[str, Any], pod: str) -> dict[str, Any]:
        before = PodSnapshot(pod, "", 0, True)
        pid, how = await asyncio.to_thread(
            drills.crash_process, self.kube, before, worker_port(wc), True
        )
        return {"pod": pod, "pid": pid, "how": how}

    async def load(
        self,
        wc: dict[str, Any],
        path: str,
        requests: int,
        concurrency: int,
        duration_s: float,
        on_ready: Callable[[str], None],
    ) -> dict[str, Any]:
        """As `workerlab load wc/NAME`: its NodePort, or (a class namespace: ClusterIP only)
        the API server's service proxy behind a `kubectl proxy` held for the run."""
        name = wc["metadata"]["name"]
        target = await asyncio.to_thread(targets.resolve, f"wc/{name}", self.kube)
        via = "service proxy" if target.proxy_path else "NodePort"
        with contextlib.ExitStack() as holding:
            try:
                reached = await asyncio.to_thread(
                    holding.enter_context, targets.reach(target, self.kube)
                )
                await answers(reached.url("/healthz"), f"wc/{name} ({via})")
                on_ready(via)
                plan = LoadPlan(
                    url=reached.url(path),
                    requests=requests,
                    concurrency=concurrency,
                    duration_s=duration_s,
                    timeout_s=10.0,
                )
                started = time.time()
                summary: LoadSummary = await run_load(plan)
            finally:
                # stops the `kubectl proxy` (terminate, wait) off the event loop
                await asyncio.to_thread(holding.pop_all().close)
        journal.record_run(
            journal_record(
                plan,
                summary,
                started_at=started,
                ended_at=time.time(),
                target=f"wc/{name} (dashboard)",
                base_url=reached.base_url,
                wc=name,
                namespace=self.kube.namespace,
                path=path,
            )
        )
        return summary.to_dict()

    async def check_lab(self, number: int) -> dict[str, Any]:
        return await asyncio.to_thread(run_check, self.kube, number)


async def answers(url: str, what: str) -> None:
    """One GET of the worker's /healthz through the way the load will go; WorkerlabError with
    the answer (the API server's, behind the service proxy) when it is not a 200."""
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=PROBE_TIMEOUT_S) as client:
            response = await client.get(url)
    except httpx.HTTPError as error:
        raise WorkerlabError(f"{what} is not reachable: {type(error).__name__}: {error}") from None
    if response.status_code != 200:
        detail = response.text.strip()
        with contextlib.suppress(ValueError, AttributeError):
            detail = response.json().get("message") or detail
        raise WorkerlabError(f"{what} answered HTTP {response.status_code}: {detail[:300]}")


def run_check(kube: Kube, number: int) -> dict[str, Any]:
    from workerlab.labs import course
    from workerlab.labs.checking import CheckContext

    lab = course.get(number)
    checker = course.checker(lab)
    items = checker.evaluate(checker.gather(CheckContext(kube, journal.lab_started_at(number))))
    aimed = [  # hints name the namespace the page watches, as `workerlab lab check` says them
        dict(vars(i), hint=course.for_namespace(i.hint, kube.namespace)) for i in items
    ]
    return {"lab": number, "passed": all(i.passed for i in items), "items": aimed}
