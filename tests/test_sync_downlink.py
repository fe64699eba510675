"""Signed config downlink (refused unless authentic, fresh, new and valid; applied whole),
and the ``sync:`` config section."""

from __future__ import annotations

import json
import logging

import pytest

from edge.config import parse_site
from edge.errors import ConfigError
from sync.downlink import DownlinkContext, config_body, handle_config_set, sign_body
from sync.mqtt_client import tls_context
from sync.settings import effective_settings, read_overrides
from tests.conftest import PETS_SITE
from tests.support.sync_helpers import STORE, site_text, sync_site

KEY = "k" * 16 + "-test-downlink-key-0123456789"
NOW = 1_709_288_100.0


def context(db, now=NOW, key=KEY):
    return DownlinkContext(db, STORE, key, max_age_s=300, now=now)


def signed(changes, *, store=STORE, issued_at=NOW, nonce=None, key=KEY) -> bytes:
    return sign_body(config_body(store, changes, issued_at=issued_at, nonce=nonce), key)


def overrides_and_nonces(db):
    return (
        read_overrides(db),
        db.execute("select count(*) from sync_downlink_nonces").fetchone()[0],
    )


def shipped_spec(version: str, unknown_feature: bool = False) -> dict:
    """The shipped default segment spec as a downlink would carry it (JSON)."""
    import yaml

    from edge.visits.spec import default_spec_path

    spec = yaml.safe_load(default_spec_path().read_text())
    spec["spec_version"] = version
    if unknown_feature:
        spec["traits"]["wanderer"]["terms"][0]["feature"] = "no_such_feature"
    return spec


def test_a_signed_downlink_is_applied_whole_and_persisted(tmp_path):
    from edge.runtime.schema import open_database

    path = tmp_path / "edge.db"
    db = open_database(path)
    site = sync_site()
    spec = shipped_spec("2024.2")
    result = handle_config_set(
        signed({"min_publishable_count": 7, "window_s": 1800, "segment_spec": spec}), context(db)
    )
    assert result.status == "applied", result.reason
    assert result.changed == ("min_publishable_count", "segment_spec", "window_s")
    db.close()
    again = open_database(path)  # persisted: every service reads the same after a restart
    settings = effective_settings(again, site)
    assert (settings.k, settings.window_s, settings.segment_spec_version) == (7, 1800, "2024.2")
    assert read_overrides(again)["segment_spec"] == spec
    # handed to the visits service, which prefers it to the site's spec
    from edge.visits.spec import downlinked_spec_path, read_spec

    assert read_spec(downlinked_spec_path())[0].spec_version == "2024.2"


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"\xff\xfenot json", "message is not UTF-8"),
        (b"{not json", "message is not JSON"),
        (b"[1, 2]", "downlink message is invalid at (top level)"),
        (
            json.dumps({"body": "{}", "signature": "0" * 64, "extra": 1}).encode(),
            "Additional properties",
        ),
        (json.dumps({"body": "{}", "signature": "xyz"}).encode(), "signature"),
    ],
)
def test_malformed_downlinks_are_refused(memory_db, caplog, payload, reason):
    with caplog.at_level(logging.WARNING, logger="sync"):
        result = handle_config_set(payload, context(memory_db))
    assert result.status == "refused" and reason in result.reason
    assert "Refused a config downlink" in caplog.text
    assert overrides_and_nonces(memory_db) == ({}, 0)


def test_bad_signature_wrong_key_or_altered_body_is_refused(memory_db):
    wrong_key = signed({"min_publishable_count": 9}, key="x" * 40)
    result = handle_config_set(wrong_key, context(memory_db))
    assert result.status == "refused" and "bad signature" in result.reason
    envelope = json.loads(signed({"min_publishable_count": 9}))
    envelope["body"] = envelope["body"].replace("9", "2")  # tampered on the way
    result = handle_config_set(json.dumps(envelope).encode(), context(memory_db))
    assert "bad signature" in result.reason
    assert overrides_and_nonces(memory_db) == ({}, 0)


