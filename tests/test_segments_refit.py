"""Federated refit of the micro-segments (issue 16) and membership tempering.

Scenario visits are split across 20 simulated stores; each computes only its E-step
statistics; the central pooled M-step must equal one EM step on all visits in one
place (scikit-learn's GaussianMixture with max_iter=1 as the independent reference).
"""

from __future__ import annotations

import collections
import warnings

import numpy as np
import pytest

from edge.visits.analysis import VisitAnalyzer
from edge.visits.classify import TraitClassifier
from edge.visits.scenarios import scenario_site, scenario_suite
from edge.visits.segment_stats import (
    SegmentStatistics,
    calibrate_by_duration,
    calibrate_temperature,
    compile_segments,
    ece_by_duration,
    membership_ece,
    scaled_features,
    sufficient_statistics,
)
from edge.visits.spec import default_spec_path, parse_spec, read_spec
from sync.central.refit import refit_spec

STORES = 20
FACTORS = ("purchase", "style", "decision", "price", "category")


@pytest.fixture(scope="module")
def spec():
    return read_spec(default_spec_path())[0]


@pytest.fixture(scope="module")
def analyzer():
    return VisitAnalyzer(scenario_site())


@pytest.fixture(scope="module")
def full_visits(analyzer):
    """Whole scenario visits (3 repeats, seed 11): the reference memberships of the two
    temperature tests, analysed once. Read only (a write raises)."""
    keys, x = _visits(analyzer, 3, 11)
    x.flags.writeable = False
    return tuple(keys), x


def _visits(analyzer, repeats, seed, *, short=False):
    """(behaviour key, (n, F) features) of scenario visits; ``short`` cuts each track to
    a random 20-100 % of its samples (short visits, where memberships were over-sure)."""
    rng = np.random.default_rng(seed + 99)
    names = analyzer.extractor.names
    keys, rows = [], []
    for s in scenario_suite(repeats, seed):
        m = max(int(len(s.t) * rng.uniform(0.2, 1.0)), 10) if short else len(s.t)
        outcome = analyzer.analyze_track("refit", None, s.track_id, s.t[:m], s.xy[:m])
        for visit in outcome.visits[:1]:
            rows.append([visit.measured.features[n] for n in names])
            keys.append(tuple(s.factors[f] for f in FACTORS))
    return keys, np.asarray(rows, dtype=np.float64)


def _params(spec):
    return np.array([[c.weight, *c.mean, *c.var] for c in spec.segments.components])


def test_pooled_refit_matches_refit_on_all_visits(spec, analyzer):
    _, x = _visits(analyzer, 2, 0)
    z = scaled_features(spec, analyzer.extractor.names, x)
    stores = [sufficient_statistics(spec, z[i::STORES], k=0) for i in range(STORES)]
    # the statistics survive the wire format
    stores = [SegmentStatistics.from_section(s.to_section("2024-03-01")) for s in stores]
    result = refit_spec(spec, stores)
    assert result.ok, result.refused
    assert result.stores == STORES and result.visits == len(z)
    assert result.spec.spec_version == "1.1.0"
    # the YAML is a spec the loader accepts, and gives the same parameters
    reloaded = parse_spec(result.yaml_text)
    assert np.array_equal(_params(reloaded), _params(result.spec))
    TraitClassifier(reloaded, analyzer.extractor.names, [])

    from sklearn.mixture import GaussianMixture

    compiled = compile_segments(spec, spec.segments.features)
    reference = GaussianMixture(
        len(spec.segments.components), covariance_type="diag", reg_covar=1e-2, max_iter=1,
        weights_init=np.exp(compiled.log_weight), means_init=compiled.mean,
        precisions_init=compiled.inv_var)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: one iteration by design
        reference.fit(z)
    expected = np.column_stack([reference.weights_, reference.means_, reference.covariances_])
    got = _params(result.spec)
    relative = np.abs(got - expected) / np.maximum(np.abs(expected), 1e-12)
    print(f"refit vs central max relative difference: {relative.max():.3g}")
    assert relative.max() < 1e-6  # exact up to float error (the brief allows 1 %)

    one_place = refit_spec(spec, [sufficient_statistics(spec, z)], min_stores=1)
    assert np.allclose(_params(one_place.spec), got, rtol=1e-9, atol=0)


