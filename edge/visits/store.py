"""Tables of visits, their zone dwell, traits and segments, and line crossings.

A visit row holds no image, no appearance and no raw position list: only derived
features. ``visit_id`` is random per visit and means nothing outside the box.
The ``visit_build_*`` tables are the incremental builder's bookkeeping.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

import sqlite_utils
from sqlite_utils.migrations import Migrations

from edge.visits.records import LineCrossing, Visit, VisitResult
from edge.visits.staff import StaffVisit

MIGRATIONS = Migrations("edge.visits")


def _create_visit_child(db: sqlite_utils.Database, table: str, columns: dict[str, type],
                        pk: str | tuple[str, ...]) -> None:
    """A table of rows that belong to one visit: ``visit_id`` first, a foreign key to
    ``visits``. Rebuilds and purges delete them with their visit
    (:data:`VISIT_CHILD_TABLES` names every one)."""
    db.table(table).create({"visit_id": str, **columns}, pk=pk,
                           foreign_keys=[("visit_id", "visits", "visit_id")])


@MIGRATIONS()
def m001_visits(db: sqlite_utils.Database) -> None:
    db.table("visits").create(
        {
            "visit_id": str,        # random, per visit
            "site_id": str,
            "camera_id": str,
            "run_id": int,
            "track_id": int,
            "start_t": float,       # epoch seconds
            "end_t": float,
            "duration_s": float,
            "path_length_m": float,
            "checkout_visited": int,
            "features": str,        # JSON: feature name -> number
            "zone_sequence": str,   # JSON: list of zone ids in visiting order
            "spec_version": str,    # segment spec that classified it
        },
        pk="visit_id",
    )
    db.table("visits").create_index(["start_t"])
    db.table("visits").create_index(["end_t"])
    _create_visit_child(db, "visit_zone_dwell", {"zone_id": str, "dwell_s": float,
                                                 "entries": int}, pk=("visit_id", "zone_id"))
    _create_visit_child(db, "visit_traits", {"trait": str, "probability": float},
                        pk=("visit_id", "trait"))
    _create_visit_child(db, "visit_segments", {"segment": str, "probability": float},
                        pk=("visit_id", "segment"))
    db.table("line_crossings").create(
        {
            "line_id": str,
            "camera_id": str,
            "run_id": int,
            "track_id": int,
            "t": float,
            "direction": str,       # "in" or "out"
        }
    )
    db.table("line_crossings").create_index(["t"])


@MIGRATIONS()
def m002_build_progress(db: sqlite_utils.Database) -> None:
    # Builder bookkeeping: per run, everything before done_until_t is processed;
    # per track, positions up to closed_until_t are (rows pruned once behind the run).
    db.table("visit_build_runs").create(
        {"run_id": int, "done_until_t": float, "finished": int}, pk="run_id"
    )
    db.table("visits").create_index(["run_id", "track_id"])
    db.table("line_crossings").create_index(["run_id", "track_id"])
    db.table("visit_build_tracks").create(
        {"run_id": int, "camera_id": str, "track_id": int, "closed_until_t": float},
        pk=("run_id", "camera_id", "track_id"),
    )


@MIGRATIONS()
def m003_queue_waits(db: sqlite_utils.Database) -> None:
    # Waits from a queue zone to a checkout zone (edge.visits.queue); a visit may have several.
    _create_visit_child(db, "visit_queue_waits", {"queue_zone": str, "checkout_zone": str,
                                                  "joined_t": float, "reached_t": float,
                                                  "wait_s": float}, pk=("visit_id", "joined_t"))


@MIGRATIONS()
def m004_staff_visits(db: sqlite_utils.Database) -> None:
    # Visits classified as associates' (edge.visits.staff): times and the rule only, no
    # features, zones or traits; they are in none of the visit tables.
    db.table("staff_visits").create(
        {"visit_id": str, "site_id": str, "camera_id": str, "run_id": int, "track_id": int,
         "start_t": float, "end_t": float, "duration_s": float, "reason": str},
        pk="visit_id",
    )
    db.table("staff_visits").create_index(["start_t"])
    db.table("staff_visits").create_index(["end_t"])
    db.table("staff_visits").create_index(["run_id", "track_id"])


@MIGRATIONS()
def m005_visit_groups(db: sqlite_utils.Database) -> None:
    # Shopping groups (edge.visits.groups): a random group id per customer visit; a visit
    # with no companion is a group of its own. Nothing else about the group is stored.
    _create_visit_child(db, "visit_groups", {"group_id": str}, pk="visit_id")
    db.table("visit_groups").create_index(["group_id"])


@MIGRATIONS()
def m006_staff_tracks_open(db: sqlite_utils.Database) -> None:
    # Tracks still in view whose current piece the staff rule already classifies as an
    # associate's (edge.visits.builder): the live page leaves them out of occupancy and
    # the heat map. Replaced at every build; a run's rows go when it finishes.
    db.table("staff_tracks_open").create(
        {"run_id": int, "camera_id": str, "track_id": int, "start_t": float, "reason": str},
        pk=("run_id", "camera_id", "track_id"),
    )


@MIGRATIONS()
def m007_build_frontier(db: sqlite_utils.Database) -> None:
    # The stored positions the run's last build saw reached this time: every visit that
    # ended visits.close_after_s (+ the stitching gap) before it is stored (the sync
    # waits for it before it sends a window).
    db.table("visit_build_runs").add_column("built_until_t", float)


def replace_open_staff(
    db: sqlite_utils.Database, run_id: int, rows: Sequence[tuple[str, int, float, str]]
) -> None:
    """The run's open tracks classified as associates' now: ``(camera_id, track_id,
    piece start, reason)`` (call inside ``db.atomic()``)."""
    db.execute("delete from staff_tracks_open where run_id = ?", [run_id])
    if rows:
        db.table("staff_tracks_open").insert_all(
            {"run_id": run_id, "camera_id": camera, "track_id": track, "start_t": start,
             "reason": reason} for camera, track, start, reason in rows)


@MIGRATIONS()
def m008_build_open_pieces(db: sqlite_utils.Database) -> None:
    # The live builder's pieces held for a later build (edge.visits.carry): where each
    # starts and ends (raw positions) and what continues into it, so that a build reads
    # only the last seconds of its run, not everything since the oldest piece it holds.
    # Replaced at every build; a run's rows go when it finishes.
    db.table("visit_build_open").create(
        {"run_id": int, "camera_id": str, "track_id": int, "start_t": float,
         "start_x": float, "start_y": float, "end_t": float, "end_x": float, "end_y": float,
         "pred_kind": str,          # null (nothing continues into it), "stitch" or "cut"
         "pred_track_id": int, "pred_start_t": float, "pred_end_t": float},
        pk=("run_id", "camera_id", "track_id", "start_t"),
    )


def read_open_staff(db: sqlite_utils.Database, run_id: int) -> dict[tuple[str, int],
                                                                     tuple[float, str]]:
    """The run's open tracks classified as associates' at its last build: ``(camera_id,
    track_id) -> (piece start, reason)``."""
    return {(camera, track): (start, reason) for camera, track, start, reason in db.execute(
        "select camera_id, track_id, start_t, reason from staff_tracks_open where run_id = ?",
        [run_id])}


@MIGRATIONS()
def m009_visit_pieces(db: sqlite_utils.Database) -> None:
    # The track pieces each visit was stitched from (edge.visits.stitch): which stored
    # positions (run, camera, track, first to last time) are one person's. The status
    # page's heat map counts people per grid cell by them, not track ids (a person the
    # tracker lost and found again under a new id is one person). No position is kept.
    _create_visit_child(db, "visit_pieces", {"run_id": int, "camera_id": str, "track_id": int,
                                             "start_t": float, "end_t": float},
                        pk=("visit_id", "start_t"))
    db.table("visit_pieces").create_index(["start_t"])
    db.table("visit_pieces").create_index(["end_t"])
    # Visits built before this table: their first piece only (the track id a visit
    # keeps), never more people than there were; the rest of a stitched visit is left out.
    db.execute(
        "insert into visit_pieces (visit_id, run_id, camera_id, track_id, start_t, end_t) "
        "select visit_id, run_id, camera_id, track_id, start_t, end_t from visits "
        "where run_id is not null"
    )


VISIT_CHILD_TABLES = ("visit_zone_dwell", "visit_traits", "visit_segments", "visit_queue_waits",
                      "visit_groups", "visit_pieces")

PieceSpan = tuple[str, int, float, float]  # camera_id, track_id, first and last time


def insert_visits(
    db: sqlite_utils.Database, site_id: str, visits: Sequence[VisitResult],
    pieces: Mapping[str, Sequence[PieceSpan]] | None = None,
) -> None:
    """Write visits with their dwell, traits and segments (call inside ``db.atomic()``).

    ``pieces``: visit id -> the track pieces it was stitched from (the builder's); a
    visit of a run not given any is stored as its own track's first to last time.
    """
    if not visits:
        return
    rows, dwell, traits, segments, waits, spans = [], [], [], [], [], []
    for result in visits:
        visit = result.measured.visit
        features = result.measured.features
        if visit.run_id is not None:
            own = [(visit.camera_id, visit.track_id, visit.start_t, visit.end_t)]
            spans += [{"visit_id": result.visit_id, "run_id": visit.run_id, "camera_id": camera,
                       "track_id": track, "start_t": first, "end_t": last}
                      for camera, track, first, last in (pieces or {}).get(result.visit_id, own)]
        rows.append(
            {
                "visit_id": result.visit_id,
                "site_id": site_id,
                "camera_id": visit.camera_id,
                "run_id": visit.run_id,
                "track_id": visit.track_id,
                "start_t": visit.start_t,
                "end_t": visit.end_t,
                "duration_s": features["duration_s"],
                "path_length_m": features["path_length_m"],
                "checkout_visited": int(features["checkout_visited"]),
                "features": json.dumps(dict(features)),
                "zone_sequence": json.dumps(result.measured.zone_sequence),
                "spec_version": result.scores.spec_version,
            }
        )
        entries = result.measured.zone_entries
        for zone_id, seconds in result.measured.zone_dwell.items():
            dwell.append({"visit_id": result.visit_id, "zone_id": zone_id, "dwell_s": seconds,
                          "entries": entries[zone_id]})
        traits += [{"visit_id": result.visit_id, "trait": name, "probability": p}
                   for name, p in result.scores.traits.items()]
        segments += [{"visit_id": result.visit_id, "segment": name, "probability": p}
                     for name, p in result.scores.segments.items()]
        waits += [{"visit_id": result.visit_id, "queue_zone": w.queue_zone,
                   "checkout_zone": w.checkout_zone, "joined_t": w.joined_t,
                   "reached_t": w.reached_t, "wait_s": w.wait_s}
                  for w in result.measured.queue_waits]
    db.table("visits").insert_all(rows)
    for table, batch in (("visit_zone_dwell", dwell), ("visit_traits", traits),
                         ("visit_segments", segments), ("visit_queue_waits", waits),
                         ("visit_pieces", spans)):
        if batch:
            db.table(table).insert_all(batch)


def insert_staff_visits(
    db: sqlite_utils.Database, site_id: str, staff: Sequence[StaffVisit]
) -> None:
    """Write visits classified as associates' (call inside ``db.atomic()``)."""
    rows = []
    for item in staff:
        visit = item.measured.visit
        rows.append({"visit_id": item.visit_id, "site_id": site_id,
                     "camera_id": visit.camera_id, "run_id": visit.run_id,
                     "track_id": visit.track_id, "start_t": visit.start_t, "end_t": visit.end_t,
                     "duration_s": visit.duration_s, "reason": item.reason})
    if rows:
        db.table("staff_visits").insert_all(rows)


def insert_crossings(
    db: sqlite_utils.Database, crossings: Iterable[tuple[Visit, LineCrossing]]
) -> int:
    """Write line crossings (call inside ``db.atomic()``); return how many."""
    rows = [
        {"line_id": c.line_id, "camera_id": piece.camera_id, "run_id": piece.run_id,
         "track_id": piece.track_id, "t": c.t, "direction": c.direction}
        for piece, c in crossings
    ]
    if rows:
        db.table("line_crossings").insert_all(rows)
    return len(rows)


def delete_visits_of_run(db: sqlite_utils.Database, run_id: int) -> int:
    """Forget a run's visits, crossings and build progress (to rebuild it); how many visits."""
    ids = [row[0] for row in db.execute("select visit_id from visits where run_id = ?", [run_id])]
    for table in VISIT_CHILD_TABLES:
        db.execute(
            f"delete from {table} where visit_id in (select visit_id from visits where run_id = ?)",
            [run_id],
        )
    db.execute("delete from visits where run_id = ?", [run_id])
    if db.table("staff_visits").exists():
        db.execute("delete from staff_visits where run_id = ?", [run_id])
    db.execute("delete from line_crossings where run_id = ?", [run_id])
    db.execute("delete from visit_build_tracks where run_id = ?", [run_id])
    db.execute("delete from visit_build_runs where run_id = ?", [run_id])
    if db.table("visit_build_open").exists():
        db.execute("delete from visit_build_open where run_id = ?", [run_id])
    if db.table("staff_tracks_open").exists():
        db.execute("delete from staff_tracks_open where run_id = ?", [run_id])
    return len(ids)


def purge_visits(db: sqlite_utils.Database, before_t: float) -> int:
    """Delete visits that ended before ``before_t`` (epoch seconds), with their dwell,
    traits and segments, and older line crossings (for ``storage.visit_days``).
    Call inside ``db.atomic()``; return how many visits went."""
    old = "(select visit_id from visits where end_t < ?)"
    for table in VISIT_CHILD_TABLES:
        db.execute(f"delete from {table} where visit_id in {old}", [before_t])
    gone = db.execute("delete from visits where end_t < ?", [before_t]).rowcount
    if db.table("staff_visits").exists():
        db.execute("delete from staff_visits where end_t < ?", [before_t])
    db.execute("delete from line_crossings where t < ?", [before_t])
    return int(gone)
