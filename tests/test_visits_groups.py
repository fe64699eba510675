"""Shopping groups (issue 17): the rule on hand-made paths, the scenario and PETS targets
(precision and recall of group membership >= 0.90), and groups decided as the builder
stores visits, counted as buying units."""

import numpy as np
import pytest
from pydantic import ValidationError

from edge.config import parse_site
from edge.config.visits import VisitConfig
from edge.figures import buying_units, mix, unit_segments
from edge.runtime.schema import open_database
from edge.storage.trajectories import finish_run, start_run
from edge.visits.analysis import VisitAnalyzer
from edge.visits.builder import build_visits
from edge.visits.group_scenarios import group_floor, score_groups
from edge.visits.groups import find_groups, group_pairs, pair_scores
from edge.visits.records import Visit
from edge.visits.scenarios import scenario_site

CONFIG = VisitConfig()


def walker(start_t, points, speed=1.2, fps=5.0, track_id=0, offset=(0.0, 0.0)):
    """A visit walking through ``points`` (metres) at ``speed`` from ``start_t``."""
    points = np.asarray(points, dtype=float) + offset
    legs = np.hypot(*np.diff(points, axis=0).T) / speed
    knots = start_t + np.concatenate(([0.0], np.cumsum(legs)))
    t = np.arange(knots[0], knots[-1], 1.0 / fps)
    xy = np.column_stack([np.interp(t, knots, points[:, i]) for i in (0, 1)])
    return Visit("cam", 1, track_id, t, xy)


ROUTE = [(0, 0), (0, 20), (15, 20), (15, 5)]


def test_a_couple_is_one_group_and_strangers_are_not():
    couple = [walker(0.0, ROUTE, track_id=1), walker(0.5, ROUTE, track_id=2, offset=(0.7, 0))]
    # came in with them, then went their own way
    parting = walker(0.5, [(0, 0), (0, 4), (-20, 4), (-20, 30)], track_id=3)
    # walks the other way down the same aisle: passes within a metre
    passing = walker(10.0, [(0.8, 25), (0.8, -5)], track_id=4)
    # came in a minute later along the same route: never together
    later = walker(60.0, ROUTE, track_id=5)
    labels = find_groups([*couple, parting, passing, later], CONFIG)
    assert labels[0] == labels[1]
    assert len(set(labels)) == 4


def test_a_family_is_one_group_through_its_members_and_a_hidden_one_rejoins():
    """The first and last child never walk within 1.5 m of each other, but each walks
    with a parent; a child hidden behind a parent comes back as a new track piece
    beside them, 20 s in (not "within seconds" of the door), and still belongs."""
    parent = walker(0.0, ROUTE, track_id=1)
    left = walker(0.5, ROUTE, track_id=2, offset=(-1.0, 0))
    right = walker(0.3, ROUTE, track_id=3, offset=(1.0, 0))
    back = walker(20.0, [(4.0, 20), *ROUTE[2:]], track_id=4, offset=(0, 0.8))
    labels = find_groups([parent, left, right, back], CONFIG)
    assert len(set(labels)) == 1
    assert group_pairs(labels, [1, 2, 3, 4]) == {(1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4)}


def test_pair_scores_count_pairs_of_people():
    truth = {(1, 2), (3, 4)}
    assert pair_scores(truth, {(1, 2), (1, 5)}) == {
        "true_pairs": 2, "found_pairs": 2, "matched_pairs": 1, "precision": 0.5, "recall": 0.5}
    # two pieces of one person in one group are no pair; unmatched tracks (None) are skipped
    assert group_pairs([0, 0, 0, 1], [7, 7, None, 8]) == set()


@pytest.mark.parametrize("seed", [0, 1])
def test_scenario_groups_meet_the_target(seed):
    """Issue 17's target on scenarios: couples, families (who split up for a while) and
    strangers through the door at the same moment, some tracks broken in two by the
    tracker; precision and recall of pairs of people >= 0.90."""
    scores = score_groups(VisitAnalyzer(scenario_site()), group_floor(seed=seed))
    assert scores["true_pairs"] >= 200 and scores["people"] >= 300
    assert scores["tracks"] >= scores["people"] + 50       # the broken tracks are in
    assert scores["precision"] >= 0.90, scores
    assert scores["recall"] >= 0.90, scores


def test_without_the_distance_rule_strangers_would_be_groups():
    """The scenarios are not easy by construction: strangers come in within seconds of
    each other, some after the same shelves, so a looser rule (4 m, 15% of the time)
    groups some of them."""
    loose = scenario_site()
    loose = loose.model_copy(update={"visits": loose.visits.model_copy(
        update={"group_distance_m": 4.0, "group_together_fraction": 0.15})})
    scores = score_groups(VisitAnalyzer(loose), group_floor(seed=0))
    assert scores["precision"] < 0.90, scores


@pytest.mark.parametrize("field, value", [("group_distance_m", 0), ("group_together_fraction", 1.5),
                                          ("group_entry_window_s", -1), ("group_step_s", 0)])
def test_bad_group_settings_are_refused(field, value):
    with pytest.raises(ValidationError, match=field):
        VisitConfig(**{field: value})


SITE = parse_site("""
site: {id: test-store}
floor:
  bounds: [[-30, -10], [30, 40]]
  zones:
    - {id: shelf, kind: product, polygon: [[-5, 10], [5, 10], [5, 30], [-5, 30]]}
visits: {close_after_s: 10, min_duration_s: 3}
""")
T0 = 1_700_000_000.0


