"""Window aggregation from the local tables, and k-anonymity of what would be published."""

from __future__ import annotations

import copy
import json
import re
import zoneinfo

import jsonschema
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from edge.config.site import TIMEZONE_MAX_LENGTH, TIMEZONE_PATTERN
from edge.config.storage import PrivacyConfig
from edge.runtime.schema import open_database
from sync import contract, kanon
from sync.aggregate import Window, aggregate_window, full_message, window_from
from sync.errors import ContractError, PrivacyError
from sync.producer import build_message
from tests.support.sync_helpers import (
    ENTRANCE,
    STORE,
    add_crossings,
    add_track,
    add_visit,
    add_wifi,
    sync_site,
)

W = Window(1_709_288_100.0, 900)  # 2024-03-01T10:15:00Z


def exact(db, window=W, lines=(ENTRANCE,)):
    return aggregate_window(db, window, store=STORE, entrance_lines=list(lines))


def test_windows_tile_the_day_and_bridge_a_change_of_length():
    assert window_from(W.start, 900) == W
    assert window_from(W.start + 0.7, 900) == W  # a cursor is whole seconds
    # 10:15 with a new length of 3600: a 45-min window bridges to 11:00, then full hours.
    bridge = window_from(W.start, 3600)
    assert (bridge.seconds, bridge.end % 3600) == (2700, 0)
    assert window_from(bridge.end, 3600).seconds == 3600
    with pytest.raises(ValueError, match="whole-second start"):
        Window(1.5, 900)


def test_exact_aggregates_of_a_window(memory_db):
    db = memory_db
    add_crossings(db, [W.start, W.start + 1, W.start + 899.9], "in")
    add_crossings(db, [W.start + 10], "out")
    add_crossings(db, [W.start - 0.1, W.end], "in")  # neighbours' crossings
    add_crossings(db, [W.start + 5], "in", line="back-door")  # not an entrance line
    dwell = [5.0, 10.0, 20.0, 40.0]
    for i, seconds in enumerate(dwell):
        add_visit(
            db,
            W.start + 100 + i,
            duration_s=30 + i,
            zones={"promo-table": seconds},
            sequence=["entrance", "promo-table", "entrance", "promo-table"],
            traits={"promo-seeker": 0.2 * (i + 1)},
            segments={"browser": 0.9},
            checkout=i < 1,
        )
    add_visit(db, W.end, zones={"promo-table": 99.0})  # ends on the boundary: next window
    add_track(db, 1, [W.start + s + 0.5 for s in range(10)])  # 10 s of one person
    add_track(db, 2, [W.start + s + 0.5 for s in range(5)])  # 5 s of another, overlapping
    for minute in range(15):
        add_wifi(db, W.start + 60 * minute, 60, devices=minute, passers=2, occupancy=1.0)
    agg = exact(db)
    assert agg.footfall == (3, 1)
    assert agg.visit_count == 4 and agg.checkout == 1
    assert agg.mean_duration_s == pytest.approx(31.5)
    (zone,) = agg.dwell
    assert (zone.zone, zone.visits) == ("promo-table", 4)
    assert zone.p50_s == pytest.approx(np.percentile(dwell, 50))
    assert zone.p90_s == pytest.approx(np.percentile(dwell, 90))
    # A visit going entrance -> promo twice counts once for that transition.
    assert [(t.src, t.dst, t.visits) for t in agg.transitions] == [
        ("entrance", "promo-table", 4),
        ("promo-table", "entrance", 4),
    ]
    (trait,) = agg.traits
    assert (trait.visits, trait.scored) == (2, 4)  # 0.6 and 0.8 reach 0.5
    assert trait.mean_probability == pytest.approx(0.5)
    assert agg.segments[0].visits == 4
    assert agg.occupancy == (pytest.approx(15 / 900), 2, 1.0)
    assert agg.wifi.in_store_devices == 14 and agg.wifi.passers_by == 30
    message = full_message(agg)
    assert message["footfall"]["capture_rate"] == pytest.approx(3 / 33, abs=1e-3)
    assert message["id"] == f"{STORE}/20240301T101500Z/900/aggregate"


