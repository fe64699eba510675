"""The segment spec: a versioned, declarative file that defines traits and segments.

The central team writes it and the box loads it; a new version can be dropped in
and is hot-reloaded (see :mod:`edge.visits.reload`). It defines:

* ``traits``: each a logistic score ``p = 1 / (1 + exp(-(bias + sum(terms))))``
  where a term is ``weight * (clip(feature, lo, hi) - center)``. ``p`` is the
  probability of the named pole; the opposite pole is ``1 - p``.
* ``affinity``: one rule applied to every category tag of the site, giving traits
  ``affinity_<tag>``; its features may name ``{category}``.
* ``segments``: micro-segments as a diagonal Gaussian mixture over (scaled)
  features; each visit gets its membership probabilities.
* ``classifier``: optionally a trained ONNX model whose traits replace the rules'.
* ``trait_evidence``: how a short visit's traits shrink toward 0.5, or are unknown.

Loading checks everything up front (unknown features, bad versions, sizes that do
not line up, numbers that are not finite, a missing or corrupt model) and raises
:class:`SpecError`; a spec is used whole or not at all. Every problem carries the key
path it is about, so the error names the line of that key (see
:func:`edge.config.loader.validate_yaml`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from edge.config.base import Loc, StrictModel, key_problems
from edge.config.loader import read_yaml_file, validate_yaml
from edge.errors import ConfigError
from edge.paths import share_dir, state_dir
from edge.visits.features import unknown_feature_reason

SPEC_FORMAT = 1
CORE_TRAITS = ("showroomer", "wanderer", "indecisive", "bargain_hunter")
AFFINITY_PREFIX = "affinity_"
CATEGORY = "{category}"
_SLUG = r"^[a-z0-9][a-z0-9_-]{0,47}$"

# Sane magnitudes for a spec's numbers. Finite is not enough: weights of +-1e308 overflow
# a logit to inf (and inf - inf is NaN), a variance or scale of 1e-320 divides to inf.
# Features are seconds (at most a day), metres, counts and shares, so these bounds leave
# any useful spec far inside and keep every sum finite in float64.
MAX_WEIGHT = 1e4        # a trait term's weight, |w|
MAX_BIAS = 1e4          # a trait's bias, |b|
MAX_FEATURE = 1e7       # a term's center and clip bounds, |x| (feature units)
MAX_SCALED = 1e6        # segment center and component means, |x|
MIN_SPREAD, MAX_SPREAD = 1e-6, 1e6   # segment scales, variances and temperatures
MAX_COMPONENT_WEIGHT = 1e6
Spread = Annotated[float, Field(ge=MIN_SPREAD, le=MAX_SPREAD)]
Scaled = Annotated[float, Field(ge=-MAX_SCALED, le=MAX_SCALED)]
FeatureValue = Annotated[float, Field(ge=-MAX_FEATURE, le=MAX_FEATURE)]


class SpecError(ConfigError):
    """A segment spec (or its classifier model) is invalid; nothing of it is used."""


class _SpecModel(StrictModel):
    """A spec section: as a config section, and every number must be finite (an
    ``.inf`` or ``.nan`` weight would make every probability NaN, stored as NULL)."""

    model_config = ConfigDict(allow_inf_nan=False)


def downlinked_spec_path() -> Path:
    """Where a spec sent by the central platform (MQTT ``config/set``) is written; when it
    exists it takes precedence over the site's own spec file."""
    return state_dir() / "segment-spec.downlink.yaml"


def default_spec_path() -> Path:
    return share_dir() / "models" / "segments" / "default.yaml"


class Term(_SpecModel):
    """``weight * (clip(feature, clip[0], clip[1]) - center)``."""

    feature: str = Field(description="A feature name (see docs/visits.md).")
    weight: float = Field(ge=-MAX_WEIGHT, le=MAX_WEIGHT)
    center: float = Field(0.0, ge=-MAX_FEATURE, le=MAX_FEATURE)
    clip: tuple[FeatureValue, FeatureValue] | None = Field(
        None, description="Limit the feature to [lo, hi] first, so no one feature dominates."
    )

    @model_validator(mode="after")
    def _ordered_clip(self) -> Term:
        if self.clip is not None and self.clip[0] > self.clip[1]:
            raise key_problems("Term", [(("clip",), "clip must be [lo, hi] with lo <= hi",
                                     list(self.clip))])
        return self


class TraitRule(_SpecModel):
    """A trait as a logistic score of features."""

    description: str
    opposite: str | None = Field(None, description="Name of the opposite pole (1 - p).")
    bias: float = Field(0.0, ge=-MAX_BIAS, le=MAX_BIAS)
    terms: list[Term] = Field(min_length=1)


class AffinityRule(_SpecModel):
    """The rule for ``affinity_<tag>``, applied to each category tag of the site."""

    description: str
    exclude_tags: list[str] = Field(
        default_factory=list, description="Tags that are not categories (e.g. promo, premium)."
    )
    bias: float = Field(0.0, ge=-MAX_BIAS, le=MAX_BIAS)
    terms: list[Term] = Field(min_length=1)


