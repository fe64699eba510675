"""``edge status``: what IT sees on the box, and its exit status (for monitoring)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge.cli import cli
from edge.runtime.schema import open_database
from edge.storage.health import read_health, report_health
from tests.support.live_site import live_site_yaml

pytestmark = pytest.mark.system


def status(config, *args):
    return CliRunner().invoke(cli, ["status", "--config", str(config), *args])


def test_all_ok_exits_0(tmp_path):
    config = live_site_yaml(tmp_path, "usb:0")
    db = open_database(tmp_path / "state" / "edge.db")
    report_health(db, "camera:view001", "ok", "Camera view001 is working.", {"fps": 4.0})
    report_health(db, "sync", "ok", "Connected. 0 aggregates waiting, 3 delivered.")
    report_health(db, "web", "ok", "The status page is answering at http://127.0.0.1:8080.")
    result = status(config)
    assert result.exit_code == 0, result.output
    assert "ok  camera:view001       Camera view001 is working. (updated 0 s ago)" in result.output


def test_down_silent_and_missing_exit_1(tmp_path):
    web = {"access": "open-lan", "health_stale_s": 60}
    config = live_site_yaml(tmp_path, "usb:0", sections={"web": web,
                                                         "wifi": {"interface": "wlan1"}})
    db = open_database(tmp_path / "state" / "edge.db")
    report_health(db, "sync", "ok", "Connected.")
    # The sync was killed an hour ago: its last word was "ok".
    db.execute("update health set updated_at = ? where component = 'sync'", [time.time() - 3600])
    report_health(db, "wifi:wlan1", "down", "The interface left monitor mode.")
    result = status(config)
    assert result.exit_code == 1
    assert "silent  sync                 Connected. (updated 60 min ago)" in result.output
    assert "down  wifi:wlan1" in result.output
    assert "camera:view001       has never reported; is its service running?" in result.output
    summary = json.loads(status(config, "--json").output)
    assert {c["component"]: c["status"] for c in summary["components"]} == {
        "sync": "silent", "wifi:wlan1": "down"}
    assert summary["missing"] == ["camera:view001", "web"]


def test_database_size_counts_its_wal_like_the_status_page(tmp_path):
    """Regression: `edge status` said 0.0 MB while the page said 2.5 MB: in WAL mode the
    recent writes are in edge.db-wal until a checkpoint, and status read edge.db only."""
    config = live_site_yaml(tmp_path, "usb:0")
    path = tmp_path / "elsewhere" / "store.db"  # not the default: --db chooses it
    path.parent.mkdir()
    db = open_database(path)
    db.execute("pragma wal_autocheckpoint = 0")  # keep everything in the WAL
    with db.atomic():
        db["filler"].insert_all({"blob": bytes(1000)} for _ in range(2500))
    wal = path.with_name("store.db-wal").stat().st_size
    shm = path.with_name("store.db-shm").stat().st_size
    assert wal > 2_000_000 and path.stat().st_size < 500_000
    summary = json.loads(status(config, "--json", "--db", str(path)).output)
    assert summary["database"] == str(path)
    assert summary["database_mb"] == round((path.stat().st_size + wal + shm) / 1e6, 1)
    assert summary["database_mb"] >= 2.0
    text = status(config, "--db", str(path)).output
    assert f"Database {path}: {summary['database_mb']} MB" in text


def test_a_missing_database_is_0_mb(tmp_path):
    from edge.storage.database import database_bytes

    assert database_bytes(tmp_path / "none.db") is None
    # The site's own database before any service created it (a --db that is not there
    # is a mistyped path: below).
    config = live_site_yaml(tmp_path, "usb:0")
    assert not (tmp_path / "state" / "edge.db").exists()
    summary = json.loads(status(config, "--json").output)
    assert summary["database_mb"] == 0.0 and summary["components"] == []


def test_status_needs_no_web_pin(tmp_path, monkeypatch):
    """Regression (issue 18 #13): on an installed box `edge status` stopped with
    "${EDGE_WEB_PIN} ... not set": IT's shell cannot read the services' credentials,
    and status only reads health."""
    monkeypatch.delenv("EDGE_WEB_PIN", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    config = live_site_yaml(tmp_path, "usb:0", sections={
        "web": {"access": "pin", "pin": "${EDGE_WEB_PIN}"}})
    db = open_database(tmp_path / "state" / "edge.db")
    report_health(db, "camera:view001", "ok", "Camera view001 is working.", {"fps": 4.0})
    report_health(db, "web", "ok", "The status page is answering.")
    result = status(config)
    assert result.exit_code == 0, result.output
    assert "EDGE_WEB_PIN" not in result.output
    assert "ok  web" in result.output


def test_status_has_a_row_for_the_status_page(tmp_path):
    """Regression (issue 18 #13): `edge status` listed cameras, sync and Wi-Fi but never
    the status page. Its service now reports health from its watchdog thread (which
    asks the page's /healthz), and status expects that row."""
    import threading

    from edge.config import load_site
    from edge.runtime.services import _watch_web, _web_health_reporter
    from edge.runtime.systemd_notify import ServiceNotifier
    from edge.web.app import create_app
    from edge.web.dashboard import WebDeps
    from tests.support.web_support import served

    config = live_site_yaml(tmp_path, "usb:0")
    site = load_site(config)
    db_path = tmp_path / "state" / "edge.db"
    db = open_database(db_path)
    report_health(db, "camera:view001", "ok", "Camera view001 is working.")
    before = status(config)
    assert before.exit_code == 1
    assert "web                  has never reported; is its service running?" in before.output

    done = threading.Event()
    with served(create_app(WebDeps(site=site, db_path=db_path))) as base:
        watcher = threading.Thread(target=_watch_web, daemon=True, args=(
            f"{base}/healthz", ServiceNotifier(), done, _web_health_reporter(site, db_path), 0.1))
        watcher.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
                row["component"] == "web" for row in read_health(db)):
            time.sleep(0.05)
    time.sleep(0.5)  # the page is gone: the next round says so
    done.set()
    watcher.join(5)
    after = status(config)
    (web,) = [row for row in read_health(db) if row["component"] == "web"]
    assert web["status"] == "down" and "stopped answering" in web["message"], web
    assert "down  web" in after.output and "has never reported" not in after.output


def test_a_mistyped_db_is_named_not_blamed_on_the_services(tmp_path):
    """Reviewer's report: `edge status --db typo.db` printed "0.0 MB" and "has never
    reported; is its service running?", sending IT to the services for a wrong path."""
    config = live_site_yaml(tmp_path, "usb:0")
    typo = tmp_path / "state" / "egde.db"
    result = status(config, "--db", str(typo))
    assert result.exit_code != 0
    assert f"database {typo} does not exist; check the path given to --db" in result.output
    assert "never reported" not in result.output
    # The site's own database before any service started: the services are the news.
    fresh = status(config)
    assert fresh.exit_code == 1 and "has never reported" in fresh.output


def test_commands_run_by_hand_on_an_installed_box_use_the_services_state(tmp_path, monkeypatch):
    """Reviewer's report: `edge status` or `edge purge`, run by store IT from /root,
    read ./var/edge.db (and created it), not the services' /var/lib/store-edge: the
    status said no camera had ever reported, and the purge deleted nothing."""
    import edge.assets
    import edge.paths

    config, state = tmp_path / "etc" / "site.yaml", tmp_path / "var-lib"
    monkeypatch.setattr(edge.paths, "INSTALLED_CONFIG", config)
    monkeypatch.setattr(edge.paths, "INSTALLED_STATE_DIR", state)
    monkeypatch.delenv("EDGE_STATE_DIR", raising=False)
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.delenv("EDGE_MODEL_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert edge.paths.state_dir() == tmp_path / "var"  # a checkout: no installed box
    config.parent.mkdir()
    config.write_text("site: {id: s}\n")
    state.mkdir()
    assert edge.paths.state_dir() == state
    assert edge.assets.model_store() == state / "models"
    monkeypatch.setenv("EDGE_STATE_DIR", str(tmp_path / "mine"))
    assert edge.paths.state_dir() == tmp_path / "mine"  # the variable still wins


def test_rows_of_what_the_config_no_longer_runs_are_listed_apart(tmp_path):
    """Reviewer's report: after going from two cameras to one, `edge status` listed
    `down fusion` (and the removed camera's last row) and exited 1 for good: nothing
    deletes a health row, and status read them all."""
    config = live_site_yaml(tmp_path, "usb:0")  # one camera: view001
    db = open_database(tmp_path / "state" / "edge.db")
    report_health(db, "camera:view002", "down", "Camera view002 stopped.")
    report_health(db, "fusion", "down", "Counting across cameras stopped.")
    report_health(db, "wifi:wlan1", "down", "Wi-Fi counting stopped.")  # no wifi: section
    db.execute("update health set updated_at = ?", [time.time() - 7200])
    report_health(db, "camera:view001", "ok", "Camera view001 is working.")
    report_health(db, "web", "ok", "The status page is answering.")
    result = status(config)
    assert result.exit_code == 0, result.output
    assert "down  fusion" not in result.output
    assert ("ignored  fusion               is no longer in the site config (last report "
            "2.0 h ago: down)") in result.output
    summary = json.loads(status(config, "--json").output)
    assert [row["component"] for row in summary["components"]] == ["camera:view001", "web"]
    assert [row["component"] for row in summary["not_configured"]] == [
        "camera:view002", "fusion", "wifi:wlan1"]
    assert summary["missing"] == []


@pytest.fixture
def unreadable_etc(tmp_path, monkeypatch):
    """A stand-in for /etc/store-edge that IT's login may not look into (the installer's
    0750 root:store-edge), with the installed config inside; root ignores modes, so there
    ``os.stat`` (which ``Path.is_file`` calls) answers for it as the kernel would."""
    import edge.paths

    etc = tmp_path / "etc-store-edge"
    etc.mkdir()
    (etc / "site.yaml").write_text("site: {id: s}\n")
    monkeypatch.setattr(edge.paths, "INSTALLED_CONFIG", etc / "site.yaml")
    monkeypatch.setattr(edge.paths, "INSTALLED_STATE_DIR", tmp_path / "var-lib")
    for name in ("EDGE_CONFIG", "EDGE_STATE_DIR", "STATE_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    etc.chmod(0)
    if os.geteuid() == 0:
        real_stat = os.stat

        def stat(path, *args, **kwargs):
            if isinstance(path, str | Path) and Path(path).is_relative_to(etc) \
                    and Path(path) != etc:
                raise PermissionError(13, "Permission denied", str(path))
            return real_stat(path, *args, **kwargs)

        monkeypatch.setattr(os, "stat", stat)
    try:
        yield etc
    finally:
        etc.chmod(0o750)


@pytest.mark.parametrize(("command", "code"), [("status", 1), ("purge", 78)])
def test_commands_run_without_sudo_say_so_in_one_line(unreadable_etc, command, code):
    """Reviewer's report: `edge status` (and `edge purge`) run by IT without sudo on an
    installed box stopped with a traceback, PermissionError on /etc/store-edge/site.yaml
    (Python 3.11's Path.is_file raises it)."""
    result = CliRunner().invoke(cli, [command])
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == code
    assert result.output == (
        f"Error: cannot read {unreadable_etc / 'site.yaml'}: permission denied (the box's "
        "config and database are the store-edge service's); run the command with sudo, "
        "e.g. `sudo edge status`\n")
