"""Hostile and broken downlinks: each one is refused with one log line and a short reason,
none crashes the sync service, and a refused downlink leaves nothing applied (the segment
spec file included)."""

from __future__ import annotations

import json
import logging

import pytest

from sync.downlink import config_body, handle_config_set, sign_body
from sync.settings import OverrideChanges, apply_changes, read_overrides
from tests.support.mqtt_broker import broker_fixture  # noqa: F401 (fixture)
from tests.support.sync_helpers import STORE, sync_site
from tests.test_sync_downlink import KEY, NOW, context, overrides_and_nonces, shipped_spec

pytestmark = pytest.mark.system

ZEROS = "0" * 64
DEEP = "[" * 30000 + "]" * 30000
# The reviewer's crash: an unsigned envelope whose body holds a lone surrogate escape.
SURROGATE = b'{"body":"\\ud800ab","signature":"' + ZEROS.encode() + b'"}'


def signed_text(text: str, key: str = KEY) -> bytes:
    """An envelope whose body is ``text`` exactly, correctly signed (the key holder's mistakes)."""
    import hashlib
    import hmac

    signature = hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()
    return json.dumps({"body": text, "signature": signature}).encode()


def body_text(**fields) -> str:
    body = config_body(STORE, {"min_publishable_count": 6}, issued_at=NOW)
    body.update(fields)
    return json.dumps(body)


HOSTILE = [
    pytest.param(SURROGATE, "surrogate", id="lone-surrogate-in-body"),
    pytest.param(b'{"\\udfff":1}', "surrogate", id="lone-surrogate-in-a-key"),
    pytest.param(DEEP.encode(), "nested", id="deeply-nested-envelope"),
    pytest.param(b'{"body":' * 40 + b"1" + b"}" * 40, "nested", id="nested-objects"),
    pytest.param(b'{"body":"{}","signature":' + b"1" * 5000 + b"}", "not JSON",
                 id="integer-of-5000-digits"),
    pytest.param(b'{"body":"{}","signature":NaN}', "not JSON", id="nan"),
    pytest.param(b'{"body":"{}","signature":1e400}', "not JSON", id="infinite-float"),
    pytest.param("{\"body\":\"é\"}".encode("utf-16"), "not UTF-8", id="utf-16"),
    pytest.param(b'{"body":"\xed\xa0\x80","signature":"' + ZEROS.encode() + b'"}', "not UTF-8",
                 id="encoded-surrogate-bytes"),
    pytest.param(b"\x00" * 10, "not JSON", id="nul-bytes"),
    pytest.param(b"", "not JSON", id="empty"),
    # Signed with the right key, still malformed: the body is checked just as strictly.
    pytest.param(signed_text(DEEP[:40_000]), "nested", id="signed-deep-body"),
    pytest.param(signed_text('{"store":"\\ud800"}'), "surrogate", id="signed-surrogate-body"),
    pytest.param(signed_text(body_text(issued_at=10**4000)), "issued_at",
                 id="signed-issued-at-overflows-a-float"),
    pytest.param(signed_text(body_text().replace(str(NOW), "NaN")), "not JSON",
                 id="signed-issued-at-nan"),
    pytest.param(signed_text(body_text(issued_at=-1e300)), "issued_at",
                 id="signed-issued-at-absurd"),
    pytest.param(signed_text("[]"), "invalid at (top level)", id="signed-array-body"),
]


@pytest.mark.parametrize("payload, reason", HOSTILE)
def test_hostile_downlinks_are_refused_with_one_line(memory_db, caplog, payload, reason):
    """Field failure: an unsigned `{"body":"\\ud800ab",...}` on config/set raised
    UnicodeEncodeError before the signature check, and killed `edge sync run` at every
    restart while it stayed retained; deep nesting raised RecursionError the same way."""
    with caplog.at_level(logging.INFO, logger="sync"):
        result = handle_config_set(payload, context(memory_db))
    assert result.status == "refused"
    assert reason in result.reason, result.reason
    assert len(result.reason) <= 200 and "\n" not in result.reason
    result.reason.encode()  # publishable as UTF-8
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert record.getMessage().startswith("Refused a config downlink: ")
    assert overrides_and_nonces(memory_db) == ({}, 0)