def test_no_entrance_line_no_camera_no_wifi_is_null_not_zero(memory_db):
    agg = aggregate_window(memory_db, W, store=STORE, entrance_lines=None, has_cameras=False)
    message = kanon.suppress(full_message(agg), 5)
    contract.validate("aggregate", message)
    assert message["footfall"] is None and message["occupancy"] is None and message["wifi"] is None


def test_malformed_zone_sequence_is_counted_and_skipped(memory_db, caplog):
    add_visit(memory_db, W.start + 1, sequence=["a", "b"])
    visit = add_visit(memory_db, W.start + 2)
    memory_db.execute("update visits set zone_sequence = '{not json' where visit_id = ?", [visit])
    agg = exact(memory_db)
    assert agg.skipped_records == 1 and agg.visit_count == 2
    assert [(t.src, t.dst) for t in agg.transitions] == [("a", "b")]
    assert "malformed zone_sequence" in caplog.text


def test_small_cells_are_suppressed_and_derived_figures_with_them(memory_db):
    db = memory_db
    add_crossings(db, [W.start + i for i in range(6)], "in")
    add_crossings(db, [W.start + i for i in range(2)], "out")
    for i in range(6):
        add_visit(
            db,
            W.start + 10 + i,
            zones={"promo-table": 10.0, **({"deli": 5.0} if i < 2 else {})},
            traits={"kids": 0.9 if i < 3 else 0.1, "rare": 0.7} if i < 4 else {"kids": 0.1},
        )
    message = kanon.suppress(full_message(exact(db)), 5)
    contract.validate("aggregate", message)
    assert message["footfall"]["in"] == 6 and message["footfall"]["out"] is None
    assert [d["zone"] for d in message["dwell"]] == ["promo-table"]  # deli had 2 visits
    kids = next(t for t in message["traits"] if t["name"] == "kids")
    assert kids == {
        "name": "kids",
        "visits": None,
        "scored": 6,
        # mean x scored would give the hidden count away (probabilities near 0 or 1)
        "mean_probability": None,
    }
    assert all(t["name"] != "rare" for t in message["traits"])  # scored on 4 visits only
    assert message["suppressed"]["dwell"] == 1 and message["k"] == 5
    assert kanon.violations(message, 5) == []
    # Tightening a published message to a larger k keeps it k-anonymous.
    tighter = kanon.suppress(message, 7)
    assert (
        tighter["k"] == 7
        and tighter["footfall"]["in"] is None
        and kanon.violations(tighter, 7) == []
    )


@pytest.mark.parametrize(
    "tamper, problem",
    [
        (lambda m: m["footfall"].__setitem__("out", 4), "/footfall/out: counts 4"),
        (lambda m: m["dwell"][0].__setitem__("visits", 1), "/dwell/0/visits: counts 1"),
        (lambda m: m["visits"].__setitem__("count", None), "/visits/mean_duration_s: derived"),
        (lambda m: m["wifi"].__setitem__("passers_by", None), "/footfall/capture_rate: derived"),
        (lambda m: m["wifi"].update(in_store_devices=None, occupancy_estimate=1.0),
         "/wifi/occupancy_estimate: derived"),
        (lambda m: m.__setitem__("k", 3), "/k: message claims k=3"),
        (lambda m: m["traits"][0].__setitem__("scored", True), "/traits/0/scored: counts True"),
        # Both counts >= k, but their difference is a group of one.
        (lambda m: m["dwell"][0].__setitem__("visits", 5), "/dwell/0/visits: 6 - 5 = 1"),
        (lambda m: m["traits"][0].__setitem__("visits", 5), "/traits/0/visits: 6 - 5 = 1"),
    ],
)
def test_publish_path_check_catches_any_small_cell(memory_db, tamper, problem):
    db = memory_db
    add_crossings(db, [W.start + i for i in range(6)], "in")
    add_wifi(db, W.start, 900, devices=8, passers=40)
    for i in range(6):
        add_visit(db, W.start + 10 + i, zones={"promo-table": 10.0 + i}, traits={"kids": 0.9})
    message = kanon.suppress(full_message(exact(db)), 5)
    kanon.assert_k_anonymous(message, 5)
    bad = copy.deepcopy(message)
    tamper(bad)
    with pytest.raises(PrivacyError, match="not 5-anonymous") as error:
        kanon.assert_k_anonymous(bad, 5)
    assert problem in str(error.value)


