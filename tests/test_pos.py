"""Till transactions (``edge pos import``, ``POST /admin/pos``), conversion on the page
and in the aggregates, and the queue section of the aggregates."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from edge.cli import cli
from edge.config import load_site
from edge.runtime.schema import open_database
from edge.visits.scenarios import scenario_site
from edge.web.app import create_app
from edge.web.dashboard import WebDeps
from sync import contract, kanon
from sync.aggregate import Window
from sync.outbox import Outbox
from sync.producer import build_message, produce
from sync.settings import SyncSettings, effective_settings
from tests.conftest import PETS_SITE
from tests.support.sync_helpers import add_visit
from tests.support.web_support import BASE_URL, with_web

pytestmark = pytest.mark.system

TOKEN = "it-token-0123456789abcdef"
T10 = 1_709_287_200.0  # 2024-03-01T10:00:00Z (= store time in London in March)
NOW = T10 + 3 * 3600
HEAD = "period_start,transactions\n"


def rows(db_path) -> list[tuple]:
    db = open_database(db_path)
    return db.execute("select period_start, period_s, transactions, source from pos_periods "
                      "order by period_start").fetchall()


def run_import(tmp_path, text: str):
    path = tmp_path / "till.csv"
    path.write_text(text)
    return CliRunner().invoke(cli, ["pos", "import", str(path), "--site", str(PETS_SITE),
                                    "--db", str(tmp_path / "edge.db")])


def test_import_stores_and_a_second_import_replaces_the_period(tmp_path):
    result = run_import(tmp_path, "period_start,transactions\n"
                                  "2024-03-01T10:00:00,12\n2024-03-01T11:00:00Z,7\n")
    assert result.exit_code == 0, result.output
    assert "Stored 2 till periods" in result.output
    result = run_import(tmp_path, "\ufeff" + HEAD + "2024-03-01T11:00:00+00:00,9\n")
    assert result.exit_code == 0 and "1 replaced" in result.output
    assert rows(tmp_path / "edge.db") == [(T10, 3600, 12, "import"),
                                          (T10 + 3600, 3600, 9, "import")]


@pytest.mark.parametrize(
    "body, reason",
    [
        ("period_start,transactions\n2024-03-01T10:20:00,4\n",
         "till.csv:2: unknown period: 2024-03-01T10:20:00 is not the start of a 3600 s"),
        ("period_start,transactions\nyesterday,4\n", "till.csv:2: unknown period: period_start"),
        ("period_start,transactions\n2099-03-01T10:00:00,4\n", "has not ended yet"),
        ("period_start,transactions\n2024-03-01T10:00:00,-3\n",
         "till.csv:2: transactions -3 is negative"),
        ("period_start,transactions\n2024-03-01T10:00:00,lots\n",
         "till.csv:2: transactions 'lots' is not a whole number"),
        ("period_start,transactions\n2024-03-01T10:00:00,2.5\n", "is not a whole number"),
        ("period_start,transactions\n2024-03-01T10:00:00,4\n2024-03-01T10:00:00Z,5\n",
         "till.csv:3: period 2024-03-01T10:00:00Z is already given at"),
        ("period_start,count\n2024-03-01T10:00:00,4\n", "missing transactions"),
        ("period_start,transactions,period_s\n2024-03-01T10:00:00,4,700\n",
         "must be whole seconds"),
    ],
)
def test_bad_till_files_are_refused_in_one_line_and_lose_nothing(tmp_path, body, reason):
    assert run_import(tmp_path, HEAD + "2024-03-01T12:00:00,30\n").exit_code == 0
    result = run_import(tmp_path, body)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and reason in lines[0], result.output
    assert rows(tmp_path / "edge.db") == [(T10 + 7200, 3600, 30, "import")]


def test_a_period_of_another_length_over_a_stored_one_is_refused(tmp_path):
    assert run_import(tmp_path, HEAD + "2024-03-01T10:00:00,12\n").exit_code == 0
    result = run_import(
        tmp_path, "period_start,transactions,period_s\n2024-03-01T10:15:00,3,900\n")
    assert result.exit_code == 1 and "overlaps a stored period of 3600 s" in result.output
    assert rows(tmp_path / "edge.db") == [(T10, 3600, 12, "import")]


@pytest.fixture()
def web(tmp_path):
    site = with_web(load_site(PETS_SITE), access="open-lan", host="127.0.0.1",
                    admin_token=TOKEN, cache_s=0)
    db_path = tmp_path / "edge.db"
    open_database(db_path)
    app = create_app(WebDeps(site=site, db_path=db_path, clock=lambda: NOW))
    with TestClient(app, raise_server_exceptions=False, base_url=BASE_URL) as client:
        yield client, db_path


def push(client, body, token=TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/admin/pos", json=body, headers=headers)


def test_push_stores_replaces_and_refuses_with_a_reason(web):
    client, db_path = web
    ok = push(client, {"periods": [{"start": "2024-03-01T10:00:00Z", "transactions": 12}]})
    assert ok.status_code == 200 and ok.json() == {"stored": 1, "replaced": 0}
    again = push(client, {"periods": [{"start": "2024-03-01T10:00:00Z", "transactions": 14}]})
    assert again.json() == {"stored": 1, "replaced": 1}
    refusals = [
        (push(client, {"periods": [{"start": "2024-03-01T11:00:00Z", "transactions": 5}]},
              token=None), 401, ""),
        (push(client, {"periods": [{"start": "2024-03-01T11:00:00Z", "transactions": 5}]},
              token="wrong-token-0123456789"), 403, ""),
        (push(client, {"periods": [{"start": "2024-03-01T11:00:00Z", "transactions": -1}]}),
         422, "transactions"),
        (push(client, {"periods": [{"start": "2024-03-01T11:00:00Z", "transactions": "x"}]}),
         422, "transactions"),
        (push(client, {"periods": [{"start": "2024-03-01T11:30:00Z", "transactions": 5}]}),
         409, "periods[0]: unknown period"),
        (push(client, {"periods": [{"start": "2024-03-01T11:00:00Z", "transactions": 5},
                                   {"start": "2024-03-01T11:00:00Z", "transactions": 6}]}),
         409, "periods[1]: period 2024-03-01T11:00:00Z is already given at periods[0]"),
    ]
    for response, status, reason in refusals:
        assert response.status_code == status, response.text
        assert reason in response.json()["detail"]
    assert rows(db_path) == [(T10, 3600, 14, "push")]


def test_conversion_on_the_page_is_withheld_under_k(web):
    client, db_path = web
    db = open_database(db_path)
    for i in range(8):
        add_visit(db, T10 + 100 + i, duration_s=60)
    push(client, {"periods": [{"start": "2024-03-01T10:00:00Z", "transactions": 6}]})
    figures = client.get("/api/v1/summary?day=2024-03-01",
                         headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert figures["conversion"] == {"periods": 1, "transactions": 6, "visits": 8,
                                     "rate": 0.75, "suppressed": False}
    assert figures["queue"]["configured"] is False
    push(client, {"periods": [{"start": "2024-03-01T10:00:00Z", "transactions": 3}]})
    figures = client.get("/api/v1/summary?day=2024-03-01",
                         headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert figures["conversion"]["transactions"] is None and figures["conversion"]["rate"] is None
    assert "Conversion is hidden" in client.get("/?day=2024-03-01").text


def message(db, site, window, k=5):
    built = build_message(db, site, window, k)
    contract.validate("aggregate", built)
    assert kanon.violations(built, k) == []
    assert built["schema_version"] == "1.5"
    return built


def publish(db, site, now) -> dict[float, dict]:
    """The sync service's own pass: every window settled by ``now`` goes to the outbox in
    order, as it is sent. Returns every message so far by window start."""
    produce(db, site, Outbox(db), effective_settings(db, site), now)
    return {start: json.loads(payload) for start, payload in
            db.execute("select window_start, payload from sync_outbox")}


def fill_hour(db, counts) -> None:
    """A till period over 10:00-11:00 and ``counts`` visits in each of its 15-min windows."""
    db["pos_periods"].insert({"period_start": T10, "period_s": 3600, "transactions": 9,
                              "source": "push", "received_at": NOW})
    for quarter, count in enumerate(counts):
        for i in range(count):
            add_visit(db, T10 + 900 * quarter + 10 + i)


def test_conversion_in_the_aggregates_follows_the_k_rules(memory_db):
    site = load_site(PETS_SITE)
    settle = site.sync.settle_s
    db = memory_db
    fill_hour(db, [6, 6, 6, 7])                    # every window shown at k = 5
    sent = publish(db, site, T10 + 3600 + settle)
    (cell,) = sent[T10 + 2700]["conversion"]
    assert cell == {"period_start": "2024-03-01T10:00:00Z", "period_s": 3600,
                    "transactions": 9, "visits": 25, "rate": 0.36}
    assert sent[T10 + 1800]["conversion"] == []    # the period ends later
    for message in sent.values():
        contract.validate("aggregate", message)
        assert kanon.violations(message, 5) == []
    # The second quarter had 2 visits (withheld there): 21 - 19 shown = 2 would give it
    # away, so the period's visits are withheld.
    other = open_database(":memory:")
    fill_hour(other, [6, 2, 6, 7])
    last = publish(other, site, T10 + 3600 + settle)[T10 + 2700]
    (cell,) = last["conversion"]
    assert cell["transactions"] == 9 and cell["visits"] is None and cell["rate"] is None
    assert last["suppressed"]["conversion"] == 1
    # Fewer than k transactions: the cell is left out.
    db.execute("update pos_periods set transactions = 3")
    assert build_message(db, site, Window(T10 + 2700, 900), 5)["conversion"] == []


def test_a_visit_stored_after_its_window_was_sent_is_not_given_away_by_the_period():
    """Reviewer's report: the period's check recomputed the earlier windows' counts from
    the database, so a visit stored after its window was sent (a worker restarted, a
    build that failed on a busy database) was in the period's visits and in no published
    count: 21 visits for windows published as 5 + 5 + 5 + 5 told the central platform
    that one more visit, hidden in no window, ended in the hour. The check now reads the
    counts the earlier messages hold."""
    site = load_site(PETS_SITE)
    settle = site.sync.settle_s
    db = open_database(":memory:")
    fill_hour(db, [5, 5, 5, 0])
    sent = publish(db, site, T10 + 2700 + settle)       # 10:00-10:45 sent
    assert [sent[T10 + 900 * q]["visits"]["count"] for q in range(3)] == [5, 5, 5]
    add_visit(db, T10 + 100)                            # 10:00-10:15, stored late
    for i in range(5):
        add_visit(db, T10 + 2700 + 10 + i)
    last = publish(db, site, T10 + 3600 + settle)[T10 + 2700]
    assert last["visits"]["count"] == 5
    (cell,) = last["conversion"]
    assert cell["transactions"] == 9 and cell["visits"] is None and cell["rate"] is None
    # Published in time, the same visits give the period's count away to no one.
    again = open_database(":memory:")
    fill_hour(again, [6, 5, 5, 5])
    (cell,) = publish(again, site, T10 + 3600 + settle)[T10 + 2700]["conversion"]
    assert cell["visits"] == 21 and cell["rate"] == pytest.approx(9 / 21, abs=1e-3)


def test_a_change_of_window_length_gives_no_withheld_window_back_by_the_period():
    """Regression (privacy review): the period's check took the earlier windows at the
    current length, and matched them in the outbox by their start only. After a downlink
    set sync.window_s from 900 to 3600 at 11:00, the quarter of 10:00 (6 visits) was
    read as the hour 10:00-11:00, so the till period 10:00-12:00 published 31 visits
    against windows published as 6 + 6 + 7 + 10: 2 more, the withheld quarter of 10:15.
    The check now lays the period out in the windows actually published."""
    site = load_site(PETS_SITE)
    settle = site.sync.settle_s

    def two_hours(quarters):
        db = open_database(":memory:")
        db["pos_periods"].insert({"period_start": T10, "period_s": 7200, "transactions": 9,
                                  "source": "push", "received_at": T10})
        for quarter, count in enumerate(quarters):       # 10:00-11:00, 15-min windows
            for i in range(count):
                add_visit(db, T10 + 900 * quarter + 10 + i)
        for i in range(10):                              # 11:00-12:00, one hour
            add_visit(db, T10 + 3600 + 10 + i)
        outbox = Outbox(db)
        produce(db, site, outbox, SyncSettings(5, 900, None, None), T10 + 3600 + settle)
        produce(db, site, outbox, SyncSettings(5, 3600, None, None), T10 + 7200 + settle)
        return {start: (seconds, json.loads(payload)) for start, seconds, payload in
                db.execute("select window_start, window_s, payload from sync_outbox")}

    sent = two_hours([6, 2, 6, 7])
    assert [(seconds, m["visits"]["count"]) for _, (seconds, m) in sorted(sent.items())] == [
        (900, 6), (900, None), (900, 6), (900, 7), (3600, 10)]
    last = sent[T10 + 3600][1]
    (cell,) = last["conversion"]
    assert cell["transactions"] == 9 and cell["visits"] is None and cell["rate"] is None
    assert last["suppressed"]["conversion"] == 1
    # Every window published: the period is their sum, and is published.
    (cell,) = two_hours([6, 5, 6, 7])[T10 + 3600][1]["conversion"]
    assert cell["visits"] == 34


def test_queue_in_the_aggregates_needs_k_waiting_visits(memory_db):
    site = scenario_site()
    db = memory_db
    window = Window(T10, 900)
    ids = [add_visit(db, T10 + 100 + i) for i in range(10)]  # 5 of 10 waited
    waits = [30.0, 60.0, 90.0, 120.0, 150.0]
    for visit_id, wait in zip(ids, waits, strict=False):
        db["visit_queue_waits"].insert({"visit_id": visit_id, "queue_zone": "till-queue",
                                        "checkout_zone": "checkout", "joined_t": T10,
                                        "reached_t": T10 + wait, "wait_s": wait})
    queue = message(db, site, window)["queue"]
    assert queue["waits"] == 5 and queue["wait_p50_s"] == 90.0 and queue["wait_p90_s"] == 138.0
    db.execute("delete from visit_queue_waits where visit_id = ?", [ids[0]])
    built = message(db, site, window)
    assert built["queue"] == {"waits": None, "wait_p50_s": None, "wait_p90_s": None,
                              "length_mean": None, "length_max": None}
    assert message(db, load_site(PETS_SITE), window)["queue"] is None  # no queue zone
