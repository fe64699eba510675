"""Trait probabilities and segment memberships of a visit, from a segment spec.

A spec is compiled once per site into flat arrays, so scoring a visit is a handful
of numpy operations over its feature vector (microseconds). A trained ONNX model,
when the spec names one, replaces the rule-based score of each trait it knows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence

import numpy as np

from edge.visits.features import unknown_feature_reason
from edge.visits.records import TraitScores
from edge.visits.spec import AFFINITY_PREFIX, CATEGORY, SegmentSpec, SpecError, Term

ONNX_FORMAT = "edge-traits-1"

log = logging.getLogger(__name__)


class OnnxTraitModel:
    """A trained trait classifier: ONNX, input ``features`` ``(n, F)`` float32, output
    ``probabilities`` ``(n, T)``; metadata ``feature_names`` and ``trait_names`` (JSON
    lists) and ``format`` = ``edge-traits-1``.

    Raises:
        SpecError: the bytes are not such a model.
    """

    def __init__(self, model: bytes, *, source: str = "model") -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                model, options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own untyped errors
            raise SpecError(f"classifier model {source} is not a usable ONNX model: "
                            f"{str(error).splitlines()[0][:200]}") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        try:
            if meta.get("format") != ONNX_FORMAT:
                raise ValueError(f"format {meta.get('format')!r}, expected {ONNX_FORMAT!r}")
            self.feature_names: list[str] = json.loads(meta["feature_names"])
            self.trait_names: list[str] = json.loads(meta["trait_names"])
        except (KeyError, ValueError, TypeError) as error:
            raise SpecError(
                f"classifier model {source} lacks the trait-model metadata: {error}"
            ) from None
        output = self.session.get_outputs()[0]
        if self.session.get_inputs()[0].name != "features" or output.name != "probabilities":
            raise SpecError(
                f"classifier model {source} must map input 'features' to output "
                "'probabilities' (scripts/train_traits.py writes such models)"
            )

    def predict(self, x: np.ndarray) -> np.ndarray:
        """``(n, T)`` probabilities for ``(n, F)`` feature vectors in ``feature_names`` order."""
        (p,) = self.session.run(["probabilities"], {"features": x.astype(np.float32)})
        return np.asarray(p, dtype=np.float64)


class TraitClassifier:
    """A segment spec compiled for one site's features and category tags.

    Args:
        spec: the validated spec.
        feature_names: the site's feature vector layout (``FeatureExtractor.names``).
        site_tags: the category tags on the site's zones (for ``affinity_<tag>``).
        model: the spec's classifier model bytes, if it names one.
    """

    def __init__(
        self,
        spec: SegmentSpec,
        feature_names: Sequence[str],
        site_tags: Sequence[str],
        model: bytes = b"",
    ) -> None:
        self.spec = spec
        self.feature_names = list(feature_names)
        index = {name: i for i, name in enumerate(self.feature_names)}
        rules: list[tuple[str, float, list[Term]]] = [
            (name, rule.bias, rule.terms) for name, rule in spec.traits.items()
        ]
        if spec.affinity is not None:
            excluded = set(spec.affinity.exclude_tags)
            for tag in sorted(set(site_tags) - excluded):
                terms = [t.model_copy(update={"feature": t.feature.replace(CATEGORY, tag)})
                         for t in spec.affinity.terms]
                rules.append((AFFINITY_PREFIX + tag, spec.affinity.bias, terms))
        self.traits = [name for name, _, _ in rules]
        self._bias = np.array([bias for _, bias, _ in rules], dtype=np.float64)
        rows = [(k, t) for k, (_, _, terms) in enumerate(rules) for t in terms]
        # A feature the site lacks (e.g. a tag no zone carries) reads as 0.
        self._term_feature = np.array([index.get(t.feature, -1) for _, t in rows], dtype=np.intp)
        # rows are grouped by trait, each trait has >= 1 term: a trait's terms are the
        # columns from its first row to the next trait's (np.add.reduceat). Summed per
        # trait, never through a matrix product (inf * 0 = NaN would reach every trait).
        self._first_term = np.searchsorted(np.array([k for k, _ in rows], dtype=np.intp),
                                           np.arange(len(rules)))
        self._weight = np.array([t.weight for _, t in rows], dtype=np.float64)
        self._center = np.array([t.center for _, t in rows], dtype=np.float64)
        self._lo = np.array([t.clip[0] if t.clip else -np.inf for _, t in rows])
        self._hi = np.array([t.clip[1] if t.clip else np.inf for _, t in rows])
        self._duration_column = index.get("duration_s", -1)
        self._segments = CompiledSegments(spec, index) if spec.segments is not None else None
        self.segment_names = (
            [c.name for c in spec.segments.components] if spec.segments is not None else []
        )
        named = {t.feature for _, t in rows}
        named |= set(spec.segments.features) if spec.segments is not None else set()
        absent = sorted(named - set(self.feature_names))
        #: what a store operator should know: the spec (or its model) and this site differ
        self.warnings: list[str] = []
        if absent:
            self.warnings.append(
                f"spec {spec.spec_version} uses features this site does not measure (a tag "
                f"no zone carries): {', '.join(absent)}; they read 0 for every visit")
        self.model: OnnxTraitModel | None = None
        if model:
            self.model = OnnxTraitModel(model, source=spec.classifier.model if spec.classifier
                                        else "model")
            for name in self.model.feature_names:
                reason = unknown_feature_reason(name, [*spec.tags, *site_tags])
                if reason is not None:
                    raise SpecError(f"classifier model feature {name!r}: {reason}")
            self._model_columns = np.array(
                [index.get(name, -1) for name in self.model.feature_names], dtype=np.intp
            )
            # affinity_<tag> of a tag the site lacks says nothing here: dropped (-2)
            lacking = [n for n in self.model.trait_names if n.startswith(AFFINITY_PREFIX)
                       and n.removeprefix(AFFINITY_PREFIX) not in set(site_tags)]
            if lacking:
                self.warnings.append(
                    f"the classifier model was trained for category tags this site lacks; "
                    f"its traits {', '.join(lacking)} are left out")
            self._model_traits = [self.traits.index(n) if n in self.traits else
                                  -2 if n in lacking else -1 for n in self.model.trait_names]
            self.traits += [n for n, k in zip(self.model.trait_names, self._model_traits,
                                              strict=True) if k == -1]
        for warning in self.warnings:
            log.warning("Segment spec: %s.", warning)

    @property
    def spec_version(self) -> str:
        return self.spec.spec_version

    def vector(self, features: Mapping[str, float]) -> np.ndarray:
        """The feature vector of ``features`` in this classifier's layout (absent = 0)."""
        return np.fromiter(
            (features.get(name, 0.0) for name in self.feature_names),
            dtype=np.float64,
            count=len(self.feature_names),
        )

    def scores(self, x: np.ndarray) -> np.ndarray:
        """Rule-based trait probabilities for a ``(n, F)`` batch: ``(n, rules)``."""
        x = np.atleast_2d(x)
        padded = np.concatenate([x, np.zeros((len(x), 1))], axis=1)  # column -1 reads 0
        values = np.clip(padded[:, self._term_feature], self._lo, self._hi)
        with np.errstate(over="ignore", invalid="ignore"):  # an inf stays in its trait
            terms = self._weight * (values - self._center)
            z = np.add.reduceat(terms, self._first_term, axis=1) + self._bias
        return _sigmoid(z)

    def classify(self, features: Mapping[str, float]) -> TraitScores:
        """Trait probabilities and segment memberships of one visit."""
        return self.classify_many([features])[0]

    def evidence(self, x: np.ndarray) -> np.ndarray:
        """``(n,)`` factors on each visit's trait logits (the spec's ``trait_evidence``):
        ``min(1, duration_s / full_duration_s)``, NaN for a visit too short for traits."""
        x = np.atleast_2d(x)
        evidence = self.spec.trait_evidence
        duration = x[:, self._duration_column] if self._duration_column >= 0 else np.zeros(
            len(x))
        factor = np.minimum(1.0, np.maximum(duration, 0.0) / evidence.full_duration_s)
        return np.where(duration < evidence.min_duration_s, np.nan, factor)

    def classify_many(self, batch: Sequence[Mapping[str, float]]) -> list[TraitScores]:
        """Classify several visits at once (one model call for all)."""
        if not batch:
            return []
        x = np.stack([self.vector(f) for f in batch])
        p = self.scores(x)
        if self.model is not None:
            padded = np.concatenate([x, np.zeros((len(x), 1))], axis=1)
            learned = self.model.predict(padded[:, self._model_columns])
            extra = [j for j, k in enumerate(self._model_traits) if k == -1]
            for j, k in enumerate(self._model_traits):
                if k >= 0:
                    p[:, k] = learned[:, j]
            p = np.concatenate([p, learned[:, extra]], axis=1)
        factor = self.evidence(x)
        p = _shrink(p, factor)
        memberships = self._segments.memberships(x) if self._segments is not None else None
        out = []
        for row in range(len(x)):
            known = not np.isnan(factor[row])
            traits: dict[str, float | None] = dict(zip(
                self.traits, p[row].tolist() if known else [None] * len(self.traits),
                strict=True))
            segments = (
                dict(zip(self.segment_names, memberships[row].tolist(), strict=True))
                if memberships is not None else {}
            )
            out.append(TraitScores(traits, segments, self.spec.spec_version))
        return out


