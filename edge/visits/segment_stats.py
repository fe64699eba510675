"""Sufficient statistics of the micro-segment mixture, for a federated refit.

A box never sends visits to redefine the segments: it sends, per mixture component
``k`` of its current spec, the E-step statistics over its visits' scaled features
``z`` (see :class:`edge.visits.classify.CompiledSegments`):

* ``n_k = sum_i r_ik`` (summed membership),
* ``s_k = sum_i r_ik z_i`` (membership-weighted sum, one value per feature),
* ``q_k = sum_i r_ik z_i**2`` (weighted sum of squares, diagonal),

with ``r_ik`` the *untempered* posterior (temperature 1: the EM E-step; the spec's
``temperature`` only changes what is stored as memberships). Summed over stores
these are exactly the statistics of all visits in one place, so the central M-step
(the central side, sync/central/refit.py) gives the same mixture as fitting on the pooled visits.

A component whose summed membership at a store is a small group (the k rules of
:mod:`edge.privacy.small_counts`, with memberships as soft counts) is withheld:
``None`` instead of its numbers.

Also here: the expected calibration error of top memberships, and the temperature
that minimises it on labelled visits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from edge.privacy.small_counts import withheld as small_cells
from edge.visits.classify import CompiledSegments
from edge.visits.spec import SegmentSpec, SpecError


@dataclass(frozen=True, slots=True)
class ComponentStats:
    """One component's E-step statistics at one store."""

    membership: float
    weighted_sum: tuple[float, ...]
    weighted_sumsq: tuple[float, ...]

    @classmethod
    def parse(
        cls, name: object, membership: Any, sums: Any, sumsqs: Any, n_features: int
    ) -> ComponentStats:
        """A component's statistics as a box sends them (JSON numbers).

        Raises:
            ValueError: the sums are not ``n_features`` values each.
        """
        s = tuple(float(v) for v in sums)
        q = tuple(float(v) for v in sumsqs)
        if len(s) != n_features or len(q) != n_features:
            raise ValueError(f"component {name!r}: sum and sumsq need {n_features} values")
        return cls(float(membership), s, q)


@dataclass(frozen=True, slots=True)
class SegmentStatistics:
    """One store's E-step statistics under one spec version.

    Attributes:
        spec_version: the spec whose mixture (and scaling) the statistics are about.
        features: the segment features, in order.
        visits: how many visits were summed.
        components: component name -> its statistics, or ``None`` where withheld.
    """

    spec_version: str
    features: tuple[str, ...]
    visits: int
    components: dict[str, ComponentStats | None]

    def withheld(self) -> list[str]:
        return [name for name, c in self.components.items() if c is None]

    def plus(self, other: SegmentStatistics) -> SegmentStatistics:
        """The statistics of both sets of visits (two days, two stores): sums add up; a
        component withheld in either is withheld in the sum."""
        components: dict[str, ComponentStats | None] = {}
        for name in self.components.keys() | other.components.keys():
            a, b = self.components.get(name), other.components.get(name)
            components[name] = None if a is None or b is None else ComponentStats(
                a.membership + b.membership,
                tuple(x + y for x, y in zip(a.weighted_sum, b.weighted_sum, strict=True)),
                tuple(x + y for x, y in zip(a.weighted_sumsq, b.weighted_sumsq, strict=True)),
            )
        return replace(self, visits=self.visits + other.visits, components=components)

    def to_section(self, day: str) -> dict[str, Any]:
        """The wire form: an aggregate's ``segment_stats`` (schema 1.2, docs/mqtt.md)."""
        return {
            "day": day,
            "spec_version": self.spec_version,
            "features": list(self.features),
            "visits": self.visits,
            "components": [
                {
                    "name": name,
                    "membership": None if c is None else c.membership,
                    "sum": None if c is None else list(c.weighted_sum),
                    "sumsq": None if c is None else list(c.weighted_sumsq),
                }
                for name, c in self.components.items()
            ],
        }

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> SegmentStatistics:
        """The statistics a (schema-valid) ``segment_stats`` section carries; a component
        withheld at the box (null membership) is ``None``.

        Raises:
            ValueError: the section does not hold statistics (a missing key, sums of the
                wrong length).
        """
        try:
            features = tuple(str(f) for f in section["features"])
            components: dict[str, ComponentStats | None] = {}
            for item in section["components"]:
                if item["membership"] is None or item["sum"] is None or item["sumsq"] is None:
                    components[str(item["name"])] = None
                    continue
                components[str(item["name"])] = ComponentStats.parse(
                    item["name"], item["membership"], item["sum"], item["sumsq"], len(features))
            visits = section["visits"]
            return cls(str(section["spec_version"]), features,
                       int(visits) if visits is not None else 0, components)
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"not segment statistics: {error!r}") from None


def compile_segments(spec: SegmentSpec, feature_names: Sequence[str]) -> CompiledSegments:
    """The spec's mixture compiled for a site's feature layout.

    Raises:
        SpecError: the spec has no ``segments``.
    """
    if spec.segments is None:
        raise SpecError(f"segment spec {spec.spec_version} defines no segments")
    return CompiledSegments(spec, {name: i for i, name in enumerate(feature_names)})


def scaled_features(spec: SegmentSpec, feature_names: Sequence[str], x: np.ndarray) -> np.ndarray:
    """``(n, D)`` scaled segment features of ``(n, F)`` site feature vectors."""
    return compile_segments(spec, feature_names).scaled(np.asarray(x, dtype=np.float64))