def test_wifi_occupancy_estimate_is_withheld_with_the_devices_it_comes_from(memory_db):
    """Regression (privacy review, repro 02): ``wifi.occupancy_estimate`` is
    in_store_devices x people_per_device, a factor head office knows; it went out while
    in_store_devices was withheld below k, so "1.0 people" said that 1 phone was in the
    store. It is null with its source now, and published with it at k or more."""
    add_wifi(memory_db, W.start, 900, devices=1, passers=40, occupancy=1.0)
    message = kanon.suppress(full_message(exact(memory_db)), 5)
    assert message["wifi"] == {"in_store_devices": None, "passers_by": 40,
                               "occupancy_estimate": None}
    kanon.assert_k_anonymous(message, 5)
    add_wifi(memory_db, W.end, 900, devices=6, passers=40, occupancy=6.0)
    later = kanon.suppress(full_message(exact(memory_db, Window(W.end, 900))), 5)
    assert later["wifi"] == {"in_store_devices": 6, "passers_by": 40, "occupancy_estimate": 6.0}


def test_k_can_never_be_below_two():
    with pytest.raises(PrivacyError):
        kanon.suppress({"k": None, "suppressed": {}}, 1)
    with pytest.raises(ValidationError):
        PrivacyConfig(min_publishable_count=1)
    assert kanon.violations({"k": 1}, 1)[0].startswith("k=1 is below the floor")


def test_schema_rejects_unknown_fields_and_other_major_versions(memory_db):
    message = kanon.suppress(full_message(exact(memory_db)), 5)
    with pytest.raises(ContractError, match="Additional properties"):
        contract.validate("aggregate", {**message, "visit_ids": ["v1"]})
    with pytest.raises(ContractError, match="speaks 1.x"):
        contract.validate("aggregate", {**message, "schema_version": "2.0"})


def test_a_later_minor_version_is_read_on_the_fields_this_build_knows(memory_db):
    """A box upgraded before the central workers sends 1.6 with fields this build has never
    seen: they pass (docs/mqtt.md: a receiver accepts any minor version of its major), and
    every field it knows is checked as before. At 1.5 the same fields are refused (they
    were dead-lettered as invalid at 1.6 too)."""
    message = kanon.suppress(full_message(exact(memory_db)), 5)
    later = {**message, "schema_version": "1.6", "new_section": {"x": 1},
             "visits": {**message["visits"], "new_count": None}}
    contract.validate("aggregate", later)
    with pytest.raises(ContractError, match="Additional properties"):
        contract.validate("aggregate", {**later, "schema_version": "1.5"})
    with pytest.raises(ContractError, match="window.seconds"):
        contract.validate("aggregate", {**later, "window": {**later["window"], "seconds": 0}})



def test_the_message_names_the_stores_time_zone_and_older_readers_still_read_it(memory_db):
    """Schema 1.5 adds the optional ``timezone`` (the site's, so that the central roll-ups
    count the store's local days). A reader of 1.4 reads a 1.5 message on the fields it
    knows; a 1.4 message, without it, is still valid at 1.5."""
    site = sync_site(window_s=900)
    site = site.model_copy(update={"site": site.site.model_copy(
        update={"timezone": "America/New_York"})})
    message = build_message(memory_db, site, W, 5)
    assert (message["schema_version"], message["timezone"]) == ("1.5", "America/New_York")
    assert kanon.violations(message, 5) == []
    # the 1.4 build: its schema had no timezone, and 1.5 is a later minor to it
    old_schema = copy.deepcopy(contract.schema("aggregate"))
    del old_schema["properties"]["timezone"]
    with pytest.raises(jsonschema.ValidationError, match="Additional properties"):
        Draft202012Validator(old_schema).validate(message)  # were it read strictly
    Draft202012Validator(contract._allow_more_properties(old_schema)).validate(message)
    older = {key: value for key, value in message.items() if key != "timezone"}
    contract.validate("aggregate", {**older, "schema_version": "1.4"})
    with pytest.raises(ContractError, match="timezone"):
        contract.validate("aggregate", {**message, "timezone": "../etc/passwd"})


