"""Segment specs: validation with clear errors, scoring, micro-segments, hot reload."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from edge.config import parse_site
from edge.errors import ConfigError
from edge.visits.classify import TraitClassifier
from edge.visits.features import feature_names
from edge.visits.reload import SpecHolder
from edge.visits.spec import SpecError, default_spec_path, parse_spec, read_spec

DEFAULT_TEXT = default_spec_path().read_text()
SITE_TAGS = ["promo", "clearance", "premium", "kids", "fitness", "ready-to-eat", "formal-wear"]
NAMES = feature_names(SITE_TAGS)


def default_doc() -> dict:
    return yaml.safe_load(DEFAULT_TEXT)


def test_shipped_spec_compiles_with_affinity_per_category(pets_site):
    spec, model = read_spec(default_spec_path())
    assert model == b"" and spec.spec_version
    tags = sorted({t for z in pets_site.floor.zones for t in z.tags})
    classifier = TraitClassifier(spec, feature_names(tags), tags)
    assert classifier.traits[:4] == ["showroomer", "wanderer", "indecisive", "bargain_hunter"]
    affinities = {t for t in classifier.traits if t.startswith("affinity_")}
    assert affinities == {"affinity_kids", "affinity_fitness", "affinity_ready-to-eat",
                          "affinity_formal-wear"}          # price tags are not categories
    assert len(classifier.segment_names) >= 2


def mutate(path, value):
    def apply(doc):
        *head, last = path
        node = doc
        for key in head:
            node = node[key]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
        return doc
    return apply


DELETE = object()


@pytest.mark.parametrize(
    "change, message",
    [
        (mutate(["traits", "wanderer", "terms", 0, "feature"], "distinct_zone"),
         r"traits\.wanderer\.terms\[0\]\.feature: unknown feature: not a feature name.*"
         r"\(got 'distinct_zone'\)"),
        (mutate(["traits", "bargain_hunter", "terms", 0, "feature"], "dwell_tag_promos_s"),
         r"tag 'promos' is not in the spec's tags"),
        (mutate(["traits", "showroomer", "terms", 0, "feature"], "dwell_kind_shelf_s"),
         r"no zone kind 'shelf'"),
        (mutate(["affinity", "terms", 0, "feature"], "dwell_{category}_s"),
         r"affinity\.terms\[0\]\.feature: unknown feature"),
        (mutate(["segments", "features", 1], "zones_seen"),
         r"segments\.features\[1\]: unknown feature: .*\(got 'zones_seen'\)"),
        (mutate(["spec_version"], "v2"), r"spec_version: String should match pattern"),
        (mutate(["spec_version"], 2), r"spec_version: Input should be a valid string"),
        (mutate(["spec_format"], 2), r"spec_format: Input should be 1"),
        (mutate(["traits", "indecisive"], DELETE), r"must define the traits indecisive"),
        (mutate(["segments", "center"], [0.0]), r"center and scale need one value per feature"),
        (mutate(["segments", "components", 0, "var", 0], -1.0), r"every variance must be > 0"),
        (mutate(["segments", "components", 1, "name"], "quick-look"), r"segment names must be"),
        (mutate(["traits", "wanderer", "terms", 0, "clip"], [5, 1]), r"clip must be \[lo, hi\]"),
        (mutate(["traits", "wanderer", "bias_typo"], 1.0), r"Extra inputs are not permitted"),
    ],
)
def test_bad_specs_are_rejected_with_the_key_and_line(change, message):
    text = yaml.safe_dump(change(default_doc()), sort_keys=False)
    with pytest.raises(SpecError, match=message) as caught:
        parse_spec(text, source="spec.yaml")
    assert isinstance(caught.value, ConfigError)
    assert "spec.yaml:" in str(caught.value)


def edited(old: str, new: str) -> str:
    """The shipped spec with one text edit, so every other line stays where it is."""
    assert DEFAULT_TEXT.count(old) == 1, old
    return DEFAULT_TEXT.replace(old, new)


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("feature: distinct_zones,", "feature: distinct_zone,",
         r"traits\.wanderer\.terms\[0\]\.feature: unknown feature: not a feature name"),
        ("dwell_tag_promo_s", "dwell_tag_promos_s",
         r"traits\.bargain_hunter\.terms\[0\]\.feature: unknown feature: tag 'promos'"),
        ("dwell_kind_product_s", "dwell_kind_shelf_s",
         r"traits\.showroomer\.terms\[0\]\.feature: unknown feature: no zone kind 'shelf'"),
        ('"dwell_tag_{category}_s"', '"dwell_{category}_s"',
         r"affinity\.terms\[0\]\.feature: unknown feature"),
        ("leg_directness, product_dwell_share", "leg_directnes, product_dwell_share",
         r"segments\.features\[3\]: unknown feature"),
        ("bias: -2.5", "bias: .inf", r"traits\.indecisive\.bias: Input should be a finite number"),
        ("{feature: product_stops, weight: 0.8,", "{feature: product_stops, weight: .nan,",
         r"traits\.showroomer\.terms\[1\]\.weight: Input should be a finite number"),
        ("clip: [0, 4]}\n      - {feature: checkout",
         "clip: [0, .inf]}\n      - {feature: checkout",
         r"traits\.showroomer\.terms\[1\]\.clip\[1\]: Input should be a finite number"),
    ],
)
def test_spec_errors_name_the_line_of_the_offending_key(old, new, message):
    """Field report: a typo on line 31 was reported at line 8 (the first key), and a
    `.inf` weight passed validation, so traits came out NaN, were stored as NULL and
    `edge report` crashed on float(None)."""
    text = edited(old, new)
    with pytest.raises(SpecError, match=message) as caught:
        parse_spec(text, source="spec.yaml")
    line = line_of(text, new.splitlines()[0])
    assert f"spec.yaml:{line} " in str(caught.value), str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_missing_trait_names_the_traits_line():
    text = edited("  indecisive:\n", "  indecisive_typo:\n")
    with pytest.raises(SpecError, match="must define the traits indecisive") as caught:
        parse_spec(text, source="spec.yaml")
    assert f"spec.yaml:{line_of(text, 'traits:')} traits:" in str(caught.value)


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
@pytest.mark.parametrize("path", [
    ["affinity", "bias"],
    ["traits", "wanderer", "terms", 1, "center"],
    ["segments", "center", 0],
    ["segments", "components", 0, "mean", 1],
    ["segments", "components", 0, "weight"],
])
def test_non_finite_numbers_are_rejected_anywhere(path, value):
    text = yaml.safe_dump(mutate(path, value)(default_doc()), sort_keys=False)
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)[1:]
    with pytest.raises(SpecError, match=re.escape(where)):
        parse_spec(text, source="spec.yaml")


def test_not_yaml_and_not_a_mapping(tmp_path):
    with pytest.raises(SpecError, match=r"spec.yaml:3: not valid YAML"):
        parse_spec("traits:\n  a: [1, 2\n", source="spec.yaml")
    with pytest.raises(SpecError, match="expected a mapping"):
        parse_spec("- 1\n", source="spec.yaml")
    with pytest.raises(SpecError, match="does not exist"):
        read_spec(tmp_path / "missing.yaml")


def test_missing_or_mismatched_classifier_model(tmp_path):
    doc = default_doc()
    doc["classifier"] = {"model": "traits.onnx"}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(SpecError, match="cannot read its classifier model"):
        read_spec(path)
    (tmp_path / "traits.onnx").write_bytes(b"not onnx")
    doc["classifier"]["sha256"] = "0" * 64
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(SpecError, match="has sha256"):
        read_spec(path)
    del doc["classifier"]["sha256"]
    path.write_text(yaml.safe_dump(doc))
    spec, model = read_spec(path)
    with pytest.raises(SpecError, match="not a usable ONNX model"):
        TraitClassifier(spec, NAMES, SITE_TAGS, model)


def classifier(doc=None) -> TraitClassifier:
    spec = parse_spec(yaml.safe_dump(doc or default_doc()))
    return TraitClassifier(spec, NAMES, SITE_TAGS)


def test_trait_scores_follow_the_rules():
    c = classifier()
    # a visit long enough for its traits to say everything (trait_evidence)
    engaged = {"dwell_kind_product_s": 60.0, "product_stops": 3.0, "checkout_visited": 0.0,
               "duration_s": 120.0}
    assert c.classify(engaged).traits["showroomer"] > 0.9
    assert c.classify({**engaged, "checkout_visited": 1.0}).traits["showroomer"] < 0.1
    promo = c.classify({"dwell_tag_promo_s": 40.0, "duration_s": 120.0}).traits[
        "bargain_hunter"]
    premium = c.classify({"dwell_tag_premium_s": 40.0, "duration_s": 120.0}).traits[
        "bargain_hunter"]
    assert promo > 0.9 and premium < 0.1
    kids = c.classify({"dwell_tag_kids_s": 60.0, "share_tag_kids": 0.5, "duration_s": 120.0})
    assert kids.traits["affinity_kids"] > 0.9 and kids.traits["affinity_fitness"] < 0.1
    assert all(0.0 <= p <= 1.0 for p in kids.traits.values())


def _logit(p: float) -> float:
    return float(np.log(p) - np.log1p(-p))


def test_short_visits_traits_shrink_toward_no_information():
    """Regression: a 3.5 s visit standing at the door scored showroomer 0.047,
    wanderer 0.043, indecisive 0.089 (read: 95 % buyer) from no evidence at all, and such
    fragments watered down the day's trait mix. Now a visit under min_duration_s has no
    traits (unknown, NULL), a shorter one than full_duration_s has its logits scaled by
    duration / full_duration_s, and a full-length visit is scored as before."""
    from edge.visits.analysis import VisitAnalyzer
    from edge.visits.scenarios import scenario_site

    t = np.arange(0, 3.5, 1 / 7.0)
    door = VisitAnalyzer(scenario_site()).analyze_track(
        "cam", 1, 1, t, np.tile([15.0, 1.5], (len(t), 1))).visits
    assert len(door) == 1 and door[0].measured.features["duration_s"] < 10
    assert set(door[0].scores.traits.values()) == {None}
    assert door[0].to_json()["traits"]["showroomer"] is None

    c = classifier()
    assert (c.spec.trait_evidence.min_duration_s, c.spec.trait_evidence.full_duration_s) == (
        10.0, 45.0)
    off = default_doc()
    off["trait_evidence"] = {"min_duration_s": 0, "full_duration_s": 1e-9}
    plain = classifier(off)
    visit = {"dwell_kind_product_s": 5.0, "distinct_zones": 1.0, "leg_directness": 0.9}
    for seconds in (45.0, 300.0):                     # full length: exactly as before
        full = {**visit, "duration_s": seconds}
        assert c.classify(full).traits == plain.classify(full).traits
    short = {**visit, "duration_s": 18.0}
    shrunk, before = c.classify(short).traits, plain.classify(short).traits
    for name, p in shrunk.items():
        assert p is not None and before[name] is not None
        assert _logit(p) == pytest.approx(_logit(before[name]) * 18.0 / 45.0, abs=1e-9)
        assert (p >= 0.5) == (before[name] >= 0.5)  # counted exactly when it was


def test_a_spec_without_trait_evidence_gets_the_defaults():
    """An older (downlinked) spec without the section is valid and gets the defaults,
    so its short visits are fixed too."""
    doc = default_doc()
    del doc["trait_evidence"]
    spec = parse_spec(yaml.safe_dump(doc))
    assert spec.trait_evidence.min_duration_s == 10.0
    assert spec.trait_evidence.full_duration_s == 45.0
    doc["trait_evidence"] = {"min_duration_s": 60, "full_duration_s": 30}
    with pytest.raises(SpecError, match=r"trait_evidence\.min_duration_s: min_duration_s "
                       "must not exceed full_duration_s"):
        parse_spec(yaml.safe_dump(doc))


def test_segment_memberships_are_probabilities():
    c = classifier()
    quick = c.classify({"duration_s": 40.0, "distinct_zones": 1.0, "stop_time_s": 2.0,
                        "leg_directness": 0.9, "product_dwell_share": 0.4})
    long = c.classify({"duration_s": 900.0, "distinct_zones": 8.0, "stop_time_s": 300.0,
                       "leg_directness": 0.3, "product_dwell_share": 0.3,
                       "checkout_visited": 1.0})
    for scores in (quick, long):
        assert sum(scores.segments.values()) == pytest.approx(1.0)
    assert max(quick.segments, key=quick.segments.get) == "quick-look"
    assert max(long.segments, key=long.segments.get) == "explorer"


def write(path: Path, doc: dict) -> None:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


def test_hot_reload_swaps_whole_specs_and_keeps_the_old_one_on_error(tmp_path, caplog):
    path = tmp_path / "segments.yaml"
    write(path, default_doc())
    clock = Clock()
    holder = SpecHolder(path, NAMES, SITE_TAGS, check_every_s=5.0, clock=clock)
    assert holder.spec_version == "1.0.2"

    merged = default_doc()                         # v1.1: two segments merged into one
    merged["spec_version"] = "1.1.0"
    components = merged["segments"]["components"]
    components[0]["name"] = "short-visit"
    del components[2]
    write(path, merged)
    assert holder.maybe_reload() is False          # not yet time to look
    clock.now = 6.0
    assert holder.maybe_reload() is True
    assert holder.spec_version == "1.1.0"
    assert holder.classifier.segment_names == ["short-visit", "explorer", "mission-buyer"]

    broken = json.loads(json.dumps(merged))
    broken["spec_version"] = "1.2"
    broken["traits"]["wanderer"]["terms"][0]["feature"] = "no_such_feature"
    write(path, broken)
    clock.now = 12.0
    assert holder.maybe_reload() is False
    assert holder.spec_version == "1.1.0"          # nothing of the bad spec applied
    assert "no_such_feature" in holder.last_error
    assert "keeping version 1.1.0" in caplog.text
    clock.now = 18.0
    assert holder.maybe_reload() is False          # unchanged file: not retried

    # a half-copied file (cut inside the segments, where no prefix is a valid spec)
    path.write_text(DEFAULT_TEXT[: DEFAULT_TEXT.index("  components:") + 40])
    clock.now = 24.0
    assert holder.maybe_reload() is False and holder.spec_version == "1.1.0"

    added = default_doc()                          # v2: a segment added
    added["spec_version"] = "2.0.0"
    added["segments"]["components"].append(dict(added["segments"]["components"][0],
                                                name="newcomer"))
    write(path, added)
    clock.now = 30.0
    assert holder.maybe_reload() is True and holder.last_error is None
    assert "newcomer" in holder.classifier.segment_names


def test_a_bad_spec_at_start_up_is_an_error(tmp_path):
    path = tmp_path / "segments.yaml"
    path.write_text("spec_format: 1\nspec_version: '1.0'\nname: x\ntraits: {}\n")
    with pytest.raises(SpecError, match="must define the traits showroomer"):
        SpecHolder(path, NAMES, SITE_TAGS)


def test_site_points_at_its_spec_relative_to_the_site_file(tmp_path):
    site = parse_site(
        "site: {id: s}\nfloor: {bounds: [[0, 0], [1, 1]]}\nvisits: {segment_spec: specs/a.yaml}\n"
        "web: {access: open-lan}\n",
        base_dir=tmp_path,
    )
    assert site.visits.segment_spec == str(tmp_path / "specs" / "a.yaml")


def test_self_intersecting_zone_is_rejected():
    with pytest.raises(ConfigError, match=r"zones\[0\]\.polygon: zone polygon is not a simple"):
        parse_site("site: {id: s}\nfloor:\n  bounds: [[0, 0], [9, 9]]\n  zones:\n"
                   "    - {id: bow, kind: product, polygon: [[0, 0], [2, 2], [2, 0], [0, 2]]}\n")


def test_rule_scoring_is_vectorised_consistently():
    c = classifier()
    rng = np.random.default_rng(0)
    batch = [{name: float(rng.uniform(0, 50)) for name in NAMES} for _ in range(5)]
    one_by_one = [c.classify(f).traits for f in batch]
    together = [s.traits for s in c.classify_many(batch)]
    for a, b in zip(one_by_one, together, strict=True):
        assert a == pytest.approx(b)


def _set(doc: dict, path: list, value) -> dict:
    return mutate(path, value)(doc)


@pytest.mark.parametrize(
    "path, value, message",
    [
        (["traits", "showroomer", "terms", 0, "weight"], 1e308,
         r"traits\.showroomer\.terms\[0\]\.weight: Input should be less than or equal to 10000"),
        (["traits", "wanderer", "bias"], -1e300,
         r"traits\.wanderer\.bias: Input should be greater than or equal to -10000"),
        (["traits", "wanderer", "terms", 0, "center"], 1e200,
         r"traits\.wanderer\.terms\[0\]\.center: Input should be less than or equal"),
        (["affinity", "terms", 0, "clip"], [0, 1e300],
         r"affinity\.terms\[0\]\.clip\[1\]: Input should be less than or equal to 10000000"),
        (["segments", "scale", 0], 1e-320, r"segments\.scale\[0\]: every scale must be > 0, "
         r"between 1e-06 and 1e\+06"),
        (["segments", "components", 0, "var", 0], 1e-320,
         r"segments\.components\[0\]\.var\[0\]: every variance must be > 0, between 1e-06"),
        (["segments", "components", 0, "mean", 0], 1e300,
         r"segments\.components\[0\]\.mean\[0\]: Input should be less than or equal to 1000000"),
        (["segments", "components", 1, "weight"], 1e308,
         r"segments\.components\[1\]\.weight: Input should be less than or equal to 1000000"),
        (["segments", "temperature_by_duration"], [[60, 1e-310], [86400, 1.0]],
         r"segments\.temperature_by_duration\[0\]: every below_s must be > 0 .* every T "
         r"between 1e-06 and 1e\+06"),
    ],
)
def test_extreme_but_finite_numbers_are_refused(path, value, message):
    """Regression: finite numbers passed validation although they overflow: weights of
    +-1e308 made 317 of 320 trait probabilities NaN (stored as NULL, silently), a scale
    or variance of 1e-320 made every membership NaN. Each is now refused, naming it."""
    with pytest.raises(SpecError, match=message):
        parse_spec(yaml.safe_dump(_set(default_doc(), path, value)))


def test_numbers_at_the_bounds_keep_every_probability_finite():
    from edge.visits import spec as spec_module

    doc = default_doc()
    for rule in doc["traits"].values():
        rule["bias"] = -spec_module.MAX_BIAS
        for term in rule["terms"]:
            term.update(weight=spec_module.MAX_WEIGHT, clip=None)
    doc["segments"]["scale"] = [spec_module.MIN_SPREAD] * len(doc["segments"]["scale"])
    for component in doc["segments"]["components"]:
        component["var"] = [spec_module.MIN_SPREAD] * len(component["var"])
    c = classifier(doc)
    extreme = {name: 1e7 for name in NAMES}
    scores = c.classify_many([extreme, {n: -1e7 for n in NAMES} | {"duration_s": 1e7}])
    for s in scores:
        assert all(np.isfinite(p) for p in s.traits.values())
        assert all(np.isfinite(p) for p in s.segments.values())


def test_one_overflowing_trait_does_not_poison_the_others():
    """Regression: terms were summed per trait through a 0/1 matrix product, so one
    term overflowing to inf gave inf * 0 = NaN in every other trait too."""
    plain = classifier()
    spec = plain.spec
    showroomer = spec.traits["showroomer"]
    huge = [t.model_copy(update={"weight": 1e308}) for t in showroomer.terms]
    broken = spec.model_copy(update={"traits": {**spec.traits, "showroomer": showroomer
                                                .model_copy(update={"terms": huge})}})
    c = TraitClassifier(broken, NAMES, SITE_TAGS)     # as if validation let it through
    visit = {"dwell_kind_product_s": 30.0, "product_stops": 2.0, "duration_s": 120.0,
             "distinct_zones": 6.0, "leg_directness": 0.3}
    got, expected = c.classify(visit).traits, plain.classify(visit).traits
    assert got["showroomer"] == 1.0
    assert {k: v for k, v in got.items() if k != "showroomer"} == pytest.approx(
        {k: v for k, v in expected.items() if k != "showroomer"})
