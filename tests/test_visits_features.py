"""Visit features on hand-built trajectories whose answers are known."""

import numpy as np
import pytest

from edge.config.floor import FloorConfig
from edge.config.visits import VisitConfig
from edge.visits.features import BASE_FEATURES, FeatureExtractor, feature_names
from edge.visits.records import Visit
from tests.test_visits_geometry import walk

FLOOR = FloorConfig.model_validate({
    "bounds": [[-5, -5], [30, 20]],
    "zones": [
        {"id": "door", "kind": "entrance", "polygon": [[0, -3], [4, -3], [4, 1], [0, 1]]},
        {"id": "deals", "kind": "product", "tags": ["promo"],
         "polygon": [[0, 4], [4, 4], [4, 8], [0, 8]]},
        {"id": "lux", "kind": "product", "tags": ["premium"],
         "polygon": [[5, 4], [9, 4], [9, 8], [5, 8]]},
        {"id": "till", "kind": "checkout", "polygon": [[20, 0], [24, 0], [24, 4], [20, 4]]},
    ],
    "lines": [{"id": "front", "start": [0, 0], "end": [4, 0], "inside": "left"}],
})
CONFIG = VisitConfig(smoothing_s=0.0)


def measure(t, xy, config=CONFIG):
    return FeatureExtractor(FLOOR, config).measure(Visit("cam", 1, 7, t, xy))


def stand(t0, where, seconds, fps=10.0):
    t = np.arange(t0, t0 + seconds, 1.0 / fps)
    return t, np.tile(np.asarray(where, float), (len(t), 1))


def chain(*parts):
    """Concatenate (t, xy) pieces, shifting each to start after the previous."""
    ts, xys, offset = [], [], 0.0
    for t, xy in parts:
        t = t - t[0] + offset
        if ts:
            t = t + 0.1
        ts.append(t)
        xys.append(xy)
        offset = t[-1]
    return np.concatenate(ts), np.concatenate(xys)


def test_straight_walk():
    t, xy = walk((10, 10), (20, 10), speed=1.25)
    f = measure(t, xy).features
    assert f["duration_s"] == pytest.approx(8.0)
    assert f["path_length_m"] == pytest.approx(10.0)
    assert f["mean_speed_mps"] == pytest.approx(1.25)
    assert f["max_speed_mps"] == pytest.approx(1.25, rel=1e-6)
    assert f["directness"] == pytest.approx(1.0)
    assert f["leg_directness"] == pytest.approx(1.0)
    assert f["stops"] == 0 and f["time_to_first_stop_s"] == pytest.approx(8.0)
    assert f["distinct_zones"] == 0 and f["checkout_visited"] == 0


def test_stops_zones_back_and_forth_and_checkout():
    """In through the door, deals 10 s, lux 10 s, deals again 10 s, then the till."""
    t, xy = chain(
        walk((2, -2), (2, 6)),
        stand(0, (2, 6), 10),
        walk((2, 6), (7, 6)),
        stand(0, (7, 6), 10),
        walk((7, 6), (2, 6)),
        stand(0, (2, 6), 10),
        walk((2, 6), (2, 2.5), (22, 2.5), (22, 2)),
        stand(0, (22, 2), 20),
    )
    measured = measure(t, xy)
    f = measured.features
    assert measured.zone_sequence == ["door", "deals", "lux", "deals", "till"]
    assert f["distinct_zones"] == 3             # the door is transit, not a place visited
    assert f["zone_entries"] == 4 and f["revisits"] == 1
    assert f["back_and_forth"] == 1             # deals -> lux -> deals, neighbours
    assert f["stops"] == 4 and f["product_stops"] == 3
    assert f["time_to_first_stop_s"] == pytest.approx(8.0, abs=0.6)
    assert f["checkout_visited"] == 1
    # two 10 s stands plus 2 s walking in and 2 s out each time
    assert f["dwell_tag_promo_s"] == pytest.approx(28, abs=1.0)
    assert f["share_tag_premium"] == pytest.approx(f["dwell_tag_premium_s"] / f["duration_s"])
    assert f["dwell_kind_product_s"] == pytest.approx(
        f["dwell_tag_promo_s"] + f["dwell_tag_premium_s"])
    assert f["crossings_in"] == 1 and f["crossings_out"] == 0
    assert measured.zone_entries == {"door": 1, "deals": 2, "lux": 1, "till": 1}
    assert 0 < f["leg_directness"] <= 1 and f["directness"] < 0.5


def test_far_apart_zones_are_not_back_and_forth():
    t, xy = chain(
        walk((2, 6), (2, 6.5)), stand(0, (2, 6), 5), walk((2, 6), (2, 2.5), (22, 2.5)),
        stand(0, (22, 2.5), 5), walk((22, 2.5), (2, 2.5), (2, 6)), stand(0, (2, 6), 5),
    )
    f = measure(t, xy).features
    assert f["revisits"] == 1 and f["back_and_forth"] == 0


def test_features_are_finite_and_complete_for_tiny_visits():
    for t, xy in [stand(0, (1, 1), 0.1), walk((1, 1), (1.05, 1))]:
        f = measure(t, xy).features
        assert set(f) == set(feature_names(["promo", "premium"]))
        assert all(np.isfinite(v) for v in f.values())