def test_a_replayed_downlink_is_refused(memory_db):
    message = signed({"min_publishable_count": 6}, nonce="nonce-0123456789abcdef")
    assert handle_config_set(message, context(memory_db)).status == "applied"
    # The one in force, delivered again (a retained config/set at every connection):
    # ignored, not reported as a refusal, however old it is.
    again = handle_config_set(message, context(memory_db, now=NOW + 5))
    assert again.status == "ignored" and "already in force" in again.reason
    assert handle_config_set(message, context(memory_db, now=NOW + 3600)).status == "ignored"
    newer = signed({"min_publishable_count": 7}, issued_at=NOW + 10)
    assert handle_config_set(newer, context(memory_db, now=NOW + 10)).status == "applied"
    replayed = handle_config_set(message, context(memory_db, now=NOW + 20))
    assert replayed.status == "refused" and "already used (replayed message)" in replayed.reason
    # Once the nonce is forgotten the timestamp still refuses it.
    memory_db.execute("delete from sync_downlink_nonces")
    late = handle_config_set(message, context(memory_db, now=NOW + 301))
    assert late.status == "refused" and "outside +-300 s" in late.reason


def test_a_retained_downlink_does_not_turn_the_state_into_a_refusal(tmp_path):
    """A retained config/set came back at every reconnection and replaced the retained
    config/state 'applied' with 'refused: replayed'."""
    from edge.runtime.schema import open_database
    from sync.contract import CONFIG_SET
    from sync.publisher import SyncService
    from tests.support.net import free_port

    site = sync_site(window_s=900, downlink_key=KEY,
                     mqtt={"host": "127.0.0.1", "port": free_port()})
    db = open_database(tmp_path / "edge.db")
    message = signed({"min_publishable_count": 9}, issued_at=NOW)
    for session in range(2):  # a service, then the same box restarted
        service = SyncService(site, db, clock=lambda: NOW + 1)
        for _ in range(2):  # delivered twice in a session (a reconnection)
            service.downlinks.put((CONFIG_SET, message))
            service.run_pass()
            expected = "applied" if session == 0 else None
            assert (service.last_downlink.status if service.last_downlink else None) == expected
    assert effective_settings(db, site).k == 9


@pytest.mark.parametrize(
    "changes, kwargs, reason",
    [
        (
            {"min_publishable_count": 1},
            {},
            "set.min_publishable_count: 1 is less than the minimum of 2",
        ),
        ({"min_publishable_count": 6, "window_s": 7000}, {}, "window_s must divide a day"),
        (
            {"min_publishable_count": 6, "segment_spec": {"segments": []}},
            {},
            "'spec_version' is a required",
        ),
        ({"min_publishable_count": 6, "segment_spec": {"spec_version": ""}}, {},
         "should be non-empty"),
        (
            {"min_publishable_count": 6, "segment_spec": shipped_spec("9.0", unknown_feature=True)},
            {},
            "no_such_feature",
        ),
        ({"min_publishable_count": 6, "colour": "red"}, {}, "Additional properties"),
        ({}, {}, "should be non-empty"),
        (
            {"min_publishable_count": 6},
            {"store": "other-store"},
            "addressed to store 'other-store'",
        ),
        ({"min_publishable_count": 6}, {"issued_at": NOW - 3600}, "stale, replayed"),
        ({"min_publishable_count": 6}, {"nonce": "short"}, "nonce"),
    ],
)
def test_invalid_changes_are_refused_and_nothing_is_half_applied(
    memory_db, changes, kwargs, reason
):
    # an earlier valid change (issued earlier: one issued at the same time is superseded)
    handle_config_set(signed({"window_s": 600}, issued_at=NOW - 10), context(memory_db))
    before = overrides_and_nonces(memory_db)
    result = handle_config_set(signed(changes, **kwargs), context(memory_db))
    assert result.status == "refused"
    assert reason in result.reason, result.reason
    assert overrides_and_nonces(memory_db) == before  # k untouched even when it was valid


