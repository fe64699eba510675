"""A shopper the tracker lost and picked up under new track ids: the heat-map reviews'
setup (r07), shared by the page's and the report's heat-map tests."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

DAY = dt.date(2026, 12, 2)
T0 = dt.datetime.combine(DAY, dt.time(10), ZoneInfo("Europe/London")).timestamp()
HZ = 7.0


def shopper_in_pieces(run: int, first_track: int, t0: float, spot: tuple[float, float],
                      pieces: int = 6) -> list[dict]:
    """One shopper hovering at ``spot`` for ``pieces`` x 20 s, lost for 1 s between
    pieces and given a new track id each time: ``track_points`` rows of run ``run``."""
    rows = []
    for p in range(pieces):
        for i in range(int(20 * HZ)):
            t = t0 + p * 21 + i / HZ
            rows.append({"run_id": run, "camera_id": "view001", "track_id": first_track + p,
                         "frame": int((t - T0) * HZ), "t": t,
                         "x": spot[0] + 0.3 * ((i // 20) % 3) - 0.3,
                         "y": spot[1] + 0.3 * ((i // 35) % 2),
                         "left": 0, "top": 0, "width": 10, "height": 30, "confidence": 0.9})
    return rows
