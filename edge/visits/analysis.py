"""One site's behavioural layer: track positions in, measured and classified visits out."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edge.config import SiteConfig
from edge.visits.features import FeatureExtractor
from edge.visits.records import LineCrossing, Visit, VisitResult
from edge.visits.reload import SpecHolder
from edge.visits.spec import default_spec_path, downlinked_spec_path
from edge.visits.staff import StaffReason, StaffRule, StaffVisit
from edge.visits.trajectory import smooth, track_segments


@dataclass(frozen=True, slots=True)
class TrackOutcome:
    """What one finished track (or piece of one) gave.

    Attributes:
        visits: customers' visits, measured and classified (fragments are not visits).
        crossings: line crossings of every piece, fragments included, with the
            piece they belong to; an associate's pieces' crossings are left out.
        fragments: pieces dropped for being shorter than ``visits.min_duration_s``.
        staff: visits classified as associates' (``edge.visits.staff``): not in
            ``visits``, never given traits.
    """

    visits: list[VisitResult]
    crossings: list[tuple[Visit, LineCrossing]]
    fragments: int
    staff: list[StaffVisit] = field(default_factory=list)


class VisitAnalyzer:
    """Turns tracks into visits for one site.

    Args:
        site: the site config (floor zones and lines, visit thresholds, spec path).
        spec_path: a segment spec to use instead of the site's.
    """

    def __init__(self, site: SiteConfig, spec_path: str | Path | None = None) -> None:
        self.site = site
        self.config = site.visits
        self.extractor = FeatureExtractor(site.floor, site.visits)
        self.staff_rule = StaffRule(site.floor, site.visits)
        path = spec_path or site.visits.segment_spec or default_spec_path()
        self.spec = SpecHolder(
            path,
            self.extractor.names,
            self.extractor.tags,
            check_every_s=site.visits.spec_reload_s,
            override_path=None if spec_path else downlinked_spec_path(),
        )

    def pieces(
        self, camera_id: str, run_id: int | None, track_id: int, t: np.ndarray, xy: np.ndarray
    ) -> list[Visit]:
        """A track split where it was gone ``close_after_s`` or more, and smoothed."""
        return track_segments(
            camera_id, run_id, track_id, t, xy,
            gap_s=self.config.close_after_s, smoothing_s=self.config.smoothing_s,
            outlier_m=self.config.outlier_m,
        )

    def raw_pieces(
        self, camera_id: str, run_id: int | None, track_id: int, t: np.ndarray, xy: np.ndarray
    ) -> list[Visit]:
        """As :meth:`pieces`, not smoothed yet (to be joined first: ``edge.visits.stitch``)."""
        return track_segments(camera_id, run_id, track_id, t, xy,
                              gap_s=self.config.close_after_s, smoothing_s=0.0)

    def smoothed(self, visit: Visit) -> Visit:
        """The visit with its positions smoothed (as :meth:`pieces` does)."""
        return replace(visit, xy=smooth(visit.t, visit.xy, self.config.smoothing_s,
                                        outlier_m=self.config.outlier_m))

    def analyze_pieces(self, pieces: Sequence[Visit]) -> TrackOutcome:
        """Measure and classify finished pieces of tracks."""
        crossings: list[tuple[Visit, LineCrossing]] = []
        measured = []
        staff: list[StaffVisit] = []
        fragments = 0
        for piece in pieces:
            found = self.extractor.crossings(piece)
            if piece.duration_s < self.config.min_duration_s or len(piece) < 2:
                crossings.extend((piece, c) for c in found)
                fragments += 1
                continue
            features = self.extractor.measure(piece, found)
            reason = self.staff_rule.reason(features)
            if reason is not None:
                staff.append(StaffVisit(str(uuid.uuid4()), features, reason))
                continue
            crossings.extend((piece, c) for c in found)
            measured.append(features)
        classifier = self.spec.classifier
        scores = classifier.classify_many([m.features for m in measured])
        visits = [
            VisitResult(str(uuid.uuid4()), m, s) for m, s in zip(measured, scores, strict=True)
        ]
        return TrackOutcome(visits, crossings, fragments, staff)

    def staff_reason(self, piece: Visit) -> StaffReason | None:
        """Whether a piece still in view is already an associate's, by the staff rule
        (the rule's signals only grow as a piece goes on, so the answer stands)."""
        if piece.duration_s < self.config.min_duration_s or len(piece) < 2:
            return None
        measured = self.extractor.measure(piece, self.extractor.crossings(piece))
        return self.staff_rule.reason(measured)

    def analyze_track(
        self, camera_id: str, run_id: int | None, track_id: int, t: np.ndarray, xy: np.ndarray
    ) -> TrackOutcome:
        """All visits of a finished track."""
        return self.analyze_pieces(self.pieces(camera_id, run_id, track_id, t, xy))
