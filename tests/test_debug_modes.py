"""Debug modes (frames or raw addresses kept): off by default, refused under a service,
loud and on the status page while on, in the audit log when they start and stop, cleared
when their process ends (or, killed outright, by `edge privacy debug-modes`)."""

from __future__ import annotations

import logging
import os
import signal
import stat
import subprocess
import sys
import textwrap

import click
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from scapy.utils import RawPcapReader

from edge.cli import cli
from edge.cli.run_commands import _mark_service, run_group
from edge.config.wifi import WifiConfig
from edge.debug_modes import (
    DebugModeRefused,
    announce_debug_mode,
    clear_stale_debug_modes,
    refuse_under_service,
)
from edge.errors import OutputError
from edge.privacy.store import active_debug_modes, read_audit_log
from edge.runtime.schema import open_database
from edge.web.app import create_app
from edge.web.dashboard import WebDeps
from edge.wifi.capture import FrameSource, run_capture
from edge.wifi.debug_capture import RawPcapTee
from edge.wifi.pcapfile import CaptureFile
from edge.wifi.pipeline import FramePipeline
from tests.conftest import PETS_SITE, SINGLE_PHONES

pytestmark = pytest.mark.system

IPHONE = SINGLE_PHONES / "iPhone7-F_anonymized.pcap"
SERVICE_ENV = ("INVOCATION_ID", "NOTIFY_SOCKET", "EDGE_SERVICE")


@pytest.fixture(autouse=True)
def _not_a_service(monkeypatch):
    for variable in SERVICE_ENV:
        monkeypatch.delenv(variable, raising=False)


@pytest.mark.parametrize("variable", SERVICE_ENV)
def test_refused_under_systemd_or_edge_run(variable):
    refuse_under_service("--no-blur", environ={})
    with pytest.raises(DebugModeRefused, match=f"--no-blur .*refuses.*{variable} set"):
        refuse_under_service("--no-blur", environ={variable: "1"})


@pytest.mark.parametrize("variable", SERVICE_ENV)
def test_the_raw_capture_option_is_refused_under_a_service(tmp_path, variable):
    out = tmp_path / "raw.pcap"
    result = CliRunner(env={variable: "x"}).invoke(
        cli, ["wifi", "sniff", "--iface", "lo", "--debug-raw-pcap", str(out),
              "--db", str(tmp_path / "edge.db")])
    assert result.exit_code == 1
    assert "Error: --debug-raw-pcap is a debug mode" in result.output
    assert not out.exists() and not (tmp_path / "edge.db").exists()


def test_edge_run_marks_its_process_and_children_as_a_service():
    before = os.environ.get("EDGE_SERVICE")
    with click.Context(run_group) as ctx:
        _mark_service(ctx, "sync")
        assert os.environ["EDGE_SERVICE"] == "sync"
        child = subprocess.run(
            [sys.executable, "-c", "import os; print(os.environ['EDGE_SERVICE'])"],
            capture_output=True, text=True, check=True)
        assert child.stdout.strip() == "sync"
        with pytest.raises(DebugModeRefused, match="EDGE_SERVICE"):
            refuse_under_service("--debug-raw-pcap")
    assert os.environ.get("EDGE_SERVICE") == before


def test_the_raw_capture_is_off_by_default_and_needs_a_monitor_interface_first(tmp_path):
    result = CliRunner().invoke(cli, ["wifi", "sniff", "--help"])
    assert "DEBUG MODE" in result.output and "--debug-raw-pcap" in result.output
    db_path = tmp_path / "edge.db"
    result = CliRunner().invoke(cli, ["wifi", "sniff", "--iface", "lo", "--debug-raw-pcap",
                                      str(tmp_path / "raw.pcap"), "--db", str(db_path)])
    assert result.exit_code == 1 and "not in monitor mode" in result.output
    assert not db_path.exists()          # nothing announced for a capture that never ran


def page(db_path, path="/"):
    from edge.config import load_site
    from tests.support.web_support import BASE_URL, with_web

    site = with_web(load_site(PETS_SITE), access="open-lan")
    app = create_app(WebDeps(site=site, db_path=db_path))
    with TestClient(app, base_url=BASE_URL) as client:
        return client.get(path)


def test_a_debug_mode_is_loud_recorded_shown_and_cleared(tmp_path, caplog, capsys):
    db_path = tmp_path / "edge.db"
    db = open_database(db_path)
    with caplog.at_level(logging.WARNING, logger="edge.debug_mode"):
        mode = announce_debug_mode("no-blur", "faces visible in out/annotated.mp4", db)
    banner = capsys.readouterr().err
    assert "WARNING: DEBUG MODE NO-BLUR: faces visible in out/annotated.mp4" in banner
    assert "debug mode no-blur on" in caplog.text
    assert [m["name"] for m in active_debug_modes(db)] == ["no-blur"]
    html = page(db_path).text
    assert 'class="debug-banner"' in html and "DEBUG MODE ON: no-blur" in html
    assert "faces visible in out/annotated.mp4" in html
    health = page(db_path, "/api/v1/health").json()
    assert [d["name"] for d in health["debug_modes"]] == ["no-blur"]
    mode.stop()
    mode.stop()                                     # idempotent
    assert active_debug_modes(db) == []
    assert "debug-banner" not in page(db_path).text
    log = [(r["setting"], r["old"], r["new"]) for r in reversed(read_audit_log(db))]
    assert log == [("debug_mode.no-blur", "off", "on"), ("debug_mode.no-blur", "on", "off")]