def test_a_legitimate_spec_is_well_within_the_nesting_bound(memory_db):
    spec = shipped_spec("2024.4")
    result = handle_config_set(
        sign_body(config_body(STORE, {"segment_spec": spec}, issued_at=NOW), KEY),
        context(memory_db),
    )
    assert result.status == "applied", result.reason


def test_a_refusal_reason_is_one_short_line_in_the_log_and_the_state(memory_db, caplog):
    """Field failure: a spec with a bad spec_version copied the whole spec (5 kB, up to 64 kB)
    into the log line and the retained config/state reason."""
    spec = shipped_spec("review-9")
    message = sign_body(config_body(STORE, {"segment_spec": spec}, issued_at=NOW), KEY)
    with caplog.at_level(logging.WARNING, logger="sync"):
        result = handle_config_set(message, context(memory_db))
    assert result.status == "refused" and "spec_version" in result.reason
    assert len(result.reason) <= 200 and "showroomer" not in result.reason  # no spec copied
    (record,) = caplog.records
    assert len(record.getMessage()) <= 200 + len("Refused a config downlink: ")
    assert len(json.dumps(result.as_state(NOW))) < 400


@pytest.mark.parametrize(
    "text, expected",
    [
        ("short", "short"),
        ("two\nlines\r\n  and\ttabs", "two lines and tabs"),
        ("x" * 500, "x" * 199 + "…"),
        ("bad \ud800 char", "bad \\ud800 char"),
    ],
)
def test_short_reason(text, expected):
    from sync.errors import short_reason

    assert short_reason(text) == expected


def test_a_refusal_for_another_store_reports_the_nonce(memory_db):
    nonce = "other-store-nonce-0123456789"
    message = sign_body(
        config_body("other-store", {"min_publishable_count": 6}, issued_at=NOW, nonce=nonce), KEY
    )
    result = handle_config_set(message, context(memory_db))
    assert result.status == "refused" and "addressed to store 'other-store'" in result.reason
    assert result.nonce == nonce
    # A nonce that is not one (or from an unsigned body) is never echoed.
    bad = handle_config_set(signed_text(body_text(nonce="short")), context(memory_db))
    assert bad.status == "refused" and bad.nonce is None
    forged = json.dumps({"body": body_text(nonce=nonce), "signature": ZEROS}).encode()
    assert handle_config_set(forged, context(memory_db)).nonce is None


# --- all or nothing: the segment spec file and the database rows ------------------------


def abort_nonce_inserts(db) -> None:
    """What the reviewer did: the last write of the transaction fails."""
    db.execute(
        "create trigger fail_nonces before insert on sync_downlink_nonces "
        "begin select raise(abort, 'disk says no'); end"
    )


def test_a_downlink_whose_transaction_fails_leaves_no_spec_file(memory_db, tmp_path):
    """Field failure: the spec file was written before the database rows; when the
    transaction rolled back the file stayed, and the visits service loaded it."""
    from edge.visits.spec import downlinked_spec_path

    abort_nonce_inserts(memory_db)
    spec = shipped_spec("9.0.0")
    message = sign_body(
        config_body(STORE, {"min_publishable_count": 7, "segment_spec": spec}, issued_at=NOW), KEY
    )
    result = handle_config_set(message, context(memory_db))
    assert result.status == "refused" and "not applied" in result.reason
    assert "disk says no" in result.reason
    assert not downlinked_spec_path().exists()
    assert list(downlinked_spec_path().parent.iterdir()) == []  # no temporary file left
    assert read_overrides(memory_db) == {}


