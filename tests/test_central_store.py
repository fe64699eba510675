"""The central PostgreSQL store without MQTT: migrations, day partitions, the idempotent
upsert, and roll-ups that are built only from published (non-null) cells."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from scripts.fleet_sim import DAY_START, fleet_messages
from sync import contract, kanon
from sync.central.schema import MIGRATIONS, day_of, migrate, partition_name
from sync.central.store import CentralStoreError, WindowRow, screen
from tests.conftest import REPO
from tests.support.central_support import (  # noqa: F401 (fixture)
    central_db_fixture,
    open_central_store,
    query,
)

pytestmark = pytest.mark.system

K = 5


@pytest.fixture(name="store")
def store_fixture(central_db):
    with open_central_store(central_db, worker="test") as store:
        yield store


def published_sum(values) -> int | None:
    """What a roll-up cell must be: the sum of the published cells, null if none is."""
    shown = [v for v in values if v is not None]
    return sum(shown) if shown else None


def test_migrations_are_recorded_and_applied_once(central_db, store):
    with psycopg.connect(central_db, autocommit=True) as conn:
        assert migrate(conn) == []  # store.ready() applied them
    rows = query(central_db, "SELECT version FROM central_schema_migrations ORDER BY version")
    assert [row[0] for row in rows] == [m.version for m in MIGRATIONS]


# SHA-256 of each migration's SQL as shipped: a database that applied one never applies
# it again, so an edit would reach new databases only (docs/central.md: append, never edit).
SHIPPED = {
    1: "fb36c5e44b11dff74878e9762832c08da1ba9d7ebd2c3c8aa6040188c71daca5",
    2: "8915b557f8b91184e9d7ae73a5011a25cf7aa852f39fe778857a5005c511ffe3",
    3: "a2e5fae662df0d641e59027f21cb1b97f3a2ef52ca0ce8b4a4fac9f1c9063a4a",
    4: "b395d123e2420e52ccb299d315c2baa93e8fc2f2c2a56eb71e111b081c847829",
    5: "bb2f0253c2cbc1fe67f88f92487be27b7d78c25f91d80c6631bf9c202f934951",
}


def test_shipped_migrations_are_never_edited():
    got = {m.version: hashlib.sha256(m.sql.encode()).hexdigest() for m in MIGRATIONS}
    assert {v: got[v] for v in SHIPPED} == SHIPPED


def test_windows_go_to_day_partitions_once_and_a_redelivery_is_a_duplicate(central_db, store):
    messages = fleet_messages(2, 100, window_s=3600)  # a bit more than four days
    counts = store.write([screen(m.topic, m.payload) for m in messages])
    assert (counts.stored, counts.duplicates, counts.dead_letters) == (200, 0, 0)
    again = store.write([screen(m.topic, m.payload) for m in messages[:30] + messages[:5]])
    assert (again.stored, again.duplicates, again.dead_letters) == (0, 35, 0)
    partitions = query(
        central_db,
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'windows'::regclass ORDER BY 1",
    )
    days = [contract.iso_utc(DAY_START + d * 86_400)[:10].replace("-", "") for d in range(5)]
    assert [row[0] for row in partitions] == [f"windows_{day}" for day in days]
    assert query(central_db, "SELECT count(*), sum(duplicates) FROM windows")[0] == (200, 35)


def test_store_and_region_rollups_sum_only_published_cells(central_db, store):
    messages = fleet_messages(3, 96 * 2, k=K)
    rows = [screen(m.topic, m.payload) for m in messages]
    assert all(isinstance(row, WindowRow) for row in rows)
    store.write(rows)
    region_of = {"sim-0000": "north", "sim-0001": "north", "sim-0002": "south"}
    with psycopg.connect(central_db, autocommit=True) as conn:
        conn.cursor().executemany(
            "INSERT INTO store_regions (store, region) VALUES (%s, %s)", list(region_of.items())
        )

    expected: dict = defaultdict(lambda: defaultdict(list))
    zones: dict = defaultdict(lambda: defaultdict(list))
    mixes: dict = defaultdict(lambda: defaultdict(list))
    for m in messages:
        payload = json.loads(m.payload)
        key = (m.store, payload["window"]["start"][:10])
        expected[key]["footfall_in"].append(payload["footfall"]["in"])
        expected[key]["visits"].append(payload["visits"]["count"])
        expected[key]["checkout"].append(payload["visits"]["checkout"])
        for cell in payload["dwell"]:
            zones[key][cell["zone"]].append(cell["visits"])
        for kind in ("traits", "segments"):
            for cell in payload[kind]:
                mixes[key][(kind[:-1], cell["name"])].append(cell["visits"])

    day_rows = query(
        central_db,
        "SELECT store, day::text, footfall_in, visits, checkout, k FROM rollup_store_day",
    )
    assert len(day_rows) == 6
    saw_partial = False
    for store_id, day, footfall_in, visits, checkout, k in day_rows:
        cells = expected[(store_id, day)]
        assert footfall_in == published_sum(cells["footfall_in"])
        assert visits == published_sum(cells["visits"])
        assert checkout == published_sum(cells["checkout"])
        assert k == K
        saw_partial |= None in cells["visits"] and any(cells["visits"])
    assert saw_partial  # the data has suppressed windows beside published ones

    for store_id, day, zone, visits in query(
        central_db, "SELECT store, day::text, zone, visits FROM rollup_store_day_dwell"
    ):
        assert visits == published_sum(zones[(store_id, day)][zone])
    for store_id, day, kind, name, visits in query(
        central_db, "SELECT store, day::text, kind, name, visits FROM rollup_store_day_mix"
    ):
        assert visits == published_sum(mixes[(store_id, day)][(kind, name)])

    # Every count cell of every roll-up is null or at least k.
    for view, columns in (
        ("rollup_store_day", "footfall_in, footfall_out, visits, checkout, passers_by"),
        ("rollup_store_day_dwell", "visits"),
        ("rollup_store_day_mix", "scored, visits"),
        ("rollup_region_day", "footfall_in, footfall_out, visits, checkout, passers_by"),
        ("rollup_region_day_dwell", "visits"),
        ("rollup_region_day_mix", "scored, visits"),
    ):
        for row in query(central_db, f"SELECT {columns} FROM {view}"):
            assert all(value is None or value >= K for value in row), (view, row)

    region = dict(
        ((r, d), v)
        for r, d, v in query(central_db, "SELECT region, day::text, visits FROM rollup_region_day")
    )
    for day in (contract.iso_utc(DAY_START + d * 86_400)[:10] for d in range(2)):
        north = [published_sum(expected[(s, day)]["visits"]) for s in ("sim-0000", "sim-0001")]
        assert region[("north", day)] == published_sum(north)
        assert region[("south", day)] == published_sum(
            [published_sum(expected[("sim-0002", day)]["visits"])]
        )


def moved(payload: bytes, start: float, **changes) -> bytes:
    """The message of ``payload`` as the window that starts at ``start`` (its own id)."""
    body = {**json.loads(payload), **changes}
    body["window"] = {**body["window"], "start": contract.iso_utc(start)}
    body["id"] = contract.aggregate_id(body["store"], start, body["window"]["seconds"])
    return contract.canonical_json(body)


def test_a_row_the_database_refuses_is_dead_lettered_alone_and_the_rest_committed(
    central_db, store
):
    """One value PostgreSQL cannot store used to fail the batch's transaction: nothing
    was acknowledged, the broker sent the batch again, and it failed again, for ever.
    Now that row alone goes to the dead letters (``refused``, with the database's
    reason and the payload) and the batch commits; sent again, the batch adds nothing."""
    good = fleet_messages(2, 20)
    rows = [screen(m.topic, m.payload) for m in good]
    later = DAY_START + 20 * 900
    # k beyond PostgreSQL's integer (screen() dead-letters such a message itself: see
    # test_a_count_beyond_the_roll_ups_integers_is_dead_lettered_not_stored)
    too_big = replace(screen(good[0].topic, moved(good[0].payload, later)), k=3_000_000_000)
    # a zone this worker's Python knows and the database does not (their zone data differ)
    unknown = replace(screen(good[1].topic, moved(good[1].payload, later + 900)),
                      timezone="Mars/Olympus_Mons")
    assert isinstance(unknown, WindowRow)
    batch = [*rows[:10], too_big, *rows[10:], unknown]

    counts = store.write(batch)
    assert (counts.stored, counts.duplicates, counts.dead_letters) == (40, 0, 2)
    assert counts.by_category == {"refused": 2}
    stored = query(central_db, "SELECT window_id FROM windows ORDER BY 1")
    assert [row[0] for row in stored] == sorted(m.window_id for m in good)
    letters = query(central_db, "SELECT category, reason, payload FROM dead_letters ORDER BY id")
    assert [row[0] for row in letters] == ["refused", "refused"]
    assert "integer out of range" in letters[0][1] and too_big.window_id in letters[0][1]
    assert 'time zone "Mars/Olympus_Mons" not recognized' in letters[1][1]
    assert [bytes(row[2]) for row in letters] == [too_big.text.encode(), unknown.text.encode()]

    again = store.write(batch)  # redelivered: no window twice, the refused ones again
    assert (again.stored, again.duplicates, again.dead_letters) == (0, 40, 2)
    assert query(central_db, "SELECT count(*), sum(duplicates) FROM windows")[0] == (40, 40)


def other_content(message) -> WindowRow:
    """``message``'s window (same id) with other counts: a second version of it."""
    body = {**json.loads(message.payload), "occupancy": {"mean": 9.5, "max": 12, "sample_s": 1.0}}
    row = screen(message.topic, contract.canonical_json(body))
    assert isinstance(row, WindowRow)
    return row


