"""Segment statistics in the daily aggregate (issue 16): the window that closes a UTC day
carries the E-step statistics of the spec in force over that day's visits, withheld
under the k rules, checked by the publish path, and small enough to send."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from edge.runtime.schema import open_database
from edge.visits.scenarios import scenario_site
from edge.visits.segment_stats import (
    SegmentStatistics,
    compile_segments,
    scaled_features,
    sufficient_statistics,
)
from edge.visits.spec import default_spec_path, read_spec
from sync import contract, kanon
from sync.aggregate import Window
from sync.day_stats import day_features
from sync.errors import PrivacyError
from sync.outbox import Outbox
from sync.producer import build_message, produce, tighten
from sync.settings import SyncSettings
from sync.sizing import bytes_per_day
from tests.refit_support import (
    DAY0,
    LAST,
    bunch_visits,
    day_visits,
    publish_day,
    write_visits,
)


@pytest.fixture(scope="module")
def visits():
    return day_visits(2, 0)


@pytest.fixture(scope="module")
def spec():
    return read_spec(default_spec_path())[0]


def test_the_window_closing_the_day_carries_the_days_statistics(visits, spec):
    db = open_database(":memory:")
    write_visits(db, "scenario-store", visits)
    bunch_visits(db, 10)  # 240 visits in 24 windows of 10: every count published at k=5
    site = scenario_site()
    publish_day(db, site, 5, LAST)
    message = build_message(db, site, LAST, 5)
    assert message["schema_version"] == "1.5"
    section = message["segment_stats"]
    assert section["day"] == "2025-12-05" and section["spec_version"] == spec.spec_version
    assert section["visits"] == len(visits)
    # the same numbers as the statistics of those visits computed in one place
    names = list(spec.segments.features)
    x = np.array([[v.measured.features[n] for n in names] for v in visits])
    expected = sufficient_statistics(spec, scaled_features(spec, names, x), k=5)
    assert not expected.withheld()
    got = SegmentStatistics.from_section(section)
    for name, component in expected.components.items():
        mine = got.components[name]
        assert mine is not None and component is not None
        assert mine.membership == pytest.approx(component.membership, rel=1e-12)
        assert mine.weighted_sum == pytest.approx(component.weighted_sum, rel=1e-9, abs=1e-9)
        assert mine.weighted_sumsq == pytest.approx(component.weighted_sumsq, rel=1e-9)
    # only that window: the others of the day have none
    assert "segment_stats" not in build_message(db, site, Window(LAST.start - 900, 900), 5)
    # a visit whose features lack a segment feature is skipped, not a crash; the day's
    # statistics are withheld then: 239 against published windows of 240 would say
    # that one visit was left out
    db.execute("update visits set features = '{}' where visit_id = ?", [visits[0].visit_id])
    assert day_features(db, DAY0, names)[0].shape == (len(visits) - 1, len(names))
    section = build_message(db, site, LAST, 5)["segment_stats"]
    assert section["visits"] is None
    assert all(c["membership"] is None for c in section["components"])


def test_a_small_store_day_withholds_components_by_k(visits):
    db = open_database(":memory:")
    write_visits(db, "scenario-store", visits[::8])  # 30 visits of every behaviour
    bunch_visits(db, 6)
    k = 5
    publish_day(db, scenario_site(), k, LAST)
    message = build_message(db, scenario_site(), LAST, k)
    section = message["segment_stats"]
    withheld = [c for c in section["components"] if c["membership"] is None]
    shown = [c for c in section["components"] if c["membership"] is not None]
    assert withheld and shown, "30 visits over 4 segments at k=5: some shown, some not"
    assert all(c["sum"] is None and c["sumsq"] is None for c in withheld)
    assert all(c["membership"] >= k for c in shown)
    assert section["visits"] - sum(c["membership"] for c in shown) >= k
    assert message["suppressed"]["segment_stats"] >= len(withheld)
    contract.validate("aggregate", message)
    assert kanon.violations(message, k) == []

    # the publish path's independent check catches a membership below k, or one that
    # can be worked out by subtraction
    leaked = copy.deepcopy(message)
    leaked["segment_stats"]["components"][0]["membership"] = 2.5
    assert any("fewer than k" in p for p in kanon.violations(leaked, k))
    with pytest.raises(PrivacyError):
        kanon.assert_k_anonymous(leaked, k)
    # publishing one withheld component (even at >= k) gives the other away: the rest
    # of the visits would be below k
    rest = section["visits"] - sum(c["membership"] for c in shown)
    assert len(withheld) == 2 and rest - 3 >= k
    exposed = copy.deepcopy(message)
    item = next(c for c in exposed["segment_stats"]["components"] if c["membership"] is None)
    item["membership"] = rest - 3
    item["sum"] = item["sumsq"] = [0.0] * len(section["features"])
    assert any("leaves 3" in p for p in kanon.violations(exposed, k))


def test_published_components_stem_from_at_least_k_visits(visits, spec):
    """Memberships are at most 1, so a component published at k (summed membership >= k)
    has at least k visits behind its sums by Kish's effective number (sum r)**2 / sum r**2,
    however they are spread: checked on small store-days at several k."""
    names = list(spec.segments.features)
    x = np.array([[v.measured.features[n] for n in names] for v in visits])
    z = scaled_features(spec, names, x)
    compiled = compile_segments(spec, names)
    checked = 0
    for k in (2, 3, 5, 10):
        for part in range(0, len(z), 40):
            zs = z[part:part + 40]
            r = compiled.posterior(zs, temperature=1.0)
            effective = r.sum(axis=0) ** 2 / np.maximum((r * r).sum(axis=0), 1e-300)
            stats = sufficient_statistics(spec, zs, k=k)
            for j, c in enumerate(spec.segments.components):
                if stats.components[c.name] is not None:
                    assert effective[j] >= k
                    checked += 1
    assert checked >= 10


def test_payload_per_store_day_stays_under_a_megabyte(visits, capsys):
    db = open_database(":memory:")
    write_visits(db, "scenario-store", visits)
    bunch_visits(db, 10)
    size = bytes_per_day(db, scenario_site(), DAY0, window_s=900, k=5)
    publish_day(db, scenario_site(), 5, LAST)
    last = build_message(db, scenario_site(), LAST, 5)
    section = len(contract.canonical_json(last["segment_stats"]))
    with capsys.disabled():
        print(f"\nstore-day: {size.windows} windows, {size.wire_bytes} bytes on the wire, "
              f"largest {size.largest_payload_bytes}; segment_stats {section} bytes")
    assert size.windows == 96 and size.wire_bytes <= 1_000_000
    assert 500 < section < 5_000


def test_the_days_statistics_give_no_withheld_window_back(visits):
    """Regression (privacy review, repro 03): the day's ``segment_stats.visits`` counted
    every visit of the day, so it minus the published ``visits.count`` of the day's
    windows gave back the visits of a window withheld below k (10 + 10 published, 3
    withheld: 23 - 20 = 3). The statistics now sum the published windows' visits only,
    and a rest (a visit stored after its window was sent) withholds them."""
    db = open_database(":memory:")
    write_visits(db, "scenario-store", visits[:20])
    bunch_visits(db, 10)  # windows 00:00 and 00:15: 10 visits each
    write_visits(db, "scenario-store", visits[20:23])
    for i, visit in enumerate(visits[20:23]):  # and 3 in the window of 00:30
        db.execute("update visits set start_t = ?, end_t = ? where visit_id = ?",
                   [DAY0 + 1800 + i, DAY0 + 1810 + i, visit.visit_id])
    site, k = scenario_site(), 5
    publish_day(db, site, k, LAST)
    counts = [json.loads(p)["visits"]["count"] for (p,) in db.execute(
        "select payload from sync_outbox order by window_start limit 3")]
    assert counts == [10, 10, None]
    message = build_message(db, site, LAST, k)
    section = message["segment_stats"]
    assert section["visits"] == 20  # 20 - (10 + 10): nothing of the withheld 3
    assert kanon.violations(message, k) == []

    # one visit stored late in the first window, after its message went out: the day
    # would count 21 against the published 20, a group of 1
    write_visits(db, "scenario-store", visits[23:24])
    db.execute("update visits set start_t = ?, end_t = ? where visit_id = ?",
               [DAY0 + 400, DAY0 + 500, visits[23].visit_id])
    late = build_message(db, site, LAST, k)
    assert late["segment_stats"]["visits"] is None
    assert all(c["membership"] is None and c["sum"] is None
               for c in late["segment_stats"]["components"])
    assert late["suppressed"]["segment_stats"] == len(late["segment_stats"]["components"])


def test_a_change_of_window_length_gives_no_withheld_window_back(visits):
    """Regression (privacy review): the day's windows were taken at the current length.
    After a downlink set sync.window_s from 900 to 3600 at 01:00, the quarter of 00:00 (6
    visits, published) was read as the hour 00:00-01:00: the statistics summed its 20
    visits, the withheld quarter of 00:45 (2) among them, and 20 minus the published
    6 + 6 + 6 gave it back. The day now follows the windows actually published."""
    db = open_database(":memory:")
    write_visits(db, "scenario-store", visits[:20])
    ids = [row[0] for row in db.execute("select visit_id from visits order by end_t, visit_id")]
    for i, visit_id in enumerate(ids):  # quarters of 00:00-01:00: 6, 6, 6 and 2 visits
        end = DAY0 + 900 * min(i // 6, 3) + 10 + i
        db.execute("update visits set start_t = ?, end_t = ? where visit_id = ?",
                   [end - 60, end, visit_id])
    site, k = scenario_site(), 5
    outbox = Outbox(db)
    produce(db, site, outbox, SyncSettings(k, 900, None, None), DAY0 + 3600 + site.sync.settle_s)
    produce(db, site, outbox, SyncSettings(k, 3600, None, None),
            DAY0 + 86_400 + site.sync.settle_s)
    sent = [(seconds, json.loads(payload)) for seconds, payload in db.execute(
        "select window_s, payload from sync_outbox order by window_start")]
    assert [(seconds, m["visits"]["count"]) for seconds, m in sent[:5]] == [
        (900, 6), (900, 6), (900, 6), (900, None), (3600, None)]
    section = sent[-1][1]["segment_stats"]
    assert section["visits"] == 18  # 6 + 6 + 6: nothing of the withheld 2
    shown = sum(m["visits"]["count"] or 0 for _, m in sent)
    assert section["visits"] - shown == 0


def outdoor_spec(path) -> dict:
    """The default spec with a segment feature for a tag the scenario store lacks."""
    import yaml

    doc = yaml.safe_load(default_spec_path().read_text())
    doc["spec_version"] = "1.2.0"
    doc["tags"] = [*doc["tags"], "outdoor"]
    segments = doc["segments"]
    segments["features"].append("share_tag_outdoor")
    segments["center"].append(0.05)
    segments["scale"].append(0.1)
    for component in segments["components"]:
        component["mean"].append(0.0)
        component["var"].append(1.0)
    path.write_text(yaml.safe_dump(doc))
    return doc


def test_a_segment_feature_of_a_tag_the_store_lacks_reads_zero(visits, tmp_path):
    """Regression: the classifier reads a feature the site lacks (a tag no zone
    carries) as 0, but the day's statistics skipped every visit without it, published
    null components, and so blocked the fleet's refit. Both now read it as 0."""
    outdoor_spec(tmp_path / "spec.yaml")
    site = scenario_site()
    site = site.model_copy(update={"visits": site.visits.model_copy(
        update={"segment_spec": str(tmp_path / "spec.yaml")})})
    db = open_database(":memory:")
    write_visits(db, "scenario-store", visits)
    bunch_visits(db, 10)
    publish_day(db, site, 5, LAST)
    section = build_message(db, site, LAST, 5)["segment_stats"]
    assert section["spec_version"] == "1.2.0" and section["visits"] == len(visits)
    assert all(c["membership"] is not None for c in section["components"])
    spec = read_spec(tmp_path / "spec.yaml")[0]
    names = list(spec.segments.features)
    x = np.array([[v.measured.features.get(n, 0.0) for n in names] for v in visits])
    expected = sufficient_statistics(spec, scaled_features(spec, names, x), k=5)
    got = SegmentStatistics.from_section(section)
    for name, component in expected.components.items():
        assert component is not None
        assert got.components[name].membership == pytest.approx(component.membership,
                                                                rel=1e-12)
    # a damaged row (a feature the site does measure is missing) is still skipped
    db.execute("update visits set features = '{}' where visit_id = ?", [visits[0].visit_id])
    assert day_features(db, DAY0, names, absent=["share_tag_outdoor"])[1] == 1


