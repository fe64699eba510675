"""Central roll-ups by each store's local day (aggregate schema 1.5, migration 5).

A store's business day is its local day: a New York store's evening after 19:00 local
(00:00 UTC in winter) belongs to that day, not the next UTC day, and a region spanning
zones adds its stores' local days of the same date. The windows are real aggregates
built by the box's own code (``scripts/fleet_sim.py``), for a store in America/New_York
and one in Europe/Berlin, around local midnight and over the daylight saving changes of
2025 (Berlin: 30 March, 26 October; New York: 9 March, 2 November). Every roll-up row
is checked against sums computed here from the published payloads, each window put in
the local day of its middle with Python's own zone data (docs/central.md).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import psycopg
import pytest

from scripts.fleet_sim import store_messages
from sync import contract
from sync.central.schema import MIGRATIONS, day_of, ensure_partition, migrate
from sync.central.store import screen
from tests.support.central_support import (  # noqa: F401 (fixture)
    central_db_fixture,
    open_central_store,
    query,
)

pytestmark = pytest.mark.system

K = 5
NY, BERLIN = "America/New_York", "Europe/Berlin"


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def built(store: str, zone: str, start: str, count: int, window_s: int = 3600) -> list[dict]:
    """``count`` consecutive windows of ``store`` from ``start`` (UTC), as its box sends
    them with ``site.timezone: zone``."""
    return [json.loads(m.payload) for m in store_messages(
        store, count, k=K, window_s=window_s, start=utc(start), timezone=zone, seed=count)]


def legacy(message: dict) -> dict:
    """``message`` as a box older than 1.5 sent it: no time zone."""
    old = {key: value for key, value in message.items() if key != "timezone"}
    return {**old, "schema_version": "1.4"}


def write(dsn: str, messages: list[dict]) -> None:
    rows = [screen(contract.Topics("store-edge", m["store"])(contract.AGGREGATES),
                   contract.canonical_json(m)) for m in messages]
    with open_central_store(dsn, worker="test") as store:
        counts = store.write(rows)
    assert counts.dead_letters == 0, counts


def local_day(message: dict, zone: str) -> str:
    """The local day in ``zone`` of the middle of ``message``'s window."""
    window = message["window"]
    middle = contract.parse_iso_utc(window["start"]) + window["seconds"] / 2
    return datetime.fromtimestamp(middle, ZoneInfo(zone)).date().isoformat()


def published_sum(values) -> int | None:
    shown = [v for v in values if v is not None]
    return sum(shown) if shown else None


def expected_days(messages: list[dict], zone_of=lambda m: m["timezone"]) -> dict:
    """Per (store, local day): windows, visits, footfall in, the dwell and mix cells and
    the zones, summed from the published payloads."""
    days: dict = defaultdict(lambda: defaultdict(list))
    for m in messages:
        zone = zone_of(m)
        cells = days[(m["store"], local_day(m, zone))]
        cells["windows"].append(1)
        cells["visits"].append(m["visits"]["count"])
        cells["footfall_in"].append(m["footfall"]["in"])
        cells["zones"].append(zone)
        for dwell in m["dwell"]:
            cells[("dwell", dwell["zone"])].append(dwell["visits"])
        for kind in ("traits", "segments"):
            for mix in m[kind]:
                cells[(kind[:-1], mix["name"])].append(mix["visits"])
    return days


def store_day_rows(dsn: str) -> dict:
    return {(store, day): (windows, visits, footfall_in, zones) for store, day, windows, visits,
            footfall_in, zones in query(dsn, "SELECT store, day::text, windows, visits, "
                                             "footfall_in, timezone FROM rollup_store_day")}


