"""IT endpoints (config view, debug, restart), Prometheus ``/metrics`` and ``/healthz``."""

from __future__ import annotations

import json
import os
import platform
import re
import sqlite3
import sys
import time
from importlib import metadata
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from edge.errors import DataFormatError, StorageError
from edge.pos import store as pos_store
from edge.pos.store import store_periods
from edge.pos.till import parse_periods
from edge.storage.database import open_database
from edge.web import queries
from edge.web.access import require_admin, require_metrics_reader, web_state
from edge.web.dbread import DatabaseMissing, table_names
from edge.web.routes_api import ERRORS
from edge.web.schemas import Figures

SECRET_KEYS = re.compile(r"(pass|secret|token|pin|key|credential)", re.IGNORECASE)
MAC_ADDRESS = re.compile(r"\b[0-9a-f]{2}([:-]?)[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}\b", re.IGNORECASE)
URL_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)
COUNTED_TABLES = ("runs", "track_points", "visits", "visit_zone_dwell", "visit_traits",
                  "visit_segments", "line_crossings", "wifi_windows", "health", "privacy_audit",
                  "debug_modes", "visit_queue_waits", "pos_periods")
PACKAGES = ("fastapi", "starlette", "uvicorn", "pydantic", "prometheus-client", "sqlite-utils",
            "onnxruntime", "numpy")


class Liveness(Figures):
    status: str


class Restarting(Figures):
    detail: str


class Debug(Figures):
    """Process and database facts for IT. Row counts only, never rows."""

    pid: int
    python: str
    platform: str
    uptime_s: float
    packages: dict[str, str]
    sqlite_version: str
    database_path: str
    database_bytes: int | None
    journal_mode: str | None
    table_rows: dict[str, int]
    summaries_computed: int
    clients_with_failed_sign_ins: int
    version: str = Field(description="Software version.")
    model: str | None = Field(description="Person detector model of the latest run.")
    spec_version: str | None = Field(
        description="Shopper-type definitions (segment spec) version of the latest visit.")


router = APIRouter()


@router.get("/healthz", response_model=Liveness, tags=["service"],
            summary="Liveness: the page's process answers (no data, no sign-in)")
async def healthz() -> Liveness:
    return Liveness(status="ok")


@router.get(
    "/metrics", tags=["service"], summary="Prometheus metrics",
    dependencies=[Depends(require_metrics_reader)],
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."},
               **{c: ERRORS[c] for c in (401, 403, 429)}},
)
def metrics(request: Request) -> Response:
    registry = web_state(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def redact(value: Any, key: str = "") -> Any:
    """The config with secrets hidden: secret-like keys, passwords inside URLs, and MAC
    addresses (``wifi.exclude_addresses`` lists staff devices: identifiers, never served)."""
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, key) for v in value]
    if value is not None and SECRET_KEYS.search(key) and not isinstance(value, bool):
        return "(hidden)"
    if isinstance(value, str):
        value = MAC_ADDRESS.sub("(MAC address hidden)", value)
        return URL_USERINFO.sub(r"\g<scheme>(hidden)@", value)
    return value


admin = APIRouter(prefix="/admin", tags=["IT"], dependencies=[Depends(require_admin)],
                  responses={c: ERRORS[c] for c in (401, 403, 429, 503)})


class ConfigView(BaseModel):
    """The site config in use, secrets hidden."""

    config: dict[str, Any]


@admin.get("/config", response_model=ConfigView, summary="The site config in use, secrets hidden")
def config_view(request: Request) -> ConfigView:
    site = web_state(request).deps.site
    return ConfigView(config=redact(site.model_dump(mode="json")))


@admin.get("/debug", response_model=Debug, summary="Process and database facts")
def debug(request: Request) -> Debug:
    state = web_state(request)
    rows: dict[str, int] = {}
    journal = None
    model = spec = None
    try:
        with state.dashboard.db.connect() as conn:
            journal = conn.execute("pragma journal_mode").fetchone()[0]
            present = table_names(conn)
            model = queries.latest_model(conn, present)
            spec = queries.spec_version(conn, present)
            for table in COUNTED_TABLES:
                if table in present:
                    rows[table] = conn.execute(f"select count(*) from {table}").fetchone()[0]
    except DatabaseMissing:
        pass
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = "not installed"
    return Debug(
        pid=os.getpid(), python=sys.version.split()[0], platform=platform.platform(),
        uptime_s=round(time.time() - state.deps.started_at, 1), packages=packages,
        sqlite_version=sqlite3.sqlite_version, database_path=str(state.deps.db_path),
        database_bytes=state.dashboard.db.size_bytes(), journal_mode=journal, table_rows=rows,
        summaries_computed=state.dashboard.computed,
        clients_with_failed_sign_ins=state.limiter.tracked_clients,
        version=state.deps.version, model=model or state.deps.site.detector.model,
        spec_version=spec,
    )


