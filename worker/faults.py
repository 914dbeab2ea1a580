"""Fault injection for the labs, mounted only in lab mode. Each fault is healed by another layer.

The response is sent first and the fault strikes a moment later, so the learner sees which pid
was hit and who is expected to heal it.
"""

from __future__ import annotations

import asyncio
import os
import time

from fastapi import APIRouter, BackgroundTasks, Query, Request

from workerlab.worker import metrics, siblings
from workerlab.worker.config import MAX_LEAK_MB

CRASH_EXIT_CODE = 70  # not 3 or 4: gunicorn halts the whole server on those (boot/app-load error)
HANG_MAX_S = 3600  # a hang is bounded too, should WORKER_TIMEOUT=0 disable the arbiter's watchdog
_FLUSH_S = 0.05  # lets the event loop write the response before the fault strikes

_leaked: list[bytearray] = []  # kept referenced on purpose: that is the leak

router = APIRouter(tags=["faults (lab mode only)"])


async def _exit_abruptly() -> None:
    await asyncio.sleep(_FLUSH_S)
    os._exit(CRASH_EXIT_CODE)  # like an uncaught exception in Node: no cleanup, no goodbye


async def _block_event_loop() -> None:
    await asyncio.sleep(_FLUSH_S)
    # A blocking sleep on the event loop: no request and no heartbeat gets through, so the
    # arbiter's WORKER_TIMEOUT watchdog kills this process and forks a replacement.
    time.sleep(HANG_MAX_S)


def _base(request: Request) -> dict:
    pod = request.app.state.settings.pod_name
    return {"pod": pod, "pid": os.getpid(), "process_index": siblings.current.index}


@router.post("/crash", status_code=202)
async def crash(request: Request, background: BackgroundTasks) -> dict:
    background.add_task(_exit_abruptly)
    return _base(request) | {
        "fault": "crash",
        "effect": f"this process exits with code {CRASH_EXIT_CODE} right after this response",
        "healed_by": "gunicorn arbiter: it reaps the dead process and forks a replacement",
    }


@router.post("/hang", status_code=202)
async def hang(request: Request, background: BackgroundTasks) -> dict:
    background.add_task(_block_event_loop)
    return _base(request) | {
        "fault": "hang",
        "effect": "this process stops answering (its event loop is blocked)",
        "healed_by": "gunicorn arbiter: after WORKER_TIMEOUT without a heartbeat it kills "
        "the process and forks a replacement",
    }


@router.post("/leak")
async def leak(
    request: Request, mb: int = Query(64, ge=1, le=MAX_LEAK_MB, description="MiB to leak")
) -> dict:
    # Filled with a non-zero byte so the pages are really resident, not lazily zero-mapped.
    _leaked.append(bytearray(b"\x01") * (mb * 1024 * 1024))
    total = sum(len(chunk) for chunk in _leaked)
    metrics.LEAKED_BYTES.set(total)
    return _base(request) | {
        "fault": "leak",
        "leaked_mb": mb,
        "leaked_mb_total": total // (1024 * 1024),
        "healed_by": "kubelet: the container is OOM-killed at its memory limit and restarted; "
        "or gunicorn arbiter: MAX_REQUESTS recycles the process first",
    }