def test_two_versions_of_a_window_in_one_batch_keep_the_first_and_dead_letter_the_other(
    central_db, store
):
    """Two copies of one window id with other bytes in one batch: the single ``INSERT ...
    ORDER BY store, window_id ON CONFLICT DO NOTHING`` kept whichever copy PostgreSQL's
    sort put first (the second in 4 of these 6 layouts), while the worker counted the
    first as stored and the second as a duplicate of it: the stored window was not the
    one reported, and no ``conflict`` was recorded. The batch is now de-duplicated by key
    before the insert: the first copy is stored, the second dead-lettered."""
    messages = fleet_messages(1, 36)
    firsts, seconds = [], []
    for layout in range(6):
        target, *fillers = messages[layout * 6:layout * 6 + 6]
        first, second = screen(target.topic, target.payload), other_content(target)
        rows = [screen(m.topic, m.payload) for m in fillers]
        batch = [first, *rows[:layout], second, *rows[layout:]]
        counts = store.write(batch)
        assert (counts.stored, counts.duplicates, counts.dead_letters) == (6, 0, 1), layout
        assert counts.by_category == {"conflict": 1}
        firsts.append(first)
        seconds.append(second)
    kept = dict(query(central_db, "SELECT window_id, payload_sha256 FROM windows"))
    assert [bytes(kept[w.window_id]) for w in firsts] == [w.sha256 for w in firsts]
    letters = query(central_db, "SELECT category, reason, payload FROM dead_letters ORDER BY id")
    assert [(category, bytes(payload)) for category, _, payload in letters] == [
        ("conflict", w.text.encode()) for w in seconds
    ]
    assert all(w.window_id in reason for (_, reason, _), w in zip(letters, seconds, strict=True))