def test_refit_refuses_and_keeps_the_spec(spec, analyzer):
    _, x = _visits(analyzer, 1, 3)
    z = scaled_features(spec, analyzer.extractor.names, x)
    few = [sufficient_statistics(spec, z[i::3]) for i in range(3)]
    result = refit_spec(spec, few, min_stores=5)
    assert not result.ok and result.spec is spec and result.yaml_text is None
    assert "3 stores, at least 5" in result.refused

    # small stores withhold components below k: refuse rather than pool a biased rest
    withheld = [sufficient_statistics(spec, z[i::STORES], k=3) for i in range(STORES)]
    assert any(s.withheld() for s in withheld)
    for store in withheld:  # what is published never gives a withheld one away
        shown = [c.membership for c in store.components.values() if c is not None]
        assert all(n >= 3 for n in shown)
        if store.withheld():
            assert store.visits - sum(shown) >= 3
    result = refit_spec(spec, withheld)
    assert not result.ok and result.spec is spec
    assert "withheld" in result.refused and "keeping spec 1.0.2" in result.refused

    other = spec.model_copy(update={"spec_version": "0.9.0"})
    stale = [sufficient_statistics(other, z[i::STORES]) for i in range(STORES)]
    result = refit_spec(spec, stale)
    assert not result.ok and "spec 0.9.0" in result.refused


def test_temperature_calibrated_on_held_out_short_visits(spec, analyzer, full_visits):
    compiled = compile_segments(spec, spec.segments.features)
    names = analyzer.extractor.names
    # reference segment of each behaviour: the majority membership over full visits
    keys, x = full_visits
    votes: dict[tuple, np.ndarray] = collections.defaultdict(lambda: 0.0)
    for key, r in zip(keys, compiled.posterior(scaled_features(spec, names, x), 1.0),
                      strict=True):
        votes[key] = votes[key] + r
    reference = {key: int(np.argmax(v)) for key, v in votes.items()}

    def labelled(seed):
        keys, x = _visits(analyzer, 2, seed, short=True)
        return scaled_features(spec, names, x), np.array([reference[k] for k in keys])

    z_cal, y_cal = labelled(1)
    z_test, y_test = labelled(0)
    temperature, _ = calibrate_temperature(compiled, z_cal, y_cal)
    before = membership_ece(compiled, z_test, y_test, 1.0)
    after = membership_ece(compiled, z_test, y_test, temperature)
    print(f"short visits: T={temperature:.2f}, ECE before {before:.3f}, after {after:.3f}")
    assert before > 0.2  # untempered: near-certain memberships, often wrong
    assert after <= 0.05
    assert temperature > 1.0

    # the temperature is a spec parameter: the box's memberships use it, and a refit
    # carries it into the new spec
    document = spec.model_dump(mode="json")
    document["segments"]["temperature_by_duration"] = None  # the scalar T alone
    plain = TraitClassifier(spec.model_validate(document), names, [])
    document["segments"]["temperature"] = temperature
    tempered = spec.model_validate(document)
    classifier = TraitClassifier(tempered, names, [])
    _, x_short = _visits(analyzer, 1, 5, short=True)
    feats = [dict(zip(names, row, strict=True)) for row in x_short]
    top_tempered = np.mean([max(s.segments.values()) for s in classifier.classify_many(feats)])
    top_plain = np.mean([max(s.segments.values()) for s in plain.classify_many(feats)])
    assert top_tempered < top_plain
    stats = [sufficient_statistics(spec, scaled_features(spec, names, x)[i::STORES])
             for i in range(STORES)]
    result = refit_spec(spec, stats, temperature=temperature)
    assert result.ok and result.spec.segments.temperature == pytest.approx(temperature)


def test_spec_rejects_a_bad_temperature(spec):
    document = spec.model_dump(mode="json")
    document["segments"]["temperature"] = 0
    with pytest.raises(Exception, match="temperature"):
        spec.model_validate(document)


EDGES = (60.0, 100.0, 140.0, 180.0, 240.0)  # calibration buckets (seconds)
REPORT = (60.0, 120.0, 240.0)  # reporting buckets: <1 min, 1-2 min, 2-4 min, >= 4 min


