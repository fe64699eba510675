"""Wi-Fi keys and device state, with clocks the tests control: key material never leaves
memory (not in the database, the output or the logs) and is wiped; each rotation is in
the audit log as an event only; device state is gone at day change and after
``forget_after_s`` even when no frame arrives; no setting can keep it past a day.

(Per-instance keys, midnight rotation with wiping and cross-day unlinkability of the
pseudonyms themselves are in tests/test_wifi_anonymize.py.)"""

from __future__ import annotations

import base64
import logging
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from edge.config.wifi import WifiConfig
from edge.privacy.needles import Needle
from edge.privacy.scan import Scanner
from edge.privacy.settings import KEY_ROTATION, record_key_rotation
from edge.privacy.store import read_audit_log
from edge.runtime.schema import open_database
from edge.wifi.anonymize import KEY_BYTES, random_key
from edge.wifi.pcapfile import CaptureFile
from edge.wifi.pipeline import FramePipeline, replay_to_list
from edge.wifi.store import write_windows
from tests.support.privacy_run import CAPTURES
from tests.test_wifi_parser import ELEMENTS, PROBE_80211, radiotap_header

pytestmark = pytest.mark.system

PRAGUE = ZoneInfo("Europe/Prague")
FRAME = radiotap_header([1 << 5], bytes([(-50) & 0xFF])) + PROBE_80211 + ELEMENTS


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=PRAGUE).timestamp()


class KeptKeys:
    """A key factory keeping a copy of every key it drew (the test is the only holder),
    and the key objects themselves, to check they are wiped."""

    def __init__(self) -> None:
        self.drawn: list[bytearray] = []
        self.copies: list[bytes] = []

    def __call__(self, size: int) -> bytearray:
        key = random_key(size)
        self.drawn.append(key)
        self.copies.append(bytes(key))
        return key


def test_key_material_is_never_written_and_is_wiped(tmp_path, caplog):
    """Two day-long captures (a key rotation inside) into a database file with DEBUG logs:
    no key, in any form, is in the file, the output or the log; every key is zeroed."""
    keys = KeptKeys()
    db_path = tmp_path / "edge.db"
    db = open_database(db_path)
    # Midnight falls inside both captures in these time zones (22:01-03:14 and
    # 11:30-22:59 UTC): each replay draws two keys.
    with caplog.at_level(logging.DEBUG):
        for path, timezone in ((CAPTURES[1], "UTC"), (CAPTURES[2], "Etc/GMT-6")):
            result = replay_to_list(path, WifiConfig(), timezone=timezone, key_factory=keys)
            assert result.stats.key_rotations == 1
            write_windows(db, result.windows)
    db.execute("pragma wal_checkpoint(truncate)")
    assert len(keys.drawn) == 4
    assert all(key == bytearray(KEY_BYTES) for key in keys.drawn)   # every one wiped
    needles = []
    for index, key in enumerate(keys.copies):
        for form, value in (("raw", key), ("hex", key.hex().encode()),
                            ("base64", base64.b64encode(key)), ("half", key[:16])):
            needles.append(Needle(value, "key", f"key #{index} ({form})"))
    scanner = Scanner(needles)
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    findings = scanner.scan_bytes("database", stored) + scanner.scan_database(db_path, "db")
    findings += scanner.scan_bytes("log", caplog.text.encode())
    assert findings == []


def test_each_key_rotation_is_audited_as_an_event_only(tmp_path):
    """The live service's hook: a quiet night crossing midnight (no frame) draws a new key;
    the audit log gets the days, nothing of the key."""
    keys = KeptKeys()
    db = open_database(tmp_path / "edge.db")
    clock = [at("2024-03-15T23:58:00")]
    pipeline = FramePipeline(
        WifiConfig(), sensor="iface:test", timezone="Europe/Prague", key_factory=keys,
        clock=lambda: clock[0],
        on_rotate=lambda old, new: record_key_rotation(db, old, new, "service:wifi (test)"),
    )
    pipeline.feed(FRAME, clock[0], 127)
    while clock[0] < at("2024-03-16T00:02:00"):
        clock[0] += 1.0
        pipeline.tick(clock[0])
    rows = [r for r in read_audit_log(db) if r["setting"] == KEY_ROTATION]
    assert [(r["old"], r["new"]) for r in reversed(rows)] == [
        (None, "2024-03-15"), ("2024-03-15", "2024-03-16")]
    assert keys.drawn[0] == bytearray(KEY_BYTES)
    text = repr(read_audit_log(db)).encode()
    assert not any(key.hex().encode() in text or key in text for key in keys.copies)


