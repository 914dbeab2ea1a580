"""The FastAPI app each forked process serves: the seed's "Hello from Worker!", made observable."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from workerlab.api.processes import ProcessesReport
from workerlab.worker import faults, metrics, siblings
from workerlab.worker.config import MAX_CPU_MS, MAX_IO_MS, Settings
from workerlab.worker.counter import CounterUnavailable, make_counter
from workerlab.worker.process_state import ProcessState


class Hello(BaseModel):
    """`GET /`: the seed's greeting plus which process, of which pod, answered."""

    message: str
    pod: str
    pid: int
    process_index: int
    generation: int
    arbiter_pid: int | None
    started_at: float
    lab_mode: bool
    uptime_s: float
    requests_served: int


def burn_cpu(ms: int) -> int:
    """Hash in a tight loop for about `ms` milliseconds, holding this process's only thread."""
    deadline = time.perf_counter() + ms / 1000
    digest, rounds = b"workerlab", 0
    while time.perf_counter() < deadline:
        for _ in range(500):
            digest = hashlib.sha256(digest).digest()
        rounds += 500
    return rounds


def allowed_methods(app: FastAPI, scope: MutableMapping[str, Any]) -> list[str]:
    """Every method some route serves at this request's path (for a 405's Allow header)."""
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches(scope)
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


def create_app(settings: Settings) -> FastAPI:
    identity = siblings.current
    state = siblings.StateDir(settings.state_dir or Path(tempfile.mkdtemp(prefix="workerlab-")))
    state.processes.mkdir(parents=True, exist_ok=True)
    process = ProcessState(identity, state)
    counter = make_counter(settings.redis_url)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        process.publish()
        publisher = asyncio.create_task(process.publish_periodically())
        try:
            yield
        finally:
            publisher.cancel()
            with contextlib.suppress(OSError):
                process.publish()
            await counter.close()

    app = FastAPI(
        title="workerlab worker",
        summary="One process of the pod's master-worker: gunicorn's arbiter forked it.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_middleware(metrics.RequestMetrics, process=process)

    def who() -> dict:
        return {"pod": settings.pod_name, "pid": identity.pid, "process_index": identity.index}

    @app.exception_handler(CounterUnavailable)
    async def counter_unavailable(request: Request, exc: CounterUnavailable) -> JSONResponse:
        body = {"error": "redis unavailable", "detail": str(exc), "backend": counter.name}
        return JSONResponse(body | who(), status_code=503)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:
            # Starlette names only the methods of the first route matching the path, so a path
            # served by two routes (GET and POST /counter) would advertise just one of them.
            exc.headers = {"Allow": ", ".join(allowed_methods(app, request.scope))}
        return await http_exception_handler(request, exc)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        body = {"error": "internal error", "detail": type(exc).__name__}
        return JSONResponse(body | who(), status_code=500)

    # The hot path: the fields fixed for this process's life are encoded once, and the
    # Response is returned as is, so FastAPI skips validating and re-serialising a dict.
    hello_prefix = json.dumps(
        {
            "message": "Hello from Worker!",
            **who(),
            "generation": identity.generation,
            "arbiter_pid": identity.arbiter_pid,
            "started_at": identity.started_at,
            "lab_mode": settings.lab_mode,
        },
        separators=(",", ":"),
    )[:-1].encode()

    @app.get("/", response_model=Hello)
    async def hello() -> Response:
        uptime = round(identity.uptime(), 3)
        tail = f',"uptime_s":{uptime},"requests_served":{process.requests_served}}}'
        return Response(hello_prefix + tail.encode(), media_type="application/json")

    @app.get("/work/cpu")
    async def work_cpu(
        ms: int = Query(..., ge=0, le=MAX_CPU_MS, description="milliseconds of hashing"),
    ) -> dict:
        # Deliberately on the event loop, like Node's single thread: this process answers
        # nothing else meanwhile; its siblings do.
        started = time.perf_counter()
        rounds = burn_cpu(ms)
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        return who() | {"ms": ms, "elapsed_ms": elapsed_ms, "hash_rounds": rounds}

    @app.get("/work/io")
    async def work_io(
        ms: int = Query(..., ge=0, le=MAX_IO_MS, description="milliseconds of non-blocking wait"),
    ) -> dict:
        started = time.perf_counter()
        deadline = started + ms / 1000
        # The event loop may wake a sleep up to its clock resolution early: wait out the rest.
        while (remaining := deadline - time.perf_counter()) > 0:
            await asyncio.sleep(remaining)
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        return who() | {"ms": ms, "elapsed_ms": elapsed_ms}

    @app.get("/healthz")
    async def healthz() -> dict:
        return who() | {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        if state.is_draining():
            body = who() | {"ready": False, "reason": "shutting down: draining in-flight requests"}
            return JSONResponse(body, status_code=503)
        return JSONResponse(who() | {"ready": True})

    @app.get("/processes")
    async def processes() -> dict:
        with contextlib.suppress(OSError):
            process.publish()
        report = ProcessesReport(
            pod=settings.pod_name,
            arbiter_pid=identity.arbiter_pid or os.getppid(),
            served_by=identity.pid,
            balance=settings.balance,
            processes=state.read_records(),
        )
        return report.to_dict()

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,  # documents text/plain: Prometheus' text format
        responses={200: {"description": "Prometheus text exposition of the pod's processes"}},
    )
    async def prometheus_metrics() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @app.get("/counter")
    async def get_counter() -> dict:
        return who() | {"count": await counter.value(), "backend": counter.name}

    @app.post("/counter")
    async def increment_counter() -> dict:
        return who() | {"count": await counter.increment(), "backend": counter.name}

    if settings.lab_mode:
        app.include_router(faults.router)
    return app
