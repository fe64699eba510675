"""Prometheus ``/metrics``: the page's figures as gauges, and the page's own traffic.

Each app has its own registry (several apps can live in one test process). The
store figures are read at scrape time from the same cached summary the page
shows, so a scrape costs no extra query; hidden groups (fewer than k, or
giving one away by subtraction) are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from edge.web.dashboard import Dashboard
from edge.web.dbread import DatabaseBusy, DatabaseUnreadable

STATUS_VALUE = {"ok": 1.0, "degraded": 0.5, "down": 0.0, "silent": 0.0}
# A component's health figure -> its gauge (labelled by component) and what it means.
COMPONENT_FIGURES = {
    "fps": ("edge_camera_fps", "Frames per second processed."),
    "last_frame_age_s": ("edge_camera_last_frame_age_seconds", "Age of the last frame."),
    "reconnects": ("edge_camera_reconnects", "Stream reconnections."),
    "frames_per_s": ("edge_wifi_frames_per_second", "Wi-Fi frames captured per second."),
    "outbox_backlog": ("edge_sync_outbox_backlog", "Aggregates waiting to be sent."),
    "broker_connected": ("edge_sync_broker_connected", "1 if connected to the broker."),
    "monitor_mode": ("edge_wifi_monitor_mode", "1 if the Wi-Fi interface is in monitor mode."),
}


def _by_label(name: str, documentation: str, label: str,
              values: Iterable[tuple[str, float | None]]) -> GaugeMetricFamily:
    """A gauge with one sample per ``(label value, value)``; hidden values (None) are
    left out."""
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for key, value in values:
        if value is not None:
            family.add_metric([key], value)
    return family


class StoreCollector(Collector):
    """Reads the current summary when Prometheus scrapes."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard

    def describe(self) -> list[Metric]:
        return []  # figures depend on the data; skip the probe scrape at registration

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("edge_database_readable", "1 if the database could be read.")
        try:
            summary = self.dashboard.summary()
        except (DatabaseBusy, DatabaseUnreadable):
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        info = InfoMetricFamily("edge_build", "Software version and detector model.")
        info.add_metric([], {"version": summary.health.system.version,
                             "model": summary.health.system.model or ""})
        yield info

        if summary.occupancy.people is not None:
            yield GaugeMetricFamily("edge_occupancy_people", "People in the store now, or at the "
                                    "last moment with data.", value=summary.occupancy.people)
            yield GaugeMetricFamily("edge_occupancy_timestamp_seconds", "When occupancy was "
                                    "counted.", value=summary.occupancy.as_of)
        yield GaugeMetricFamily("edge_visits_today", "Visits that ended today (store time): the "
                                "page's visitors.",
                                value=summary.footfall.total)
        yield GaugeMetricFamily("edge_entrance_in_today", "Entrance crossings inwards today.",
                                value=summary.footfall.entrance_in)

        zones = summary.zones.zones
        yield _by_label("edge_zone_visitors_today",
                        "Visits that spent time in the zone today (k or more).", "zone",
                        ((zone.zone_id, zone.visitors) for zone in zones))
        yield _by_label("edge_zone_median_dwell_seconds",
                        "Median time per visitor in the zone today.", "zone",
                        ((zone.zone_id, zone.typical_dwell_s) for zone in zones))
        yield _by_label("edge_trait_visits_today", "Visits with the trait today.", "trait",
                        ((item.name, item.visits) for item in summary.mix.traits))
        yield _by_label("edge_segment_visits_today", "Visits in the segment today.", "segment",
                        ((item.name, item.visits) for item in summary.mix.segments))

        wifi = summary.wifi
        if wifi.passers_by is not None:
            yield GaugeMetricFamily("edge_wifi_passers_by_today", "Phones passing the store today.",
                                    value=wifi.passers_by)
        if wifi.capture_rate is not None:
            yield GaugeMetricFamily("edge_wifi_capture_rate", "Share of passers-by who came in "
                                    "today: in / (in + passers-by), in = door in-crossings "
                                    "(phones that came in on a site with no door line).",
                                    value=wifi.capture_rate)
        yield from self._health(summary)

    def _health(self, summary) -> Iterator[Metric]:
        status = GaugeMetricFamily("edge_component_status", "1 ok, 0.5 degraded, 0 down or silent.",
                                   labels=["component"])
        age = GaugeMetricFamily("edge_component_report_age_seconds", "Seconds since the "
                                "component's last report.", labels=["component"])
        numbers = {key: GaugeMetricFamily(name, documentation, labels=["component"])
                   for key, (name, documentation) in COMPONENT_FIGURES.items()}
        pairs = GaugeMetricFamily(
            "edge_fusion_calibration_pair_median_metres",
            "Median floor distance between two cameras' positions of the same person: a "
            "calibration check (it grows when a camera was moved).", labels=["pair"])
        for component in summary.health.components:
            for key, value in component.figures.items():
                if key.startswith("calibration_") and key.endswith("_m") and \
                        key != "calibration_worst_median_m" and isinstance(value, float):
                    pairs.add_metric([key.removeprefix("calibration_").removesuffix("_m")], value)
            status.add_metric([component.component], STATUS_VALUE[component.status])
            age.add_metric([component.component], component.age_s)
            for key, family in numbers.items():
                value = component.figures.get(key)
                if isinstance(value, bool | int | float):
                    family.add_metric([component.component], float(value))
        yield status
        yield age
        yield pairs
        yield from numbers.values()
        system = summary.health.system
        yield GaugeMetricFamily("edge_cpu_percent", "CPU use of the box.", value=system.cpu_percent)
        if system.disk_free_bytes is not None:
            yield GaugeMetricFamily("edge_disk_free_bytes", "Free disk where the database is.",
                                    value=system.disk_free_bytes)
        if system.database_bytes is not None:
            yield GaugeMetricFamily("edge_database_bytes", "Size of the database and its WAL.",
                                    value=system.database_bytes)


class WebMetrics:
    """The registry of one app: store figures plus request counts and latencies."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StoreCollector(dashboard))
        self.requests = Counter("edge_web_requests", "Requests answered by the status page.",
                                ["route", "status"], registry=self.registry)
        self.latency = Histogram("edge_web_request_seconds", "Time to answer a request.",
                                 ["route"], registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        self.auth_failures = Counter("edge_web_auth_failures", "Wrong PINs or tokens.",
                                     ["kind"], registry=self.registry)
        self.rate_limited = Counter("edge_web_rate_limited", "Requests refused for too many "
                                    "wrong PINs or tokens.", registry=self.registry)