def store_visit(db, run, visit):
    db["track_points"].insert_all(
        {"run_id": run, "camera_id": "cam", "track_id": visit.track_id, "frame": i,
         "t": T0 + float(t), "x": float(x), "y": float(y), "left": 0.0, "top": 0.0,
         "width": 1.0, "height": 2.0, "confidence": 0.9}
        for i, (t, (x, y)) in enumerate(zip(visit.t, visit.xy, strict=True)))


def groups_of(db):
    return dict(db.execute("select v.track_id, g.group_id from visits v "
                           "join visit_groups g using (visit_id)").fetchall())


def test_the_builder_stores_each_visit_s_group_and_a_late_companion_joins_it():
    db = open_database(":memory:")
    analyzer = VisitAnalyzer(SITE)
    run = start_run(db, "cam", "live", "model")
    store_visit(db, run, walker(0.0, ROUTE, track_id=1))                   # ~43 s
    store_visit(db, run, walker(1.0, ROUTE[:3], track_id=2, offset=(0.6, 0)))  # ~30 s
    store_visit(db, run, walker(2.0, [(0, 0), (0, 6), (-25, 6)], track_id=3))
    store_visit(db, run, walker(200.0, ROUTE, track_id=4))               # until ~242 s
    # its companion, hidden behind it at the door, picked up beside it 20 s in (~254 s)
    store_visit(db, run, walker(220.0, [(4, 20), (15, 20), (15, 5), (15, -10)], track_id=5,
                                offset=(0, 0.8)))
    store_visit(db, run, walker(250.0, [(0, 0), (0, 12)], track_id=6))   # until 260 s
    build_visits(db, analyzer)
    first = groups_of(db)
    assert set(first) == {1, 2, 3, 4}        # 5 and 6 are still in view: not visits yet
    assert first[1] == first[2] != first[3] != first[4]
    finish_run(db, run, 0, "done")
    build_visits(db, analyzer)
    later = groups_of(db)
    assert {k: later[k] for k in first} == first    # decisions already stored stand
    assert later[5] == later[4] and later[6] not in (later[1], later[3], later[4])
    conn = db.conn
    assert buying_units(conn, T0, T0 + 1000) == 4    # couple, stranger, pair, one more
    assert db["visits"].count == 6
    # each group once, in the window where its first member left
    assert buying_units(conn, T0, T0 + 100) == 2
    assert buying_units(conn, T0 + 100, T0 + 1000) == 2


def test_a_group_is_classified_once_in_the_segment_mix():
    """A family of three counts once, with the segment its members have on average;
    a couple split between two segments goes to the stronger (then the first name);
    a unit whose strongest mean is below 0.5 counts in none, as a visit does."""
    db = open_database(":memory:")
    members = {"a": ("fam", {"browser": 0.9, "mission": 0.1}),
               "b": ("fam", {"browser": 0.3, "mission": 0.7}),
               "c": ("fam", {"browser": 0.6, "mission": 0.4}),
               "d": ("two", {"browser": 1.0, "mission": 0.0}),
               "e": ("two", {"browser": 0.0, "mission": 1.0}),
               "f": ("f", {"browser": 0.2, "mission": 0.8}),
               "h": ("h", {"browser": 0.4, "mission": 0.3, "quick": 0.3})}
    for visit_id, (group, segments) in members.items():
        db["visits"].insert({"visit_id": visit_id, "start_t": T0, "end_t": T0 + 60})
        db["visit_groups"].insert({"visit_id": visit_id, "group_id": group})
        db["visit_segments"].insert_all({"visit_id": visit_id, "segment": name, "probability": p}
                                        for name, p in segments.items())
    db["visits"].insert({"visit_id": "g", "start_t": T0, "end_t": T0 + 60})  # no group yet
    db["visit_segments"].insert({"visit_id": "g", "segment": "mission", "probability": 1.0})
    assert unit_segments(db.conn, T0, T0 + 100) == {"browser": 2, "mission": 2}
    # per visit the family is three: a, c as browsers, b on mission
    assert {m.name: m.visits for m in mix(db.conn, "visit_segments", "segment", T0, T0 + 100)
            } == {"browser": 3, "mission": 4, "quick": 0}
    assert unit_segments(db.conn, T0 + 100, T0 + 200) == {}


def test_a_group_is_classified_in_the_period_its_first_member_left():
    """The period rule of buying units: a family whose first member left at 10:00 and the
    others at 11:00 is one 10:00 unit and nothing in the 11:00 mix. It is classified by
    the members who left within PARTY_LEAVE_S of the first, here the first alone, in
    every period: the 10:00 figure is final once 10:00 is over, and a period spanning
    both hours classes it the same (it used to take all three: 0.3 / 0.7, mission)."""
    db = open_database(":memory:")
    for visit_id, end, segments in (("a", T0 + 50, {"browser": 0.9, "mission": 0.1}),
                                    ("b", T0 + 150, {"browser": 0.0, "mission": 1.0}),
                                    ("c", T0 + 150, {"browser": 0.0, "mission": 1.0})):
        db["visits"].insert({"visit_id": visit_id, "start_t": T0, "end_t": end})
        db["visit_groups"].insert({"visit_id": visit_id, "group_id": "fam"})
        db["visit_segments"].insert_all({"visit_id": visit_id, "segment": name, "probability": p}
                                        for name, p in segments.items())
    assert unit_segments(db.conn, T0, T0 + 100) == {"browser": 1}
    assert unit_segments(db.conn, T0 + 100, T0 + 200) == {}
    assert buying_units(db.conn, T0, T0 + 100) == 1
    assert buying_units(db.conn, T0 + 100, T0 + 200) == 0
    assert unit_segments(db.conn, T0, T0 + 200) == {"browser": 1}
