"""A minimal ASGI hello app under exactly the worker's gunicorn/uvicorn-worker settings.

Runs the worker's own entry point (same arbiter class, worker class, keep-alive, timeouts,
heartbeat) with one change: each forked process loads `hello` instead of the FastAPI app.
Usage: WORKER_PROCESSES=2 python bench/minimal_asgi.py --bind 127.0.0.1:PORT
"""

from __future__ import annotations

import json
import os
import sys

from workerlab.worker import __main__ as entry
from workerlab.worker import arbiter

START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json")],
}


async def hello(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = json.dumps({"message": "Hello from Worker!", "pid": os.getpid()}).encode()
    await send(START)
    await send({"type": "http.response.body", "body": body})


arbiter.WorkerApplication.load = lambda self: hello

if __name__ == "__main__":
    sys.exit(entry.main())
