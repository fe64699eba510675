"""The server-rendered pages: the status page, its refreshable part, sign in and out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from edge.web import render, text
from edge.web.access import WebState, client_address, session_of, too_many, web_state
from edge.web.auth import CSRF_COOKIE, DEVICE_COOKIE, SESSION_COOKIE, Limited, csrf_matches
from edge.web.routes_api import FIRST_DAY, LAST_DAY
from edge.web.schemas import Summary

router = APIRouter(include_in_schema=False)
FORM_TYPE = "application/x-www-form-urlencoded"
# How long a browser is remembered as one that knew the PIN (browsers keep 400 days
# at most); the mark is signed with the process's key, so a restart forgets it too.
DEVICE_LIFETIME_S = 400 * 86400


def _day(value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise HTTPException(400, f"'{value[:20]}' is not a day: use the form 2026-11-23.") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise HTTPException(404, f"No figures for {day}: pick a day between {FIRST_DAY} and "
                                 f"{LAST_DAY}.")
    return day


def _dashboard(request: Request, state: WebState, day: dt.date | None) -> tuple[Summary, str]:
    """The figures and their rendered HTML (rendered once per cached summary)."""
    summary = state.dashboard.summary(day)
    html = state.fragments.get(summary, "html")
    if html is None:
        html = state.templates.env.get_template("_dashboard.html").render(
            s=summary, t=text, web=state.web, tz=state.dashboard.tz,
            is_today=summary.footfall.day == state.dashboard.today(),
            wifi_enabled=state.dashboard.site.wifi is not None,
            floor=render.floor_drawing(summary.heatmap, text.duration_text),
            chart=render.footfall_chart(summary.footfall),
        )
        state.fragments.put(summary, "html", html)
    return summary, html


def _secure(request: Request, state: WebState) -> bool:
    """Cookies are ``Secure`` whenever the page is served over HTTPS (``web.tls``)."""
    return state.web.tls is not None or request.url.scheme == "https"


def _with_csrf_cookie(request: Request, response: Response, token: str) -> Response:
    if request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict",
                            secure=_secure(request, web_state(request)), path="/")
    return response


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


@router.get("/", response_class=HTMLResponse)
def index(request: Request, day: str | None = None) -> Response:
    state = web_state(request)
    if not state.open_lan and session_of(request, state) is None:
        return _login_redirect(request)
    summary, html = _dashboard(request, state, _day(day))
    today = state.dashboard.today()
    shown = summary.footfall.day
    csrf = request.cookies.get(CSRF_COOKIE) or state.signer.new_csrf()
    page = state.templates.TemplateResponse(request, "index.html", {
        "s": summary, "web": state.web, "dashboard_html": Markup(html), "csrf": csrf,
        "is_today": shown == today, "previous_day": shown - dt.timedelta(days=1),
        "next_day": shown + dt.timedelta(days=1) if shown < today else None,
        "signed_in": not state.open_lan,
    })
    return _with_csrf_cookie(request, page, csrf)


@router.get("/partials/dashboard", response_class=HTMLResponse)
def dashboard_part(request: Request, day: str | None = None) -> Response:
    state = web_state(request)
    if not state.open_lan and session_of(request, state) is None:
        raise HTTPException(401, "Signed out: sign in again with the store PIN.")
    return HTMLResponse(_dashboard(request, state, _day(day))[1])


def _safe_next(target: str | None) -> str:
    """Only paths on this site: never ``//host`` or ``https://host``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


def _login_page(request: Request, state: WebState, *, status: int = 200, message: str | None = None,
                next_path: str = "/", headers: Mapping[str, str] | None = None) -> Response:
    token = request.cookies.get(CSRF_COOKIE) or state.signer.new_csrf()
    page = state.templates.TemplateResponse(
        request, "login.html",
        {"csrf": token, "message": message, "next": next_path,
         "site_name": state.deps.site.site.name or state.deps.site.site.id},
        status_code=status, headers=dict(headers or {}),
    )
    return _with_csrf_cookie(request, page, token)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:  # noqa: A002
    state = web_state(request)
    if state.open_lan:
        return RedirectResponse("/", status_code=303)
    return _login_page(request, state, next_path=_safe_next(next))


def _same_origin(request: Request) -> bool:
    """A browser sends Origin on a cross-site POST; it must name this host."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


async def _form(request: Request) -> dict[str, str]:
    if request.headers.get("content-type", "").split(";")[0].strip() != FORM_TYPE:
        raise HTTPException(415, "Send the form as application/x-www-form-urlencoded.")
    body = await request.body()
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                          max_num_fields=8)
    except (UnicodeDecodeError, ValueError):
        raise HTTPException(400, "The form could not be read; reload the page.") from None
    return {key: values[0] for key, values in fields.items()}


def _check_form_origin(request: Request, fields: dict[str, str]) -> None:
    if not _same_origin(request):
        raise HTTPException(403, "This form was sent from another site and was refused.")
    if not csrf_matches(request.cookies.get(CSRF_COOKIE), fields.get("csrf")):
        raise HTTPException(403, "The form has expired: reload the page and try again.")


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    state = web_state(request)
    if state.open_lan:
        return RedirectResponse("/", status_code=303)
    fields = await _form(request)
    _check_form_origin(request, fields)
    next_path = _safe_next(fields.get("next"))
    client = client_address(request)
    known = state.signer.known_device(request.cookies.get(DEVICE_COOKIE), state.now())
    try:
        # A device that signed in before is held to its own count only.
        attempt = state.limiter.begin("pin", client, state.now(), box_wide=not known)
    except Limited as limited:
        state.metrics.rate_limited.inc()
        refusal = too_many(limited, "pin")
        return _login_page(request, state, status=429, message=refusal.detail,
                           next_path=next_path, headers=refusal.headers)
    assert state.pin is not None  # create_app refuses pin mode without a PIN
    if not state.pin.matches(fields.get("pin", "").strip()):
        left = state.limiter.failed(attempt)
        state.metrics.auth_failures.labels("pin").inc()
        hint = f" {left} tries left this minute." if left else " Wait a minute before trying again."
        return _login_page(request, state, status=401, next_path=next_path,
                           message="That PIN is not right." + hint)
    state.limiter.succeeded(attempt)
    response = RedirectResponse(next_path, status_code=303)
    lifetime = state.web.session_hours * 3600
    response.set_cookie(
        SESSION_COOKIE, state.signer.issue("associate", lifetime, state.now()),
        max_age=int(lifetime), httponly=True, samesite="strict",
        secure=_secure(request, state), path="/",
    )
    response.set_cookie(
        DEVICE_COOKIE, state.signer.issue_device(DEVICE_LIFETIME_S, state.now()),
        max_age=DEVICE_LIFETIME_S, httponly=True, samesite="strict",
        secure=_secure(request, state), path="/login",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    state = web_state(request)
    fields = await _form(request)
    _check_form_origin(request, fields)
    # Server-side: a copy of the cookie kept anywhere is refused from now on.
    state.signer.revoke(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login" if not state.open_lan else "/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                           secure=_secure(request, state))
    return response