def test_other_schema_versions_are_refused(memory_db):
    body = config_body(STORE, {"min_publishable_count": 6}, issued_at=NOW)
    body["schema_version"] = "2.0"
    result = handle_config_set(sign_body(body, KEY), context(memory_db))
    assert result.status == "refused" and "speaks 1.x" in result.reason


def test_downlink_without_a_provisioned_key_is_refused(memory_db):
    result = handle_config_set(signed({"min_publishable_count": 6}), context(memory_db, key=None))
    assert result.status == "refused" and "disabled" in result.reason


def test_a_local_override_row_cannot_push_k_below_the_site_s_own(memory_db):
    memory_db.execute(
        "insert into sync_overrides (key, value, updated_at, nonce) values "
        "('min_publishable_count', '1', 0, 'x')"
    )
    assert effective_settings(memory_db, sync_site()).k == 5


# --- the sync: config section -----------------------------------------------------------


def test_sync_section_defaults_and_secret_substitution(monkeypatch):
    monkeypatch.setenv("EDGE_TEST_MQTT_PASSWORD", "s3cret")
    monkeypatch.setenv("EDGE_TEST_DOWNLINK_KEY", KEY)
    site = sync_site(
        mqtt={"username": "store", "password": "${EDGE_TEST_MQTT_PASSWORD}"},
        downlink_key="${EDGE_TEST_DOWNLINK_KEY}",
    )
    assert site.sync.mqtt.password == "s3cret" and site.sync.downlink_key == KEY
    assert site.sync.window_s == 900 and site.privacy.min_publishable_count == 5
    assert parse_site(PETS_SITE.read_text()).sync.enabled


@pytest.mark.parametrize(
    "sync, message",
    [
        ({"window_s": 700}, "window_s must divide a day"),
        (
            {"mqtt": {"tls": {"ca_file": "/nonexistent/ca.pem"}}},
            "sync.mqtt.tls.ca_file: TLS file /nonexistent/ca.pem does not exist",
        ),
        ({"mqtt": {"password": "x"}}, "mqtt.password is set but mqtt.username is not"),
        ({"mqtt": {"port": 70000}}, "sync.mqtt.port"),
        ({"downlink_key": "short"}, "sync.downlink_key"),
        ({"mqtt": {"topic_prefix": "a/#"}}, "sync.mqtt.topic_prefix"),
        ({"colour": "red"}, "sync.colour: Extra inputs are not permitted"),
    ],
)
def test_bad_sync_config_is_a_clear_line_numbered_error(sync, message):
    with pytest.raises(ConfigError) as error:
        parse_site(site_text(**sync), source="site.yaml")
    assert message in str(error.value)
    assert "site.yaml:" in str(error.value)


def test_a_ca_file_that_is_not_a_certificate_is_a_config_error(tmp_path):
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate\n")
    site = sync_site(mqtt={"tls": {"ca_file": str(garbage)}})
    with pytest.raises(
        ConfigError, match=r"sync.mqtt.tls.ca_file .*ca.pem: not a readable PEM CA bundle"
    ):
        tls_context(site.sync.mqtt.tls)


def test_an_older_downlink_arriving_after_a_newer_one_is_refused_as_superseded(memory_db):
    """Two signed downlinks delivered out of order: the older one (k=20, issued first)
    was applied after the newer correction (k=8) and overrode it."""
    newer = signed({"min_publishable_count": 8}, issued_at=NOW - 60)
    older = signed({"min_publishable_count": 20}, issued_at=NOW - 120)
    assert handle_config_set(newer, context(memory_db)).status == "applied"
    result = handle_config_set(older, context(memory_db))
    assert result.status == "refused" and result.reason.startswith("superseded: issued at")
    assert result.nonce is not None
    assert read_overrides(memory_db) == {"min_publishable_count": 8}
    same_time = signed({"window_s": 3600}, issued_at=NOW - 60)  # not newer either
    assert handle_config_set(same_time, context(memory_db)).reason.startswith("superseded")
    later = signed({"window_s": 3600}, issued_at=NOW - 30)
    assert handle_config_set(later, context(memory_db)).status == "applied"
    assert read_overrides(memory_db) == {"min_publishable_count": 8, "window_s": 3600}


