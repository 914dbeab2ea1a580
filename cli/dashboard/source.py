"""The dashboard's I/O: real watches of WorkerClusters, pods and Events, and /processes polls.

How it reaches the cluster: one `kubectl proxy` child process on a random 127.0.0.1 port does the
authentication (whatever the kubeconfig's context uses: client certificates, tokens, exec
plugins), and httpx speaks plain HTTP to it. That keeps the CLI's rule (no kubernetes client,
no kopf) while giving a real list+watch: each watch resumes from the last resourceVersion, uses
bookmarks, restarts when the server ends it (timeoutSeconds) and relists on 410 Gone. The pod
proxy (`/api/v1/namespaces/NS/pods/NAME:PORT/proxy/processes`) goes through the same door.

Every loop runs until `stop` is set; each step inside is bounded by a timeout, and failures back
off (1 s doubling to 15 s) while the model's health says what is wrong: the page shows a banner
and recovers by itself when the cluster answers again.

Revoked credentials (`workerlab class remove` deletes the learner's ServiceAccount, so its token
stops working) must not leave a healthy-looking page: a watch already open keeps streaming, so
every AUTH_PROBE_S a cheap list asks the API server again; its 401/403 (or any request's) sets
health `auth` to False with the server's message, and the app shows "not authorised" instead of
the namespace's objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Callable
from typing import Any

import httpx

from workerlab.api.objects import epoch, worker_port
from workerlab.api.resource import (
    GROUP,
    LABEL_NAME,
    OPERATOR_DEPLOYMENT,
    OPERATOR_LEASE,
    OPERATOR_NAMESPACE,
    PLURAL,
    VERSION,
)
from workerlab.cli.dashboard.model import Model
from workerlab.cli.dashboard.timeline import CLUSTER
from workerlab.common.kube import Kube

WATCH_S = 240  # a watch request's own timeoutSeconds; then it resumes from the last version
POLL_S = 2.5  # /processes of each Ready pod
OPERATOR_PROBE_S = 10
MASTER_LEASE_PATH = (
    f"/apis/coordination.k8s.io/v1/namespaces/{OPERATOR_NAMESPACE}/leases/{OPERATOR_LEASE}"
)
REQUEST_TIMEOUT_S = 10
BACKOFF_MAX_S = 15
AUTH_PROBE_S = 2.0
SERVING = re.compile(r"Starting to serve on (?P<addr>127\.0\.0\.1:\d+)")


class Gone(Exception):
    """410: the resourceVersion is too old; relist."""


class Unreachable(Exception):
    pass


class NotAuthorised(Unreachable):
    """401/403 from the API server: the kubeconfig's credentials no longer (or never) work."""


def refusal(status: int, body: str) -> NotAuthorised:
    """The API server's own words for a 401/403 (its Status object's message)."""
    message = body.strip()
    with contextlib.suppress(ValueError, AttributeError):
        message = json.loads(body).get("message") or message
    word = "Unauthorized" if status == 401 else "Forbidden"
    return NotAuthorised(f"HTTP {status} {word}: {message[:200]}")


