"""Time spent per floor grid cell, and by how many people, for the status page's heat map.

People, not track ids. The tracker that loses someone (an occlusion, a restart) picks
them up under a new id, and the visits builder stitches those pieces into one visit
(``edge.visits.stitch``), recording which stored positions each visit is made of
(``visit_pieces``). A cell's people are the distinct visits whose positions fall in it,
so one shopper split into six pieces is one person, not six.

Only positions of built customer visits count. An associate's are in no visit; a
fragment too short to be a visit is no one; and a track still in view (or gone less than
``visits.close_after_s`` plus the stitching gap) is not built yet: it cannot be told
yet whether it continues someone already counted, so it is left out until it is built,
which never counts anyone twice.

Each position stands for the time until its piece's next position, capped at
:data:`MAX_POINT_GAP_S` (a longer gap is a lost track, not someone standing still);
a piece's last position stands for none.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from dataclasses import dataclass

from edge.config.floor import FloorConfig

MAX_POINT_GAP_S = 1.0

Cell = tuple[int, int]
# visit_id, run_id, camera_id, track_id, first time counted, last time, day end
PieceKey = tuple[str, int, str, int, float, float, float]


@dataclass(frozen=True, slots=True)
class CellFigures:
    """One cell over a span: seconds spent in it, and the visits that spent them."""

    dwell_s: float
    people: int


def _pieces(conn: sqlite3.Connection, start: float, end: float) -> list[PieceKey]:
    """The visit pieces with positions in ``[start, end)``, as cache keys."""
    rows = conn.execute(
        "select visit_id, run_id, camera_id, track_id, start_t, end_t from visit_pieces "
        "where start_t < ? and end_t >= ? order by start_t, visit_id",
        (end, start),
    ).fetchall()
    return [(str(v), int(r), str(c), int(k), max(float(s), start), float(e), end)
            for v, r, c, k, s, e in rows]


def _piece_cells(
    conn: sqlite3.Connection, pieces: list[PieceKey], floor: FloorConfig
) -> list[dict[Cell, float]]:
    """Seconds per cell of each piece (its positions from its start key to its end, before
    the day's end), in one query: each piece's own positions through the track index."""
    found: list[dict[Cell, float]] = [{} for _ in pieces]
    if not pieces:
        return found
    (x0, y0), (x1, y1) = floor.bounds
    rows = conn.execute(
        """
        with vp as (
            select key,
                   json_extract(value, '$[1]') as run_id, json_extract(value, '$[2]') as camera,
                   json_extract(value, '$[3]') as track_id, json_extract(value, '$[4]') as lo,
                   json_extract(value, '$[5]') as hi, json_extract(value, '$[6]') as day_end
            from json_each(:pieces)
        ), points as (
            select vp.key as piece, tp.x as x, tp.y as y,
                   min(coalesce(lead(tp.t) over (partition by vp.key order by tp.t) - tp.t, 0),
                       :gap) as dt
            from vp cross join track_points tp indexed by idx_track_points_run_id_track_id_frame
            where tp.run_id = vp.run_id and tp.track_id = vp.track_id
              and tp.camera_id = vp.camera and tp.t >= vp.lo and tp.t <= vp.hi
              and tp.t < vp.day_end
        )
        select piece, cast((x - :x0) / :cell as integer) as cx,
               cast((y - :y0) / :cell as integer) as cy, sum(dt)
        from points
        where x >= :x0 and x < :x1 and y >= :y0 and y < :y1
        group by piece, cx, cy
        """,
        {"pieces": json.dumps(pieces), "gap": MAX_POINT_GAP_S, "x0": x0, "y0": y0, "x1": x1,
         "y1": y1, "cell": floor.heatmap_cell_m},
    ).fetchall()
    for piece, cx, cy, dwell in rows:
        found[int(piece)][(int(cx), int(cy))] = float(dwell)
    return found


def add_up(per_piece: dict[PieceKey, dict[Cell, float]]) -> dict[Cell, CellFigures]:
    """Seconds per cell, and the distinct visits (people) with any time there."""
    dwell: dict[Cell, float] = defaultdict(float)
    people: dict[Cell, set[str]] = defaultdict(set)
    for key, cells in per_piece.items():
        for cell, seconds in cells.items():
            dwell[cell] += seconds
            people[cell].add(key[0])
    return {cell: CellFigures(dwell[cell], len(people[cell])) for cell in dwell}


def cells_from_scratch(
    conn: sqlite3.Connection, start: float, end: float, floor: FloorConfig
) -> dict[Cell, CellFigures]:
    """Per cell, seconds and people over ``[start, end)`` (see the module docstring)."""
    pieces = _pieces(conn, start, end)
    return add_up(dict(zip(pieces, _piece_cells(conn, pieces, floor), strict=True)))
