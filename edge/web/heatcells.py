"""Time spent per floor grid cell, and by how many people: the heat maps' one rule.

The status page's heat map (a store-time day, :class:`HeatCellCache`) and the engineers'
replay report (one run, :func:`run_cells`) both count here, so they agree on a replay.

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

Cheap on a busy day: :class:`HeatCellCache` keeps what each piece puts in each cell.

Each position stands for the time until its piece's next position, capped at
:data:`MAX_POINT_GAP_S` (a longer gap is a lost track, not someone standing still);
a piece's last position stands for none.
"""

from __future__ import annotations

import json
import sqlite3
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field

from edge.config.floor import FloorConfig

MAX_POINT_GAP_S = 1.0
CACHED_DAYS = 8  # as the page's summaries (edge.web.dashboard)

Cell = tuple[int, int]
# visit_id, run_id, camera_id, track_id, first time counted, last time, day end
PieceKey = tuple[str, int, str, int, float, float, float]


@dataclass(frozen=True, slots=True)
class CellFigures:
    """One cell over a span: seconds spent in it, and the visits that spent them."""

    dwell_s: float
    people: int


def _pieces(
    conn: sqlite3.Connection, start: float, end: float, run_id: int | None = None
) -> list[PieceKey]:
    """The visit pieces with positions in ``[start, end)`` (of run ``run_id`` only, if
    given), as cache keys."""
    rows = conn.execute(
        "select visit_id, run_id, camera_id, track_id, start_t, end_t from visit_pieces "
        "where start_t < :end and end_t >= :start and (:run is null or run_id = :run) "
        "order by start_t, visit_id",
        {"start": start, "end": end, "run": run_id},
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


@dataclass(slots=True)
class HeatCellCache:
    """What each visit piece puts in each cell, kept for the days the page last showed.

    A visit's pieces are written once, after their positions (the builder waits until
    the track has been gone a while), so what a piece puts in each cell never changes:
    a refresh reads only the pieces built since the last one, and the few the retention
    purge's edge cuts (their key holds where the count starts). ``reads`` and
    ``computed`` count the pieces looked up and those read from the positions.
    """

    _days: OrderedDict[float, dict[PieceKey, dict[Cell, float]]] = field(
        default_factory=OrderedDict)
    reads: int = 0
    computed: int = 0

    def cells(
        self, conn: sqlite3.Connection, start: float, end: float, floor: FloorConfig
    ) -> dict[Cell, CellFigures]:
        """As :func:`cells_from_scratch`, with the pieces read before taken from memory
        (one floor per cache: the site's)."""
        known = self._days.get(end, {})
        pieces = _pieces(conn, start, end)
        missing = [key for key in pieces if key not in known]
        fresh = dict(zip(missing, _piece_cells(conn, missing, floor), strict=True))
        # The day's pieces as they are now: those of rebuilt or purged visits go.
        kept = {key: known[key] if key in known else fresh[key] for key in pieces}
        self._days[end] = kept
        self._days.move_to_end(end)
        while len(self._days) > CACHED_DAYS:
            self._days.popitem(last=False)
        self.reads += len(pieces)
        self.computed += len(missing)
        return add_up(kept)


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


@dataclass(frozen=True, slots=True)
class RunCells:
    """One run's heat map: seconds and people per cell, and the people with any time on
    the floor plan (distinct visits, however many pieces each)."""

    cells: dict[Cell, CellFigures]
    people: int


def run_cells(conn: sqlite3.Connection, run_id: int, floor: FloorConfig) -> RunCells:
    """Per cell, seconds and people over the built visits of one run (a replay), by the
    status page's rule: positions of visit pieces only, people are visits."""
    first, last = conn.execute(
        "select min(start_t), max(end_t) from visit_pieces where run_id = ?", (run_id,)
    ).fetchone()
    if first is None:
        return RunCells({}, 0)
    pieces = _pieces(conn, float(first), float(last) + 1.0, run_id)
    per_piece = dict(zip(pieces, _piece_cells(conn, pieces, floor), strict=True))
    people = len({key[0] for key, cells in per_piece.items() if any(cells.values())})
    return RunCells(add_up(per_piece), people)
