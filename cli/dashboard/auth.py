"""Who may use the dashboard: whoever holds the token in the URL `workerlab dashboard` printed.

Jupyter's way. Another user of the same machine can reach 127.0.0.1:PORT too, so nothing but the
static assets (no secret in them) answers without the token:

  - the CLI prints `http://127.0.0.1:PORT/?token=T`; `GET /?token=T` swaps the token for a
    session cookie (HttpOnly: the page's JavaScript never sees it; SameSite=Strict; named after
    the port, since cookies ignore ports) and redirects to the clean `/`, so the token leaves the
    address bar and the history;
  - every other request needs that cookie, or `Authorization: Bearer T` (scripts, tests);
    without either: 401, with a wrong one: 403, as JSON `{"error": ...}` for the API and a small
    "not authorised" page (no token in it) for `/`;
  - the API (reads included) also refuses what another origin sent (Origin, Sec-Fetch-Site): a
    page on 127.0.0.1:OTHER is *same-site* (cookies ignore ports), so the cookie alone would ride
    along on its requests; and a POST that comes with the cookie must say where it came from.
  - Host must be 127.0.0.1:PORT or localhost:PORT on every request (DNS rebinding).

Checked in constant time; the token itself is never written into a page or a response.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import secrets
from dataclasses import dataclass, field

from starlette.requests import Request

TOKEN_PARAM = "token"
OPEN_PRINTED_URL = "open the URL `workerlab dashboard` printed (http://127.0.0.1:PORT/?token=...)"
# Only these answer without the token: files shipped in the package, none of them secret.
PUBLIC_PREFIXES = ("/static/",)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
}


class Refused(Exception):
    """A request the gate turns away: `status` 401 (no credentials), 403 (wrong ones, or from
    another origin), 421 (foreign Host)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Gate:
    token: str
    port: int
    _session: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        digest = hmac.new(self.token.encode(), b"workerlab-dashboard-session", hashlib.sha256)
        object.__setattr__(self, "_session", digest.hexdigest())

    # --- names --------------------------------------------------------------------------------
    @property
    def cookie_name(self) -> str:
        return f"workerlab-dashboard-{self.port}"

    @property
    def session(self) -> str:
        """The cookie's value: derived from the token, so the token itself never travels twice."""
        return self._session

    @property
    def hosts(self) -> set[str]:
        return {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}

    @property
    def origins(self) -> set[str]:
        return {f"http://{host}" for host in self.hosts}

    def printed_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?{TOKEN_PARAM}={self.token}"

    def hint(self) -> str:
        return OPEN_PRINTED_URL.replace("PORT", str(self.port))

    # --- checks -------------------------------------------------------------------------------
    def token_ok(self, sent: str) -> bool:
        return bool(sent) and secrets.compare_digest(sent.encode(), self.token.encode())

    def check_host(self, request: Request) -> None:
        if request.headers.get("host", "") not in self.hosts:
            raise Refused(421, f"wrong Host header: use http://127.0.0.1:{self.port}/")

    def check_origin(self, request: Request) -> None:
        """Refuse what another origin (another site, or another port of this machine) sent."""
        origin = request.headers.get("origin")
        if origin is not None and origin not in self.origins:
            raise Refused(403, f"cross-origin request from {origin!r} refused")
        if request.headers.get("sec-fetch-site") not in (None, "same-origin", "none"):
            raise Refused(403, "cross-site request refused")

    def credentials(self, request: Request) -> str:
        """'bearer' or 'cookie' when the request holds this dashboard's token; else Refused."""
        authorization = request.headers.get("authorization")
        if authorization is not None:
            scheme, _, sent = authorization.partition(" ")
            if scheme.lower() != "bearer" or not sent.strip():
                raise Refused(401, "not authorised: expected 'Authorization: Bearer TOKEN'")
            if not self.token_ok(sent.strip()):
                raise Refused(403, "not authorised: wrong token (was the dashboard restarted?)")
            return "bearer"
        cookie = request.cookies.get(self.cookie_name)
        if not cookie:
            raise Refused(401, f"not authorised: {self.hint()}")
        if not secrets.compare_digest(cookie.encode(), self.session.encode()):
            raise Refused(
                403,
                "not authorised: this session is not this dashboard's (it was restarted?): "
                + self.hint(),
            )
        return "cookie"

    def check_action(self, request: Request) -> None:
        """A POST: the token (cookie or bearer), and from this origin only."""
        how = self.credentials(request)
        self.check_origin(request)
        if (
            how == "cookie"
            and request.headers.get("origin") is None
            and request.headers.get("sec-fetch-site") != "same-origin"
        ):
            raise Refused(403, "refused: a POST with the session cookie must carry Origin")


def not_authorised_page(port: int, message: str) -> str:
    """What `GET /` shows without the token: how to get in, nothing else (no token in it)."""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>workerlab dashboard: not authorised</title>
<link rel="stylesheet" href="/static/style.css">
</head>
<body class="gate">
<h1>workerlab dashboard: not authorised</h1>
<p id="why">{html.escape(message)}</p>
<p>Open the URL <code>workerlab dashboard</code> printed in its terminal:
<code>http://127.0.0.1:{port}/?token=…</code>. Only the learner who started it has it.</p>
</body>
</html>
"""
