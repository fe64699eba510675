"""The status page counts the health of what the site config runs now.

Health rows are never deleted: a camera removed or renamed, or the fusion of a site
down to one camera, leaves its last report behind, and a camera whose worker stopped at
start leaves none. Real SQLite files, the real app, a fixed clock (as
``tests/test_web_truths.py``, whose helpers these use).
"""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge.config import SiteConfig
from edge.config.wifi import WifiConfig
from edge.runtime.schema import open_database
from edge.storage.health import expected_components, is_configured
from tests.support.web_support import insert_rows
from tests.test_web_truths import DAY, at, card, positions, read, report, with_cameras, with_run


def components(health: dict, part: str = "components") -> dict[str, str]:
    return {c["component"]: c["status"] for c in health[part]}


def test_a_site_down_to_one_camera_counts_people_again(pets_site, tmp_path):
    """Reviewer's report: from two cameras to one (view002 taken out of the config), with
    camera view001 ok and 8 people seen live, the card said "Counting across cameras is not
    working: people cannot be counted" for good: the stopped fusion's last row ("down")
    and view002's were still read."""
    path = tmp_path / "edge.db"
    db = open_database(path)
    now = at(DAY, 15)
    insert_rows(db, with_run(positions(now - 3, now, range(8), "view001")))
    report(db, now, ("camera:view001", "ok", {"connected": True, "last_frame_age_s": 0.2}),
           ("camera:view002", "down", {"connected": False}), ("fusion", "down", {}))
    db.execute("update health set updated_at = ? where component != 'camera:view001'",
               [now - 7200])  # their services stopped two hours ago
    db.conn.commit()
    before = read(with_cameras(pets_site, "view001", "view002"), path, now,
                  "/api/v1/occupancy")[0]
    assert before["cameras"] == "down" and "Counting across cameras" in before["cameras_down"]

    occupancy, health, html, metrics = read(pets_site, path, now, "/api/v1/occupancy",
                                            "/api/v1/health", "/", "/metrics")
    assert (occupancy["people"], occupancy["live"]) == (8, True)
    assert (occupancy["cameras"], occupancy["cameras_down"]) == ("working", [])
    words = card(html, "occupancy")
    assert "cannot be counted" not in words and "Counting across cameras" not in words
    assert components(health) == {"camera:view001": "ok"}
    assert components(health, "not_configured") == {"camera:view002": "down", "fusion": "down"}
    assert ("No longer in this store's set-up, so not counted: Camera view002 (last report "
            "2 h 0 min ago), Counting across cameras (last report 2 h 0 min ago).") in card(
                html, "health")
    exported = {s.labels.get("component") for family in text_string_to_metric_families(metrics)
                for s in family.samples}
    assert "camera:view001" in exported and not {"camera:view002", "fusion"} & exported
    db.close()


def test_a_renamed_camera_leaves_its_old_row_behind(pets_site, tmp_path):
    """The same with view001 renamed to ``door``: view001's last row ("down", as its worker
    stopped) must not make the card say that people cannot be counted."""
    path = tmp_path / "edge.db"
    db = open_database(path)
    now = at(DAY, 15)
    insert_rows(db, with_run(positions(now - 3, now, range(3), "door")))
    report(db, now, ("camera:view001", "down", {"connected": False}),
           ("camera:door", "ok", {"connected": True}))
    occupancy, health = read(with_cameras(pets_site, "door"), path, now, "/api/v1/occupancy",
                             "/api/v1/health")
    assert (occupancy["people"], occupancy["cameras"]) == (3, "working")
    assert components(health) == {"camera:door": "ok"}
    assert components(health, "not_configured") == {"camera:view001": "down"}
    db.close()


def test_cameras_that_never_started_are_not_working(pets_site, tmp_path):
    """Reviewer's report: both camera workers exit 78 at start (a missing model): the
    fusion, sync and page report, the cameras never do. The API said "cameras": "working",
    the card "Cameras working, nobody in view", and the health list had no camera."""
    path = tmp_path / "edge.db"
    db = open_database(path)
    now = at(DAY, 15)
    site = with_cameras(pets_site, "view001", "view002")
    report(db, now, ("fusion", "ok", {"cameras_live_count": 0}), ("sync", "ok", {}),
           ("web", "ok", {}))
    occupancy, health, html = read(site, path, now, "/api/v1/occupancy", "/api/v1/health", "/")
    assert occupancy["cameras"] == "down"
    assert occupancy["cameras_down"] == ["Camera view001", "Camera view002"]
    words = card(html, "occupancy")
    assert "Camera view001, Camera view002 are not working: people cannot be counted" in words
    assert "Cameras working" not in words
    statuses = components(health)
    assert (statuses["camera:view001"], statuses["camera:view002"]) == ("not_started",) * 2
    listed = card(html, "health")
    assert "Not started Camera view001 : No report yet: its service has not started" in listed
    (camera,) = [c for c in health["components"] if c["component"] == "camera:view001"]
    assert (camera["updated_at"], camera["age_s"]) == (None, None)

    report(db, now, ("camera:view001", "ok", {"connected": True}))  # one of two started
    occupancy = read(site, path, now, "/api/v1/occupancy")[0]
    assert (occupancy["cameras"], occupancy["cameras_down"]) == ("partial", ["Camera view002"])
    db.close()


def test_the_counting_across_cameras_never_started_is_not_working(pets_site, tmp_path):
    """Both cameras report, the fusion never did: nobody is counted store-wide."""
    path = tmp_path / "edge.db"
    db = open_database(path)
    now = at(DAY, 15)
    report(db, now, ("camera:view001", "ok", {}), ("camera:view002", "ok", {}))
    occupancy = read(with_cameras(pets_site, "view001", "view002"), path, now,
                     "/api/v1/occupancy")[0]
    assert (occupancy["cameras"], occupancy["cameras_down"]) == ("down",
                                                                ["Counting across cameras"])
    db.close()


def wifi_on(site: SiteConfig, interface: str) -> SiteConfig:
    return site.model_copy(update={"wifi": WifiConfig(interface=interface)})


@pytest.mark.parametrize(("cameras", "wifi", "sync", "component", "configured"), [
    (("a", "b"), None, True, "camera:b", True),
    (("a",), None, True, "camera:b", False),       # removed
    (("door",), None, True, "camera:a", False),    # renamed
    (("a", "b"), None, True, "fusion", True),
    (("a",), None, True, "fusion", False),         # down to one camera: nothing to fuse
    (("a",), "mon0", True, "wifi:mon0", True),
    (("a",), "mon0", True, "wifi:wlan1", False),   # another interface now
    (("a",), None, True, "wifi:mon0", False),      # Wi-Fi counting turned off
    (("a",), None, True, "sync", True),
    (("a",), None, False, "sync", False),          # sync.enabled: false
    (("a",), None, False, "web", True),
    (("a",), None, False, "visits", True),
])
def test_what_a_site_config_still_runs(pets_site, cameras, wifi, sync, component, configured):
    site = with_cameras(pets_site, *cameras)
    site = wifi_on(site, wifi) if wifi else site.model_copy(update={"wifi": None})
    site = site.model_copy(update={"sync": site.sync.model_copy(update={"enabled": sync})})
    assert is_configured(site, component) is configured


def test_what_a_site_must_have_reported(pets_site):
    assert expected_components(pets_site) == ["camera:view001", "web"]
    assert expected_components(with_cameras(pets_site, "a", "b")) == [
        "camera:a", "camera:b", "fusion", "web"]