def test_check_spec_warns_about_tags_the_site_lacks(tmp_path):
    from click.testing import CliRunner

    from edge.cli import cli
    from edge.visits.scenarios import SCENARIO_SITE_YAML

    outdoor_spec(tmp_path / "spec.yaml")
    (tmp_path / "site.yaml").write_text(SCENARIO_SITE_YAML)
    result = CliRunner().invoke(cli, ["visits", "check-spec", str(tmp_path / "spec.yaml"),
                                      "--site", str(tmp_path / "site.yaml")])
    assert result.exit_code == 0, result.output
    assert ("Warning: spec 1.2.0 uses features this site does not measure (a tag no zone "
            "carries): share_tag_outdoor; they read 0 for every visit") in result.output


def quarters_of(sizes: list[int]):
    """A database whose first quarters of DAY0 hold ``sizes`` visits, and the site."""
    db = open_database(":memory:")
    write_visits(db, "scenario-store", day_visits(2, 0)[:sum(sizes)])
    ids = [row[0] for row in db.execute("select visit_id from visits order by end_t, visit_id")]
    bounds = np.cumsum(sizes)
    for i, visit_id in enumerate(ids):
        end = DAY0 + 900 * int(np.searchsorted(bounds, i, side="right")) + 10 + i
        db.execute("update visits set start_t = ?, end_t = ? where visit_id = ?",
                   [end - 60, end, visit_id])
    return db, scenario_site()


