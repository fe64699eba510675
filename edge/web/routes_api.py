"""The REST API (``/api/v1``): the page's figures as JSON, described by OpenAPI."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from edge.web.access import require_reader, web_state
from edge.web.schemas import (
    Footfall,
    Health,
    Heatmap,
    Mix,
    Occupancy,
    Problem,
    Summary,
    Wifi,
    ZoneDwellList,
)

FIRST_DAY = dt.date(2000, 1, 1)
LAST_DAY = dt.date(2100, 12, 31)

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Not signed in."},
    403: {"model": Problem, "description": "Wrong token."},
    404: {"model": Problem, "description": "A day outside 2000-01-01 to 2100-12-31."},
    422: {"model": Problem, "description": "A parameter is not valid."},
    429: {"model": Problem, "description": "Too many wrong PINs or tokens; wait."},
    503: {"model": Problem, "description": "The database is busy or cannot be read."},
}

router = APIRouter(prefix="/api/v1", tags=["figures"], dependencies=[Depends(require_reader)],
                   responses=ERRORS)


def chosen_day(
    day: Annotated[dt.date | None, Query(
        description="Day in store time, YYYY-MM-DD (2000-01-01 to 2100-12-31); default today.",
    )] = None,
) -> dt.date | None:
    if day is not None and not FIRST_DAY <= day <= LAST_DAY:
        # A well-formed date the box cannot hold figures for: no such day here.
        raise HTTPException(404, f"No figures for {day}: days from {FIRST_DAY} to {LAST_DAY} only.")
    return day


Day = Annotated[dt.date | None, Depends(chosen_day)]


def _figures(request: Request, day: dt.date | None, part: str | None) -> Response:
    """One part of the day's summary as JSON, serialised once per cached summary.

    The parts are validated pydantic models already; skipping FastAPI's second
    validation of the same object keeps a busy page cheap.
    """
    state = web_state(request)
    summary = state.dashboard.summary(day)
    name = part or "summary"
    body = state.fragments.get(summary, name)
    if body is None:
        body = (getattr(summary, part) if part else summary).model_dump_json()
        state.fragments.put(summary, name, body)
    return Response(body, media_type="application/json")


def _now_figure(request: Request, part: str) -> Response:
    """A figure of now (occupancy, health) from its own few queries: not the day's whole
    summary, whose heat map and visit figures it does not need."""
    dashboard = web_state(request).dashboard
    figure = dashboard.occupancy() if part == "occupancy" else dashboard.health()
    return Response(figure.model_dump_json(), media_type="application/json")


def _endpoint(part: str | None, dated: bool) -> Callable[..., Response]:
    """The handler of one part: with the ``?day=`` parameter, or of now only."""
    if not dated:
        def now(request: Request) -> Response:
            return _now_figure(request, part or "")
        return now

    def of_day(request: Request, day: Day) -> Response:
        return _figures(request, day, part)
    return of_day


# Path (and summary part; "summary" is all of it), its model, whether ?day= applies, title.
ROUTES: tuple[tuple[str, type[BaseModel], bool, str], ...] = (
    ("summary", Summary, True, "Everything on the status page"),
    ("occupancy", Occupancy, False, "People in the store now"),
    ("footfall", Footfall, True, "Visits per hour against the same weekday last week"),
    ("heatmap", Heatmap, True, "Dwell time per floor grid cell"),
    ("zones", ZoneDwellList, True, "Visitors and time per zone"),
    ("mix", Mix, True, "Shopper traits and segments"),
    ("wifi", Wifi, True, "Wi-Fi passers-by and capture rate"),
    ("health", Health, False, "Cameras, sensor, link and box health"),
)

for _path, _model, _dated, _title in ROUTES:
    router.add_api_route(
        f"/{_path}", _endpoint(None if _path == "summary" else _path, _dated), methods=["GET"],
        response_model=_model, summary=_title, name=f"get_{_path}",
    )