def test_copies_in_a_batch_after_a_refused_first_copy_are_stored_or_counted_in_order(
    central_db, store
):
    """When the database refuses the first copy of a window (stored one by one), the next
    copy is the first it can take: stored, and a copy with its bytes after it is a
    duplicate, one with other bytes a conflict."""
    (message,) = fleet_messages(1, 1)
    good = screen(message.topic, message.payload)
    assert isinstance(good, WindowRow)
    refused = replace(good, k=3_000_000_000, sha256=b"x" * 32)  # beyond PostgreSQL's int
    other = other_content(message)
    counts = store.write([refused, good, other, good])
    assert (counts.stored, counts.duplicates, counts.dead_letters) == (1, 1, 2)
    assert counts.by_category == {"refused": 1, "conflict": 1}
    assert query(central_db, "SELECT payload_sha256, duplicates FROM windows") == [
        (good.sha256, 1)
    ]
    assert [row[0] for row in query(central_db, "SELECT category FROM dead_letters ORDER BY id")
            ] == ["refused", "conflict"]


@pytest.mark.parametrize("path", [("k",), ("visits", "count"), ("footfall", "in")])
def test_a_count_beyond_the_roll_ups_integers_is_dead_lettered_not_stored(
    central_db, store, path
):
    """The roll-up views cast counts to PostgreSQL's int: one stored window counting 3
    billion visits (a hostile or broken box; the schema sets no maximum) made every
    roll-up query of the fleet fail. Such a window is now dead-lettered at the check."""
    (message,) = fleet_messages(1, 1)
    body = json.loads(message.payload)
    if path == ("k",):
        body = kanon.suppress(body, 3_000_000_000)  # every count withheld
    else:
        cell = body
        for key in path[:-1]:
            cell = cell[key]
        cell[path[-1]] = 3_000_000_000
    letter = screen(message.topic, contract.canonical_json(body))
    assert letter.category == "invalid", letter  # type: ignore[union-attr]
    assert f"/{'/'.join(path)} is larger than the roll-ups' integers" in letter.reason  # type: ignore[union-attr]
    store.write([letter, screen(message.topic, message.payload)])
    assert len(query(central_db, "SELECT * FROM rollup_store_day")) == 1  # it casts the counts