def test_device_state_is_dropped_at_day_change_without_any_frame():
    clock = [at("2024-03-15T23:50:00")]
    pipeline = FramePipeline(WifiConfig(), sensor="iface:test", timezone="Europe/Prague",
                             clock=lambda: clock[0])
    for second in range(0, 120, 10):                    # a phone, two minutes at 23:50
        pipeline.feed(FRAME, clock[0] + second, 127)
    assert len(pipeline.devices) == 1 and pipeline.devices.alias_count == 1
    clock[0] = at("2024-03-15T23:59:59")
    pipeline.tick(clock[0])
    assert len(pipeline.devices) == 1                   # forget_after_s is 30 min: still here
    clock[0] = at("2024-03-16T00:00:00")
    pipeline.tick(clock[0])
    assert len(pipeline.devices) == 0 and pipeline.devices.alias_count == 0
    assert pipeline.stats.key_rotations == 1


def test_device_state_is_dropped_after_forget_after_s_without_any_frame():
    """Before, a quiet sensor kept a departed device until the next frame or midnight."""
    start = at("2024-03-15T10:00:00")
    config = WifiConfig(forget_after_s=900, link_window_s=600)
    pipeline = FramePipeline(config, sensor="iface:test", timezone="Europe/Prague")
    pipeline.feed(FRAME, start, 127)
    pipeline.tick(start + 899)
    assert len(pipeline.devices) == 1
    pipeline.tick(start + 900 + 61)                     # expiry runs once a minute
    assert len(pipeline.devices) == 0 and pipeline.devices.alias_count == 0


def test_no_setting_keeps_device_state_past_a_day():
    with pytest.raises(ValidationError, match="less than or equal to 86400"):
        WifiConfig(forget_after_s=86_401)


def test_two_boxes_replaying_the_same_capture_share_no_pseudonym():
    """Same frames, two pipelines (two boxes): the same counts, and pseudonym sets that
    overlap only by chance (20-bit values)."""
    seen: list[set[int]] = []
    for _ in range(2):
        pipeline = FramePipeline(WifiConfig(), sensor="pcap:x", timezone="Europe/Prague")
        with CaptureFile(CAPTURES[2]) as capture:
            for _, frame in zip(range(1500), capture, strict=False):
                pipeline.feed(frame.data, frame.timestamp, frame.linktype)
        seen.append(set(pipeline.devices._aliases))     # the pseudonyms in memory now
        pipeline.finish()
    assert len(seen[0]) > 10 and len(seen[0]) == len(seen[1])
    assert len(seen[0] & seen[1]) <= 1


def test_a_far_future_frame_does_not_carry_devices_into_the_next_days():
    """Regression (review, r1_future_timestamp): after a frame stamped 2090 the key stopped
    rotating and the device estimator was never reset again, so one phone was one device
    over every later day. Each day (and the bogus one) gets its own key and devices."""
    keys = KeptKeys()
    pipeline = FramePipeline(WifiConfig(), sensor="iface:test", timezone="Europe/Prague",
                             key_factory=keys)
    days = []
    for when in ("2024-03-15T10:00:00", "2090-06-01T12:00:00", "2024-03-16T10:00:00",
                 "2024-03-17T10:00:00"):
        for second in range(0, 120, 10):
            pipeline.feed(FRAME, at(when) + second, 127)
        days.append(pipeline.anonymizer.day)
    assert days == ["2024-03-15", "2090-06-01", "2024-03-16", "2024-03-17"]
    assert pipeline.stats.key_rotations == 3 and len(keys.drawn) == 4
    assert pipeline.device_tally.in_store == 4            # one phone, counted once a day
