"""`workerlab dashboard`: both levels of the master-worker pattern, live, in a browser.

- `model`    pure: folds watch events and /processes polls into a view and a "who healed it"
             timeline (no I/O; unit-tested);
- `source`   the I/O: `kubectl proxy` for credentials, httpx list+watch and pod-proxy polls;
- `actions`  what the page may do, through the same code as `workerlab chaos` / `load`;
- `app`      the FastAPI app: the page, the SSE stream, the token- and Origin-checked POSTs.
"""