def test_every_time_zone_a_site_accepts_is_one_the_contract_accepts():
    """A box whose zone the schema refused would have every window refused in its outbox:
    the site config takes the schema's pattern, and every IANA name matches it."""
    spec = contract.schema("aggregate")["properties"]["timezone"]
    assert (spec["pattern"], spec["maxLength"]) == (TIMEZONE_PATTERN, TIMEZONE_MAX_LENGTH)
    pattern = re.compile(TIMEZONE_PATTERN)
    names = zoneinfo.available_timezones()
    assert len(names) > 400 and "America/Argentina/Buenos_Aires" in names
    assert [n for n in names if not pattern.fullmatch(n) or len(n) > TIMEZONE_MAX_LENGTH] == []


# --- property: whatever the data, nothing below k is published ------------------------

# Written out here, independently of the schema's x-visit-count marks, so that a count
# the schema forgot to mark still fails this test.
COUNT_PATHS = [
    ("footfall", "in"),
    ("footfall", "out"),
    ("visits", "count"),
    ("visits", "checkout"),
    ("visits", "groups"),
    ("wifi", "in_store_devices"),
    ("wifi", "passers_by"),
    ("dwell", "*", "visits"),
    ("transitions", "*", "visits"),
    ("traits", "*", "visits"),
    ("traits", "*", "scored"),
    ("segments", "*", "visits"),
    ("segments", "*", "scored"),
    ("segments", "*", "units"),
]


def published_counts(message):
    for path in COUNT_PATHS:
        nodes = [message]
        for part in path:
            nodes = [
                n
                for node in nodes
                if node is not None
                for n in (node if part == "*" else [node.get(part)])
            ]
        yield from ((path, value) for value in nodes if value is not None)


ZONES = ["entrance", "promo-table", "kids-corner", "checkout"]
visit_strategy = st.fixed_dictionaries(
    {
        "end": st.floats(0, 1799.9),
        "zones": st.dictionaries(st.sampled_from(ZONES), st.floats(0.5, 600), max_size=4),
        "sequence": st.lists(st.sampled_from(ZONES), max_size=6),
        "traits": st.dictionaries(
            st.sampled_from(["kids", "promo", "premium"]), st.floats(0, 1), max_size=3
        ),
        "segments": st.dictionaries(
            st.sampled_from(["browser", "mission"]), st.floats(0, 1), max_size=2
        ),
        "checkout": st.booleans(),
        "group": st.one_of(st.none(), st.integers(0, 5)),
    }
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    k=st.integers(2, 9),
    visits=st.lists(visit_strategy, max_size=30),
    crossings=st.lists(
        st.tuples(st.floats(0, 1799.9), st.sampled_from(["in", "out"])), max_size=40
    ),
    wifi=st.one_of(st.none(), st.tuples(st.integers(0, 30), st.integers(0, 60))),
)
def test_property_every_published_count_is_at_least_k(k, visits, crossings, wifi):
    db = open_database(":memory:")
    for visit in visits:
        visit_id = add_visit(
            db,
            W.start + visit["end"],
            zones=visit["zones"],
            sequence=visit["sequence"],
            traits=visit["traits"],
            segments=visit["segments"],
            checkout=visit["checkout"],
        )
        if visit["group"] is not None:
            db["visit_groups"].insert({"visit_id": visit_id, "group_id": f"g{visit['group']}"})
    for offset, direction in crossings:
        add_crossings(db, [W.start + offset], direction)
    if wifi is not None:
        add_wifi(db, W.start, 900, devices=wifi[0], passers=wifi[1])
    site = sync_site(window_s=900)
    for window in (W, Window(W.end, 900)):
        message = build_message(db, site, window, k)  # validates and re-checks itself
        assert message["k"] == k
        for path, value in published_counts(message):
            assert isinstance(value, int) and value >= k, (path, value)
        assert kanon.violations(message, k) == []
        # What is published is exact, not perturbed: compare with the raw rows.
        inside = [v for v in visits if window.start <= W.start + v["end"] < window.end]
        for zone in message["dwell"]:
            assert zone["visits"] == sum(1 for v in inside if v["zones"].get(zone["zone"], 0) > 0)
        for trait in message["traits"]:
            assert trait["scored"] == sum(1 for v in inside if trait["name"] in v["traits"])
        if message["visits"]["count"] is not None:
            assert message["visits"]["count"] == len(inside)
        else:
            assert len(inside) < k
        ins = sum(1 for t, d in crossings if d == "in" and window.start <= W.start + t < window.end)
        assert message["footfall"]["in"] == (ins if ins >= k else None)
        assert_nothing_small_by_subtraction(message, inside, k)
        json.dumps(message, allow_nan=False)