def test_a_with_block_clears_it_even_on_an_error(tmp_path):
    db = open_database(tmp_path / "edge.db")
    with pytest.raises(RuntimeError), announce_debug_mode("no-blur", "x", db):
        assert len(active_debug_modes(db)) == 1
        raise RuntimeError("the replay failed")
    assert active_debug_modes(db) == []
    assert read_audit_log(db)[0]["source"].endswith("stopped by RuntimeError")


def _announcing_process(db_path, then: str) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import sys, time
        from edge.debug_modes import announce_debug_mode
        announce_debug_mode("no-blur", "annotated replay", {str(db_path)!r})
        print("on", flush=True)
        {then}
    """)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_a_plain_call_is_cleared_when_the_process_exits(tmp_path):
    """How a CLI calls it: no `with`, no stop(); the record still goes at exit."""
    db_path = tmp_path / "edge.db"
    process = _announcing_process(db_path, "sys.exit(0)")
    assert process.wait(60) == 0
    db = open_database(db_path)
    assert active_debug_modes(db) == []
    assert [r["new"] for r in read_audit_log(db)] == ["off", "on"]


def test_a_killed_process_leaves_a_record_that_the_cli_clears(tmp_path):
    db_path = tmp_path / "edge.db"
    process = _announcing_process(db_path, "time.sleep(60)")
    assert process.stdout.readline().strip() == "on"
    running = CliRunner().invoke(cli, ["privacy", "debug-modes", "--db", str(db_path)])
    assert running.exit_code == 1 and "ON  no-blur" in running.output
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    assert len(active_debug_modes(open_database(db_path))) == 1     # SIGKILL: no atexit
    cleared = CliRunner().invoke(cli, ["privacy", "debug-modes", "--db", str(db_path)])
    assert cleared.exit_code == 0
    assert "Cleared debug mode no-blur: its process is gone." in cleared.output
    assert clear_stale_debug_modes(open_database(db_path)) == []


class Frames(FrameSource):
    def __init__(self, frames) -> None:
        self.items, self.closed = frames, False

    def frames(self):
        yield from self.items

    def close(self) -> None:
        self.closed = True


def test_the_raw_capture_keeps_exactly_the_frames_and_counts_the_same(tmp_path):
    with CaptureFile(IPHONE) as capture:
        frames = [(f.data, f.timestamp) for f in capture]
    counted = []
    for tee in (False, True):
        pipeline = FramePipeline(WifiConfig(), sensor="iface:test", clock=lambda: frames[-1][1])
        source = Frames(frames)
        windows = []
        run_capture(RawPcapTee(source, tmp_path / "raw.pcap") if tee else source, pipeline,
                    windows.extend, clock=lambda: frames[-1][1])
        assert source.closed
        counted.append([(w.start, w.frames, w.in_store_devices) for w in windows])
    assert counted[0] == counted[1]
    path = tmp_path / "raw.pcap"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with RawPcapReader(str(path)) as reader:
        kept = [(data, meta.sec + meta.usec / 1e6) for data, meta in reader]
    assert [d for d, _ in kept] == [d for d, _ in frames]
    assert max(abs(a - b) for (_, a), (_, b) in zip(kept, frames, strict=True)) < 1e-6


@pytest.mark.parametrize("kind", ["file", "link", "dangling link"])
def test_the_raw_capture_refuses_a_path_that_is_already_there(tmp_path, kind):
    """Regression (privacy review, repro 07): the raw capture was opened with O_CREAT |
    O_TRUNC, whose 0600 applies to a new file only: an existing 0644 file (or the file a
    symbolic link points to) was filled with raw frames and kept its mode and owner. An
    existing path is refused now, by the command before it announces anything and by
    the writer itself (O_EXCL | O_NOFOLLOW), and nothing is written."""
    target = tmp_path / "someone-elses.pcap"
    path = tmp_path / "raw.pcap"
    if kind == "file":
        path.write_bytes(b"keep")
        path.chmod(0o644)
    else:
        if kind == "link":
            target.write_bytes(b"keep")
            target.chmod(0o644)
        path.symlink_to(target)
    source = Frames([(b"\x00" * 24, 1.0)])
    with pytest.raises(OutputError, match="already exists: raw frames are only written to a "
                                          "new file"):
        RawPcapTee(source, path)
    assert source.closed
    kept = path if kind == "file" else target
    if kind == "dangling link":
        assert not target.exists()
    else:
        assert kept.read_bytes() == b"keep" and stat.S_IMODE(kept.stat().st_mode) == 0o644
    db_path = tmp_path / "edge.db"
    result = CliRunner().invoke(cli, ["wifi", "sniff", "--iface", "lo", "--debug-raw-pcap",
                                      str(path), "--db", str(db_path)])
    assert result.exit_code == 1 and "already exists" in result.output, result.output
    assert not db_path.exists()  # refused before the debug mode was announced

