"""Privacy-relevant settings, and their changes written to the audit log.

Each service calls :func:`record_service_start` when it starts: every setting
whose value differs from the last one recorded (by any service, or a downlink)
gets an audit row, so the log shows what the box ran with and when that changed,
without a row per restart. Only values go in, never addresses: the store's own
device list is recorded as a count.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import sqlite_utils

from edge.config import SiteConfig
from edge.config.wifi import WifiConfig
from edge.privacy.overrides import effective_k
from edge.privacy.store import last_value, record_change

log = logging.getLogger(__name__)

K_SETTING = "privacy.min_publishable_count"
KEY_ROTATION = "wifi.key_rotation"


def privacy_settings(site: SiteConfig, k: int | None = None) -> dict[str, Any]:
    """The values that decide what is kept, for how long, and what may leave.

    Args:
        site: the site config.
        k: the k in force if a downlink overrides the config's (see :mod:`edge.privacy.overrides`).
    """
    wifi = site.wifi or WifiConfig()
    return {
        "storage.raw_trajectory_hours": site.storage.raw_trajectory_hours,
        "storage.visit_days": site.storage.visit_days,
        "storage.delivered_aggregate_days": site.storage.delivered_aggregate_days,
        K_SETTING: k if k is not None else site.privacy.min_publishable_count,
        "wifi.enabled": site.wifi is not None,
        "wifi.rssi_gate_dbm": wifi.rssi_gate_dbm,
        "wifi.pseudonym_bits": wifi.pseudonym_bits,
        "wifi.forget_after_s": wifi.forget_after_s,
        "wifi.excluded_devices": len(wifi.exclude_addresses),
    }


def record_service_start(
    db: sqlite_utils.Database, site: SiteConfig, source: str, now: float | None = None
) -> list[str]:
    """Audit every privacy setting that differs from its last recorded value.

    Returns:
        The settings recorded (empty when nothing changed).
    """
    now = time.time() if now is None else now
    changed = []
    with db.atomic():  # immediate: the read and the write are not interleaved
        for setting, value in privacy_settings(site, effective_k(db, site)).items():
            recorded, last = last_value(db, setting)
            if recorded and last == value:
                continue
            record_change(db, setting, last, value, source, now)
            changed.append(setting)
    if changed:
        log.info("Privacy settings recorded in the audit log (%s): %s.", source,
                 ", ".join(changed))
    return changed


def record_key_rotation(
    db: sqlite_utils.Database, old_day: str | None, new_day: str, source: str,
    now: float | None = None,
) -> None:
    """A Wi-Fi key was drawn for ``new_day`` and the previous one wiped (no key material)."""
    record_change(db, KEY_ROTATION, old_day, new_day, source, now)