def test_a_signed_null_segment_spec_goes_back_to_the_site_s_spec(memory_db):
    """Regression: once a spec was downlinked the box could never go back to its own or
    the shipped spec: `segment_spec: null` was refused and nothing removed
    segment-spec.downlink.yaml, so newer shipped specs were shadowed for ever. A signed
    null now clears it, is kept like every change, and the visits service reloads."""
    from edge.visits.analysis import VisitAnalyzer
    from edge.visits.scenarios import scenario_site
    from edge.visits.spec import downlinked_spec_path

    analyzer = VisitAnalyzer(scenario_site())
    shipped = analyzer.spec.spec_version
    applied = handle_config_set(signed({"segment_spec": shipped_spec("2024.9")}),
                                context(memory_db))
    assert applied.status == "applied", applied.reason
    assert analyzer.spec.maybe_reload(force=True) and analyzer.spec.spec_version == "2024.9"

    cleared = handle_config_set(signed({"segment_spec": None}, issued_at=NOW + 1),
                                context(memory_db, now=NOW + 1))
    assert (cleared.status, cleared.changed) == ("applied", ("segment_spec",)), cleared.reason
    assert not downlinked_spec_path().exists()
    assert analyzer.spec.maybe_reload() or analyzer.spec.maybe_reload(force=True)
    assert analyzer.spec.spec_version == shipped
    assert effective_settings(memory_db, sync_site()).segment_spec_version is None
    row = memory_db.execute("select value, nonce from sync_overrides where key = "
                            "'segment_spec'").fetchone()
    assert json.loads(row[0]) is None and row[1] == cleared.nonce  # kept, with its nonce
    # an empty object is still no spec
    refused = handle_config_set(signed({"segment_spec": {}}, issued_at=NOW + 2),
                                context(memory_db, now=NOW + 2))
    assert refused.status == "refused"


def big_spec(components: int, features: int) -> dict:
    from edge.visits.features import BASE_FEATURES

    names = list(BASE_FEATURES)[:features]
    spec = shipped_spec("3.0.0")
    spec["segments"] = {
        "features": names, "center": [0.5] * features, "scale": [1.25] * features,
        "components": [{"name": f"s{j}", "weight": 1.0, "mean": [0.123] * features,
                        "var": [1.0] * features} for j in range(components)]}
    return spec


def test_a_spec_whose_day_aggregate_would_pass_the_broker_limit_is_refused(memory_db):
    """Regression: a 28.7 kB downlinked spec (100 segments x 20 features) made the
    aggregate that closes the day 85,257 bytes, over the broker's message_size_limit
    70000 that docs/mqtt.md recommends; the publisher retried it for ever."""
    from sync.settings import SPEC_AGGREGATE_BUDGET_BYTES, spec_aggregate_bytes

    refused = handle_config_set(signed({"segment_spec": big_spec(100, 20)}), context(memory_db))
    assert refused.status == "refused"
    assert refused.reason.startswith(
        "set.segment_spec: too big for the aggregates: up to ") and len(refused.reason) < 200
    assert "(100 segments x 20 features, 4 traits), over 40,000 of the 70,000-byte broker " \
        "limit" in refused.reason
    assert overrides_and_nonces(memory_db) == ({}, 0)
    # the shipped spec and a richer one well inside the budget still go through
    from edge.visits.spec import parse_spec
    assert spec_aggregate_bytes(parse_spec(json.dumps(shipped_spec("1.0")), source="s")) < 4000
    applied = handle_config_set(signed({"segment_spec": big_spec(20, 12)}), context(memory_db))
    assert applied.status == "applied", applied.reason
    assert spec_aggregate_bytes(parse_spec(json.dumps(big_spec(20, 12)), source="s")) \
        < SPEC_AGGREGATE_BUDGET_BYTES
