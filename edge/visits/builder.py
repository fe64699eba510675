"""Stored track positions -> visits in the database, incrementally.

The builder can run after a replay (every track is finished) or every few seconds
beside a live camera: a track piece is *closed* once its run has finished or the
track has been gone for ``visits.close_after_s``; open pieces are left for a later
call. Each call processes what closed since the last one and writes it in one
transaction, together with its bookkeeping, so a crash never half-applies a build
and no visit is written twice.

Bookkeeping per run (``visit_build_runs.done_until_t``): every position before it
has been processed. Per track (``visit_build_tracks.closed_until_t``): positions up to
it belong to pieces already closed; a row is dropped once the run's mark has passed it.
Per held piece (``visit_build_open``, with ``visit_build_runs.built_until_t``, the
present of the last build): where it starts and ends and what continues into it, so that
a build reads only the last seconds of its run however long a held piece has been in view
(``edge.visits.carry``). A routine build's work is bounded by what is new and what is in
view, not by the age of the oldest open track.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import sqlite_utils

from edge.config.visits import VisitConfig
from edge.errors import StorageError
from edge.storage.health import report_health
from edge.storage.trajectories import read_pauses, read_track, read_trajectories, require_run
from edge.visits.analysis import TrackOutcome, VisitAnalyzer
from edge.visits.carry import (
    HeldPiece,
    carried,
    decided,
    held_pieces,
    read_held,
    replace_held,
    window_s,
    with_carried,
)
from edge.visits.group_store import insert_groups
from edge.visits.pauses import Pauses
from edge.visits.records import Visit
from edge.visits.stitch import chains, join
from edge.visits.store import (
    PieceSpan,
    delete_visits_of_run,
    insert_crossings,
    insert_staff_visits,
    insert_visits,
    read_open_staff,
    replace_open_staff,
)
from edge.visits.swaps import PieceKey, Predecessor, SwapRule, repair

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BuildSummary:
    """What one build call did.

    Attributes:
        positions_read: stored positions read (``track_points`` rows): the build's work,
            which grows with what is new and what is in view, not with how long a track
            has been open.
    """

    runs: int
    visits: int
    fragments: int
    crossings: int
    open_tracks: int
    positions_read: int
    spec_version: str


def build_visits(
    db: sqlite_utils.Database,
    analyzer: VisitAnalyzer,
    *,
    run_id: int | None = None,
    rebuild: bool = False,
    stored_until: float | None = None,
) -> BuildSummary:
    """Turn closed track pieces of one run (or of every unfinished run) into visits.

    Args:
        db: the local database (track_points in, visit tables out).
        analyzer: the site's visit analyzer (its spec is hot-reloaded here).
        run_id: only this run; default every run not yet finished.
        rebuild: forget the run's visits first and build them again (needs ``run_id``).
        stored_until: for the live run ``run_id`` that its own worker builds: every
            position before this time (the worker's clock, less its write delay) is
            stored. A track unseen since ``close_after_s`` before it is gone, even when
            nobody was seen after it. Without it, the newest stored position is the
            present, and the last shopper before a quiet spell stays open until someone
            else is tracked (their visit missed its MQTT window).

    Raises:
        DataFormatError: the database has no run ``run_id``.
        StorageError: the visits cannot be written.
    """
    if run_id is not None:
        require_run(db, run_id)
    analyzer.spec.maybe_reload()
    if stored_until is not None and run_id is None:
        raise ValueError("stored_until is a worker's own run's: it needs a run_id")
    if rebuild:
        if run_id is None:
            raise ValueError("rebuild needs a run_id")
        with db.atomic():
            delete_visits_of_run(db, run_id)
    where, params = ("where id = ?", [run_id]) if run_id is not None else ("", [])
    runs = db.execute(f"select id, status from runs {where} order by id", params).fetchall()
    done = {
        row[0]: (row[1], bool(row[2]), row[3])
        for row in db.execute(
            "select run_id, done_until_t, finished, built_until_t from visit_build_runs")
    }
    totals = [0, 0, 0, 0, 0, 0]
    for run, status in runs:
        since, finished, built_until = done.get(run, (None, False, None))
        if finished:
            continue
        counts = _build_run(db, analyzer, run, since, built_until,
                            run_finished=status != "running",
                            stored_until=stored_until)
        totals = [a + b for a, b in zip(totals, (1, *counts), strict=True)]
    n_runs, visits, fragments, crossings, open_tracks, positions = totals
    summary = BuildSummary(n_runs, visits, fragments, crossings, open_tracks, positions,
                           spec_version=analyzer.spec.spec_version)
    _report(db, analyzer, summary)
    return summary


def ended_runs_to_build(db: sqlite_utils.Database, camera_id: str) -> list[int]:
    """``camera_id``'s runs that ended without all their visits built: interrupted (closed
    by its own worker at start, or by ``edge purge``'s ``close_dead_runs`` while no
    worker ran), or stopped with people in view by a fusion service that was not back in
    time to resume them. Their cut-off tracks still have to become visits."""
    built = ("and id not in (select run_id from visit_build_runs where finished) "
             if db["visit_build_runs"].exists() else "")
    return [row[0] for row in db.execute(
        f"select id from runs where camera_id = ? and status in ('interrupted', 'stopped') "
        f"{built}order by id",
        [camera_id],
    ).fetchall()]


def visits_stored_until(
    db: sqlite_utils.Database, config: VisitConfig, sources: Iterable[str], *,
    given_up_before: float = -math.inf,
) -> float:
    """The time before which every visit that ended is stored, as far as the live runs of
    ``sources`` (the cameras whose tracks become visits: the store's fused tracks on a
    multi-camera site) tell. A run is behind by what its last build had not seen yet:
    a worker that falls behind, or one that is down and builds the rest when it is back
    (a fusion service resumes its run). A run behind since before ``given_up_before``
    is not waited for (a worker stuck, or gone for good). ``inf`` when no run is."""
    names = list(sources)
    if not names or not db["runs"].exists() or not db["visit_build_runs"].exists():
        return math.inf
    marks = ", ".join("?" for _ in names)
    rows = db.execute(
        "select r.id, r.started_at, b.built_until_t from runs r "
        "left join visit_build_runs b on b.run_id = r.id "
        f"where r.kind = 'live' and r.camera_id in ({marks}) "
        "and (r.status = 'running' or not coalesce(b.finished, 0))", names).fetchall()
    wait = config.close_after_s + config.stitch_max_gap_s
    # A run never built yet: none of its visits can have ended before it started. A
    # resumed run's pauses hold its visits that long (edge.visits.pauses).
    behind = (started if built is None else Pauses(read_pauses(db, run)).before(built, wait)
              for run, started, built in rows)
    return min((until for until in behind if until >= given_up_before), default=math.inf)


def _report(db: sqlite_utils.Database, analyzer: VisitAnalyzer, summary: BuildSummary) -> None:
    """Health of the behavioural layer, for the status page: a rejected spec is degraded."""
    detail = {"spec_version": summary.spec_version, "visits_built": summary.visits,
              "open_tracks": summary.open_tracks}
    error = analyzer.spec.last_error
    try:
        if error:
            report_health(db, "visits", "degraded",
                          f"New shopper-type definitions (segment spec) were refused; still "
                          f"using version {summary.spec_version}. {error.splitlines()[0]}",
                          detail)
        else:
            # The definitions' version is IT detail: in ``detail`` (edge status --json,
            # /admin/debug), not in the sentence the store's associates read.
            report_health(db, "visits", "ok",
                          "Visits are sorted into shopper types as people leave.", detail)
    except sqlite3.Error as failure:
        raise StorageError(f"cannot record the visits' health: {failure}") from None


@dataclass(slots=True)
class _Reader:
    """Reads one build's positions of a run and counts them. Held pieces that started
    before ``carried_before`` were carried from the last build, not read whole
    (``edge.visits.carry``): :meth:`whole` reads one back when all of it is needed."""

    db: sqlite_utils.Database
    run_id: int
    pauses: Pauses
    carried_before: float = -math.inf
    count: int = 0

    def whole(self, piece: Visit) -> Visit:
        """``piece`` with every stored position between its first and its last."""
        if piece.start_t >= self.carried_before:
            return piece
        t, xy = read_track(self.db, self.run_id, piece.camera_id, piece.track_id,
                           piece.start_t, piece.end_t)
        self.count += len(t)
        return Visit(piece.camera_id, piece.run_id, piece.track_id, t, xy)


def _build_run(
    db: sqlite_utils.Database,
    analyzer: VisitAnalyzer,
    run_id: int,
    since: float | None,
    built_until: float | None,
    *,
    run_finished: bool,
    stored_until: float | None = None,
) -> tuple[int, int, int, int, int]:
    config = analyzer.config
    close_after = config.close_after_s
    latest = db.execute("select max(t) from track_points where run_id = ?", [run_id]).fetchone()[0]
    if stored_until is not None and not run_finished:
        latest = stored_until if latest is None else max(float(latest), stored_until)
    # cuts at swaps, then stitching; a resumed run's pauses are not time anyone was seen
    # to be gone (edge.visits.pauses)
    repairs = SwapRule.from_config(config, Pauses(read_pauses(db, run_id)))
    rivals = repairs.stitch.enabled and since is not None
    # Pieces already written that ended near the mark are read again: rivals of a join.
    read_from = None if since is None else since - (repairs.stitch.max_gap_s if rivals else 0.0)
    reader = _Reader(db, run_id, repairs.stitch.pauses)
    held_before: list[HeldPiece] = []
    kept: dict[PieceKey, Predecessor | None] = {}
    window = window_s(config)
    if (read_from is not None and built_until is not None
            and built_until - 2 * window > read_from):
        # A piece held since long ago: read the last two windows, carry what came before
        # (when the last build kept its held pieces: not one from before that was kept).
        held_before = read_held(db, run_id)
        if held_before and min(h.start_t for h in held_before) == since:
            reader.carried_before = read_from = built_until - 2 * window
            kept = decided(held_before, built_until - window)
        else:
            held_before = []
    pieces, state = _read_pieces(analyzer, reader, since, read_from, latest,
                                 rivals=rivals, run_finished=run_finished, held=held_before)
    settled = _settle(repairs, pieces, state, latest, close_after, run_finished, kept)
    pieces, state, held = settled.pieces, settled.state, settled.held
    cached = read_open_staff(db, run_id) if held_before else {}
    open_staff: list[tuple[str, int, float, str]] = []
    for i in held:
        if state[i] != "in_view":
            continue
        piece = pieces[i]
        known = cached.get((piece.camera_id, piece.track_id))
        if piece.start_t < reader.carried_before and known and known[0] == piece.start_t:
            reason: str | None = known[1]  # fired at an earlier build; its signals only grow
        else:
            reason = analyzer.staff_reason(analyzer.smoothed(reader.whole(piece)))
        if reason is not None:
            open_staff.append((piece.camera_id, piece.track_id, piece.start_t, reason))
    parts = [[reader.whole(pieces[i]) for i in chain] for chain in settled.ready]
    closing = [analyzer.smoothed(join(chain)) for chain in parts]
    outcome = analyzer.analyze_pieces(closing)
    # which stored positions are each visit's (a joined visit keeps its first piece's
    # track id and start): the status page's heat map counts people by them
    spans = {(chain[0].camera_id, chain[0].track_id, chain[0].start_t):
             [(p.camera_id, p.track_id, p.start_t, p.end_t) for p in chain] for chain in parts}
    visit_pieces = {
        result.visit_id: spans[key] for result in outcome.visits
        if (key := (result.measured.visit.camera_id, result.measured.visit.track_id,
                    result.measured.visit.start_t)) in spans}
    open_starts = [pieces[i].start_t for i in held]
    if open_starts:
        mark = min(open_starts)
    elif latest is not None:
        mark = float(latest)
    else:
        mark = since if since is not None else -math.inf
    progress = _Progress(mark, None if latest is None else float(latest),
                         held_pieces(pieces, held, settled.links, settled.heads), open_staff)
    try:
        crossings = _commit(db, analyzer, run_id, outcome, visit_pieces, settled.newly_closed,
                            progress, run_finished)
    except sqlite3.Error as error:
        raise StorageError(f"cannot write the visits of run {run_id}: {error}") from None
    log.debug("run %s: %d visits, %d fragments, %d crossings, %d open, %d positions read",
              run_id, len(outcome.visits), outcome.fragments, crossings, len(open_starts),
              reader.count)
    return len(outcome.visits), outcome.fragments, crossings, len(open_starts), reader.count


def _read_pieces(
    analyzer: VisitAnalyzer,
    reader: _Reader,
    since: float | None,
    read_from: float | None,
    latest: float,
    *,
    rivals: bool,
    run_finished: bool,
    held: list[HeldPiece],
) -> tuple[list[Visit], list[str]]:
    """The run's raw pieces from ``read_from`` on (with the held pieces carried from
    before it) and their states: "settled" (written: read again as rivals), "closed"
    (gone ``close_after_s``) or "in_view"."""
    db, run_id = reader.db, reader.run_id
    close_after = analyzer.config.close_after_s
    pauses = reader.pauses
    where = "" if read_from is None else " and closed_until_t >= ?"
    closed_until = {
        (row[0], row[1]): row[2]
        for row in db.execute(
            "select camera_id, track_id, closed_until_t from visit_build_tracks where "
            f"run_id = ?{where}", [run_id] if read_from is None else [run_id, read_from])
    }
    before = carried(held, reader.carried_before, close_after)
    pieces: list[Visit] = []
    state: list[str] = []

    def add(found: list[Visit]) -> None:
        pieces.extend(found)
        state.extend(["closed"] * len(found))
        if (found and not run_finished
                and pauses.elapsed(found[-1].end_t, latest) < close_after):
            state[-1] = "in_view"

    for trajectory in read_trajectories(db, run_id=run_id, since=read_from):
        reader.count += len(trajectory.t)
        key = (trajectory.camera_id, trajectory.track_id)
        new = trajectory.t > closed_until.get(key, -math.inf)
        if since is not None:
            new &= trajectory.t >= since
        if rivals and not new.all():
            old = analyzer.raw_pieces(trajectory.camera_id, run_id, trajectory.track_id,
                                      trajectory.t[~new], trajectory.xy[~new])
            pieces.extend(old)
            state.extend(["settled"] * len(old))
        found = analyzer.raw_pieces(trajectory.camera_id, run_id, trajectory.track_id,
                                    trajectory.t[new], trajectory.xy[new]) if new.any() else []
        add(with_carried(trajectory.camera_id, run_id, trajectory.track_id,
                         before.pop(key, []), found))
    for (camera, track), kept in before.items():  # nothing of theirs in the window
        add(with_carried(camera, run_id, track, kept, []))
    return pieces, state


@dataclass(frozen=True, slots=True)
class _Settled:
    """What :func:`_settle` decided.

    Attributes:
        pieces: the pieces cut where a track jumped onto someone else; state: theirs.
        ready: chains of pieces (indices) to write now, each one visit.
        held: pieces held for a later build.
        links: piece -> the piece that continues it; heads: the pieces that are a cut's head.
        newly_closed: per track, up to when it is done once ``ready`` is written.
    """

    pieces: list[Visit]
    state: list[str]
    ready: list[list[int]]
    held: list[int]
    links: dict[int, int]
    heads: set[int]
    newly_closed: dict[tuple[str, int], float]


def _settle(
    repairs: SwapRule,
    pieces: list[Visit],
    state: list[str],
    latest: float,
    close_after: float,
    run_finished: bool,
    kept: dict[PieceKey, Predecessor | None],
) -> _Settled:
    """The pieces cut where a track jumped onto someone else (``edge.visits.swaps``) and
    their states; which become visits now (joined where one continues another), which
    are held, and up to when each track is then done.

    A chain of pieces is written once its last piece has been gone ``close_after_s``
    plus the stitching gap: by then every piece that could continue it or rival a join
    (or a cut) has appeared and ended. Until then it is held, and read again at the next
    call. A track's later pieces wait behind a held one, so that its progress mark stays
    exact; a cut track's head is closed (it ends at the cut), its tail keeps its state.
    ``kept``: what continues into pieces that started long ago, decided at an earlier
    build (``edge.visits.carry``).
    """
    pieces, origin, links = repair(pieces, repairs,
                                   in_view=[s == "in_view" for s in state],
                                   settled=[s == "settled" for s in state], decided=kept)
    heads = {i for i in range(len(pieces) - 1) if origin[i + 1] == origin[i]}
    state = ["closed" if i in links and state[o] == "in_view" else state[o]
             for i, o in enumerate(origin)]
    rule = repairs.stitch
    wait = close_after + (rule.max_gap_s if rule.enabled else 0.0)
    ready: list[list[int]] = []
    held: set[int] = set()
    for chain in chains(len(pieces), links):
        if state[chain[0]] == "settled":
            continue
        last = pieces[chain[-1]]
        if any(state[i] == "in_view" for i in chain) or (
                not run_finished and rule.pauses.elapsed(last.end_t, latest) < wait):
            held.update(chain)
        else:
            ready.append(chain)
    while True:  # a track's pieces after a held one wait too
        first_held: dict[tuple[str, int], float] = {}
        for i in held:
            key = (pieces[i].camera_id, pieces[i].track_id)
            first_held[key] = min(first_held.get(key, math.inf), pieces[i].start_t)
        late = [chain for chain in ready if any(
            pieces[i].start_t > first_held.get((pieces[i].camera_id, pieces[i].track_id),
                                               math.inf) for i in chain)]
        if not late:
            break
        for chain in late:
            ready.remove(chain)
            held.update(chain)
    newly_closed: dict[tuple[str, int], float] = {}
    for chain in ready:
        for i in chain:
            key = (pieces[i].camera_id, pieces[i].track_id)
            newly_closed[key] = max(newly_closed.get(key, -math.inf), pieces[i].end_t)
    return _Settled(pieces, state, ready, sorted(held), links, heads, newly_closed)


@dataclass(frozen=True, slots=True)
class _Progress:
    """The builder's bookkeeping after a build: the run's mark (every position before
    it processed), its present, the pieces it holds and the open tracks classified as
    associates'."""

    mark: float
    built_until: float | None
    held: list[HeldPiece]
    open_staff: list[tuple[str, int, float, str]]


