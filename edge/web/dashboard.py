"""Assembles the status page's figures from the database, with a short cache.

Fifty tablets refreshing at once cost one set of queries: a summary is reused
for ``web.cache_s`` seconds, and while one request computes it the others wait
for that result instead of querying in parallel (even with ``cache_s: 0``, a
request that waited gets the figures read after it arrived, never older ones).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from edge import __version__
from edge.config import SiteConfig
from edge.errors import ConfigError, StorageError
from edge.privacy.overrides import effective_k
from edge.retention import positions_kept_since, visits_kept_since
from edge.web import queries
from edge.web.dbread import DatabaseMissing, ReadOnlyDatabase, table_names
from edge.web.health import SystemProbe, site_health
from edge.web.heatcells import HeatCellCache
from edge.web.queries import DayWindow
from edge.web.schemas import (
    ComponentHealth,
    DataState,
    DebugModeOn,
    Health,
    Occupancy,
    Summary,
)
from edge.web.text import clock_text

CACHED_DAYS = 8
NowFigure = TypeVar("NowFigure", Occupancy, Health)


@dataclass(frozen=True, slots=True)
class WebDeps:
    """What the web app needs from outside; tests pass their own.

    Attributes:
        site: the site config (floor, zones, privacy k, ``web:`` section).
        db_path: the local SQLite database (read only by the page).
        clock: epoch seconds now; tests fix it to replay a given moment.
        restart: called by ``POST /admin/restart`` after answering; None turns it off.
        version: software version shown on the page.
    """

    site: SiteConfig
    db_path: Path
    clock: Callable[[], float] = time.time
    restart: Callable[[], None] | None = None
    version: str = __version__
    started_at: float = field(default_factory=time.time)


def site_timezone(site: SiteConfig) -> ZoneInfo:
    try:
        return ZoneInfo(site.site.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"site.timezone {site.site.timezone!r} is not a known IANA time zone "
            "(e.g. Europe/London)"
        ) from None


class Dashboard:
    """Computes and caches :class:`Summary` objects, one per day asked for."""

    def __init__(self, deps: WebDeps) -> None:
        self.deps = deps
        self.site = deps.site
        self.tz = site_timezone(deps.site)
        self.db = ReadOnlyDatabase(deps.db_path)
        self.probe = SystemProbe(deps.db_path, deps.started_at)
        self._cache: OrderedDict[dt.date, tuple[float, Summary]] = OrderedDict()
        self._lock = threading.Lock()
        self._failure: tuple[float, StorageError] | None = None
        self.computed = 0
        self.attempts = 0
        # What each built visit put in each heat-map cell: a refresh reads only new ones.
        self.heat = HeatCellCache()
        # The "now" figures, apart from the day's: occupancy and health cost a few
        # indexed reads, not a summary (edge.web.routes_api, /metrics).
        self._now_lock = threading.Lock()
        self._now: dict[str, tuple[float, Any]] = {}

    def today(self) -> dt.date:
        return queries.local_day(self.deps.clock(), self.tz)

    def summary(self, day: dt.date | None = None) -> Summary:
        """The figures of ``day`` (default: today in store time), at most ``cache_s`` old."""
        day = day or self.today()
        asked = time.monotonic()
        with self._lock:
            hit = self._cache.get(day)
            now = time.monotonic()
            # Reuse figures that are young enough, or that were read after this
            # request arrived (it waited for them): many requests, one computation.
            if hit and (now - hit[0] < self.site.web.cache_s or hit[0] >= asked):
                return hit[1]
            failed = self._failure
            if failed is not None and failed[0] >= asked:
                # The database failed while this request waited: answer at once
                # rather than make every waiting request wait out its own timeout.
                raise type(failed[1])(str(failed[1]))
            started = time.monotonic()
            self.attempts += 1
            try:
                result = self._compute(day)
            except StorageError as error:
                self._failure = (started, error)
                raise
            self._failure = None
            self._cache[day] = (started, result)
            self._cache.move_to_end(day)
            while len(self._cache) > CACHED_DAYS:
                self._cache.popitem(last=False)
            self.computed += 1
            return result

    def occupancy(self) -> Occupancy:
        """People in the store now (as the summary of today shows), at most ``cache_s``
        old, from its own queries."""
        return self._now_figure("occupancy", self._occupancy)

    def health(self) -> Health:
        """The box's health now (as the summary shows it), at most ``cache_s`` old, from its
        own queries."""
        return self._now_figure("health", self._health)

    def _now_figure(
        self, name: str, compute: Callable[[sqlite3.Connection, set[str], float], NowFigure],
    ) -> NowFigure:
        asked = time.monotonic()
        with self._now_lock:
            hit = self._now.get(name)
            if hit and (time.monotonic() - hit[0] < self.site.web.cache_s or hit[0] >= asked):
                return hit[1]  # type: ignore[no-any-return]
            started = time.monotonic()
            try:
                with self.db.connect() as conn:
                    value = compute(conn, table_names(conn), self.deps.clock())
            except DatabaseMissing:
                with sqlite3.connect(":memory:") as conn:
                    value = compute(conn, set(), self.deps.clock())
            self._now[name] = (started, value)
            return value  # type: ignore[no-any-return]

    def _occupancy(self, conn: sqlite3.Connection, tables: set[str], now: float,
                   day: dt.date | None = None,
                   components: list[ComponentHealth] | None = None) -> Occupancy:
        """People in the store now, with the cameras' state (:func:`queries.with_cameras`:
        from ``components``, read when not given), as the page of ``day`` (default: today)
        shows them."""
        day = day or queries.local_day(now, self.tz)
        if components is None:
            components, _ = self._components(conn, tables, now)
        return queries.with_cameras(
            queries.occupancy(conn, tables, now, self._live_window_s(components), self.tz, day),
            components, self.tz, day)

    def _live_window_s(self, components: list[ComponentHealth]) -> float:
        """People seen this recently count as here now: ``web.live_window_s``, plus how far
        behind the clock the counting across cameras stores its positions (its ``lag_s``,
        at most the site's :attr:`~edge.config.SiteConfig.fusion_lag_s`)."""
        return self.site.web.live_window_s + queries.fusion_lag_s(
            components, self.site.fusion_lag_s)

    def _components(self, conn: sqlite3.Connection, tables: set[str], now: float
                    ) -> tuple[list[ComponentHealth], list[ComponentHealth]]:
        """The components the site config runs, and apart the reports of those it no
        longer has (:func:`edge.web.health.site_health`)."""
        return site_health(queries.health_rows(conn, tables), self.site, now)

    def _health(self, conn: sqlite3.Connection, tables: set[str], now: float) -> Health:
        components, not_configured = self._components(conn, tables, now)
        model = next((str(c.figures["model"]) for c in components
                      if c.kind == "camera" and c.figures.get("model")), None)
        model = model or queries.latest_model(conn, tables) or self.site.detector.model
        return Health(
            components=components, not_configured=not_configured,
            system=self.probe.read(version=self.deps.version, model=model,
                                   database_bytes=self.db.size_bytes()),
            debug_modes=[DebugModeOn(name=str(name)[:40], detail=str(detail)[:300],
                                     started_at=float(started))
                         for name, detail, started in queries.debug_modes(conn, tables)],
        )

    def _compute(self, day: dt.date) -> Summary:
        try:
            with self.db.connect() as conn:
                return self._from_connection(conn, day, exists=True)
        except DatabaseMissing:
            # Nothing recorded yet: the same page, every figure empty.
            with sqlite3.connect(":memory:") as conn:
                return self._from_connection(conn, day, exists=False)

    def _from_connection(self, conn: sqlite3.Connection, day: dt.date, *, exists: bool) -> Summary:
        site, tz = self.site, self.tz
        now = self.deps.clock()
        tables = table_names(conn)
        # The k the sync service applies (a downlinked one wins): the page hides what
        # would not be published.
        k = (effective_k(conn, site) if "sync_overrides" in tables
             else site.privacy.min_publishable_count)
        window = DayWindow.of(day, tz)
        if not exists:
            data = DataState(status="missing", message=(
                "Nothing has been recorded on this box yet. Start the cameras (or run "
                "`edge replay` for the demo); figures appear here within a minute."))
        elif not queries.has_any_data(conn, tables):
            data = DataState(status="empty", message=(
                "The database is empty. Check below that the cameras and the Wi-Fi sensor "
                "are working; figures appear here within a minute of the first visitor."))
        else:
            data = DataState(status="ok", message=None)
        door_lines = site.floor.entrance_line_ids
        kept_since = visits_kept_since(site, now)
        # The visits' figures of a day partly purged count the hours wholly kept only: the
        # footfall, zones, mix, queue waits and conversion alike (the till periods are never
        # purged; their visits are).
        kept = queries.kept_part(window, kept_since, tz)
        footfall = queries.with_groups(
            conn, tables,
            queries.footfall(conn, tables, day, tz, door_lines, now=now,
                             kept_since=kept_since, visit_days=site.storage.visit_days),
            kept, k)
        health = self._health(conn, tables, now)
        return Summary(
            site_id=site.site.id,
            site_name=site.site.name or site.site.id,
            generated_at=now,
            generated_text=clock_text(now, tz, today=day),
            data=data,
            occupancy=self._occupancy(conn, tables, now, day, health.components),
            footfall=footfall,
            heatmap=queries.heatmap(conn, tables, window, site.floor, k,
                                    kept_since=positions_kept_since(site, now),
                                    kept_hours=site.storage.raw_trajectory_hours, tz=tz,
                                    cache=self.heat),
            zones=queries.zone_dwell(conn, tables, kept, site.floor, k),
            mix=queries.mix(conn, tables, kept, k, tz),
            wifi=queries.wifi(conn, tables, window, tz, door_lines),
            queue=queries.queue(conn, tables, now, kept, site.floor, k,
                                self._live_window_s(health.components)),
            conversion=queries.conversion(conn, tables, kept, k),
            health=health,
            replays=queries.replays(conn, tables, window),
        )
