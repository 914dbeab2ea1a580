"""The page's load button: a bounded run in the background, reported `started` only once the
target answered.

The target is reached the way `workerlab load wc/NAME` reaches it (`targets.resolve` + `reach`):
its NodePort on loopback, or, in a class namespace (ClusterIP only), the API server's service
proxy behind a `kubectl proxy` with the learner's own credentials. When that fails (no Service
yet, no right to services/proxy, no ready endpoint) the POST says why and nothing runs: the
page never says "started" for a run that cannot reach anything.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException
from pydantic import BaseModel, Field

from workerlab.cli.dashboard.actions import (
    MAX_LOAD_CONCURRENCY,
    MAX_LOAD_DURATION_S,
    MAX_LOAD_REQUESTS,
    Actions,
)
from workerlab.cli.dashboard.timeline import YOU
from workerlab.common.errors import WorkerlabError

if TYPE_CHECKING:
    from workerlab.cli.dashboard.app import Hub

LOAD_START_TIMEOUT_S = 30.0  # resolving the target, `kubectl proxy`, one /healthz


class LoadBody(BaseModel):
    path: str = Field("/", max_length=200, pattern=r"^/[A-Za-z0-9/_.?=&%-]*$")
    requests: int = Field(200, ge=1, le=MAX_LOAD_REQUESTS)
    concurrency: int = Field(8, ge=1, le=MAX_LOAD_CONCURRENCY)
    duration_s: float = Field(20.0, gt=0, le=MAX_LOAD_DURATION_S)


async def start_load(
    hub: Hub,
    actions: Actions,
    background: set[asyncio.Task[Any]],
    wc: dict[str, Any],
    body: LoadBody,
    start_timeout_s: float = LOAD_START_TIMEOUT_S,
) -> dict[str, Any]:
    name = wc["metadata"]["name"]
    model = hub.model
    if hub.load_running:
        raise HTTPException(409, f"a load run is already going ({hub.load_running})")
    hub.load_running = f"wc/{name}"
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_ready(via: str) -> None:
        if ready.done():
            return
        ready.set_result(via)
        model.add(
            YOU,
            f"started load on wc/{name}{body.path} ({via}): {body.requests} requests, "
            f"{body.concurrency} at a time, at most {body.duration_s:g} s",
            time.time(),
            wc=name,
        )
        hub.notify()

    async def run() -> None:
        try:
            summary = await actions.load(
                wc, body.path, body.requests, body.concurrency, body.duration_s, on_ready
            )
            model.add(
                YOU,
                f"load on wc/{name}{body.path} done: {summary.get('ok')} ok, "
                f"{summary.get('errors')} errors in {summary.get('elapsed_s')} s",
                time.time(),
                wc=name,
            )
        except asyncio.CancelledError:
            if not ready.done():
                ready.cancel()
            raise
        except Exception as error:
            if not ready.done():  # not started: the POST says why
                ready.set_exception(error)
            elif isinstance(error, WorkerlabError | ValueError):
                model.add(YOU, f"load on wc/{name} failed: {error}", time.time(), wc=name)
            else:
                raise
        finally:
            hub.load_running = None
            hub.notify()

    task = asyncio.create_task(run())
    background.add(task)
    task.add_done_callback(background.discard)
    try:
        via = await asyncio.wait_for(asyncio.shield(ready), start_timeout_s)
    except TimeoutError:
        task.cancel()
        raise HTTPException(
            504, f"load not started: wc/{name} did not answer within {start_timeout_s:g} s"
        ) from None
    except Exception as error:  # WorkerlabError above all; anything else said as plainly
        hint = getattr(error, "hint", None)
        raise HTTPException(
            502, f"load not started: {error}" + (f" (hint: {hint})" if hint else "")
        ) from None
    return {"ok": True, "started": True, "via": via}