def assert_nothing_small_by_subtraction(message, inside, k):
    """No group of 1 to k-1 visits is the difference of two published counts, and the
    segments shown never give away the ones withheld (checked on the raw visits)."""
    total = message["visits"]["count"]
    for trait in message["traits"] + message["segments"]:
        if trait["visits"] is not None:
            assert not 0 < trait["scored"] - trait["visits"] < k, trait
    scored = sorted({trait["scored"] for trait in message["traits"]})
    assert all(b - a >= k for a, b in zip(scored, scored[1:], strict=False)), scored
    if total is None:
        return
    parts = [message["visits"]["checkout"], message["visits"]["groups"],
             *(m["scored"] for m in message["traits"] + message["segments"]),
             *(d["visits"] for d in message["dwell"]),
             *(t["visits"] for t in message["transitions"])]
    for part in parts:
        assert part is None or not 0 < total - part < k, (total, part)
    raw = {name for v in inside for name, p in v["segments"].items() if p >= 0.5}
    shown = {s["name"]: s["visits"] for s in message["segments"] if s["visits"] is not None}
    rest = total - sum(shown.values())
    assert rest >= k or (rest == 0 and set(shown) >= raw), (total, shown, raw)
    units = [s["units"] for s in message["segments"] if s.get("units") is not None]
    groups = message["visits"]["groups"]
    if groups is None:  # the units would add up to the withheld groups
        assert units == [], message["segments"]
    else:
        rest = groups - sum(units)
        assert rest >= 0 and (rest >= k or rest == 0), (groups, units)
        for segment in message["segments"]:
            if segment.get("units") is not None and segment["visits"] is not None:
                assert not 0 < segment["visits"] - segment["units"] < k, segment
        # The people who came with someone, in no segment whose visits and units are
        # both shown (no clear type, or withheld), are 0 or at least k.
        together = [s["visits"] - s["units"] for s in message["segments"]
                    if s.get("units") is not None and s["visits"] is not None]
        rest = total - groups - sum(together)
        assert rest == 0 or rest >= k, (total, groups, message["segments"])


def test_groups_are_buying_units_counted_once_under_the_k_rules(memory_db):
    """Issue 17: visits.groups counts shopping groups (a group of one included) in the
    window where the group's first member left; withheld below k, and when the people who
    came with someone (count - groups) are fewer than k."""
    db = memory_db
    ids = [add_visit(db, W.start + 100 + i) for i in range(12)]
    couples = [ids[0:2], ids[2:4], ids[4:6], ids[6:8]]          # 4 couples + 4 alone
    late = add_visit(db, W.end + 30)             # the last couple's partner, next window
    rows = [{"visit_id": v, "group_id": f"g{n}"} for n, pair in enumerate(couples) for v in pair]
    rows += [{"visit_id": v, "group_id": f"s{v}"} for v in ids[8:]]
    rows.append({"visit_id": late, "group_id": "g3"})
    db["visit_groups"].insert_all(rows)
    assert exact(db).groups == 8
    assert exact(db, Window(W.end, 900)).groups == 0     # g3 was counted in W already
    site = sync_site(window_s=900)
    shown = build_message(db, site, W, 3)
    assert shown["schema_version"] == "1.5"
    assert (shown["visits"]["count"], shown["visits"]["groups"]) == (12, 8)
    hidden = build_message(db, site, W, 5)               # 12 - 8 = 4 came with someone
    assert hidden["visits"]["count"] == 12 and hidden["visits"]["groups"] is None
    assert kanon.violations(hidden, 5) == []


def add_party(db, end_t, size, segments, group):
    """A shopping party of ``size`` who left together, each with ``segments``."""
    ids = [add_visit(db, end_t, segments=segments) for _ in range(size)]
    db["visit_groups"].insert_all({"visit_id": v, "group_id": group} for v in ids)