class PrivacyAuditRow(Figures):
    """One change of a privacy-relevant setting, key rotation or debug mode."""

    id: int
    at: float = Field(description="Epoch seconds.")
    setting: str
    old: Any = Field(description="Value before (null: first record).")
    new: Any
    source: str = Field(description="Who changed it: a service start, a downlink, a debug run.")


class PrivacyAudit(Figures):
    """The privacy audit log, newest first, and the debug modes on now."""

    rows: list[PrivacyAuditRow]
    debug_modes_on: list[str]


@admin.get("/privacy-audit", response_model=PrivacyAudit,
           summary="Audit log of privacy settings, key rotations and debug modes")
def privacy_audit(request: Request,
                  limit: int = Query(500, ge=1, le=10_000, description="Newest rows to return."),
                  ) -> PrivacyAudit:
    state = web_state(request)
    rows: list[PrivacyAuditRow] = []
    modes: list[str] = []
    try:
        with state.dashboard.db.connect() as conn:
            present = table_names(conn)
            if "privacy_audit" in present:
                for id_, at, setting, old, new, source in conn.execute(
                        "select id, at, setting, old, new, source from privacy_audit "
                        "order by id desc limit ?", (limit,)):
                    rows.append(PrivacyAuditRow(
                        id=id_, at=at, setting=setting, source=source,
                        old=None if old is None else json.loads(old),
                        new=None if new is None else json.loads(new)))
            if "debug_modes" in present:
                modes = [name for (name,) in conn.execute(
                    "select name from debug_modes order by started_at")]
    except DatabaseMissing:
        pass
    return PrivacyAudit(rows=rows, debug_modes_on=modes)


class TillPeriodIn(BaseModel):
    """One till period: its start and how many transactions the tills counted."""

    start: str = Field(max_length=64,
                       description="ISO 8601 start; without an offset, store time.")
    transactions: int = Field(ge=0, le=10_000_000, description="Whole number, zero or more.")
    period_s: int | None = Field(None, ge=60, le=86_400,
                                 description="Length (s); default the push's or pos.period_s.")


class TillPush(BaseModel):
    """Transactions per till period, counts only (no customer data)."""

    period_s: int | None = Field(None, ge=60, le=86_400,
                                 description="Length of every period (s), dividing a day.")
    periods: list[TillPeriodIn] = Field(min_length=1, max_length=2000)


class TillStored(Figures):
    stored: int = Field(description="Periods stored.")
    replaced: int = Field(description="Of which replaced a count stored before.")


@admin.post("/pos", response_model=TillStored,
            summary="Store transaction counts per till period (idempotent per period)",
            responses={409: {"model": ERRORS[401]["model"],
                             "description": "An unknown period (not on the till period grid, "
                             "not ended, unreadable), a period given twice, or one overlapping "
                             "a stored period of another length; nothing is stored."},
                       422: ERRORS[422]})
def push_till_periods(request: Request, push: TillPush) -> TillStored:
    """Validated like ``edge pos import``: one bad period refuses the whole push and
    nothing is stored (422: a count that is negative or not a whole number; 409: an
    unknown or repeated period); a period stored before is replaced."""
    state = web_state(request)
    site = state.deps.site
    now = state.deps.clock()
    default = push.period_s if push.period_s is not None else site.pos.period_s
    try:
        periods = parse_periods(
            [(f"periods[{i}]", p.start, p.transactions, p.period_s)
             for i, p in enumerate(push.periods)],
            default_period_s=default, tz=state.dashboard.tz, now=now,
        )
        # The page only reads the database; this IT write opens its own connection.
        db = open_database(state.deps.db_path, migrations=[pos_store.MIGRATIONS])
        result = store_periods(db, periods, source="push", now=now)
    except DataFormatError as error:
        raise HTTPException(409, str(error)) from None
    except StorageError as error:
        raise HTTPException(503, str(error)) from None
    return TillStored(stored=result.stored, replaced=result.replaced)


@admin.post("/restart", response_model=Restarting, status_code=202,
            summary="Restart the status page's service",
            responses={409: {"model": ERRORS[401]["model"],
                             "description": "Not running under its service manager."}})
def restart(request: Request) -> Response:
    state = web_state(request)
    if state.deps.restart is None:
        raise HTTPException(409, "This page is not running as a service, so it cannot restart "
                            "itself; restart it where it was started.")
    body = Restarting(detail="Restarting the status page; it will be back in a few seconds.")
    return Response(body.model_dump_json(), status_code=202, media_type="application/json",
                    background=BackgroundTask(state.deps.restart))