def _commit(
    db: sqlite_utils.Database,
    analyzer: VisitAnalyzer,
    run_id: int,
    outcome: TrackOutcome,
    visit_pieces: dict[str, list[PieceSpan]],
    newly_closed: dict[tuple[str, int], float],
    progress: _Progress,
    run_finished: bool,
) -> int:
    """Write one run's new visits and the builder's progress in one transaction."""
    mark = progress.mark
    with db.atomic():
        insert_visits(db, analyzer.site.site.id, outcome.visits, visit_pieces)
        insert_groups(db, analyzer.config, outcome.visits)
        insert_staff_visits(db, analyzer.site.site.id, outcome.staff)
        crossings = insert_crossings(db, outcome.crossings)
        if newly_closed:
            db.table("visit_build_tracks").upsert_all(
                [{"run_id": run_id, "camera_id": camera, "track_id": track,
                  "closed_until_t": until} for (camera, track), until in newly_closed.items()],
                pk=("run_id", "camera_id", "track_id"),
            )
        db.table("visit_build_runs").upsert(
            {"run_id": run_id, "done_until_t": mark if np.isfinite(mark) else None,
             "finished": int(run_finished), "built_until_t": progress.built_until},
            pk="run_id",
        )
        replace_held(db, run_id, [] if run_finished else progress.held)
        replace_open_staff(db, run_id, progress.open_staff)
        if run_finished:
            db.execute("delete from visit_build_tracks where run_id = ?", [run_id])
        elif np.isfinite(mark):
            db.execute(
                "delete from visit_build_tracks where run_id = ? and closed_until_t < ?",
                [run_id, mark],
            )
    return crossings
