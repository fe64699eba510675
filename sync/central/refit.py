"""Federated refit of the micro-segments: pool the stores' E-step statistics, run the M-step.

Each store sends :class:`edge.visits.segment_stats.SegmentStatistics` computed under
the current spec (never its visits). Summed over stores they are the statistics of
all visits in one place, so one round here is exactly one EM iteration on the pooled
visits. The M-step, for the spec's diagonal Gaussian mixture over scaled features:

* ``weight_k = n_k / sum_j n_j``
* ``mean_k = s_k / n_k``
* ``var_k = q_k / n_k - mean_k**2 + reg_covar`` (as scikit-learn's ``reg_covar``,
  which :func:`edge.visits.training.fit_segments` uses, so no variance collapses)

The feature scaling (``center``, ``scale``), traits and everything else are kept; the
result is a new spec (minor version bumped) as YAML the spec loader accepts. The refit
is refused (the previous spec stays, with the reason) when too few stores sent
statistics, when statistics belong to another spec version or feature list, when any
component's statistics were withheld (pooling the rest would bias it), or when a
component keeps too little membership to estimate.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import yaml

from edge.visits.segment_stats import SegmentStatistics
from edge.visits.spec import SegmentSpec, parse_spec

REG_COVAR = 1e-2


@dataclass(frozen=True, slots=True)
class RefitResult:
    """The outcome of a refit round.

    Attributes:
        spec: the new spec, or the previous one when refused.
        yaml_text: the new spec as YAML (``None`` when refused).
        refused: why the refit was refused (``None`` when it was done).
        stores: how many stores' statistics were pooled (or offered, when refused).
        visits: visits behind the pooled statistics.
    """

    spec: SegmentSpec
    yaml_text: str | None
    refused: str | None
    stores: int
    visits: int

    @property
    def ok(self) -> bool:
        return self.refused is None


@dataclass(frozen=True, slots=True)
class PooledStatistics:
    """Statistics summed over stores, as arrays in the spec's component order."""

    membership: np.ndarray  # (K,)
    weighted_sum: np.ndarray  # (K, D)
    weighted_sumsq: np.ndarray  # (K, D)
    visits: int


def pool(spec: SegmentSpec, stats: Sequence[SegmentStatistics]) -> PooledStatistics:
    """Sum complete statistics (no component withheld) in the spec's component order."""
    assert spec.segments is not None
    total = functools.reduce(SegmentStatistics.plus, stats)
    components = [total.components[c.name] for c in spec.segments.components]
    assert all(c is not None for c in components)
    return PooledStatistics(
        np.array([c.membership for c in components if c is not None]),
        np.array([c.weighted_sum for c in components if c is not None]),
        np.array([c.weighted_sumsq for c in components if c is not None]),
        total.visits,
    )


def m_step(
    pooled: PooledStatistics, *, reg_covar: float = REG_COVAR
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(weights (K,), means (K, D), variances (K, D))`` from pooled statistics."""
    n = pooled.membership
    weights = n / n.sum()
    means = pooled.weighted_sum / n[:, None]
    var = pooled.weighted_sumsq / n[:, None] - means * means
    return weights, means, np.maximum(var, 0.0) + reg_covar


def bump_version(version: str) -> str:
    major, minor, *_ = (version.split(".") + ["0"])[:3]
    return f"{major}.{int(minor) + 1}.0"


def refit_spec(
    spec: SegmentSpec,
    stats: Sequence[SegmentStatistics],
    *,
    min_stores: int = 5,
    min_membership: float = 5.0,
    reg_covar: float = REG_COVAR,
    version: str | None = None,
    temperature: float | None = None,
) -> RefitResult:
    """One federated EM round: a new spec from the stores' statistics, or a refusal.

    Args:
        spec: the spec the stores computed their statistics under.
        stats: one :class:`SegmentStatistics` per store.
        min_stores: refuse with fewer stores than this.
        min_membership: refuse when a component's pooled membership is below this.
        reg_covar: added to every variance.
        version: the new ``spec_version`` (default: minor version bumped).
        temperature: the new spec's membership temperature (default: kept).
    """
    def refuse(reason: str) -> RefitResult:
        return RefitResult(spec, None, f"refit refused, keeping spec {spec.spec_version}: "
                           f"{reason}", len(stats), sum(s.visits for s in stats))

    if spec.segments is None:
        return refuse("the spec defines no segments")
    if len(stats) < min_stores:
        return refuse(f"statistics from {len(stats)} stores, at least {min_stores} needed")
    names = [c.name for c in spec.segments.components]
    features = tuple(spec.segments.features)
    for i, store in enumerate(stats):
        if store.spec_version != spec.spec_version:
            return refuse(f"store {i} sent statistics for spec {store.spec_version}")
        if store.features != features or sorted(store.components) != sorted(names):
            return refuse(f"store {i} sent statistics for other features or segments")
    withheld = sorted({name for store in stats for name in store.withheld()})
    if withheld:
        stores = sum(1 for store in stats if store.withheld())
        return refuse(f"{stores} of {len(stats)} stores withheld the statistics of "
                      f"segment(s) {', '.join(withheld)} (below k); pooling the rest "
                      "would bias them")
    pooled = pool(spec, stats)
    thin = [f"{name} ({n:.2f})" for name, n in zip(names, pooled.membership, strict=True)
            if not n >= min_membership]
    if thin:
        return refuse(f"segment(s) {', '.join(thin)} keep less than {min_membership} "
                      "visits' membership")
    weights, means, var = m_step(pooled, reg_covar=reg_covar)
    if not (np.isfinite(means).all() and np.isfinite(var).all()):
        return refuse("the pooled statistics are not finite")
    document = spec.model_dump(mode="json", exclude_none=True)
    document["spec_version"] = version or bump_version(spec.spec_version)
    segments = document["segments"]
    for j, component in enumerate(segments["components"]):
        component["weight"] = float(weights[j])
        component["mean"] = [float(v) for v in means[j]]
        component["var"] = [float(v) for v in var[j]]
    if temperature is not None:
        segments["temperature"] = float(temperature)
    text = (f"# Segment spec {document['spec_version']}: micro-segments refitted centrally "
            f"from {len(stats)} stores' statistics ({pooled.visits} visits) under "
            f"{spec.spec_version}.\n" + yaml.safe_dump(document, sort_keys=False, width=100))
    new = parse_spec(text, source=f"refit of {spec.spec_version}")
    return RefitResult(new, text, None, len(stats), pooled.visits)