class KubectlProxy:
    """A supervised `kubectl proxy` on 127.0.0.1:<random>; `url()` waits until it serves."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.base: str | None = None
        self.error: str | None = None
        self._ready = asyncio.Event()
        self._proc: asyncio.subprocess.Process | None = None

    async def url(self, timeout: float = REQUEST_TIMEOUT_S) -> str:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            raise Unreachable(self.error or "kubectl proxy is not serving") from None
        assert self.base is not None
        return self.base

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 1.0
        while not stop.is_set():
            started = time.monotonic()
            await self._serve_once(stop)
            if stop.is_set():
                break
            if time.monotonic() - started > 60:
                backoff = 1.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(BACKOFF_MAX_S, backoff * 2)

    async def _serve_once(self, stop: asyncio.Event) -> None:
        try:
            kubectl = self.kube.kubectl
        except Exception as error:  # MissingPrerequisite: no kubectl
            self.error = str(error)
            return
        proc = await asyncio.create_subprocess_exec(
            kubectl,
            "--context",
            self.kube.context,
            "proxy",
            "--port=0",
            "--address=127.0.0.1",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self._proc = proc
        assert proc.stdout is not None and proc.stderr is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), 20)
            match = SERVING.search(line.decode(errors="replace"))
            if match is None:
                err = (await asyncio.wait_for(proc.stderr.read(4000), 5)).decode(errors="replace")
                self.error = (err.strip().splitlines() or ["kubectl proxy failed"])[-1]
                return
            self.base, self.error = f"http://{match['addr']}", None
            self._ready.set()
            waiter = asyncio.create_task(stop.wait())
            exited = asyncio.create_task(proc.wait())
            await asyncio.wait({waiter, exited}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            exited.cancel()
            if not stop.is_set():
                self.error = f"kubectl proxy exited ({proc.returncode})"
        except TimeoutError:
            self.error = "kubectl proxy did not start within 20 s"
        finally:
            self._ready.clear()
            self.base = None
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 5)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


class Source:
    """Feeds a Model from the cluster; `notify()` is called after every change."""

    def __init__(
        self,
        kube: Kube,
        model: Model,
        notify: Callable[[], None],
        poll_s: float = POLL_S,
        watch_s: int = WATCH_S,
    ) -> None:
        self.kube = kube
        self.model = model
        self.notify = notify
        self.poll_s = poll_s
        self.watch_s = watch_s
        self.proxy = KubectlProxy(kube)
        self.stop = asyncio.Event()
        # Every request this dashboard sends the API server (watches, lists, the pods'
        # /processes through the pod proxy, the operator's Deployment and Lease), counted: a
        # class runs one dashboard per learner, and the bench reports what they add together.
        self.model.health["api_requests"] = 0
        self.client = httpx.AsyncClient(
            trust_env=False, timeout=REQUEST_TIMEOUT_S, event_hooks={"request": [self._count]}
        )
        self.watch_restarts = 0
        self.failing: dict[str, str] = {}  # watch kind -> why it fails
        ns = kube.namespace
        self.paths = {
            "wc": f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/{PLURAL}",
            "pod": f"/api/v1/namespaces/{ns}/pods",
            "event": f"/api/v1/namespaces/{ns}/events",
        }

    async def run(self) -> None:
        tasks = [
            asyncio.create_task(self.proxy.run(self.stop)),
            *(asyncio.create_task(self._watch(kind)) for kind in self.paths),
            asyncio.create_task(self._poll_processes()),
            asyncio.create_task(self._probe_operator()),
            asyncio.create_task(self._probe_auth()),
        ]
        try:
            await self.stop.wait()
        finally:
            self.stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.client.aclose()

    async def _count(self, request: httpx.Request) -> None:
        self.model.health["api_requests"] += 1

    def _apply(self, kind: str, event_type: str, obj: dict[str, Any]) -> None:
        now = time.time()
        getattr(self.model, kind)(event_type, obj, now)
        self.notify()

    def _health(self, kind: str, ok: bool, error: str | None = None) -> None:
        """The cluster is healthy when every watch is; the first failing one says why."""
        if ok:
            self.failing.pop(kind, None)
        else:
            self.failing[kind] = error or "no answer"
        problem = next(iter(self.failing.values()), None)
        self.model.set_health("cluster", problem is None, time.time(), problem)
        self.notify()

    def _authorised(self, ok: bool, error: str | None = None) -> None:
        """Health `auth` (+ `auth_error`): does the API server still take our credentials?"""
        before, now = self.model.health.get("auth"), time.time()
        if before is not False and not ok:
            self.model.add(CLUSTER, f"not authorised: the API server refused ({error})", now)
        elif before is False and ok:
            self.model.add(CLUSTER, "authorised again: the API server takes the credentials", now)
        self.model.set_health("auth", ok, now)
        self.model.set_health("auth_error", None if ok else error, now)
        self.notify()

    async def _probe_auth(self) -> None:
        """A cheap list (limit=1) every AUTH_PROBE_S: an open watch outlives a revoked token."""
        while not self.stop.is_set():
            try:
                await self._get(self.paths["wc"], {"limit": "1"})
                self._authorised(True)
            except NotAuthorised as error:
                self._authorised(False, str(error))
            except (Unreachable, Gone, httpx.HTTPError, ValueError):
                pass  # the watches say when the cluster is unreachable
            await self._sleep(AUTH_PROBE_S)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    async def _get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        base = await self.proxy.url()
        try:
            response = await self.client.get(base + path, params=params)
        except httpx.HTTPError as error:
            raise Unreachable(f"{type(error).__name__}: {error}") from None
        if response.status_code == 410:
            raise Gone()
        if response.status_code in (401, 403):
            raise refusal(response.status_code, response.text)
        if response.status_code >= 500:
            raise Unreachable(f"HTTP {response.status_code}: {response.text.strip()[:200]}")
        if response.status_code != 200:
            raise Unreachable(f"HTTP {response.status_code} for {path}: {response.text[:200]}")
        return dict(response.json())

    async def _watch(self, kind: str) -> None:
        """List, then watch from the list's resourceVersion until the server ends the watch,
        then resume; relist on 410 Gone or after an error (the model folds the relist)."""
        path = self.paths[kind]
        backoff = 1.0
        while not self.stop.is_set():
            try:
                listed = await self._get(path)
                self.model.resync(kind, listed.get("items") or [], time.time())
                self._health(kind, True)
                version = listed["metadata"]["resourceVersion"]
                backoff = 1.0
                while not self.stop.is_set():
                    version = await self._watch_once(kind, path, version)
                    self.watch_restarts += 1
            except Gone:
                self.watch_restarts += 1
                continue
            except (Unreachable, httpx.HTTPError, ValueError, KeyError) as error:
                if isinstance(error, NotAuthorised):
                    self._authorised(False, str(error))
                if kind == "wc" and "404" in str(error):
                    message = "the WorkerCluster CRD is not installed (kubectl apply -k manifests/)"
                else:
                    message = self.proxy.error or str(error) or type(error).__name__
                self._health(kind, False, message)
                await self._sleep(backoff)
                backoff = min(BACKOFF_MAX_S, backoff * 2)

    async def _watch_once(self, kind: str, path: str, version: str) -> str:
        base = await self.proxy.url()
        params = {
            "watch": "1",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(self.watch_s),
        }
        timeout = httpx.Timeout(REQUEST_TIMEOUT_S, read=self.watch_s + 30)
        try:
            async with self.client.stream(
                "GET", base + path, params=params, timeout=timeout
            ) as response:
                if response.status_code == 410:
                    raise Gone()
                if response.status_code != 200:
                    body = (await response.aread()).decode(errors="replace")
                    if response.status_code in (401, 403):
                        raise refusal(response.status_code, body)
                    raise Unreachable(f"watch {kind}: HTTP {response.status_code} {body[:200]}")
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    event_type, obj = event.get("type"), event.get("object") or {}
                    if event_type == "ERROR":
                        if obj.get("code") == 410:
                            raise Gone()
                        raise Unreachable(f"watch {kind}: {obj.get('message')}")
                    version = (obj.get("metadata") or {}).get("resourceVersion") or version
                    if event_type == "BOOKMARK":
                        continue
                    self._apply(kind, str(event_type), obj)
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.ReadTimeout) as error:
            raise Unreachable(f"watch {kind} broke: {type(error).__name__}") from None
        return version

    async def _poll_processes(self) -> None:
        while not self.stop.is_set():
            targets = self.model.pods_to_poll()
            if targets:
                await asyncio.gather(*(self._poll_one(pod, wc) for pod, wc in targets))
                self.notify()
            await self._sleep(self.poll_s)

    async def _poll_one(self, pod: str, wc_name: str) -> None:
        wc = self.model.wcs.get(wc_name)
        if wc is None:
            return
        port = worker_port(wc)
        path = f"/api/v1/namespaces/{self.kube.namespace}/pods/{pod}:{port}/proxy/processes"
        try:
            report = await self._get(path)
        except (Unreachable, Gone, ValueError) as error:
            self.model.processes_failed(pod, str(error) or "no answer")
            return
        self.model.processes(pod, report, time.time())

    async def _probe_operator(self) -> None:
        path = f"/apis/apps/v1/namespaces/{OPERATOR_NAMESPACE}/deployments/{OPERATOR_DEPLOYMENT}"
        while not self.stop.is_set():
            try:
                base = await self.proxy.url()
                response = await self.client.get(base + path)
                if response.status_code == 200:
                    status = response.json().get("status") or {}
                    ready = int(status.get("readyReplicas") or 0) > 0
                    self.model.set_health("operator", ready, time.time())
                else:  # 403 for a learner without cluster rights, 404 when not installed
                    self.model.set_health(
                        "operator",
                        "not installed" if response.status_code == 404 else None,
                        time.time(),
                    )
                await self._probe_master(base)
                self.notify()
            except (Unreachable, httpx.HTTPError, ValueError):
                pass
            await self._sleep(OPERATOR_PROBE_S)

    async def _probe_master(self, base: str) -> None:
        """The Lease's holder and the operator pods, when the operator runs with a standby
        (no Lease: one replica, nothing to show; 403: a learner's rights)."""
        lease = await self.client.get(base + MASTER_LEASE_PATH)
        if lease.status_code != 200:
            return
        spec = lease.json().get("spec") or {}
        pods = await self.client.get(
            base + f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/pods",
            params={"labelSelector": f"{LABEL_NAME}={OPERATOR_DEPLOYMENT}"},
        )
        operators = {}
        if pods.status_code == 200:
            for pod in pods.json().get("items") or []:
                if not (pod.get("metadata") or {}).get("deletionTimestamp"):
                    node = (pod.get("spec") or {}).get("nodeName")
                    operators[str(pod["metadata"]["name"])] = node
        acquired = epoch(spec.get("acquireTime"))
        self.model.master(str(spec.get("holderIdentity") or ""), acquired, operators, time.time())
