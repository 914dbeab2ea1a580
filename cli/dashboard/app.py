"""The dashboard's web app: one page, one Server-Sent-Events stream, a few token-checked POSTs.

Security (the app listens on 127.0.0.1 only, but any web page the learner opens could try to
drive it through the browser):
  - Host must be 127.0.0.1:PORT or localhost:PORT on every request, so a DNS-rebinding page
    (evil.example resolving to 127.0.0.1) cannot even read the page and its token;
  - every POST carries the per-session token (generated at start, embedded in the page) in the
    `X-Workerlab-Token` header, compared in constant time;
  - a POST whose Origin (or Sec-Fetch-Site) says it came from another site is refused, token or
    not. A cross-origin page cannot set the custom header without a CORS preflight, which this
    app never answers, so the token also rules out "simple" form posts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from workerlab.api.objects import pod_terminating
from workerlab.cli import journal
from workerlab.cli.dashboard.actions import (
    MAX_LOAD_CONCURRENCY,
    MAX_LOAD_DURATION_S,
    MAX_LOAD_REQUESTS,
    Actions,
)
from workerlab.cli.dashboard.model import YOU, Model
from workerlab.cli.errors import WorkerlabError

TOKEN_HEADER = "X-Workerlab-Token"
KEEPALIVE_S = 15.0
MIN_PUSH_INTERVAL_S = 0.25
MAX_REPLICAS = 100  # the CRD's bounds
MAX_PROCESSES = 64


class Hub:
    """The model plus a change signal the SSE streams wait on."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self._changed = asyncio.Event()
        self.load_running: str | None = None

    def notify(self) -> None:
        self._changed.set()

    async def wait_change(self, version: int, timeout: float) -> bool:
        """True when the model moved past `version` within `timeout`."""
        deadline = time.monotonic() + timeout
        while self.model.version == version:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._changed.clear()
            if self.model.version != version:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return True


class ScaleBody(BaseModel):
    replicas: int = Field(ge=0, le=MAX_REPLICAS)


class ProcessesBody(BaseModel):
    processes_per_pod: int = Field(ge=1, le=MAX_PROCESSES)


class PodBody(BaseModel):
    pod: str = Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


class LoadBody(BaseModel):
    path: str = Field("/", max_length=200, pattern=r"^/[A-Za-z0-9/_.?=&%-]*$")
    requests: int = Field(200, ge=1, le=MAX_LOAD_REQUESTS)
    concurrency: int = Field(8, ge=1, le=MAX_LOAD_CONCURRENCY)
    duration_s: float = Field(20.0, gt=0, le=MAX_LOAD_DURATION_S)


def allowed_origins(port: int) -> set[str]:
    return {f"http://127.0.0.1:{port}", f"http://localhost:{port}"}


def allowed_hosts(port: int) -> set[str]:
    return {f"127.0.0.1:{port}", f"localhost:{port}"}


def static_dir() -> str:
    return str(resources.files("workerlab.cli.dashboard") / "static")


