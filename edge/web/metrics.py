"""Prometheus ``/metrics``: the box's health and the page's own traffic, no store figure.

Each app has its own registry (several apps can live in one test process). The
health figures are read at scrape time from the dashboard's cached health (its own
few queries, as ``GET /api/v1/health``: not the day's whole summary).

No figure about shoppers is exposed here, on purpose: a scraper keeps a series of
every scrape off the box, and the difference of two scrapes of a running total
(the day's visits, visitors per zone, a zone's median dwell, visits per trait or
segment, door crossings, phones passing) either side of one shopper leaving is that
shopper's record: when they left, where they spent time, their traits. People in
the store now is left out too: a 15 s series of it gives one shopper's arrival and
departure in a quiet store. Head office gets the k-anonymous aggregates per closed
window over MQTT (docs/mqtt.md); the associates' page shows the day's figures.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from edge.web.dashboard import Dashboard
from edge.web.dbread import DatabaseBusy, DatabaseUnreadable
from edge.web.schemas import Health

STATUS_VALUE = {"ok": 1.0, "degraded": 0.5, "down": 0.0, "silent": 0.0, "not_started": 0.0}
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


class StoreCollector(Collector):
    """Reads the box's current health when Prometheus scrapes."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard

    def describe(self) -> list[Metric]:
        return []  # figures depend on the data; skip the probe scrape at registration

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("edge_database_readable", "1 if the database could be read.")
        try:
            health = self.dashboard.health()  # not the day's figures: none is exported
        except (DatabaseBusy, DatabaseUnreadable):
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        info = InfoMetricFamily("edge_build", "Software version and detector model.")
        info.add_metric([], {"version": health.system.version,
                             "model": health.system.model or ""})
        yield info

        yield from self._health(health)

    def _health(self, health: Health) -> Iterator[Metric]:
        status = GaugeMetricFamily("edge_component_status", "1 ok, 0.5 degraded, 0 down, silent "
                                   "or never reported.",
                                   labels=["component"])
        age = GaugeMetricFamily("edge_component_report_age_seconds", "Seconds since the "
                                "component's last report.", labels=["component"])
        numbers = {key: GaugeMetricFamily(name, documentation, labels=["component"])
                   for key, (name, documentation) in COMPONENT_FIGURES.items()}
        pairs = GaugeMetricFamily(
            "edge_fusion_calibration_pair_median_metres",
            "Median floor distance between two cameras' positions of the same person: a "
            "calibration check (it grows when a camera was moved).", labels=["pair"])
        unmatched = GaugeMetricFamily(
            "edge_fusion_calibration_pair_unmatched_ratio",
            "Share of the people inside both cameras' views whom only one of the two saw: a "
            "calibration check (near 1 when the two place one person at two places, "
            "counted twice).", labels=["pair"])
        for component in health.components:
            for key, value in component.figures.items():
                if not key.startswith("calibration_") or not isinstance(value, float) \
                        or key.startswith("calibration_worst_"):
                    continue
                if key.endswith("_m"):
                    pairs.add_metric([key.removeprefix("calibration_").removesuffix("_m")], value)
                elif key.endswith("_unmatched"):
                    unmatched.add_metric(
                        [key.removeprefix("calibration_").removesuffix("_unmatched")], value)
            status.add_metric([component.component], STATUS_VALUE[component.status])
            if component.age_s is not None:
                age.add_metric([component.component], component.age_s)
            for key, family in numbers.items():
                value = component.figures.get(key)
                if isinstance(value, bool | int | float):
                    family.add_metric([component.component], float(value))
        yield status
        yield age
        yield pairs
        yield unmatched
        yield from numbers.values()
        system = health.system
        yield GaugeMetricFamily("edge_cpu_percent", "CPU use of the box.", value=system.cpu_percent)
        if system.disk_free_bytes is not None:
            yield GaugeMetricFamily("edge_disk_free_bytes", "Free disk where the database is.",
                                    value=system.disk_free_bytes)
        if system.database_bytes is not None:
            yield GaugeMetricFamily("edge_database_bytes", "Size of the database and its WAL.",
                                    value=system.database_bytes)


class WebMetrics:
    """The registry of one app: the box's health plus request counts and latencies."""

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
