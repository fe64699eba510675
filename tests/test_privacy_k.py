"""k, the minimum publishable count: 5 by default, and no path sets it below 2 (the site
file, a ${VAR} in it, a downlink, a local override row, the suppression and the check on
the way out). A downlinked k is in the privacy audit log with its old value.

(The check on every published message and the suppression rules themselves are in
tests/test_sync_aggregate.py; refused downlinks change nothing: tests/test_sync_downlink.py.)"""

from __future__ import annotations

import itertools

import pytest

from edge.config import load_site
from edge.errors import ConfigError
from edge.privacy.settings import K_SETTING, record_service_start
from edge.privacy.store import read_audit_log
from sync import kanon
from sync.downlink import DownlinkContext, config_body, handle_config_set, sign_body
from sync.errors import PrivacyError
from sync.settings import effective_settings
from tests.conftest import PETS_SITE
from tests.support.sync_helpers import STORE, sync_site

KEY = "k" * 16 + "-test-downlink-key-0123456789"
NOW = 1_709_288_100.0


ISSUED = itertools.count(1)  # each downlink issued after the last (older ones are superseded)


def downlink(db, k, site_k: int = 5) -> str:
    issued = NOW + next(ISSUED)
    body = config_body(STORE, {"min_publishable_count": k}, issued_at=issued)
    result = handle_config_set(sign_body(body, KEY), DownlinkContext(
        db, STORE, KEY, max_age_s=300, now=issued, site_k=site_k))
    return result.status


def test_the_default_is_five():
    assert sync_site().privacy.min_publishable_count == 5


@pytest.mark.parametrize("value, env", [("1", None), ("0", None), ("-3", None),
                                        ("${EDGE_K}", "1")])
def test_the_site_file_cannot_set_k_below_two(tmp_path, monkeypatch, value, env):
    if env is not None:
        monkeypatch.setenv("EDGE_K", env)
    path = tmp_path / "site.yaml"
    path.write_text(PETS_SITE.read_text() + f"\nprivacy:\n  min_publishable_count: {value}\n")
    line = len(PETS_SITE.read_text().splitlines()) + 3
    with pytest.raises(ConfigError, match=rf"site.yaml:{line}.*privacy.min_publishable_count"):
        load_site(path)


@pytest.mark.parametrize("k", [1, 0, -1])
def test_a_downlink_cannot_set_k_below_two_and_leaves_no_audit_row(memory_db, k):
    site = sync_site()
    record_service_start(memory_db, site, "service:sync", now=NOW)
    before = read_audit_log(memory_db)
    assert downlink(memory_db, k) == "refused"
    assert effective_settings(memory_db, site).k == 5
    assert read_audit_log(memory_db) == before


def test_a_downlinked_k_is_audited_with_its_old_value(memory_db):
    site = sync_site()
    record_service_start(memory_db, site, "service:sync", now=NOW)
    assert downlink(memory_db, 8) == "applied"
    latest = read_audit_log(memory_db)[0]
    assert (latest["setting"], latest["old"], latest["new"]) == (K_SETTING, 5, 8)
    assert latest["source"].startswith("downlink ")
    assert effective_settings(memory_db, site).k == 8
    # The service restarting with the override in force records nothing new.
    assert record_service_start(memory_db, site, "service:sync", now=NOW + 60) == []


def test_a_local_override_row_and_the_suppression_refuse_k_below_two(memory_db):
    memory_db.execute("insert into sync_overrides (key, value, updated_at, nonce) values "
                      "('min_publishable_count', '0', 0, 'x')")
    assert effective_settings(memory_db, sync_site()).k == 5     # the site's own k
    site = sync_site()
    lowest = site.model_copy(update={
        "privacy": site.privacy.model_copy(update={"min_publishable_count": 2})})
    assert effective_settings(memory_db, lowest).k == 2
    with pytest.raises(PrivacyError):
        kanon.suppress({"k": None, "suppressed": {}}, 1)
    with pytest.raises(PrivacyError, match="below the floor"):
        kanon.assert_k_anonymous({"id": "x", "k": 1}, 1)


def test_a_downlink_may_raise_k_but_never_below_the_store_s_own(memory_db):
    """Reviewer's report: a signed downlink could lower k below the site file's (down to
    2), although the store's k is what its data protection assessment committed to, and
    the page followed it. The site's k is now the floor: lower is refused, and a row
    below it (written before) is read as the site's k."""
    site = sync_site()
    record_service_start(memory_db, site, "service:sync", now=NOW)
    assert downlink(memory_db, 3) == "refused"
    assert effective_settings(memory_db, site).k == 5
    assert downlink(memory_db, 8) == "applied"
    assert effective_settings(memory_db, site).k == 8
    assert downlink(memory_db, 5) == "applied"          # back down to the store's own
    assert effective_settings(memory_db, site).k == 5
    memory_db.execute("update sync_overrides set value = '3' "
                      "where key = 'min_publishable_count'")
    assert effective_settings(memory_db, site).k == 5
