"""``create_app(deps)``: the status page's FastAPI application.

Built by a factory from its dependencies (site config, database path, clock,
restart hook), so tests build one on a real SQLite file. Per-app objects live on
``app.state.web``, set up in the lifespan. Every failure becomes a short, plain
answer: HTML for the pages, JSON for the API; never a traceback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge.errors import ConfigError
from edge.web import routes_admin, routes_api, routes_pages
from edge.web.access import WebState
from edge.web.auth import FailureLimiter, SecretCheck, SessionSigner
from edge.web.dashboard import Dashboard, WebDeps
from edge.web.dbread import DatabaseBusy, DatabaseUnreadable
from edge.web.hosts import HostRule
from edge.web.metrics import WebMetrics
from edge.web.render import FragmentCache

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
MAX_QUERY_CHARS = 2048
PAGE_PATHS = ("/", "/login", "/logout", "/partials/")
SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
     b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),  # no-referrer would make form posts send "Origin: null"
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]


class BodyTooLarge(Exception):
    """The request body is over ``web.max_request_bytes``."""


class Guard:
    """Outermost ASGI layer: host names, size limits, security headers, request metrics.

    Refuses a ``Host`` that :class:`HostRule` does not allow (421), against DNS rebinding.
    Refuses a declared body over the limit before reading it (413), and stops
    reading a chunked one as soon as it passes the limit.
    """

    def __init__(self, app: ASGIApp, *, max_body: int, hosts: HostRule, metrics_of) -> None:
        self.app = app
        self.max_body = max_body
        self.hosts = hosts
        self.metrics_of = metrics_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host")
        if not self.hosts.allows(None if host is None else host.decode("latin-1")):
            words = ("This page does not answer to that host name: use the box's address, or "
                     "add the name to web.allowed_hosts.")
            await JSONResponse({"detail": words}, status_code=421)(scope, receive, send)
            return
        declared = headers.get(b"content-length", b"0")
        too_big = not declared.isdigit() or int(declared) > self.max_body
        if too_big or len(scope.get("query_string", b"")) > MAX_QUERY_CHARS:
            code = 414 if not too_big else (400 if not declared.isdigit() else 413)
            words = {413: "The request is too large.", 414: "The address is too long.",
                     400: "The request's length is not valid."}[code]
            await JSONResponse({"detail": words}, status_code=code)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge()
            return message

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or (
                "/static" if scope.get("path", "").startswith("/static/") else "unmatched")
            metrics = self.metrics_of()
            if metrics is not None:
                metrics.requests.labels(name, str(status["code"])).inc()
                metrics.latency.labels(name).observe(time.perf_counter() - started)


def _wants_html(request: Request) -> bool:
    path = request.url.path
    return path == "/" or any(path.startswith(p) for p in PAGE_PATHS[1:])


def _problem(request: Request, status: int, detail: str, headers: dict | None = None) -> Response:
    if _wants_html(request) and hasattr(request.app.state, "web"):
        templates = request.app.state.web.templates
        return templates.TemplateResponse(request, "error.html", {"status": status,
                                          "detail": detail}, status_code=status, headers=headers)
    if _wants_html(request):
        return HTMLResponse(f"<p>{status}: {detail}</p>", status_code=status, headers=headers)
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _validation_detail(error: RequestValidationError) -> str:
    parts = []
    for item in error.errors()[:3]:
        where = ".".join(str(p) for p in item.get("loc", ())[1:]) or "request"
        parts.append(f"{where}: {item.get('msg', 'not valid')}")
    return "; ".join(parts) or "The request is not valid."


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        detail = error.detail if isinstance(error.detail, str) else "The request was refused."
        # Starlette's own words for unknown paths and methods, in plain English.
        if error.status_code == 404 and detail == "Not Found":
            detail = "There is no such page here."
        elif error.status_code == 405 and detail == "Method Not Allowed":
            detail = "That method is not allowed here."
        return _problem(request, error.status_code, detail, getattr(error, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Response:
        return _problem(request, 422, _validation_detail(error))

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, error: BodyTooLarge) -> Response:
        return _problem(request, 413, "The request is too large.")

    @app.exception_handler(DatabaseBusy)
    async def busy(request: Request, error: DatabaseBusy) -> Response:
        log.warning("%s", error)
        return _problem(request, 503, "The figures are being updated right now: try again in "
                        "a few seconds.", {"Retry-After": "2"})

    @app.exception_handler(DatabaseUnreadable)
    async def unreadable(request: Request, error: DatabaseUnreadable) -> Response:
        log.error("%s", error)
        return _problem(request, 503, "The figures cannot be read: the database on this box "
                        "is damaged or not an edge database. Call IT.", {"Retry-After": "30"})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        log.exception("Unexpected error answering %s %s", request.method, request.url.path)
        return _problem(request, 500, "Something went wrong on the box; the details are in "
                        "its log.")


def _secret(value) -> SecretCheck | None:
    return SecretCheck(value.get_secret_value()) if value is not None else None


def build_state(deps: WebDeps) -> WebState:
    """Check the ``web:`` config and build the app's objects.

    Raises:
        ConfigError: PIN access without a PIN.
    """
    web = deps.site.web
    if web.access == "pin" and web.pin is None:
        raise ConfigError(
            "web.access is 'pin' but no web.pin is set: add `pin: ${EDGE_WEB_PIN}` to the web: "
            "section (and set EDGE_WEB_PIN), or choose `access: open-lan` on a closed network"
        )
    dashboard = Dashboard(deps)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    return WebState(
        deps=deps, web=web, dashboard=dashboard, metrics=WebMetrics(dashboard),
        signer=SessionSigner(), limiter=FailureLimiter(web.login_attempts_per_minute,
                                                 pin_per_hour=web.pin_failures_per_hour),
        pin=_secret(web.pin), admin=_secret(web.admin_token),
        metrics_token=_secret(web.metrics_token), templates=templates,
        fragments=FragmentCache(),
    )


def create_app(deps: WebDeps) -> FastAPI:
    """The status page app for ``deps``; config problems raise :class:`ConfigError` here."""
    state = build_state(deps)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Set, never removed: a test client may run the lifespan again inside another.
        app.state.web = state
        log.info("Status page for store %s reading %s (access: %s).",
                 deps.site.site.id, deps.db_path, state.web.access)
        yield

    app = FastAPI(
        title="Store edge status",
        version=deps.version,
        description="Figures of this store, aggregated on the box: occupancy, footfall, dwell, "
        "shopper mix, Wi-Fi counts and health. Never a person, a frame or an identifier.",
        lifespan=lifespan,
        # No Swagger/ReDoc pages: they load their scripts from a CDN, which the box
        # may not reach and the page's CSP refuses. The schema itself is served.
        docs_url=None, redoc_url=None, openapi_url="/api/openapi.json",
    )
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(routes_pages.router)
    app.include_router(routes_api.router)
    app.include_router(routes_admin.router)
    app.include_router(routes_admin.admin)
    _install_handlers(app)
    app.add_middleware(Guard, max_body=state.web.max_request_bytes,
                       hosts=HostRule(state.web.host, state.web.allowed_hosts),
                       metrics_of=lambda: getattr(app.state, "web", None) and app.state.web.metrics)
    return app