QUEUE = {"waits": 10, "wait_p50_s": 40.0, "wait_p90_s": 95.0, "length_mean": 1.5, "length_max": 4}


@pytest.mark.parametrize(("path", "value", "bound"), [
    (("visits", "mean_duration_s"), 1e308, "0 .. 86,400 (seconds, at most a day)"),
    (("visits", "mean_duration_s"), 86_400.5, "0 .. 86,400 (seconds, at most a day)"),
    (("visits", "mean_path_m"), 1e300, "0 .. 259,200 (metres, a day at 3 m/s)"),
    (("dwell", 0, "mean_s"), 1e308, "0 .. 86,400 (seconds, at most a day)"),
    (("occupancy", "mean"), 1e300, "0 .. 2,147,483,647 (people, at most PostgreSQL's int)"),
    (("wifi", "occupancy_estimate"), 1e300, "0 .. 2,147,483,647 (people"),
    (("queue", "length_mean"), 1e308, "0 .. 2,147,483,647 (people"),
    (("queue", "wait_p90_s"), 1e9, "0 .. 86,400 (seconds, at most a day)"),
])
def test_a_number_beyond_its_bound_is_dead_lettered_and_the_roll_ups_keep_working(
    central_db, store, path, value, bound
):
    """The schema sets no maximum on most numbers: one window of one store with a mean
    visit of 1e308 s was stored, and ``sum(count * mean_duration_s::float8)`` then
    overflowed: rollup_store_day and rollup_region_day failed for the whole fleet
    (NumericValueOutOfRange). Such a window is now dead-lettered at the check, with
    the field, its value and its bound (sync/central/bounds.py)."""
    good = fleet_messages(1, 2)
    body = {**json.loads(good[0].payload), "queue": dict(QUEUE)}
    cell = body
    for key in path[:-1]:
        cell = cell[key]
    cell[path[-1]] = value
    bad = contract.canonical_json(body)
    letter = screen(good[0].topic, bad)
    assert letter.category == "invalid", letter  # type: ignore[union-attr]
    field = "/" + "/".join(map(str, path))
    assert letter.reason.startswith(f"{field} is {value:g}, outside {bound}")  # type: ignore[union-attr]
    counts = store.write([letter, *(screen(m.topic, m.payload) for m in good)])
    assert (counts.stored, counts.dead_letters) == (2, 1)
    with psycopg.connect(central_db, autocommit=True) as conn:
        conn.execute("INSERT INTO store_regions VALUES ('sim-0000', 'north')")
    assert query(central_db, "SELECT payload FROM dead_letters") == [(bad,)]
    assert len(query(central_db, "SELECT * FROM rollup_store_day")) == 1
    assert len(query(central_db, "SELECT * FROM rollup_region_day")) == 1


def test_numbers_at_their_bounds_and_the_queue_of_a_real_window_are_stored():
    (message,) = fleet_messages(1, 1)
    body = {**json.loads(message.payload), "queue": dict(QUEUE)}
    body["visits"]["mean_duration_s"] = 86_400
    body["dwell"][0]["p90_s"] = 86_400.0
    assert isinstance(screen(message.topic, contract.canonical_json(body)), WindowRow)


def test_a_missing_partition_fails_the_batch_and_is_made_again_not_dead_lettered(
    central_db, store
):
    """A partition dropped under a running worker (docs/central.md: drop a day with DROP
    TABLE) is the database's state, not a bad row: the batch fails whole, nothing is
    acknowledged or dead-lettered, and the next try makes the partition again."""
    first, second = fleet_messages(1, 2)
    assert store.write([screen(first.topic, first.payload)]).stored == 1
    day = day_of(contract.parse_iso_utc(json.loads(first.payload)["window"]["start"]))
    with psycopg.connect(central_db, autocommit=True) as conn:
        conn.execute(f"DROP TABLE {partition_name(day)}")
    with pytest.raises(CentralStoreError, match="no partition"):
        store.write([screen(second.topic, second.payload)])
    assert query(central_db, "SELECT count(*) FROM dead_letters") == [(0,)]
    assert store.write([screen(second.topic, second.payload)]).stored == 1


def test_edge_never_imports_the_central_side():
    """Only the CLI, which assembles services, may see sync.central (STYLE A6)."""
    offenders = [
        path.relative_to(REPO)
        for path in Path(REPO, "edge").rglob("*.py")
        if "sync.central" in path.read_text() and "cli" not in path.parts
    ]
    assert offenders == []
