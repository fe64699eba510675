"""Site configs for live-service tests: derived from the shipped PETS demo site, or
cameras looking down on a plain floor."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import yaml

from edge.config import SiteConfig, load_site
from edge.runtime.camera_worker import CameraWorker
from edge.runtime.schema import open_database
from tests.conftest import PETS_SITE

FAST_SERVICE = {
    "health_interval_s": 0.5,
    "flush_interval_s": 0.5,
    "reconnect_backoff_initial_s": 0.2,
    "reconnect_backoff_max_s": 1.0,
    "stall_timeout_s": 3,
}


def live_site_yaml(
    folder: Path,
    source: str,
    *,
    loop: bool = False,
    detect_fps: float = 4,
    sections: dict[str, Any] | None = None,
) -> Path:
    """Write a copy of the demo site whose camera reads ``source`` live; return its path.

    ``sections`` replaces or adds top-level sections (e.g. ``storage``, ``sync``).
    """
    site = yaml.safe_load(PETS_SITE.read_text())
    camera = site["cameras"][0]
    camera.update(source=source, loop=loop, detect_fps=detect_fps)
    site["service"] = dict(FAST_SERVICE)
    site.update(sections or {})
    path = folder / "site.yaml"
    path.write_text(yaml.safe_dump(site, sort_keys=False))
    return path


def start_worker(site: SiteConfig, db_path: Path) -> tuple[CameraWorker, threading.Thread]:
    """Run a CameraWorker in a thread with its own connection, as a service would."""
    ready, holder = threading.Event(), {}

    def target():
        holder["worker"] = CameraWorker(site, "view001", open_database(db_path))
        ready.set()
        holder["worker"].run()

    thread = threading.Thread(target=target)
    thread.start()
    assert ready.wait(60)
    return holder["worker"], thread


def floor_in_centimetres_site(tmp_path: Path, site_id: str, cameras: dict[str, float],
                              **sections: Any) -> SiteConfig:
    """A site whose ``cameras`` (id -> frames a second) all look down on the same 10 x 10 m
    floor, each image the floor in centimetres (an identity homography scaled by 1/100);
    ``sections`` add to the site file."""
    scale = [[0.01, 0, 0], [0, 0.01, 0], [0, 0, 1]]
    site = {
        "site": {"id": site_id},
        "cameras": [{"id": name, "source": f"rtsp://{name}.invalid/s", "fps": fps,
                     "calibration": {"homography": scale, "image_size": [1000, 1000]}}
                    for name, fps in cameras.items()],
        "floor": {"bounds": [[0, 0], [10, 10]]},
        "web": {"access": "open-lan"},
        **sections,
    }
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(site))
    return load_site(path)