def sent_as_published(db, k: int) -> list[dict]:
    """Every queued aggregate as the publish path sends it at ``k``, in order (each one
    kept as sent before the next is checked, as sync.publisher does)."""
    sent = []
    outbox = Outbox(db)
    for row_id, payload in db.execute(
            "select id, payload from sync_outbox order by window_start").fetchall():
        message = json.loads(payload)
        if message["k"] < k:
            message = tighten(db, message, k)
            outbox.replace_payload(row_id, contract.canonical_json(message))
        kanon.assert_k_anonymous(message, k)
        sent.append(message)
    return sent


def assert_day_gives_no_window_away(sent: list[dict], k: int) -> None:
    section = sent[-1]["segment_stats"]
    shown = sum(m["visits"]["count"] or 0 for m in sent)
    assert section["visits"] is None or not 0 < section["visits"] - shown < k, (
        section["visits"], shown)


@pytest.mark.parametrize("day_stored_at", [5, 7], ids=["day-stored-before", "day-stored-after"])
def test_a_raised_k_gives_no_withheld_window_back_by_the_day(day_stored_at):
    """Reviewer's report: quarters of 6, 10 and 10 visits stored at k=5 wait in the
    outbox when head office raises k to 7. They go out with the 6 withheld, but the
    day's segment_stats (stored then, or produced after at k=7) counted it as published:
    26 - 20 = 6 visits, a group below k, came back by subtraction."""
    db, site = quarters_of([6, 10, 10])
    outbox = Outbox(db)
    produce(db, site, outbox, SyncSettings(5, 900, None, None), DAY0 + 2700 + site.sync.settle_s)
    produce(db, site, outbox, SyncSettings(day_stored_at, 900, None, None),
            DAY0 + 86_400 + site.sync.settle_s)
    sent = sent_as_published(db, 7)
    assert [m["visits"]["count"] for m in sent[:3]] == [None, 10, 10]
    assert "segment_stats" in sent[-1]
    assert_day_gives_no_window_away(sent, 7)