def assert_store_days(dsn: str, expected: dict) -> None:
    """Every store-day row (and its dwell and mix rows) is the local day's sum."""
    got = store_day_rows(dsn)
    assert set(got) == set(expected)
    for key, cells in expected.items():
        want = (len(cells["windows"]), published_sum(cells["visits"]),
                published_sum(cells["footfall_in"]), ", ".join(sorted(set(cells["zones"]))))
        assert got[key] == want, (key, got[key], want)
    for store, day, zone, visits in query(
        dsn, "SELECT store, day::text, zone, visits FROM rollup_store_day_dwell"
    ):
        assert visits == published_sum(expected[(store, day)][("dwell", zone)])
    for store, day, kind, name, visits in query(
        dsn, "SELECT store, day::text, kind, name, visits FROM rollup_store_day_mix"
    ):
        assert visits == published_sum(expected[(store, day)][(kind, name)])


def add_region(dsn: str, region: str, stores: list[str]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.cursor().executemany("INSERT INTO store_regions (store, region) VALUES (%s, %s)",
                                  [(store, region) for store in stores])


def test_the_day_rule_itself():
    """The rule the views must follow, on hand-picked windows (docs/central.md)."""
    def window(start: str, seconds: int) -> dict:
        return {"window": {"start": start, "seconds": seconds}}

    # New York in winter (UTC-5): 00:00-01:00 UTC is 19:00-20:00 of the day before.
    assert local_day(window("2025-11-05T00:00:00Z", 3600), NY) == "2025-11-04"
    # 22:00-01:00 local: most of it before midnight.
    assert local_day(window("2025-11-05T03:00:00Z", 10_800), NY) == "2025-11-04"
    # 23:00-01:00 local: the middle is midnight, which begins the new day.
    assert local_day(window("2025-11-05T04:00:00Z", 7200), NY) == "2025-11-05"
    # Berlin in winter (UTC+1): 23:00 UTC is midnight.
    assert local_day(window("2025-11-04T23:00:00Z", 900), BERLIN) == "2025-11-05"
    assert local_day(window("2025-11-04T22:45:00Z", 900), BERLIN) == "2025-11-04"


@pytest.mark.parametrize(
    ("stores", "long_or_short", "shared_days"),
    [
        # autumn: both stores from 24 October for 11 days, over both fall-back days
        ({"ny-01": (NY, "2025-10-24T00:00:00", 264),
          "berlin-01": (BERLIN, "2025-10-24T00:00:00", 264)},
         {("berlin-01", "2025-10-26"): 25, ("ny-01", "2025-11-02"): 25,
          ("ny-01", "2025-10-26"): 24, ("berlin-01", "2025-11-02"): 24}, 10),
        # spring: each store over its own spring-forward day
        ({"ny-01": (NY, "2025-03-07T00:00:00", 96),
          "berlin-01": (BERLIN, "2025-03-28T00:00:00", 96)},
         {("ny-01", "2025-03-09"): 23, ("berlin-01", "2025-03-30"): 23,
          ("ny-01", "2025-03-08"): 24, ("berlin-01", "2025-03-29"): 24}, 0),
    ],
    ids=["autumn", "spring"],
)
def test_store_and_region_days_are_local_days_over_daylight_saving_changes(
    central_db, stores, long_or_short, shared_days
):
    messages = [m for store, (zone, start, count) in stores.items()
                for m in built(store, zone, start, count)]
    write(central_db, messages)
    add_region(central_db, "atlantic", list(stores))
    expected = expected_days(messages)
    assert_store_days(central_db, expected)

    got = store_day_rows(central_db)
    for key, hours in long_or_short.items():  # 23- and 25-hour days, hourly windows
        assert got[key][0] == hours, (key, got[key])
    # The New York evening (19:00-24:00 local: the next UTC day) is in its own day: the
    # local days differ from the UTC days, which the roll-ups had before.
    utc_days = expected_days(messages, zone_of=lambda m: "UTC")
    assert any(published_sum(cells["visits"]) != published_sum(utc_days[key]["visits"])
               for key, cells in expected.items() if key[0] == "ny-01")

    regions = {day: row for day, *row in query(
        central_db, "SELECT day::text, stores, windows, visits, footfall_in, timezone "
                    "FROM rollup_region_day WHERE region = 'atlantic'")}
    dates = {day for _, day in expected}
    assert set(regions) == dates
    for day in dates:
        parts = [expected[(store, day)] for store in stores if (store, day) in expected]
        assert regions[day][:4] == [
            len(parts), sum(len(p["windows"]) for p in parts),
            published_sum([published_sum(p["visits"]) for p in parts]),
            published_sum([published_sum(p["footfall_in"]) for p in parts]),
        ], day
        zones = sorted({z for p in parts for z in p["zones"]})
        assert regions[day][4] == ", ".join(zones)
    both = [day for day in dates if all((s, day) in expected for s in stores)]
    assert len(both) >= shared_days
    assert all(regions[day][4] == f"{NY}, {BERLIN}" for day in both)


@pytest.mark.parametrize("window_s", [7200, 10_800, 86_400])
def test_windows_straddling_local_midnight_count_once_in_the_day_of_their_middle(
    central_db, window_s
):
    """Windows of 2 or 3 hours, or a day, straddle local midnight at UTC-5 and UTC+1
    (and hourly ones at UTC+5:30): each counts once, whole, in one day."""
    count = 6 * 86_400 // window_s
    stores = {"ny-01": NY, "berlin-01": BERLIN, "kolkata-01": "Asia/Kolkata"}
    messages = [m for store, zone in stores.items()
                for m in built(store, zone, "2025-01-10T00:00:00", count, window_s)]
    messages += built("kolkata-02", "Asia/Kolkata", "2025-01-10T00:00:00", 72)
    write(central_db, messages)
    assert_store_days(central_db, expected_days(messages))
    total = query(central_db, "SELECT store, sum(windows) FROM rollup_store_day GROUP BY 1")
    assert dict(total) == {"ny-01": count, "berlin-01": count, "kolkata-01": count,
                           "kolkata-02": 72}


def test_a_store_whose_zone_changes_and_windows_without_a_zone(central_db):
    """Each window that names a zone is in its box's day; a window of a box older than 1.5
    is in its store's zone (the zone its newest windows name, or one set by hand), else
    in its UTC day. No window is counted twice or lost when the zone changes."""
    before = [legacy(m) for m in built("moved-01", "UTC", "2025-12-01T00:00:00", 48)]
    write(central_db, before)
    assert_store_days(central_db, expected_days(before, zone_of=lambda m: "UTC"))

    berlin = built("moved-01", BERLIN, "2025-12-03T00:00:00", 47)
    write(central_db, berlin)  # the box is upgraded: its older windows move to Berlin days
    assert query(central_db, "SELECT timezone FROM store_timezones") == [(BERLIN,)]
    assert_store_days(central_db, expected_days(before + berlin, lambda m: m.get("timezone")
                                                or BERLIN))

    new_york = built("moved-01", NY, "2025-12-05T00:00:00", 48)
    late = built("moved-01", BERLIN, "2025-12-07T00:00:00", 1)
    write(central_db, new_york)
    # recorded by the newest window of the batch that brought the change
    zone_now = [(NY, utc("2025-12-06T23:00:00"))]
    assert zone_row(central_db) == zone_now
    # A Berlin window that starts before the change, arriving late, changes nothing.
    late = [{**legacy_start(m, "2025-12-04T23:00:00"), "timezone": BERLIN} for m in late]
    write(central_db, late)
    assert zone_row(central_db) == zone_now
    everything = before + berlin + new_york + late
    assert_store_days(central_db, expected_days(everything, lambda m: m.get("timezone") or NY))
    # Berlin's 4 December is 3 December 23:00 to 4 December 23:00 UTC, New York's 4
    # December 05:00 to 5 December 05:00 UTC: the day of the change has Berlin windows
    # until 23:00 UTC and New York's from 00:00 UTC (19:00 local), each window once.
    got = store_day_rows(central_db)
    assert got[("moved-01", "2025-12-04")][3] == f"{NY}, {BERLIN}"
    assert sum(row[0] for row in got.values()) == len(everything)

    # A store whose boxes are all older than 1.5: its zone set by hand...
    old = [legacy(m) for m in built("old-01", "UTC", "2025-12-01T00:00:00", 48)]
    write(central_db, old)
    with psycopg.connect(central_db, autocommit=True) as conn:
        hand_set = "INSERT INTO store_timezones (store, timezone) VALUES (%s, %s)"
        conn.execute(hand_set, ["old-01", "Asia/Tokyo"])
        with pytest.raises(psycopg.errors.DataError, match="not recognized"):
            conn.execute(hand_set, ["x", "Mars/Base"])
    assert_store_days(central_db, expected_days(
        everything + old, lambda m: m.get("timezone") or (NY if m["store"] == "moved-01"
                                                          else "Asia/Tokyo")))
    # ...until one of them names its own.
    upgraded = built("old-01", BERLIN, "2025-12-03T00:00:00", 1)
    write(central_db, upgraded)
    assert query(central_db, "SELECT timezone FROM store_timezones WHERE store = 'old-01'") \
        == [(BERLIN,)]
    assert_store_days(central_db, expected_days(
        everything + old + upgraded, lambda m: m.get("timezone") or (
            NY if m["store"] == "moved-01" else BERLIN)))


def zone_row(dsn: str) -> list[tuple[str, float]]:
    return [(zone, float(since)) for zone, since in query(
        dsn, "SELECT timezone, extract(epoch FROM since) FROM store_timezones")]


def legacy_start(message: dict, start: str) -> dict:
    """``message`` moved to the window that starts at ``start`` (UTC), its own id."""
    t = utc(start)
    seconds = message["window"]["seconds"]
    return {**message, "window": {"start": contract.iso_utc(t), "seconds": seconds},
            "id": contract.aggregate_id(message["store"], t, seconds)}


def test_a_database_at_version_4_takes_the_zones_its_payloads_hold(central_db):
    """A worker of version 4 stored 1.5 windows of an upgraded box (their zone only in the
    payload) and windows of older boxes: migration 5 reads the zones out of the
    payloads, records the store's, and the roll-ups move to local days; a zone
    PostgreSQL does not know is left out (the window falls back to its store's)."""
    ny = built("ny-01", NY, "2025-11-01T00:00:00", 72)
    old = [legacy(m) for m in built("old-01", "UTC", "2025-11-01T00:00:00", 24)]
    odd = {**legacy_start(ny[0], "2025-11-04T00:00:00"), "timezone": "Mars/Olympus_Mons"}
    with psycopg.connect(central_db, autocommit=True) as conn:
        assert migrate(conn, MIGRATIONS[:4]) == [1, 2, 3, 4]
        for day in {day_of(utc(m["window"]["start"][:-1])) for m in [*ny, *old, odd]}:
            ensure_partition(conn, day)
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO windows (store, window_id, window_start, window_s, k, "
                "schema_version, payload, payload_sha256, worker) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s, 'v4')",
                [(m["store"], m["id"], m["window"]["start"], m["window"]["seconds"], m["k"],
                  m["schema_version"], json.dumps(m),
                  hashlib.sha256(contract.canonical_json(m)).digest())
                 for m in [*ny, *old, odd]])
        before = [row[0] for row in conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'rollup_store_day' ORDER BY ordinal_position")]
        assert migrate(conn) == [5]
        after = [row[0] for row in conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'rollup_store_day' ORDER BY ordinal_position")]
    assert after == [*before, "timezone"]
    assert query(central_db, "SELECT store, timezone FROM store_timezones") == [("ny-01", NY)]
    assert query(central_db, "SELECT count(*) FROM windows WHERE timezone IS NULL") == [(25,)]
    assert_store_days(central_db, expected_days(
        [*ny, *old, odd], lambda m: NY if m["store"] == "ny-01" else "UTC"))
