"""Traits against labelled behaviour: the rule spec and a trained ONNX classifier on the
synthetic scenario suite, and sklearn/onnxruntime parity of the trained model."""

import hashlib

import numpy as np
import pytest
import yaml

from edge.visits import training
from edge.visits.analysis import VisitAnalyzer
from edge.visits.classify import OnnxTraitModel, TraitClassifier
from edge.visits.scenarios import scenario_site, scenario_suite, score_scenarios
from edge.visits.spec import SpecError, default_spec_path, read_spec

TARGET = 0.90


@pytest.fixture(scope="module")
def suite():
    return list(scenario_suite(repeats=2, seed=0))


@pytest.fixture(scope="module")
def analyzer():
    return VisitAnalyzer(scenario_site())


def test_scenarios_cover_every_trait(suite):
    labelled = {}
    for scenario in suite:
        for trait, label in scenario.labels.items():
            labelled.setdefault(trait, set()).add(label)
    assert {"showroomer", "wanderer", "indecisive", "bargain_hunter"} <= set(labelled)
    assert all(values == {0, 1} for values in labelled.values())     # both poles present
    assert len(suite) == 240


def test_rule_spec_agrees_with_the_labels(suite, analyzer):
    table = score_scenarios(analyzer, suite)
    failing = {t: round(r["agreement"], 3) for t, r in table.items() if r["agreement"] < TARGET}
    assert not failing, f"traits under {TARGET:.0%} agreement: {failing}; confusion: {table}"
    for row in table.values():
        assert row["n"] == row["tp"] + row["fp"] + row["fn"] + row["tn"]


@pytest.fixture(scope="module")
def trained(analyzer):
    train = training.build_dataset(
        analyzer, training.scenario_visits(scenario_suite(repeats=1, seed=7)))
    models = training.train_trait_models(train)
    return train, models, training.export_onnx(models, train.feature_names)


def test_onnx_matches_sklearn(trained, suite, analyzer):
    train, models, blob = trained
    test = training.build_dataset(analyzer, training.scenario_visits(suite[::3]))
    onnx_p = OnnxTraitModel(blob).predict(test.x)
    sklearn_p = training.sklearn_probabilities(models, test.x)
    assert onnx_p.shape == sklearn_p.shape == (len(test.x), len(models))
    assert np.abs(onnx_p - sklearn_p).max() < 1e-5
    assert OnnxTraitModel(blob).feature_names == train.feature_names


def test_spec_with_a_trained_classifier(trained, suite, analyzer, tmp_path):
    """A spec naming an ONNX model: its traits replace the rules', the rest stay."""
    _, models, blob = trained
    (tmp_path / "traits.onnx").write_bytes(blob)
    doc = yaml.safe_load(default_spec_path().read_text())
    doc["spec_version"] = "1.1.0"
    doc["classifier"] = {"model": "traits.onnx", "sha256": hashlib.sha256(blob).hexdigest()}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(doc))
    learned = VisitAnalyzer(scenario_site(), path)
    assert learned.spec.classifier.model is not None
    table = score_scenarios(learned, suite)
    assert min(row["agreement"] for row in table.values()) >= TARGET, table
    spec, model = read_spec(path)
    ex = analyzer.extractor
    compiled = TraitClassifier(spec, ex.names, ex.tags, model)
    rules = TraitClassifier(read_spec(default_spec_path())[0], ex.names, ex.tags)
    features = analyzer.analyze_track("s", None, 1, suite[0].t, suite[0].xy).visits[0]
    mixed = compiled.classify(features.measured.features)
    x = compiled.vector(features.measured.features)[None, :]
    expected = OnnxTraitModel(blob).predict(x)[0]
    for j, trait in enumerate(models):
        assert mixed.traits[trait] == pytest.approx(expected[j], abs=1e-6)
    assert mixed.segments == pytest.approx(rules.classify(features.measured.features).segments)


def test_model_without_trait_metadata_is_rejected(trained):
    import onnx

    _, _, blob = trained
    model = onnx.load_from_string(blob)
    del model.metadata_props[:]
    with pytest.raises(SpecError, match="lacks the trait-model metadata"):
        OnnxTraitModel(model.SerializeToString())


def test_model_affinities_for_tags_the_site_lacks_are_left_out(trained, caplog):
    """Regression: a model trained on a store with kids, fitness... zones gave a store
    tagged only promo affinity_kids, affinity_fitness ("Drawn to ..." rows) for
    categories it does not have. They are left out now, with a warning."""
    from edge.visits.features import feature_names

    _, models, blob = trained
    assert {"affinity_kids", "affinity_fitness"} <= set(models)
    spec = read_spec(default_spec_path())[0]
    with caplog.at_level("WARNING", logger="edge.visits.classify"):
        small = TraitClassifier(spec, feature_names(["promo", "kids"]), ["promo", "kids"], blob)
    affinities = sorted(t for t in small.traits if t.startswith("affinity_"))
    assert affinities == ["affinity_kids"]
    scores = small.classify({"duration_s": 120.0, "dwell_tag_promo_s": 30.0})
    assert sorted(t for t in scores.traits if t.startswith("affinity_")) == ["affinity_kids"]
    assert len(scores.traits) == len(small.traits)
    (warning,) = [w for w in small.warnings if "classifier model" in w]
    assert "trained for category tags this site lacks" in warning
    assert "affinity_fitness" in warning and "affinity_kids" not in warning
    assert "affinity_fitness" in caplog.text