def create_app(
    hub: Hub,
    actions: Actions,
    *,
    port: int,
    token: str | None = None,
    context: str = "",
    lab_numbers: Callable[[], list[dict[str, Any]]] | None = None,
    lab_text: Callable[[int], str] | None = None,
    on_startup: Callable[[], Awaitable[None]] | None = None,
) -> FastAPI:
    token = token or secrets.token_urlsafe(32)
    hosts, origins = allowed_hosts(port), allowed_origins(port)
    model = hub.model
    background: set[asyncio.Task[Any]] = set()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if on_startup is not None:
            await on_startup()
        yield
        for task in background:
            task.cancel()

    app = FastAPI(title="workerlab dashboard", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.token = token

    @app.middleware("http")
    async def check_host(request: Request, call_next: Callable[[Request], Awaitable[Response]]):
        if request.headers.get("host", "") not in hosts:
            return JSONResponse(
                {"error": "wrong Host header", "detail": f"use http://127.0.0.1:{port}/"},
                status_code=421,
            )
        return await call_next(request)

    def guard(request: Request) -> None:
        origin = request.headers.get("origin")
        if origin is not None and origin not in origins:
            raise HTTPException(403, f"cross-origin request from {origin!r} refused")
        if request.headers.get("sec-fetch-site") not in (None, "same-origin", "none"):
            raise HTTPException(403, "cross-site request refused")
        sent = request.headers.get(TOKEN_HEADER, "")
        if not sent:
            raise HTTPException(401, f"missing {TOKEN_HEADER} header (reload the page)")
        if not secrets.compare_digest(sent.encode(), token.encode()):
            raise HTTPException(403, f"wrong {TOKEN_HEADER} (the dashboard was restarted?)")

    def known_wc(name: str) -> dict[str, Any]:
        wc = model.wcs.get(name)
        if wc is None:
            raise HTTPException(404, f"no WorkerCluster {name!r} in namespace {model.namespace!r}")
        return wc

    def pod_of(name: str, pod: str) -> None:
        state = model.pods.get(pod)
        if state is None or state.wc != name:
            raise HTTPException(404, f"pod {pod!r} is not a pod of wc/{name}")
        if pod_terminating(state.obj):
            raise HTTPException(409, f"pod {pod!r} is already terminating")

    async def act(what: str, wc: str | None, call: Awaitable[dict[str, Any]]) -> dict[str, Any]:
        try:
            result = await call
        except WorkerlabError as error:
            raise HTTPException(
                502, f"{error}" + (f" (hint: {error.hint})" if error.hint else "")
            ) from None
        model.add(YOU, what, time.time(), wc=wc)
        hub.notify()
        return {"ok": True, **result}

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid_input(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Every refusal has the same shape for the page: {"error": "..."} (FastAPI's own is
        # {"detail": [...]}); the first problem, said plainly, is what a user needs.
        problems = [
            f"{'.'.join(str(part) for part in e.get('loc', ())[1:]) or 'body'}: {e.get('msg')}"
            for e in exc.errors()
        ]
        return JSONResponse({"error": "; ".join(problems) or "invalid input"}, status_code=422)

    @app.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        page = (resources.files("workerlab.cli.dashboard") / "static" / "index.html").read_text()
        page = page.replace("{{TOKEN}}", token).replace("{{NAMESPACE}}", model.namespace)
        page = page.replace("{{CONTEXT}}", context)
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    app.mount("/static", StaticFiles(directory=static_dir()), name="static")

    @app.get("/api/state")
    async def state() -> dict[str, Any]:
        return model.view(time.time())

    @app.get("/api/stream")
    async def stream(request: Request) -> StreamingResponse:
        async def events() -> AsyncIterator[str]:
            version = -1
            yield "retry: 2000\n\n"
            while True:
                if await request.is_disconnected():
                    return
                view = model.view(time.time())
                version = view["version"]
                yield f"event: state\ndata: {json.dumps(view, separators=(',', ':'))}\n\n"
                await asyncio.sleep(MIN_PUSH_INTERVAL_S)
                while not await hub.wait_change(version, KEEPALIVE_S):
                    if await request.is_disconnected():
                        return
                    yield f": keep-alive {int(time.time())}\n\n"

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @app.post("/api/wc/{name}/scale", dependencies=[Depends(guard)])
    async def scale(name: str, body: ScaleBody) -> dict[str, Any]:
        known_wc(name)
        return await act(
            f"scaled wc/{name} to {body.replicas} pods", name, actions.scale(name, body.replicas)
        )

    @app.post("/api/wc/{name}/processes", dependencies=[Depends(guard)])
    async def processes(name: str, body: ProcessesBody) -> dict[str, Any]:
        known_wc(name)
        return await act(
            f"set processesPerPod of wc/{name} to {body.processes_per_pod}",
            name,
            actions.set_processes(name, body.processes_per_pod),
        )

    @app.post("/api/wc/{name}/delete-pod", dependencies=[Depends(guard)])
    async def delete_pod(name: str, body: PodBody) -> dict[str, Any]:
        known_wc(name)
        pod_of(name, body.pod)
        return await act(f"deleted pod {body.pod}", name, actions.delete_pod(name, body.pod))

    @app.post("/api/wc/{name}/kill-process", dependencies=[Depends(guard)])
    async def kill_process(name: str, body: PodBody) -> dict[str, Any]:
        wc = known_wc(name)
        if not (wc.get("spec") or {}).get("labMode"):
            raise HTTPException(
                409,
                f"wc/{name} is not in lab mode: killing a process needs spec.labMode: true",
            )
        pod_of(name, body.pod)
        return await act(
            f"killed a process in {body.pod} (POST /crash)",
            name,
            actions.kill_process(wc, body.pod),
        )

    @app.post("/api/wc/{name}/load", dependencies=[Depends(guard)])
    async def load(name: str, body: LoadBody) -> dict[str, Any]:
        wc = known_wc(name)
        if hub.load_running:
            raise HTTPException(409, f"a load run is already going ({hub.load_running})")
        hub.load_running = f"wc/{name}"

        async def run() -> None:
            try:
                summary = await actions.load(
                    wc, body.path, body.requests, body.concurrency, body.duration_s
                )
                model.add(
                    YOU,
                    f"load on wc/{name}{body.path} done: {summary.get('ok')} ok, "
                    f"{summary.get('errors')} errors in {summary.get('elapsed_s')} s",
                    time.time(),
                    wc=name,
                )
            except (WorkerlabError, ValueError) as error:
                model.add(YOU, f"load on wc/{name} failed: {error}", time.time(), wc=name)
            finally:
                hub.load_running = None
                hub.notify()

        task = asyncio.create_task(run())
        background.add(task)
        task.add_done_callback(background.discard)
        model.add(
            YOU,
            f"started load on wc/{name}{body.path}: {body.requests} requests, "
            f"{body.concurrency} at a time, at most {body.duration_s:g} s",
            time.time(),
            wc=name,
        )
        hub.notify()
        return {"ok": True, "started": True}

    @app.get("/api/labs")
    async def labs() -> dict[str, Any]:
        listing = lab_numbers() if lab_numbers else []
        started = {n["number"]: journal.lab_started_at(n["number"]) for n in listing}
        begun = [number for number, at in started.items() if at]
        current = max(begun, key=lambda n: started[n] or 0.0) if begun else None
        if current is None and listing:
            current = listing[0]["number"]
        return {"labs": listing, "current": current}

    @app.get("/api/labs/{number}")
    async def lab(number: int) -> dict[str, Any]:
        if lab_text is None:
            raise HTTPException(404, "no course")
        try:
            return {"number": number, "text": lab_text(number)}
        except WorkerlabError as error:
            raise HTTPException(404, str(error)) from None

    @app.post("/api/labs/{number}/check", dependencies=[Depends(guard)])
    async def check(number: int) -> dict[str, Any]:
        if lab_text is not None:
            try:
                lab_text(number)
            except WorkerlabError as error:
                raise HTTPException(404, str(error)) from None
        try:
            return await actions.check_lab(number)
        except WorkerlabError as error:
            return {"lab": number, "passed": False, "error": str(error), "hint": error.hint}

    return app