def test_feature_names_document_every_base_feature():
    assert all(BASE_FEATURES.values())
    names = feature_names(["kids"])
    assert names[: len(BASE_FEATURES)] == list(BASE_FEATURES)
    assert "dwell_tag_kids_s" in names and "share_tag_kids" in names
    assert "dwell_kind_checkout_s" in names


NESTED = FloorConfig.model_validate({
    "bounds": [[0, 0], [30, 30]],
    "zones": [
        {"id": "a", "kind": "product", "tags": ["kids"],
         "polygon": [[0, 0], [10, 0], [10, 10], [0, 10]]},
        {"id": "b", "kind": "product", "tags": ["kids", "promo"],
         "polygon": [[0, 0], [10, 0], [10, 10], [0, 10]]},
        {"id": "c", "kind": "product", "tags": ["kids", "kids"],
         "polygon": [[2, 2], [8, 2], [8, 8], [2, 8]]},
        {"id": "till", "kind": "checkout", "polygon": [[20, 0], [26, 0], [26, 3], [20, 3]]},
    ],
})


def test_overlapping_zones_and_repeated_tags_count_time_once():
    """Regression: 60 s still inside three overlapping product zones gave
    product_dwell_share 3.0 and share_tag_kids 3.0 (a wanderer of 0.80); a tag written
    twice on a zone doubled its share. A kind's or tag's dwell is now the time in any
    of its zones, counted once; each zone keeps its own dwell."""
    t, xy = stand(0, (5, 5), 60)
    measured = FeatureExtractor(NESTED, CONFIG).measure(Visit("cam", 1, 7, t, xy))
    f = measured.features
    assert measured.zone_dwell == pytest.approx({"a": f["duration_s"], "b": f["duration_s"],
                                                 "c": f["duration_s"]})
    assert f["dwell_kind_product_s"] == pytest.approx(f["duration_s"])
    assert f["product_dwell_share"] == pytest.approx(1.0)
    assert f["share_tag_kids"] == pytest.approx(1.0)
    assert f["share_tag_promo"] == pytest.approx(1.0)
    # walking in and out of the inner zone: the kids share is the time in the outer ones
    t, xy = chain(stand(0, (5, 5), 20), walk((5, 5), (15, 5)), stand(0, (15, 5), 20))
    measured = FeatureExtractor(NESTED, CONFIG).measure(Visit("cam", 1, 7, t, xy))
    f = measured.features
    assert measured.zone_dwell["c"] < measured.zone_dwell["a"] == measured.zone_dwell["b"]
    assert f["dwell_tag_kids_s"] == measured.zone_dwell["a"]  # a holds b and c
    assert f["dwell_kind_product_s"] == f["dwell_tag_kids_s"]
    assert 0 < f["share_tag_kids"] < 1 and 0 < f["product_dwell_share"] < 1


def test_features_of_layouts_without_overlaps_are_unchanged_to_the_bit():
    """Without overlapping stays, a kind's or tag's dwell is exactly the sum of its
    stays, added in entry order, as before zones could overlap: the scenario suite's
    features are bit for bit what they were."""
    from edge.visits.scenarios import scenario_site, scenario_suite

    site = scenario_site()
    extractor = FeatureExtractor(site.floor, site.visits)
    kinds = dict(zip(extractor.zones.ids, extractor.zones.kinds, strict=True))
    tags = dict(zip(extractor.zones.ids, extractor.zones.tags, strict=True))
    checked = 0
    for scenario in scenario_suite(repeats=1):
        measured = extractor.measure(Visit("cam", 1, 1, scenario.t, scenario.xy))
        f = measured.features
        old = dict.fromkeys([n for n in f if n.startswith(("dwell_kind_", "dwell_tag_"))], 0.0)
        for stay in measured.stays:  # the old definition: a sum over stays
            old[f"dwell_kind_{kinds[stay.zone_id]}_s"] += stay.seconds
            for tag in tags[stay.zone_id]:
                old[f"dwell_tag_{tag}_s"] += stay.seconds
        assert {name: f[name] for name in old} == old
        duration = f["duration_s"]
        assert f["product_dwell_share"] == old["dwell_kind_product_s"] / duration
        checked += bool(measured.stays)
    assert checked > 100


@pytest.mark.parametrize("jump", ["out and back", "for good"])
def test_a_position_jump_adds_no_path_and_no_speed(jump):
    """Regression: a 5-sample jump of 1000 m in a 20 s walk gave path_length_m 2026, a
    mean speed of 102 m/s and a max of 884 m/s, stored and averaged into the
    aggregates' mean_path_m. A step faster than glitch_speed_mps is a tracking glitch."""
    t, xy = walk((10, 10), (16, 10), speed=0.3)
    clean = measure(t, xy).features
    jumped = xy.copy()
    if jump == "out and back":
        jumped[70:75] += [1000, 1000]
    else:
        jumped[70:] += [500, 0]
    f = measure(t, jumped).features
    # each glitch step also drops that step's own 3 cm of walk
    for name in ("path_length_m", "mean_speed_mps", "max_speed_mps", "directness",
                 "leg_directness", "stops"):
        assert f[name] == pytest.approx(clean[name], rel=0.02), name
    assert clean["path_length_m"] == pytest.approx(6.0)
    # a sprint stays a sprint: 8 m/s is under the glitch speed
    t, xy = walk((0, 10), (24, 10), speed=8.0)
    assert measure(t, xy).features["path_length_m"] == pytest.approx(24.0)