def test_segment_units_below_k_are_withheld_and_cannot_be_worked_out(memory_db):
    """Issue 17: segments[].units counts each shopping party once, under the k rules of
    the per-visit counts: a units count below k is withheld, and so is the smallest
    shown one when what the shown ones leave of visits.groups would give it back."""
    db = memory_db
    for n in range(3):                      # 3 families of three: 9 visits, 3 units
        add_party(db, W.start + 100 + n, 3, {"browser": 0.9, "mission": 0.05, "quick": 0.05},
                  f"fam{n}")
    for n in range(4):                      # 4 alone on a mission
        add_party(db, W.start + 200 + n, 1, {"browser": 0.05, "mission": 0.9, "quick": 0.05},
                  f"solo{n}")
    add_party(db, W.start + 300, 2, {"browser": 0.05, "mission": 0.05, "quick": 0.9}, "pair")
    agg = exact(db)
    assert (agg.visit_count, agg.groups) == (15, 8)
    assert {s.name: (s.visits, s.units) for s in agg.segments} == {
        "browser": (9, 3), "mission": (4, 4), "quick": (2, 1)}
    message = build_message(db, sync_site(window_s=900), W, 3)
    units = {s["name"]: s.get("units") for s in message["segments"]}
    # quick (1) is below k; then 8 - 3 - 4 = 1 would give it back: browser goes too
    assert units == {"browser": None, "mission": 4, "quick": None}
    assert message["visits"]["groups"] == 8
    assert kanon.violations(message, 3) == []
    for name, value, problem in (("quick", 1, "fewer than k"),
                                 ("browser", 3, "leaves 1, fewer than k")):
        tampered = copy.deepcopy(message)
        next(s for s in tampered["segments"] if s["name"] == name)["units"] = value
        assert any(problem in p for p in kanon.violations(tampered, 3)), name


def test_segment_units_are_withheld_with_the_groups_they_add_up_to(memory_db):
    """When visits.groups is withheld (here: only 2 of 14 people came with someone), the
    units of the segments would add back up to it: they are withheld with it."""
    db = memory_db
    for n in range(6):
        add_party(db, W.start + 100 + n, 1, {"browser": 0.9, "mission": 0.1}, f"b{n}")
        add_party(db, W.start + 200 + n, 1, {"browser": 0.1, "mission": 0.9}, f"m{n}")
    add_party(db, W.start + 300, 2, {"browser": 0.4, "mission": 0.4, "quick": 0.2}, "pair")
    assert {s.name: s.units for s in exact(db).segments} == {
        "browser": 6, "mission": 6, "quick": 0}
    message = build_message(db, sync_site(window_s=900), W, 3)
    assert message["visits"]["count"] == 14 and message["visits"]["groups"] is None
    assert [s.get("units") for s in message["segments"]] == [None, None]
    # per visit, mission's 6 are shown (browser is withheld as the pair leave 2 in none)
    assert {s["name"]: s["visits"] for s in message["segments"]} == {"browser": None,
                                                                    "mission": 6}
    tampered = copy.deepcopy(message)
    tampered["segments"][0]["units"] = 6
    assert any("total is withheld" in p for p in kanon.violations(tampered, 3))


