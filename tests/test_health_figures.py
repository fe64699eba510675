"""What the services write into ``health.detail`` is what the status page reads.

Regression: the page looked for ``broker_connected``/``outbox_backlog`` and
``frames_per_s``/``monitor_mode`` while sync wrote ``pending`` and Wi-Fi wrote only
its frame counters, so the page showed no sync or Wi-Fi figure on a live box.
"""

from __future__ import annotations

import time

from edge.storage.health import report_health
from edge.web.health import KNOWN_FIGURES, component_health
from edge.wifi.capture import WatchdogState
from edge.wifi.pipeline import PipelineStats
from edge.wifi.service import FrameRate, health_detail
from sync.publisher import SyncService


def shown(db, component: str) -> dict:
    row = db.execute(
        "select component, status, detail, message, updated_at from health where component = ?",
        [component],
    ).fetchone()
    return component_health(row, time.time(), stale_s=120).figures


def test_sync_health_shows_on_the_page(pets_site, memory_db):
    service = SyncService(pets_site, memory_db)  # never started: not connected
    service.run_pass()
    figures = shown(memory_db, "sync")
    assert figures == {"broker_connected": False, "outbox_backlog": 0,
                       "last_delivered_window": None}
    assert set(figures) == set(KNOWN_FIGURES["sync"]) - {"last_delivered_at"}


def test_wifi_health_shows_on_the_page(memory_db):
    rate = FrameRate()
    stats = PipelineStats(frames=100, probe_requests=40)
    assert rate.update(stats.as_dict(), 1000.0) is None  # no rate before two reports
    stats.frames = 150
    per_s = rate.update(stats.as_dict(), 1010.0)
    ok = WatchdogState("ok", "receiving probe requests")
    report_health(memory_db, "wifi:wlan1", "ok", ok.message,
                  health_detail(stats.as_dict(), ok, 6, per_s))
    assert shown(memory_db, "wifi:wlan1") == {"frames_per_s": 5.0, "monitor_mode": True,
                                              "channel": 6}
    down = WatchdogState("down", "the interface left monitor mode")
    report_health(memory_db, "wifi:wlan1", "down", down.message,
                  health_detail(stats.as_dict(), down, None, None))
    assert shown(memory_db, "wifi:wlan1")["monitor_mode"] is False
