"""A plain FastAPI hello app (one route returning a dict) under the worker's own arbiter.

The second reference of the spread bench: what FastAPI itself costs, with none of the worker's
middleware, counting or pre-encoded body. Same entry point, arbiter, worker class, settings and
BALANCE as the worker; each forked process loads this app instead.
Usage: WORKER_PROCESSES=2 BALANCE=shared python bench/fastapi_hello.py --bind 127.0.0.1:PORT
"""

from __future__ import annotations

import os
import sys

from fastapi import FastAPI

from workerlab.worker import __main__ as entry
from workerlab.worker import arbiter


def create_hello() -> FastAPI:
    app = FastAPI()

    @app.get("/")
    async def hello() -> dict:
        return {"message": "Hello from Worker!", "pid": os.getpid()}

    return app


arbiter.WorkerApplication.load = lambda self: create_hello()

if __name__ == "__main__":
    sys.exit(entry.main())