class SegmentComponent(_SpecModel):
    """One micro-segment: a Gaussian over the scaled segment features."""

    name: str = Field(pattern=_SLUG)
    description: str | None = None
    weight: float = Field(gt=0, le=MAX_COMPONENT_WEIGHT)
    mean: list[Scaled]
    var: list[float]

    @model_validator(mode="after")
    def _positive(self) -> SegmentComponent:
        bad = [(("var", i), f"every variance must be > 0, between {MIN_SPREAD:g} and "
                f"{MAX_SPREAD:g}", v) for i, v in enumerate(self.var)
               if not MIN_SPREAD <= v <= MAX_SPREAD]
        if bad:
            raise key_problems("SegmentComponent", bad)
        return self


class SegmentModel(_SpecModel):
    """Micro-segments: a diagonal Gaussian mixture, e.g. fitted centrally."""

    features: list[str] = Field(min_length=1)
    log1p: list[str] = Field(
        default_factory=list, description="Features replaced by log(1 + x) before scaling."
    )
    center: list[Scaled]
    scale: list[float]
    components: list[SegmentComponent] = Field(min_length=1)
    temperature: float = Field(
        1.0, ge=MIN_SPREAD, le=MAX_SPREAD, description="Memberships use log-likelihood / "
        "temperature (1 = the plain posterior; > 1 softens over-confident memberships). "
        "Calibrated centrally."
    )
    temperature_by_duration: list[tuple[float, float]] | None = Field(
        None, min_length=1,
        description="[below_s, T] pairs, below_s increasing: a visit shorter than below_s "
        "(and not shorter than the previous one) gets memberships softmax((log w + "
        "log-likelihood) / T); visits at or beyond the last below_s use the last T. "
        "Replaces temperature when given (needs the duration_s feature). Calibrated on "
        "held-out visits per length (docs/visits.md).",
    )

    @model_validator(mode="after")
    def _sizes_line_up(self) -> SegmentModel:
        n = len(self.features)
        problems: list[tuple[Loc, str, object]] = []
        if len(set(self.features)) != n:
            problems.append((("features",), "segment features must not repeat", self.features))
        for key, values in (("center", self.center), ("scale", self.scale)):
            if len(values) != n:
                problems.append(((key,), f"center and scale need one value per feature ({n}), "
                                 f"got {len(values)} for {key}", values))
        problems += [(("scale", i), f"every scale must be > 0, between {MIN_SPREAD:g} and "
                      f"{MAX_SPREAD:g}", s)
                     for i, s in enumerate(self.scale) if not MIN_SPREAD <= s <= MAX_SPREAD]
        problems += [(("log1p", i), "log1p names a feature not in the segment features", name)
                     for i, name in enumerate(self.log1p) if name not in self.features]
        seen: set[str] = set()
        for i, c in enumerate(self.components):
            if c.name in seen:
                problems.append((("components", i, "name"), "segment names must be unique",
                                 c.name))
            seen.add(c.name)
            for key, values in (("mean", c.mean), ("var", c.var)):
                if len(values) != n:
                    problems.append((("components", i, key), f"segment {c.name!r}: mean and "
                                     f"var need {n} values, got {len(values)} for {key}", values))
        table = self.temperature_by_duration or []
        problems += [(("temperature_by_duration", i), "every below_s must be > 0 and at "
                      f"most {MAX_FEATURE:g}, every T between {MIN_SPREAD:g} and "
                      f"{MAX_SPREAD:g}", pair) for i, pair in enumerate(table)
                     if not (0 < pair[0] <= MAX_FEATURE and MIN_SPREAD <= pair[1] <= MAX_SPREAD)]
        problems += [(("temperature_by_duration", i), "below_s must increase", table[i][0])
                     for i in range(1, len(table)) if not table[i][0] > table[i - 1][0]]
        if table and "duration_s" not in self.features:
            problems.append((("temperature_by_duration",), "needs duration_s among the "
                             "segment features", None))
        if problems:
            raise key_problems("SegmentModel", problems)
        return self


class TraitEvidence(_SpecModel):
    """How much of a visit its traits need before they say anything.

    A trait's logit is multiplied by ``min(1, duration_s / full_duration_s)``, so its
    ``p`` shrinks toward 0.5 (no information) for a short visit and is untouched from
    ``full_duration_s`` on; a visit shorter than ``min_duration_s`` gets no traits at
    all (``None``, stored as NULL: unknown, not counted in the mix). The sign of the
    logit is kept, so a shrunk trait counts (``p >= 0.5``) exactly when it did before.
    """

    min_duration_s: float = Field(
        10.0, ge=0, le=86_400, description="Visits shorter than this get no traits (unknown)."
    )
    full_duration_s: float = Field(
        45.0, gt=0, le=86_400, description="Visits at least this long keep their traits' "
        "full logit; shorter ones have it scaled by duration_s / full_duration_s."
    )

    @model_validator(mode="after")
    def _ordered(self) -> TraitEvidence:
        if self.min_duration_s > self.full_duration_s:
            raise key_problems("TraitEvidence", [(("min_duration_s",), "min_duration_s "
                               "must not exceed full_duration_s", self.min_duration_s)])
        return self