def _length_mix(analyzer, reference, seeds, full_seed):
    """Raw features, reference labels and durations of scenario visits of every length:
    tracks cut to 5-100 % of their samples (seeds) and whole ones (full_seed)."""
    names = analyzer.extractor.names
    rows, labels = [], []
    for seed, short in [*((s, True) for s in seeds), (full_seed, False)]:
        rng = np.random.default_rng(seed + 99)
        for s in scenario_suite(2, seed):
            m = max(int(len(s.t) * rng.uniform(0.05, 1.0)), 10) if short else len(s.t)
            for visit in analyzer.analyze_track("t", None, s.track_id, s.t[:m],
                                                s.xy[:m]).visits[:1]:
                rows.append([visit.measured.features[n] for n in names])
                labels.append(reference[tuple(s.factors[f] for f in FACTORS)])
    x = np.asarray(rows)
    return x, np.array(labels), x[:, names.index("duration_s")]


def test_temperature_by_visit_length_calibrates_every_length(spec, analyzer, full_visits,
                                                            capsys):
    """One temperature for all lengths over-softens full visits (ECE 0.018 -> 0.23, test
    above); a temperature per visit duration, calibrated on held-out scenario visits, keeps
    every length calibrated, and the shipped spec carries it."""
    names = analyzer.extractor.names
    untempered = spec.model_copy(update={"segments": spec.segments.model_copy(
        update={"temperature_by_duration": None, "temperature": 1.0})})
    plain = compile_segments(untempered, names)
    keys, x = full_visits
    votes: dict[tuple, np.ndarray] = collections.defaultdict(lambda: 0.0)
    for key, r in zip(keys, plain.memberships(x), strict=True):
        votes[key] = votes[key] + r
    reference = {key: int(np.argmax(v)) for key, v in votes.items()}
    x_cal, y_cal, d_cal = _length_mix(analyzer, reference, (1, 2, 3), 1)
    x_test, y_test, d_test = _length_mix(analyzer, reference, (0, 4, 5), 0)

    table = calibrate_by_duration(plain, plain.scaled(x_cal), y_cal, d_cal, EDGES)
    calibrated = compile_segments(untempered.model_copy(update={
        "segments": untempered.segments.model_copy(
            update={"temperature_by_duration": table})}), names)
    before = ece_by_duration(plain.memberships(x_test), y_test, d_test, REPORT)
    after = ece_by_duration(calibrated.memberships(x_test), y_test, d_test, REPORT)
    # what ships: the default spec's own memberships (its table), from raw features
    shipped = compile_segments(spec, names)
    after_shipped = ece_by_duration(shipped.memberships(x_test), y_test, d_test, REPORT)
    with capsys.disabled():
        print(f"\ncalibrated temperature_by_duration: {[(b, round(t, 2)) for b, t in table]}")
        for (lo, hi, n, e0), (_, _, _, e1), (_, _, _, e2) in zip(before, after, after_shipped,
                                                                  strict=True):
            print(f"  {lo:4.0f}-{hi:4.0f} s: {n:4d} held-out visits, ECE {e0:.3f} -> "
                  f"{e1:.3f} (shipped spec {e2:.3f})")
    assert max(e for *_, e in before) > 0.5  # untempered: near-certain and often wrong
    assert all(n >= 100 for _, _, n, _ in after)
    assert all(e <= 0.05 for *_, e in after)
    assert all(e <= 0.05 for *_, e in after_shipped)
    # long visits are not over-softened: calibrated as before, and still confident
    long = d_test >= 240
    assert after[-1][-1] <= before[-1][-1] + 0.01
    assert shipped.memberships(x_test[long]).max(axis=1).mean() > 0.9
    assert [b for b, _ in spec.segments.temperature_by_duration] == [*EDGES, 86_400.0]
    assert np.allclose([t for _, t in spec.segments.temperature_by_duration],
                       [t for _, t in table], rtol=0.01)


def test_spec_rejects_a_bad_duration_table(spec):
    document = spec.model_dump(mode="json")
    for table, reason in (([[60, 5.0], [30, 2.0]], "below_s must increase"),
                          ([[60, 0.0]], "must be > 0"), ([], "at least 1")):
        document["segments"]["temperature_by_duration"] = table
        with pytest.raises(Exception, match=reason):
            spec.model_validate(document)