def sufficient_statistics(
    spec: SegmentSpec, z: np.ndarray, *, k: int = 0
) -> SegmentStatistics:
    """E-step statistics of the spec's mixture over scaled features ``z`` ``(n, D)``.

    Args:
        spec: the spec whose mixture gives the memberships (at temperature 1).
        z: the visits' scaled segment features (:func:`scaled_features`).
        k: the small-count threshold (0: withhold nothing). Memberships partition the
            visits softly, so the rules of :mod:`edge.privacy.small_counts` apply with
            the summed memberships as counts and the visits as their total: a
            component below ``k``, one whose complement is below ``k``, and more until
            the published ones do not give a withheld one away by subtraction. A
            published component's sums also stem from at least ``k`` visits: each
            membership is at most 1, so Kish's effective number of visits behind them,
            ``(sum_i r_ik)**2 / sum_i r_ik**2``, is at least the summed membership.
    """
    assert spec.segments is not None
    z = np.asarray(z, dtype=np.float64).reshape(-1, len(spec.segments.features))
    compiled = compile_segments(spec, spec.segments.features)
    r = compiled.posterior(z, temperature=1.0) if len(z) else np.zeros(
        (0, len(spec.segments.components)))
    n = r.sum(axis=0)
    s = r.T @ z
    q = r.T @ (z * z)
    names = [c.name for c in spec.segments.components]
    hidden = small_cells(dict(zip(names, n.tolist(), strict=True)), k, total=len(z),
                         exclusive=True, zero_is_small=True) if k > 0 else set()
    components: dict[str, ComponentStats | None] = {}
    for j, component in enumerate(spec.segments.components):
        if component.name in hidden:
            components[component.name] = None
        else:
            components[component.name] = ComponentStats(
                float(n[j]), tuple(s[j].tolist()), tuple(q[j].tolist()))
    return SegmentStatistics(spec.spec_version, tuple(spec.segments.features), len(z),
                             components)


def expected_calibration_error(p: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """ECE of top-class confidences ``p`` ``(n,)`` against 0/1 ``correct`` ``(n,)``:
    the visit-weighted mean over equal-width confidence bins of |accuracy - confidence|."""
    p = np.asarray(p, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    if len(p) == 0:
        return 0.0
    which = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.sum() * abs(correct[inside].mean() - p[inside].mean())
    return float(total / len(p))


def membership_ece(
    compiled: CompiledSegments, z: np.ndarray, labels: np.ndarray, temperature: float,
    bins: int = 10,
) -> float:
    """ECE of the top membership at ``temperature`` against reference components
    ``labels`` (``(n,)`` component indices)."""
    r = compiled.posterior(z, temperature=temperature)
    top = r.argmax(axis=1)
    return expected_calibration_error(r.max(axis=1), top == labels, bins)


def calibrate_temperature(
    compiled: CompiledSegments, z: np.ndarray, labels: np.ndarray, *,
    grid: Sequence[float] | None = None, bins: int = 10,
) -> tuple[float, float]:
    """The temperature (from ``grid``, log-spaced 0.5..200 by default) minimising the
    membership ECE on labelled visits; returns ``(temperature, ece)``."""
    grid = list(grid) if grid is not None else np.geomspace(0.5, 200.0, 121).tolist()
    scored = [(membership_ece(compiled, z, labels, t, bins), t) for t in grid]
    ece, t = min(scored)
    return float(t), float(ece)


# The longest visit a duration table needs to name: the last pair's T applies beyond it.
LONGEST_S = 86_400.0


def duration_buckets(
    durations: np.ndarray, edges: Sequence[float]
) -> list[tuple[float, float, np.ndarray]]:
    """``(low, high, mask)`` per bucket ``[0, e0), [e0, e1), ..., [e_last, inf)``."""
    d = np.asarray(durations, dtype=np.float64)
    bounds = [0.0, *edges, float("inf")]
    return [(lo, hi, (d >= lo) & (d < hi)) for lo, hi in zip(bounds, bounds[1:], strict=False)]


def ece_by_duration(
    r: np.ndarray, labels: np.ndarray, durations: np.ndarray, edges: Sequence[float],
    bins: int = 10,
) -> list[tuple[float, float, int, float]]:
    """``(low, high, visits, ECE)`` of the top memberships ``r`` ``(n, K)`` per visit
    duration bucket (see :func:`duration_buckets`)."""
    top, p = r.argmax(axis=1), r.max(axis=1)
    return [(lo, hi, int(m.sum()), expected_calibration_error(p[m], top[m] == labels[m], bins))
            for lo, hi, m in duration_buckets(durations, edges)]


def calibrate_by_duration(
    compiled: CompiledSegments, z: np.ndarray, labels: np.ndarray, durations: np.ndarray,
    edges: Sequence[float], *, grid: Sequence[float] | None = None, bins: int = 10,
) -> list[tuple[float, float]]:
    """A ``temperature_by_duration`` table: per duration bucket, the temperature (from
    ``grid``, log-spaced 1..500 by default) of the whole log-posterior that minimises
    the bucket's membership ECE on labelled visits.

    Returns:
        ``[(below_s, T), ...]``: ``edges`` as the ``below_s``, then :data:`LONGEST_S`
        for the last bucket (its T applies beyond it too).
    """
    grid = list(grid) if grid is not None else np.geomspace(1.0, 500.0, 151).tolist()
    table = []
    for (_, _, m), below in zip(duration_buckets(durations, edges), [*edges, LONGEST_S],
                                 strict=True):
        scored = []
        for t in grid:
            r = compiled.joint_tempered(z[m], np.full(int(m.sum()), t))
            scored.append((expected_calibration_error(r.max(axis=1),
                                                      r.argmax(axis=1) == labels[m], bins), t))
        table.append((float(below), float(min(scored)[1]) if scored else 1.0))
    return table
