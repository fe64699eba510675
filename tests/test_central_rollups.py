"""Migration 3's roll-ups (issue 17, the central side): buying units, segment units,
transactions and conversion, and queue counts per store-day and region-day; migration
4's region columns.

The windows are real aggregates: scenario visits and queueing visits measured and
classified by the visits code, shopping groups and till periods, in real box
databases, published by the box's own ``build_message`` at k. Every roll-up cell is
checked against sums computed here from the published payloads, nulls left out."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict

import numpy as np
import psycopg
import pytest

from edge.pos.store import TillPeriod, store_periods
from edge.runtime.schema import open_database
from edge.visits.analysis import VisitAnalyzer
from edge.visits.scenarios import queue_scenarios, scenario_site
from edge.visits.store import insert_visits
from sync import contract
from sync.aggregate import Window
from sync.central.schema import MIGRATIONS, day_of, ensure_partition, migrate
from sync.central.store import screen
from sync.producer import build_message
from tests.refit_support import DAY0, DAY_S, day_visits
from tests.support.central_support import (  # noqa: F401 (fixture)
    central_db_fixture,
    open_central_store,
    query,
)

pytestmark = pytest.mark.system

K = 3
WINDOW_S = 3600
DAY = "2025-12-05"
STORES = ("store-00", "store-01", "store-02")
REGIONS = {"store-00": "north", "store-01": "north", "store-02": "south"}
QUEUE_HOURS = {10: 7, 11: 6, 15: 3}  # queueing visits per hour: 3 < k is withheld
GROUP_SIZES = (1, 2, 1, 1, 3, 2, 1)
REPEATS = 2  # 240 scenario visits a store-day, about 12 an hour


def published_sum(values) -> int | None:
    """What a roll-up cell must be: the sum of the published cells, null if none is."""
    shown = [v for v in values if v is not None]
    return sum(shown) if shown else None


def store_site(i: int):
    site = scenario_site()
    return site.model_copy(update={"site": site.site.model_copy(update={"id": STORES[i]})})


def fill_box(db, i: int) -> None:
    """A day of store ``i``: scenario visits, queueing visits (with their positions,
    for the queue length), shopping groups and hourly till periods."""
    site = store_site(i)
    analyzer = VisitAnalyzer(site)
    visits = day_visits(REPEATS, seed=i)
    points = []
    for j, scenario in enumerate(queue_scenarios(sum(QUEUE_HOURS.values()), seed=i)):
        hour = [h for h, n in QUEUE_HOURS.items() for _ in range(n)][j]
        t = scenario.t + DAY0 + hour * 3600 + 60 * (j % 7)
        outcome = analyzer.analyze_track("view001", 1, scenario.track_id, t, scenario.xy)
        visits.extend(outcome.visits)
        points += [{"run_id": 1, "camera_id": "view001", "track_id": scenario.track_id,
                    "frame": f, "t": float(ti), "x": float(x), "y": float(y), "left": 0.0,
                    "top": 0.0, "width": 1.0, "height": 1.0, "confidence": 0.9}
                   for f, (ti, (x, y)) in enumerate(zip(t, scenario.xy, strict=True))]
    ordered = sorted(visits, key=lambda v: v.measured.visit.end_t)
    groups, n = [], 0
    while ordered:
        size = GROUP_SIZES[n % len(GROUP_SIZES)]
        groups += [{"visit_id": v.visit_id, "group_id": f"g{n}"} for v in ordered[:size]]
        ordered, n = ordered[size:], n + 1
    rng = np.random.default_rng(100 + i)
    periods = [TillPeriod(DAY0 + h * 3600, 3600, int(rng.integers(1, 12))) for h in range(24)]
    with db.atomic():
        db["runs"].insert({"id": 1, "camera_id": "view001", "source": "test", "model": "none",
                           "started_at": DAY0, "ended_at": DAY0 + DAY_S, "frames": 0,
                           "status": "finished"})
        db["track_points"].insert_all(points)
        insert_visits(db, site.site.id, visits)
        db["visit_groups"].insert_all(groups)
    store_periods(db, periods, source="push", now=DAY0 + DAY_S)


@pytest.fixture(name="messages", scope="module")
def messages_fixture() -> list[dict]:
    """Every store's published hourly aggregates of the day."""
    out = []
    for i in range(len(STORES)):
        db = open_database(":memory:")
        fill_box(db, i)
        out += [build_message(db, store_site(i), Window(DAY0 + h * WINDOW_S, WINDOW_S), K)
                for h in range(DAY_S // WINDOW_S)]
        db.close()
    return out


def rows_of(messages):
    return [screen(contract.Topics("rollup-test", m["store"])(contract.AGGREGATES),
                   contract.canonical_json(m)) for m in messages]


def add_regions(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.cursor().executemany("INSERT INTO store_regions (store, region) VALUES (%s, %s)",
                                  list(REGIONS.items()))


def expected_store_days(messages) -> dict:
    """The new store-day columns, summed here from the published payloads."""
    cells: dict = defaultdict(lambda: defaultdict(list))
    for m in messages:
        c = cells[m["store"]]
        visits, queue = m["visits"], m.get("queue") or {}
        c["groups"].append(visits.get("groups"))
        if visits.get("groups") is not None:
            c["groups_visits"].append(visits["count"])
        c["queue_waits"].append(queue.get("waits"))
        if queue.get("waits") is not None:
            c["queue_visits"].append(visits["count"])
        if queue.get("length_mean") is not None:
            c["length"].append((m["window"]["seconds"], queue["length_mean"]))
        c["queue_length_max"].append(queue.get("length_max"))
        for period in m.get("conversion", []):
            c["transactions"].append(period["transactions"])
            if period["transactions"] is not None and period["visits"] is not None:
                c["paired"].append((period["transactions"], period["visits"]))
    out = {}
    for store, c in cells.items():
        paired_t = sum(t for t, _ in c["paired"])
        paired_v = sum(v for _, v in c["paired"])
        seconds = sum(s for s, _ in c["length"])
        out[store] = {
            "groups": published_sum(c["groups"]),
            "groups_windows": sum(v is not None for v in c["groups"]),
            "groups_visits": published_sum(c["groups_visits"]),
            "transactions": published_sum(c["transactions"]),
            "transaction_periods": sum(v is not None for v in c["transactions"]),
            "conversion_transactions": paired_t if c["paired"] else None,
            "conversion_visits": paired_v if c["paired"] else None,
            "conversion_rate": paired_t / paired_v if c["paired"] else None,
            "conversion_periods": len(c["paired"]),
            "queue_waits": published_sum(c["queue_waits"]),
            "queue_windows": sum(v is not None for v in c["queue_waits"]),
            "queue_visits": published_sum(c["queue_visits"]),
            "queue_length_mean": (sum(s * v for s, v in c["length"]) / seconds
                                  if seconds else None),
            "queue_length_s": seconds or None,
            "queue_length_max": max((v for v in c["queue_length_max"] if v is not None),
                                    default=None),
        }
    return out


NEW_DAY_COLUMNS = list(expected_store_days([{"store": "x", "visits": {}, "window": {}}])["x"])


def close(a, b) -> bool:
    return a == b or (a is not None and b is not None and abs(float(a) - float(b)) < 1e-9)


def test_the_data_has_published_and_withheld_cells_of_every_new_figure(messages):
    """Without both, "nulls stay out" would be checked on nothing."""
    def both(values):
        return any(v is None for v in values) and any(v is not None for v in values)

    assert both([m["visits"].get("groups") for m in messages])
    assert both([c.get("units") for m in messages for c in m["segments"]])
    assert both([(m.get("queue") or {}).get("waits") for m in messages if m.get("queue")])
    periods = [p for m in messages for p in m.get("conversion", [])]
    # A till period with fewer than k transactions is left out of its window whole.
    assert 0 < len(periods) < 24 * len(STORES)
    assert both([p["visits"] for p in periods if p["transactions"] is not None])


def test_store_and_region_day_new_columns_are_sums_of_published_cells(central_db, messages):
    with open_central_store(central_db, worker="test") as store:
        assert store.write(rows_of(messages)).stored == len(messages)
    add_regions(central_db)
    expected = expected_store_days(messages)
    # Periods with withheld visits keep their transactions out of the rate.
    assert any(e["conversion_transactions"] < e["transactions"] for e in expected.values())

    got = query(central_db, f"SELECT store, day::text, {', '.join(NEW_DAY_COLUMNS)} "
                            "FROM rollup_store_day ORDER BY store")
    assert [(row[0], row[1]) for row in got] == [(s, DAY) for s in STORES]
    for store, _, *values in got:
        for column, value in zip(NEW_DAY_COLUMNS, values, strict=True):
            assert close(value, expected[store][column]), (store, column, value)

    regions = query(central_db, f"SELECT region, {', '.join(NEW_DAY_COLUMNS)} "
                                "FROM rollup_region_day ORDER BY region")
    assert [row[0] for row in regions] == ["north", "south"]
    for region, *values in regions:
        days = [expected[s] for s in STORES if REGIONS[s] == region]
        got_region = dict(zip(NEW_DAY_COLUMNS, values, strict=True))
        for column in NEW_DAY_COLUMNS:
            parts = [d[column] for d in days]
            if column == "conversion_rate":
                t = published_sum([d["conversion_transactions"] for d in days])
                v = published_sum([d["conversion_visits"] for d in days])
                want = t / v if v else None
            elif column == "queue_length_mean":
                s = published_sum([d["queue_length_s"] for d in days])
                want = (sum(d["queue_length_mean"] * d["queue_length_s"] for d in days
                            if d["queue_length_s"]) / s) if s else None
            elif column == "queue_length_max":
                want = max((p for p in parts if p is not None), default=None)
            else:
                want = published_sum(parts)
            assert close(got_region[column], want), (region, column, got_region[column], want)


def test_segment_units_per_store_day_and_region_day(central_db, messages):
    with open_central_store(central_db, worker="test") as store:
        store.write(rows_of(messages))
    add_regions(central_db)
    units: dict = defaultdict(list)
    units_groups: dict = defaultdict(list)
    for m in messages:
        for cell in m["segments"]:
            units[(m["store"], cell["name"])].append(cell.get("units"))
            if cell.get("units") is not None:
                units_groups[(m["store"], cell["name"])].append(m["visits"]["groups"])
    rows = query(central_db, "SELECT store, kind, name, units, units_groups "
                             "FROM rollup_store_day_mix")
    assert {kind for _, kind, *_ in rows} == {"trait", "segment"}
    for store, kind, name, got_units, got_groups in rows:
        if kind == "trait":
            assert (got_units, got_groups) == (None, None)
            continue
        assert got_units == published_sum(units[(store, name)]), (store, name)
        assert got_groups == published_sum(units_groups[(store, name)]), (store, name)
    assert any(u is not None for *_, u, _ in rows)
    for region, name, got_units, got_groups in query(
        central_db, "SELECT region, name, units, units_groups FROM rollup_region_day_mix "
                    "WHERE kind = 'segment'"
    ):
        stores = [s for s in STORES if REGIONS[s] == region]
        assert got_units == published_sum(
            [published_sum(units[(s, name)]) for s in stores]), (region, name)
        assert got_groups == published_sum(
            [published_sum(units_groups[(s, name)]) for s in stores]), (region, name)


def test_region_views_have_every_column_of_the_store_views_they_sum(central_db, messages):
    """docs/central.md: a region view has its store view's columns, summed over the
    region's stores (a maximum stays a maximum)."""
    messages = json.loads(json.dumps(messages))
    for n, m in enumerate(messages):  # peaks that differ by store and hour
        peak = K + 2 * STORES.index(m["store"]) + n % 3
        m["occupancy"] = {"mean": 2.5, "max": peak, "sample_s": 1.0}
    with open_central_store(central_db, worker="test") as store:
        assert store.write(rows_of(messages)).stored == len(messages)
    add_regions(central_db)
    with psycopg.connect(central_db, autocommit=True) as conn:
        for suffix in ("", "_dwell", "_mix"):
            store_columns = set(view_columns(conn, f"rollup_store_day{suffix}")) - {"store"}
            region_columns = set(view_columns(conn, f"rollup_region_day{suffix}"))
            assert store_columns <= region_columns, (suffix, store_columns - region_columns)
    added = ("windows", "footfall_in_windows", "visits_windows", "occupancy_max")
    per_store = {row[0]: row[1:] for row in query(
        central_db, f"SELECT store, {', '.join(added)} FROM rollup_store_day")}
    for region, *values in query(
        central_db, f"SELECT region, {', '.join(added)} FROM rollup_region_day"
    ):
        stores = [per_store[s] for s in STORES if REGIONS[s] == region]
        assert values[:3] == [sum(s[i] for s in stores) for i in range(3)], region
        assert values[3] == max(s[3] for s in stores), region
    assert len({s[3] for s in per_store.values()}) > 1  # the stores' peaks differ
    for view, key in (("dwell", "zone"), ("mix", "kind, name")):
        store_windows = query(
            central_db, f"SELECT r.region, {key}, sum(windows) FROM rollup_store_day_{view} "
            f"JOIN store_regions r USING (store) GROUP BY 1, {key} ORDER BY 1, {key}")
        region_windows = query(
            central_db, f"SELECT region, {key}, windows FROM rollup_region_day_{view} "
            f"ORDER BY 1, {key}")
        assert region_windows == store_windows, view


def test_every_new_count_of_every_rollup_is_null_or_at_least_k(central_db, messages):
    with open_central_store(central_db, worker="test") as store:
        store.write(rows_of(messages))
    add_regions(central_db)
    counts = ("groups, groups_visits, transactions, conversion_transactions, conversion_visits, "
              "queue_waits, queue_visits")
    for view, columns in (
        ("rollup_store_day", counts),
        ("rollup_region_day", counts),
        ("rollup_store_day_mix", "units, units_groups"),
        ("rollup_region_day_mix", "units, units_groups"),
    ):
        rows = query(central_db, f"SELECT {columns} FROM {view}")
        assert rows, view
        for row in rows:
            assert all(value is None or value >= K for value in row), (view, row)


def insert_as_version_2(dsn: str, messages) -> None:
    """Store the windows as a version-2 worker did (the same ``windows`` table)."""
    rows = rows_of(messages)
    with psycopg.connect(dsn, autocommit=True) as conn:
        ensure_partition(conn, day_of(rows[0].window_start))
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO windows (store, window_id, window_start, window_s, k, "
                "schema_version, payload, payload_sha256, worker) "
                "VALUES (%s, %s, to_timestamp(%s), %s, %s, %s, %s::jsonb, %s, 'v2')",
                [(r.store, r.window_id, r.window_start, r.window_s, r.k, r.schema_version,
                  r.text, hashlib.sha256(r.text.encode()).digest()) for r in rows],
            )


def view_columns(conn, view: str) -> list[str]:
    return [row[0] for row in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
        "ORDER BY ordinal_position", [view]).fetchall()]


VIEWS = ("rollup_store_day", "rollup_store_day_dwell", "rollup_store_day_mix",
         "rollup_region_day", "rollup_region_day_dwell", "rollup_region_day_mix")


def test_a_database_at_version_2_with_windows_migrates_and_keeps_its_columns(
    central_db, messages
):
    """A live database at version 2 (windows stored, readers of the old columns) takes
    migrations 3 to 5: every old column keeps its name, place and values (the windows are
    of a store on UTC: its local days are its UTC days); the new ones come after;
    applying the migrations again does nothing."""
    with psycopg.connect(central_db, autocommit=True) as conn:
        assert migrate(conn, MIGRATIONS[:2]) == [1, 2]
    insert_as_version_2(central_db, messages)
    add_regions(central_db)
    with psycopg.connect(central_db, autocommit=True) as conn:
        before = {v: view_columns(conn, v) for v in VIEWS}
        old_rows = {v: conn.execute(f"SELECT * FROM {v} ORDER BY 1, 2, 3, 4").fetchall()
                    for v in VIEWS}
        assert migrate(conn) == [3, 4, 5]
        assert migrate(conn) == []
        after = {v: view_columns(conn, v) for v in VIEWS}
        for view in VIEWS:
            assert after[view][: len(before[view])] == before[view], view
            old = ", ".join(before[view])
            rows = conn.execute(f"SELECT {old} FROM {view} ORDER BY 1, 2, 3, 4").fetchall()
            # Floats to rounding: the views sum the same terms, perhaps in another order.
            assert len(rows) == len(old_rows[view]), view
            for row, old_row in zip(rows, old_rows[view], strict=True):
                assert all(map(close, row, old_row)), (view, row, old_row)
        assert after["rollup_store_day"][len(before["rollup_store_day"]):] == [
            *NEW_DAY_COLUMNS, "timezone"]
        assert after["rollup_region_day"][len(before["rollup_region_day"]):] == [
            *NEW_DAY_COLUMNS, "footfall_in_windows", "visits_windows", "occupancy_max",
            "timezone"]
        assert after["rollup_store_day_mix"][-2:] == ["units", "units_groups"]
        versions = conn.execute(
            "SELECT version FROM central_schema_migrations ORDER BY 1").fetchall()
        assert [v for (v,) in versions] == [m.version for m in MIGRATIONS] == [1, 2, 3, 4, 5]
        groups = conn.execute("SELECT store, groups FROM rollup_store_day ORDER BY 1").fetchall()
    expected = expected_store_days(messages)
    assert groups == [(s, expected[s]["groups"]) for s in STORES]


def test_windows_before_schema_1_1_roll_up_as_nulls_not_zeros(central_db, messages):
    """A window of an older box has no queue, conversion, groups or units: its new
    roll-up cells are null (nothing published), not 0."""
    old = json.loads(json.dumps(messages[0]))
    old["schema_version"] = "1.0"
    old["visits"].pop("groups", None)
    old.pop("queue", None)
    old.pop("conversion", None)
    for cell in old["segments"]:
        cell.pop("units", None)
    old.pop("segment_stats", None)
    with open_central_store(central_db, worker="test") as store:
        assert store.write(rows_of([old])).stored == 1
    row = query(central_db, f"SELECT {', '.join(NEW_DAY_COLUMNS)} FROM rollup_store_day")[0]
    got = dict(zip(NEW_DAY_COLUMNS, row, strict=True))
    zero_counts = ("groups_windows", "transaction_periods", "conversion_periods", "queue_windows")
    assert all(got[c] == 0 for c in zero_counts)
    assert all(got[c] is None for c in NEW_DAY_COLUMNS if c not in zero_counts), got
