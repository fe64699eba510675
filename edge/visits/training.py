"""Training on labelled visits: trait classifiers (scikit-learn -> ONNX) and micro-segments.

Needs the ``train`` extra (scikit-learn, skl2onnx); the box itself only runs the
ONNX model (onnxruntime). One logistic regression per trait, each trained on the
visits labelled for that trait, merged into one ONNX graph with input
``features`` ``(n, F)`` and output ``probabilities`` ``(n, T)``, plus metadata
naming both axes (see :class:`edge.visits.classify.OnnxTraitModel`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.visits.analysis import VisitAnalyzer
from edge.visits.classify import ONNX_FORMAT
from edge.visits.scenarios import Scenario

TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


@dataclass(frozen=True, slots=True)
class Dataset:
    """Feature vectors of labelled visits: ``x`` ``(n, F)``; per trait, ``(n,)`` labels
    with -1 where the visit is not labelled for that trait."""

    feature_names: list[str]
    x: np.ndarray
    labels: dict[str, np.ndarray]


def build_dataset(
    analyzer: VisitAnalyzer, visits: Iterable[tuple[int, np.ndarray, np.ndarray, Mapping[str, int]]]
) -> Dataset:
    """Measure ``(track_id, t, xy, labels)`` visits with the analyzer's site."""
    rows, label_rows = [], []
    for track_id, t, xy, labels in visits:
        outcome = analyzer.analyze_track("train", None, track_id, t, xy)
        for result in outcome.visits:
            rows.append([result.measured.features[n] for n in analyzer.extractor.names])
            label_rows.append(labels)
    traits = sorted({name for labels in label_rows for name in labels})
    x = np.asarray(rows, dtype=np.float64).reshape(-1, len(analyzer.extractor.names))
    y = {trait: np.array([labels.get(trait, -1) for labels in label_rows]) for trait in traits}
    return Dataset(list(analyzer.extractor.names), x, y)


def scenario_visits(scenarios: Iterable[Scenario]):
    for s in scenarios:
        yield s.track_id, s.t, s.xy, s.labels


def train_trait_models(data: Dataset, *, c: float = 1.0) -> dict[str, Any]:
    """One scaled logistic regression per trait with both classes among its labels."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    models = {}
    for trait, y in data.labels.items():
        labelled = y >= 0
        if len(set(y[labelled].tolist())) < 2:
            continue
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
        model.fit(data.x[labelled].astype(np.float32), y[labelled])
        models[trait] = model
    return models


def export_onnx(models: Mapping[str, Any], feature_names: Sequence[str]) -> bytes:
    """One ONNX model computing every trait's probability of the positive class."""
    import onnx
    from onnx import TensorProto, helper
    from onnx.compose import add_prefix
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    n = len(feature_names)
    nodes, initializers = [], []
    opsets: dict[str, int] = {}
    columns = []
    index = helper.make_tensor("positive_class", TensorProto.INT64, [], [1])
    axes = helper.make_tensor("column_axis", TensorProto.INT64, [1], [1])
    initializers += [index, axes]
    for k, model in enumerate(models.values()):
        part = to_onnx(
            model,
            initial_types=[("features", FloatTensorType([None, n]))],
            options={"zipmap": False},
            target_opset=TARGET_OPSET,
        )
        part = add_prefix(part, f"t{k}_", rename_inputs=False)
        for opset in part.opset_import:
            opsets[opset.domain] = max(opsets.get(opset.domain, 0), opset.version)
        nodes += list(part.graph.node)
        initializers += list(part.graph.initializer)
        probabilities = next(o.name for o in part.graph.output if o.name.endswith("probabilities"))
        positive = f"t{k}_positive"
        nodes.append(helper.make_node("Gather", [probabilities, "positive_class"], [positive],
                                      axis=1, name=f"t{k}_gather"))
        nodes.append(helper.make_node("Unsqueeze", [positive, "column_axis"],
                                      [f"t{k}_column"], name=f"t{k}_unsqueeze"))
        columns.append(f"t{k}_column")
    nodes.append(helper.make_node("Concat", columns, ["probabilities"], axis=1, name="concat"))
    graph = helper.make_graph(
        nodes, "edge_traits",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, n])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, len(columns)])],
        initializer=initializers,
    )
    merged = helper.make_model(
        graph, opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())],
        producer_name="edge-train-traits",
    )
    merged.ir_version = min(merged.ir_version, 10)
    helper.set_model_props(merged, {
        "format": ONNX_FORMAT,
        "feature_names": json.dumps(list(feature_names)),
        "trait_names": json.dumps(list(models)),
    })
    onnx.checker.check_model(merged)
    return merged.SerializeToString()


def sklearn_probabilities(models: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """``(n, T)`` positive-class probabilities from the scikit-learn models themselves."""
    return np.column_stack([m.predict_proba(x.astype(np.float32))[:, 1] for m in models.values()])


def fit_segments(
    data: Dataset,
    features: Sequence[str],
    *,
    components: int,
    log1p: Sequence[str] = (),
    seed: int = 0,
    names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Fit a diagonal Gaussian mixture; return a spec ``segments`` section (a dict)."""
    from sklearn.mixture import GaussianMixture

    columns = [data.feature_names.index(f) for f in features]
    v = data.x[:, columns].copy()
    logged = np.array([f in set(log1p) for f in features])
    v[:, logged] = np.log1p(np.maximum(v[:, logged], 0.0))
    center = v.mean(axis=0)
    scale = v.std(axis=0)
    scale[scale <= 1e-9] = 1.0
    z = (v - center) / scale
    gmm = GaussianMixture(components, covariance_type="diag", random_state=seed, reg_covar=1e-2)
    gmm.fit(z)
    names = list(names) if names else [f"segment-{i + 1}" for i in range(components)]
    return {
        "features": list(features),
        "log1p": [f for f in features if f in set(log1p)],
        "center": [round(float(x), 6) for x in center],
        "scale": [round(float(x), 6) for x in scale],
        "components": [
            {"name": names[i], "weight": round(float(gmm.weights_[i]), 6),
             "mean": [round(float(x), 6) for x in gmm.means_[i]],
             "var": [round(float(x), 6) for x in gmm.covariances_[i]]}
            for i in range(components)
        ],
    }
