"""The dashboard's web app: one page, one Server-Sent-Events stream, a few POSTs.

Who may use it is `auth`'s (Jupyter-style: the token in the URL the CLI printed becomes an
HttpOnly session cookie; nothing but the static assets answers without it; the API refuses other
origins). Every refusal, the gate's or a route's, is JSON `{"error": "..."}` with a 4xx status.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from workerlab.api.objects import pod_terminating
from workerlab.cli.dashboard.actions import Actions
from workerlab.cli.dashboard.auth import (
    PUBLIC_PREFIXES,
    SECURITY_HEADERS,
    TOKEN_PARAM,
    Gate,
    Refused,
    not_authorised_page,
)
from workerlab.cli.dashboard.loading import LoadBody, start_load
from workerlab.cli.dashboard.model import Model
from workerlab.cli.dashboard.record import record_html
from workerlab.cli.dashboard.timeline import YOU
from workerlab.common import journal
from workerlab.common.errors import WorkerlabError

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
    gate = Gate(token or secrets.token_urlsafe(32), port)
    model = hub.model
    background: set[asyncio.Task[Any]] = set()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if on_startup is not None:
            await on_startup()
        yield
        for task in background:
            task.cancel()

    app = FastAPI(
        title="workerlab dashboard",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.gate, app.state.hub = gate, hub

    @app.middleware("http")
    async def gatekeeper(request: Request, call_next: Callable[[Request], Awaitable[Response]]):
        """Host on every request; the token (cookie or bearer) and this origin on everything but
        the static assets and `/` (which answers its own way: the cookie swap, or a page saying
        how to get in)."""
        path = request.url.path
        try:
            gate.check_host(request)
            if path != "/" and not path.startswith(PUBLIC_PREFIXES):
                if request.method in ("GET", "HEAD"):
                    gate.credentials(request)
                    gate.check_origin(request)
                else:
                    gate.check_action(request)
        except Refused as refused:
            headers = {"Cache-Control": "no-store"}
            if refused.status == 401:
                headers["WWW-Authenticate"] = 'Bearer realm="workerlab dashboard"'
            response: Response = JSONResponse(
                {"error": refused.message}, status_code=refused.status, headers=headers
            )
        else:
            response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

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

    def gate_page(status: int, message: str) -> HTMLResponse:
        return HTMLResponse(
            not_authorised_page(port, message),
            status_code=status,
            headers={"Cache-Control": "no-store"},
        )

    @app.get("/", response_class=HTMLResponse)
    async def index(request: Request) -> Response:
        sent = request.query_params.get(TOKEN_PARAM)
        if sent is not None:
            if not gate.token_ok(sent):
                return gate_page(403, "The token in this URL is not this dashboard's (was it "
                                      "restarted? then it printed a new URL).")  # fmt: skip
            # The token becomes the session cookie; the clean URL keeps it out of the history.
            swap = RedirectResponse("/", status_code=303, headers={"Cache-Control": "no-store"})
            swap.set_cookie(
                gate.cookie_name, gate.session, httponly=True, samesite="strict", path="/"
            )
            return swap
        try:
            gate.credentials(request)
        except Refused as refused:
            return gate_page(refused.status, refused.message)
        page = (resources.files("workerlab.cli.dashboard") / "static" / "index.html").read_text()
        page = page.replace("{{NAMESPACE}}", html.escape(model.namespace))
        page = page.replace("{{CONTEXT}}", html.escape(context))
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    app.mount("/static", StaticFiles(directory=static_dir()), name="static")

    def current_view() -> dict[str, Any]:
        """The model's view; none of the namespace's objects once the API server refused the
        kubeconfig's credentials (a revoked token): the page says "not authorised" instead of
        showing what it last saw as if it were current."""
        view = model.view(time.time())
        if view["health"].get("auth") is False:
            view["clusters"], view["orphan_pods"] = [], []
            view["lanes"] = dict(view["lanes"], pods=[])
        return view

    @app.get("/api/state")
    async def state() -> dict[str, Any]:
        return current_view()

    @app.get("/api/record")
    async def record() -> HTMLResponse:
        """The lanes and timeline as one self-contained HTML file (record.py), to download."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return HTMLResponse(
            record_html(current_view(), context),
            headers={
                "Content-Disposition": f'attachment; filename="workerlab-{stamp}.html"',
                "Cache-Control": "no-store",
            },
        )

    @app.get("/api/stream")
    async def stream(request: Request) -> StreamingResponse:
        async def events() -> AsyncIterator[str]:
            version = -1
            yield "retry: 2000\n\n"
            while True:
                if await request.is_disconnected():
                    return
                view = current_view()
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

    @app.post("/api/wc/{name}/scale")
    async def scale(name: str, body: ScaleBody) -> dict[str, Any]:
        known_wc(name)
        return await act(
            f"scaled wc/{name} to {body.replicas} pods", name, actions.scale(name, body.replicas)
        )

    @app.post("/api/wc/{name}/processes")
    async def processes(name: str, body: ProcessesBody) -> dict[str, Any]:
        known_wc(name)
        return await act(
            f"set processesPerPod of wc/{name} to {body.processes_per_pod}",
            name,
            actions.set_processes(name, body.processes_per_pod),
        )

    @app.post("/api/wc/{name}/delete-pod")
    async def delete_pod(name: str, body: PodBody) -> dict[str, Any]:
        known_wc(name)
        pod_of(name, body.pod)
        return await act(f"deleted pod {body.pod}", name, actions.delete_pod(name, body.pod))

    @app.post("/api/wc/{name}/kill-process")
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

    @app.post("/api/wc/{name}/load")
    async def load(name: str, body: LoadBody) -> dict[str, Any]:
        """Answers `started` only once the target answered (its Service reached the way
        `workerlab load wc/NAME` reaches it: NodePort, or the API server's service proxy);
        otherwise the reason, and nothing runs."""
        wc = known_wc(name)
        return await start_load(hub, actions, background, wc, body)

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

    @app.post("/api/labs/{number}/check")
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