class ClassifierRef(_SpecModel):
    """A trained trait classifier (ONNX) next to the spec."""

    model: str = Field(description="ONNX file, relative to the spec file.")
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")


class SegmentSpec(_SpecModel):
    """A whole segment spec file."""

    spec_format: Literal[1] = Field(description="Layout of this file; this box reads 1.")
    spec_version: str = Field(
        pattern=r"^\d+\.\d+(\.\d+)?$", description="Version of the definitions, e.g. 1.2.0."
    )
    name: str = Field(pattern=_SLUG)
    description: str | None = None
    tags: list[str] = Field(
        default_factory=list, description="Category tags the definitions may name."
    )
    traits: dict[str, TraitRule]
    affinity: AffinityRule | None = None
    trait_evidence: TraitEvidence = Field(
        default_factory=TraitEvidence, description="Traits of short visits: shrunk toward "
        "0.5 or unknown (a spec without this section gets the defaults)."
    )
    segments: SegmentModel | None = None
    classifier: ClassifierRef | None = None

    @model_validator(mode="after")
    def _consistent(self) -> SegmentSpec:
        problems: list[tuple[Loc, str, object]] = []
        missing = [name for name in CORE_TRAITS if name not in self.traits]
        if missing:
            problems.append((("traits",), f"the spec must define the traits "
                             f"{', '.join(missing)}", sorted(self.traits)))
        for name in self.traits:
            if not _is_trait_name(name) or name.startswith(AFFINITY_PREFIX):
                problems.append((("traits", name), "a trait name must be lower-case letters, "
                                 f"digits and _, and not start with {AFFINITY_PREFIX!r}", name))
        for name, rule in self.traits.items():
            problems += _term_problems(("traits", name), rule.terms, self.tags)
        if self.affinity is not None:
            problems += _term_problems(("affinity",), self.affinity.terms, self.tags,
                                       category=True)
        if self.segments is not None:
            for i, name in enumerate(self.segments.features):
                reason = unknown_feature_reason(name, self.tags)
                if reason is not None:
                    problems.append((("segments", "features", i), f"unknown feature: {reason}",
                                     name))
        if problems:
            raise key_problems("SegmentSpec", problems)
        return self


def _is_trait_name(name: str) -> bool:
    return bool(name) and name[0].isalpha() and all(c.islower() or c.isdigit() or c == "_"
                                                     for c in name)


_PROBE = "category-probe"


def _term_problems(
    where: Loc, terms: list[Term], tags: list[str], *, category: bool = False
) -> list[tuple[Loc, str, object]]:
    """Unknown features of ``terms``; with ``category``, ``{category}`` stands for any tag."""
    problems: list[tuple[Loc, str, object]] = []
    for i, term in enumerate(terms):
        if category and CATEGORY in term.feature:
            probe = term.feature.replace(CATEGORY, _PROBE)
            reason = unknown_feature_reason(probe, [*tags, _PROBE])
            reason = reason.replace(_PROBE, CATEGORY) if reason is not None else None
        else:
            reason = unknown_feature_reason(term.feature, tags)
        if reason is not None:
            problems.append(((*where, "terms", i, "feature"), f"unknown feature: {reason}",
                             term.feature))
    return problems


def parse_spec(text: str, *, source: str = "<spec>") -> SegmentSpec:
    """Validate a segment spec given as YAML text.

    Raises:
        SpecError: not YAML, or not a valid spec; the message names the key and line.
    """
    return validate_yaml(text, SegmentSpec, source=source, what="segment spec", error=SpecError)


def read_spec(path: str | Path) -> tuple[SegmentSpec, bytes]:
    """Read and validate the spec at ``path``; return it with the model bytes (if any).

    The classifier model is read here too, so a reload sees one consistent pair.

    Raises:
        SpecError: unreadable or invalid spec, or a missing/mismatched model file.
    """
    path = Path(path)
    text = read_yaml_file(path, what="segment spec", error=SpecError)
    spec = parse_spec(text, source=str(path))
    model = b""
    if spec.classifier is not None:
        model_path = model_file(path, spec)
        try:
            model = model_path.read_bytes()
        except OSError as error:
            raise SpecError(
                f"segment spec {path}: cannot read its classifier model {model_path}: "
                f"{error.strerror or error}"
            ) from None
        digest = hashlib.sha256(model).hexdigest()
        if spec.classifier.sha256 and digest != spec.classifier.sha256:
            raise SpecError(
                f"segment spec {path}: classifier model {model_path} has sha256 {digest}, "
                f"the spec expects {spec.classifier.sha256}"
            )
    return spec, model


def model_file(spec_path: Path, spec: SegmentSpec) -> Path:
    assert spec.classifier is not None
    model = Path(spec.classifier.model).expanduser()
    return model if model.is_absolute() else spec_path.parent / model