def test_units_leave_no_small_group_of_companions_of_no_clear_type(memory_db):
    """Regression (privacy review): each segment's units were withheld when its visits -
    units was 1 to k-1, but not the rest: 32 visits in 25 units, browser 14 in 8 and
    mission 10 in 10 left (32 - 25) - 6 - 0 = 1 person of no clear type (8 visits, 7
    units) who came with someone. The browser's units are now withheld too."""
    db = memory_db
    for n in range(3):
        add_party(db, W.start + 100 + n, 3, {"browser": 0.9, "mission": 0.1}, f"fam{n}")
    for n in range(5):
        add_party(db, W.start + 200 + n, 1, {"browser": 0.9, "mission": 0.1}, f"b{n}")
    for n in range(10):
        add_party(db, W.start + 300 + n, 1, {"browser": 0.1, "mission": 0.9}, f"m{n}")
    add_party(db, W.start + 400, 2, {"browser": 0.45, "mission": 0.45}, "couple")
    for n in range(6):
        add_party(db, W.start + 500 + n, 1, {"browser": 0.45, "mission": 0.45}, f"x{n}")
    agg = exact(db)
    assert (agg.visit_count, agg.groups) == (32, 25)
    assert {s.name: (s.visits, s.units) for s in agg.segments} == {
        "browser": (14, 8), "mission": (10, 10)}
    message = build_message(db, sync_site(window_s=900), W, 5)
    assert (message["visits"]["count"], message["visits"]["groups"]) == (32, 25)
    assert {s["name"]: (s["visits"], s.get("units")) for s in message["segments"]} == {
        "browser": (14, None), "mission": (10, 10)}
    assert kanon.violations(message, 5) == []
    tampered = copy.deepcopy(message)
    tampered["segments"][0]["units"] = 8
    assert any("visits - units: the total minus the published differences leaves 1" in p
               for p in kanon.violations(tampered, 5))


def test_a_window_older_than_the_raw_positions_kept_has_no_occupancy_not_zero(memory_db):
    """Reviewer's report: after a sync outage of over a day, the windows it sent late had
    occupancy {mean 0, max 0} (their raw positions purged after raw_trajectory_hours)
    beside their real visit counts: a busy hour read as an empty store. Occupancy and
    queue lengths of such a window are null ("not known"); its visits are still sent."""
    from edge.retention import purge

    db = memory_db
    site = sync_site(window_s=900)
    for track in range(4):
        add_track(db, track, [W.start + 10 * track + s for s in range(0, 300, 5)])
    for n in range(5):
        add_visit(db, W.start + 400 + n)
    on_time = build_message(db, site, W, 3, now=W.end + site.sync.settle_s)
    assert on_time["occupancy"]["max"] == 4 and on_time["visits"]["count"] == 5
    # Within the raw retention the window is computed from its positions, as on time.
    assert build_message(db, site, W, 3, now=W.end + 20 * 3600) == on_time
    late = W.end + 30 * 3600  # the sync was down for a day and a bit
    assert purge(db, site.storage, late, timezone=site.site.timezone,
                 margin_s=site.service.purge_interval_s).deleted[
        "track_points"] > 0
    sent_late = build_message(db, site, W, 3, now=late)
    assert sent_late["occupancy"] is None
    assert sent_late["visits"]["count"] == 5


def test_a_window_straddling_a_spec_change_names_both_versions_and_cells_by_name():
    """docs/mqtt.md, spec_versions: a segment renamed mid-window (explorer -> browser,
    1.0.0 -> 1.1.0) appears under both names, each counting only its own version's
    visits; a name both versions share adds both."""
    db = open_database(":memory:")
    for i in range(6):
        add_visit(db, W.start + 10 + i, segments={"explorer": 0.9, "quick-look": 0.1},
                  spec_version="1.0.0")
    for i in range(7):
        add_visit(db, W.start + 300 + i, segments={"browser": 0.9, "quick-look": 0.1},
                  spec_version="1.1.0")
    message = build_message(db, sync_site(), W, 5)
    assert message["spec_versions"] == ["1.0.0", "1.1.0"]
    # each name is scored by the visits of the versions that have it (counts may be withheld)
    scored = {c["name"]: c["scored"] for c in message["segments"]}
    assert scored == {"explorer": 6, "browser": 7, "quick-look": 13}


def test_traits_scored_by_different_spec_versions_give_no_visits_away(memory_db):
    """A trait one spec version of the window has and the other lacks scores only that
    version's visits: "wanderer scored 20, premium-interest 18" said that 2 visits were
    classified under the version without it."""
    for i in range(20):
        traits = {"wanderer": 0.9 if i % 2 else 0.1}
        if i >= 2:
            traits["premium-interest"] = 0.8 if i % 3 else 0.2
        add_visit(memory_db, W.start + 100 + i, duration_s=120, traits=traits)
    message = kanon.suppress(full_message(aggregate_window(
        memory_db, W, store=STORE, entrance_lines=None, has_cameras=False)), 5)
    assert [(t["name"], t["scored"]) for t in message["traits"]] == [("wanderer", 20)]
    assert kanon.violations(message, 5) == []
