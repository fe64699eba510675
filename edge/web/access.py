"""Request-level access checks, as FastAPI dependencies.

Readers (page, API): open-lan mode, a PIN session cookie, or an IT bearer token.
IT endpoints: the admin bearer token only. ``/metrics``: open-lan, a session, the
metrics token or the admin token. Every wrong PIN or token counts against the
client's address for that kind of secret; once over the limit that kind gets 429 from
that address until the minute has passed (see :class:`edge.web.auth.FailureLimiter`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.templating import Jinja2Templates

from edge.config.web import WebConfig
from edge.web.auth import (
    SESSION_COOKIE,
    Attempt,
    FailureLimiter,
    Kind,
    Limited,
    SecretCheck,
    Session,
    SessionSigner,
)
from edge.web.dashboard import Dashboard, WebDeps
from edge.web.metrics import WebMetrics
from edge.web.render import FragmentCache

bearer_scheme = HTTPBearer(auto_error=False, description="IT token (web.admin_token).")
session_scheme = APIKeyCookie(name=SESSION_COOKIE, auto_error=False,
                              description="Set by signing in with the store PIN at /login.")


@dataclass(frozen=True, slots=True)
class WebState:
    """Everything a request handler needs, built once per app."""

    deps: WebDeps
    web: WebConfig
    dashboard: Dashboard
    metrics: WebMetrics
    signer: SessionSigner
    limiter: FailureLimiter
    pin: SecretCheck | None
    admin: SecretCheck | None
    metrics_token: SecretCheck | None
    templates: Jinja2Templates
    fragments: FragmentCache

    @property
    def open_lan(self) -> bool:
        return self.web.access == "open-lan"

    def now(self) -> float:
        return self.deps.clock()


def web_state(request: Request) -> WebState:
    return request.app.state.web


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def session_of(request: Request, state: WebState) -> Session | None:
    return state.signer.read(request.cookies.get(SESSION_COOKIE), state.now())


def too_many(limited: Limited, kind: Kind) -> HTTPException:
    """The 429 for a refused try, saying whose count refused it."""
    what = "PINs" if kind == "pin" else "tokens"
    if limited.box_wide:
        detail = (f"Too many wrong PINs on this box from other devices: a device that has "
                  f"not signed in here before can try again in {limited.wait} s.")
    else:
        detail = f"Too many wrong {what} from this device: try again in {limited.wait} s."
    return HTTPException(429, detail, headers={"Retry-After": str(limited.wait)})


def _token_matches(request: Request, state: WebState, token: str,
                   checks: list[tuple[Kind, SecretCheck | None]]) -> bool:
    """Check a presented token against each secret; a wrong one counts against the
    client, once for each kind of secret it was checked against.

    A secret whose kind this client is over the limit for is not tried; when none is
    left, 429.
    """
    client = client_address(request)
    attempts: list[tuple[Attempt, SecretCheck]] = []
    refusals: list[tuple[Limited, Kind]] = []
    for kind, check in checks:
        if check is None:
            continue
        try:
            attempts.append((state.limiter.begin(kind, client, state.now()), check))
        except Limited as limited:
            refusals.append((limited, kind))
    if not attempts and refusals:
        state.metrics.rate_limited.inc()
        raise too_many(*max(refusals, key=lambda refusal: refusal[0].wait))
    for attempt, check in attempts:
        if check.matches(token):
            state.limiter.succeeded(attempt)
            for other, _ in attempts:
                if other is not attempt:
                    state.limiter.release(other)
            return True
    for attempt, _ in attempts:
        state.limiter.failed(attempt)
        state.metrics.auth_failures.labels(attempt.kind).inc()
    return False


def reader_allowed(request: Request, state: WebState, token: str | None) -> bool:
    if state.open_lan or session_of(request, state) is not None:
        return True
    if token is None:
        return False
    if _token_matches(request, state, token, [("admin", state.admin)]):
        return True
    raise HTTPException(403, "That token is not right.")


Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
# Declared so the OpenAPI schema names the session cookie; read in session_of().
SessionCookie = Annotated[str | None, Depends(session_scheme)]


def require_reader(request: Request, bearer: Bearer, _cookie: SessionCookie) -> None:
    """API readers: a PIN session, the IT token, or open-lan mode."""
    state = web_state(request)
    if not reader_allowed(request, state, bearer.credentials if bearer else None):
        raise HTTPException(
            401, "Sign in with the store PIN at /login, or send the IT token.",
            headers={"WWW-Authenticate": "Bearer"},
        )


def require_admin(request: Request, bearer: Bearer) -> None:
    """IT endpoints: ``Authorization: Bearer <web.admin_token>``, nothing else.

    A header is never added by a browser on its own, which makes these endpoints
    safe from cross-site request forgery without a form token.
    """
    state = web_state(request)
    if state.admin is None:
        raise HTTPException(
            403, "IT endpoints are off on this box: set web.admin_token to use them.")
    if bearer is None:
        raise HTTPException(401, "Send the IT token as 'Authorization: Bearer <token>'.",
                            headers={"WWW-Authenticate": "Bearer"})
    if not _token_matches(request, state, bearer.credentials, [("admin", state.admin)]):
        raise HTTPException(403, "That IT token is not right.")


def require_metrics_reader(request: Request, bearer: Bearer) -> None:
    state = web_state(request)
    if state.open_lan or session_of(request, state) is not None:
        return
    if bearer is None:
        raise HTTPException(401, "Send the metrics token as 'Authorization: Bearer <token>'.",
                            headers={"WWW-Authenticate": "Bearer"})
    if not _token_matches(request, state, bearer.credentials,
                          [("metrics", state.metrics_token), ("admin", state.admin)]):
        raise HTTPException(403, "That metrics token is not right.")