def test_a_spec_file_that_cannot_be_put_in_place_undoes_the_rows(memory_db):
    from edge.privacy.settings import K_SETTING
    from edge.privacy.store import last_value
    from edge.visits.spec import downlinked_spec_path

    apply_changes(
        memory_db, OverrideChanges(min_publishable_count=6), nonce="n" * 16, issued_at=0, now=0
    )
    before = read_overrides(memory_db)
    target = downlinked_spec_path()
    (target / "in-the-way").mkdir(parents=True)  # os.replace onto a non-empty folder fails
    message = sign_body(
        config_body(
            STORE, {"min_publishable_count": 9, "segment_spec": shipped_spec("9.1")}, issued_at=NOW
        ),
        KEY,
    )
    result = handle_config_set(message, context(memory_db))
    assert result.status == "refused" and "not applied" in result.reason, result.reason
    assert read_overrides(memory_db) == before
    assert last_value(memory_db, K_SETTING) == (True, 6)  # the audit log says k is back at 6
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]  # no temp file
    assert target.is_dir()


def test_a_downlink_key_that_is_not_utf8_is_refused_not_fatal(memory_db):
    result = handle_config_set(signed_text(body_text()), context(memory_db, key="\udcff" * 40))
    assert result.status == "refused"


def test_no_exception_escapes_the_handler(memory_db, monkeypatch, caplog):
    """Whatever goes wrong inside (a bug), the message is refused and the service lives."""
    import sync.downlink

    def broken(changes):
        raise KeyError("surprise")

    monkeypatch.setattr(sync.downlink, "check_changes", broken)
    message = sign_body(config_body(STORE, {"min_publishable_count": 6}, issued_at=NOW), KEY)
    with caplog.at_level(logging.ERROR, logger="sync"):
        result = handle_config_set(message, context(memory_db))
    assert result.status == "refused" and "internal error" in result.reason
    assert result.nonce is not None
    assert "Could not handle a config downlink" in caplog.text


# --- the service over a real broker ---------------------------------------------------


def test_the_service_outlives_retained_hostile_downlinks(tmp_path, broker):
    """Retained, the surrogate downlink killed `edge sync run` at every restart."""
    import threading

    from edge.runtime.schema import open_database
    from sync.publisher import SyncService
    from tests.support.waiting import wait_for
    from tests.test_sync_mqtt import PREFIX, Listener, mqtt_section

    site = sync_site(downlink_key=KEY, poll_s=0.05, mqtt=mqtt_section(broker.port))
    topic, state_topic = f"{PREFIX}/{STORE}/config/set", f"{PREFIX}/{STORE}/config/state"
    listener = Listener(broker.port, state_topic)
    # Retained before the service starts, as after a crash: it is the first thing it gets.
    listener.client.publish(topic, SURROGATE, qos=1, retain=True).wait_for_publish(5)
    stop = threading.Event()
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            SyncService(site, open_database(tmp_path / "edge.db")).run(stop)
        except BaseException as error:  # what used to end the service
            errors.append(error)

    runner = threading.Thread(target=serve, daemon=True)
    runner.start()

    def states() -> list[dict]:
        return [json.loads(p) for p in listener.payloads(state_topic)]

    def refused(reason: str) -> bool:
        return any(
            (s["last_downlink"] or {}).get("status") == "refused"
            and reason in s["last_downlink"]["reason"]
            for s in states()
        )

    try:
        wait_for(lambda: refused("surrogate") or errors, what="the surrogate refused")
        listener.publish(topic, DEEP.encode())
        wait_for(lambda: refused("nested") or errors, what="the nested array refused")
        good = sign_body(config_body(STORE, {"min_publishable_count": 8}), KEY)
        listener.publish(topic, good)
        wait_for(
            lambda: states()[-1]["settings"]["min_publishable_count"] == 8 or errors,
            what="a good downlink applied after them",
        )
        assert not errors and runner.is_alive()
    finally:
        stop.set()
        runner.join(10)
        listener.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
        listener.close()
