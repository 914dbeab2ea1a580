"""`workerlab dashboard`: both levels of the master-worker pattern, live, in a browser.

- `model`    pure: folds watch events and /processes polls into a view and a "who healed it"
             timeline (no I/O; unit-tested);
- `source`   the I/O: `kubectl proxy` for credentials, httpx list+watch and pod-proxy polls;
- `actions`  what the page may do, through the same code as `workerlab chaos` / `load`;
- `auth`     who may use it: the printed URL's token -> an HttpOnly session cookie (Jupyter's
             way); nothing but the static assets answers without it; other origins refused;
- `loading`  the load button: reported `started` only once the target answered;
- `app`      the FastAPI app: the page, the SSE stream, the actions, behind `auth`'s gate.
"""