class CompiledSegments:
    """A diagonal Gaussian mixture's posterior memberships, vectorised.

    The memberships are ``softmax(log w_k + log N(z; mean_k, var_k) / T)`` with the
    spec's ``temperature`` ``T`` (1 = the plain posterior; > 1 softens the near-certain
    memberships a mixture gives short, noisy visits).
    """

    def __init__(self, spec: SegmentSpec, index: Mapping[str, int]) -> None:
        model = spec.segments
        assert model is not None
        self.columns = np.array([index.get(n, -1) for n in model.features], dtype=np.intp)
        self.log1p = np.array([n in set(model.log1p) for n in model.features], dtype=bool)
        self.center = np.array(model.center, dtype=np.float64)
        self.scale = np.array(model.scale, dtype=np.float64)
        self.mean = np.array([c.mean for c in model.components], dtype=np.float64)
        var = np.array([c.var for c in model.components], dtype=np.float64)
        weights = np.array([c.weight for c in model.components], dtype=np.float64)
        self.inv_var = 1.0 / var
        self.log_weight = np.log(weights / weights.sum())
        self.log_det = -0.5 * np.log(2 * np.pi * var).sum(axis=1)
        self.temperature = float(model.temperature)
        table = np.array(model.temperature_by_duration or [], dtype=np.float64).reshape(-1, 2)
        self.below_s, self.by_duration = table[:, 0], table[:, 1]
        # duration_s is a segment feature when the table is given (the spec checks)
        self.duration_column = self.columns[model.features.index("duration_s")] if len(
            table) else -1

    def scaled(self, x: np.ndarray) -> np.ndarray:
        """The scaled segment features ``(n, D)`` of ``(n, F)`` site feature vectors."""
        x = np.atleast_2d(x)
        padded = np.concatenate([x, np.zeros((len(x), 1))], axis=1)
        v = padded[:, self.columns]
        v = np.where(self.log1p, np.log1p(np.maximum(v, 0.0)), v)
        return (v - self.center) / self.scale

    def log_likelihoods(self, z: np.ndarray) -> np.ndarray:
        """``(n, K)`` log N(z; mean_k, var_k) of scaled features ``z``."""
        d = z[:, None, :] - self.mean[None, :, :]
        return self.log_det - 0.5 * np.einsum("nkf,kf->nk", d * d, self.inv_var)

    def posterior(self, z: np.ndarray, temperature: float | None = None) -> np.ndarray:
        """``(n, K)`` memberships of scaled features ``z`` (at the spec's temperature
        unless one is given; 1.0 is the untempered posterior, the EM E-step)."""
        t = self.temperature if temperature is None else float(temperature)
        return _softmax(self.log_weight + self.log_likelihoods(z) / t)

    def joint_tempered(self, z: np.ndarray, temperatures: np.ndarray) -> np.ndarray:
        """``(n, K)`` memberships ``softmax((log w + log-likelihood) / T_i)`` with one
        temperature per visit: a large T tends to uniform memberships, not to the
        weights, as a visit too short to tell segments apart should."""
        t = np.asarray(temperatures, dtype=np.float64).reshape(-1, 1)
        return _softmax((self.log_weight + self.log_likelihoods(z)) / t)

    def duration_temperatures(self, durations: np.ndarray) -> np.ndarray:
        """``(n,)`` temperatures of visits lasting ``durations`` seconds (the table)."""
        index = np.searchsorted(self.below_s, np.asarray(durations, dtype=np.float64),
                                side="right")
        return self.by_duration[np.minimum(index, len(self.by_duration) - 1)]

    def memberships(self, x: np.ndarray) -> np.ndarray:
        """``(n, K)`` memberships of ``(n, F)`` site feature vectors: tempered by each
        visit's duration when the spec has ``temperature_by_duration``."""
        x = np.atleast_2d(x)
        if not len(self.by_duration):
            return self.posterior(self.scaled(x))
        durations = x[:, self.duration_column] if self.duration_column >= 0 else np.zeros(
            len(x))
        return self.joint_tempered(self.scaled(x), self.duration_temperatures(durations))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # |z| > 700 would overflow exp(); the sigmoid is 0 or 1 there to float64 precision
    return 1.0 / (1.0 + np.exp(-np.clip(z, -700.0, 700.0)))


def _shrink(p: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """``(n, T)`` probabilities ``p`` with their logits times each row's ``factor`` (a
    factor of 1 leaves the row exactly as it was; NaN rows are left for the caller)."""
    q = np.clip(p, 1e-15, 1.0 - 1e-15)
    f = factor[:, None]
    with np.errstate(invalid="ignore"):
        shrunk = 1.0 / (1.0 + np.exp(-f * (np.log(q) - np.log1p(-q))))
    return np.where(f < 1.0, shrunk, p)


def _softmax(log_p: np.ndarray) -> np.ndarray:
    log_p = log_p - log_p.max(axis=1, keepdims=True)
    p = np.exp(log_p)
    return p / p.sum(axis=1, keepdims=True)
