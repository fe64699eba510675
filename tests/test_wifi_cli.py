"""``edge wifi``: the JSON interface scripts depend on, the database rows, one-line
errors, and a privacy audit of everything the commands leave behind."""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import sqlite3
import struct
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from edge import figures
from edge.cli import cli
from edge.config import load_site
from edge.runtime.schema import open_database
from edge.web import queries
from edge.wifi.pcapfile import CaptureFile
from tests.conftest import PETS_SITE, SHARED, SINGLE_PHONES
from tests.support.cli import run_edge, stopped_by
from tests.test_wifi_brno import lab_pcs
from tests.test_wifi_pcap import pcapng_blocks, real_frames, write_pcapng

pytestmark = pytest.mark.system

BRNO_DAY = SHARED / "wifi" / "brno-sc6-61" / "position_1_sc6-61_2024-03-15_anonymized.pcap"
BRNO_DAY_2 = SHARED / "wifi" / "brno-sc6-61" / "position_2_sc6-61_2024-03-15_anonymized.pcap"
CAPTURES = sorted((SHARED / "wifi").glob("*/*.pcap*"))


def run(*args: str):
    """The command in this process (faster than run_edge; for output and database checks)."""
    result = CliRunner().invoke(cli, list(args))
    result.returncode = result.exit_code
    return result


def write_site(path: Path, wifi: str = "") -> Path:
    path.write_text(
        "site: {id: brno-lab, timezone: Europe/Prague}\n"
        "floor: {bounds: [[0, 0], [10, 8]]}\n" + wifi + "web: {access: open-lan}\n"
    )
    return path


@pytest.fixture(scope="module")
def lab_site(tmp_path_factory) -> Path:
    addresses = "".join(f"      - {address}\n" for address in lab_pcs())
    return write_site(tmp_path_factory.mktemp("site") / "site.yaml",
                      "wifi:\n  rssi_gate_dbm: -70\n  exclude_addresses:\n" + addresses)


def test_replay_json_is_one_object_per_window(lab_site):
    result = run("wifi", "replay", str(BRNO_DAY), "--json", "--window", "900",
                  "--site", str(lab_site))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 46
    windows = [json.loads(line) for line in lines]
    for window in windows:
        assert {"window_start", "frames", "in_store_devices", "passers_by",
                "occupancy_estimate"} <= set(window)
        start = datetime.fromisoformat(window["window_start"])
        assert start.utcoffset().total_seconds() == 3600 and start.minute % 15 == 0
    assert sum(w["frames"] for w in windows) == 4926
    assert max(w["occupancy_estimate"] for w in windows) >= 5
    assert "4926 probe requests" in result.stderr


def test_replay_table_and_one_minute_windows(lab_site):
    result = run("wifi", "replay", str(BRNO_DAY), "--window", "60", "--site", str(lab_site),
                  "--quiet")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("window start") and len(lines) == 1 + 690
    assert result.stderr == ""


def test_replay_writes_both_window_lengths_to_the_database(tmp_path, lab_site):
    db = tmp_path / "edge.db"
    result = run("wifi", "replay", str(BRNO_DAY), "--site", str(lab_site), "--db", str(db),
                  "--quiet")
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(db) as connection:
        counts = dict(connection.execute(
            "select window_s, count(*) from wifi_windows group by window_s").fetchall())
        total = connection.execute(
            "select sum(frames) from wifi_windows where window_s = 900").fetchone()[0]
    assert counts == {60: 690, 900: 46} and total == 4926
    again = run("wifi", "replay", str(BRNO_DAY), "--site", str(lab_site), "--db", str(db),
                 "--quiet")
    assert again.returncode == 0
    with sqlite3.connect(db) as connection:       # a second replay replaces, not duplicates
        assert connection.execute("select count(*) from wifi_windows").fetchone()[0] == 736
        assert connection.execute(
            "select sum(frames) from wifi_windows where window_s = 900").fetchone()[0] == 4926


@pytest.mark.parametrize("site", ["lab", "pets09"])
def test_the_page_counts_each_phone_that_came_in_once(tmp_path, lab_site, site):
    """Regression: the status page's "N phones came in" summed ``in_store_devices`` over
    the day's 15-minute windows, so a phone that stayed an hour counted four times: 81
    phones and a 5.7% capture rate for this capture (PETS site), where the replay
    itself estimates 16 devices in store. The page now sums arrivals and agrees with
    the replay's whole-capture count (one local day, so one key and one device set)."""
    site_file = lab_site if site == "lab" else PETS_SITE
    db = tmp_path / "edge.db"
    result = run("wifi", "replay", str(BRNO_DAY), "--site", str(site_file), "--db", str(db))
    assert result.returncode == 0, result.stderr
    in_store = int(re.search(r"above the RSSI gate: (\d+) in store", result.stderr)[1])
    passers = int(re.search(r"below the gate: (\d+) passer-by bursts", result.stderr)[1])
    tz = ZoneInfo("Europe/Prague" if site == "lab" else load_site(PETS_SITE).site.timezone)
    with sqlite3.connect(db) as connection:
        page = queries.wifi(connection, {"wifi_windows"},
                            queries.DayWindow.of(dt.date(2024, 3, 15), tz), tz)
        presence = connection.execute("select sum(in_store_devices) from wifi_windows "
                                      "where window_s = 900").fetchone()[0]
    assert (page.arrived_devices, page.passers_by) == (in_store, passers)
    assert page.capture_rate == pytest.approx(in_store / (in_store + passers), abs=1e-4)
    assert presence > 3 * in_store            # what the page used to call "came in"
    if site == "pets09":                      # the figures of the defect report
        assert (in_store, presence) == (16, 81)
        assert page.capture_rate == pytest.approx(0.0117, abs=1e-4)   # was 0.0566


def test_calibrate_against_manual_counts(tmp_path, lab_site):
    db = tmp_path / "edge.db"
    assert run("wifi", "replay", str(BRNO_DAY), "--site", str(lab_site), "--db", str(db),
                "--quiet").returncode == 0
    with sqlite3.connect(db) as connection:
        rows = connection.execute("select window_start, in_store_devices from wifi_windows "
                                  "where window_s = 900 order by window_start").fetchall()
    counts = tmp_path / "counts.csv"
    counts.write_text("window_start,people\n" + "".join(
        f"{start},{devices * 0.8}\n" for start, devices in rows))
    result = run("wifi", "calibrate", "--site", str(lab_site), "--db", str(db),
                  "--counts", str(counts))
    assert result.returncode == 0, result.stderr
    assert "people_per_device = 0.8 " in result.stdout and "Pearson r 1.000" in result.stdout


def test_calibrate_with_two_sensors_counts_as_the_page_does(tmp_path, lab_site):
    """Regression (review): with two sensors in the room (the lab's two positions on
    one day), calibrate added their devices up per window (85 device-windows where the
    page and the aggregates count 50: the largest sensor per window), so counts of
    0.8 people per device on the page's figures were fitted as 0.4525 (r 0.995)."""
    db = tmp_path / "edge.db"
    for capture in (BRNO_DAY, BRNO_DAY_2):
        assert run("wifi", "replay", str(capture), "--site", str(lab_site), "--db", str(db),
                   "--quiet").returncode == 0
    with sqlite3.connect(db) as connection:
        rows = figures.wifi_window_rows(connection, 0, 4e9, ending_inside=True)
    _, subs = figures.wifi_sub_windows([row for row in rows if row[1] == 900])
    assert len({row[0] for row in rows if row[1] == 900}) < len([r for r in rows if r[1] == 900])
    counts = tmp_path / "counts.csv"
    counts.write_text("window_start,people\n" + "".join(
        f"{sub.start},{sub.in_store_devices * 0.8}\n" for sub in subs))
    result = run("wifi", "calibrate", "--site", str(lab_site), "--db", str(db),
                 "--counts", str(counts))
    assert result.returncode == 0, result.stderr
    assert f"Fitted on {len(subs)} windows" in result.stdout
    assert "people_per_device = 0.8 " in result.stdout and "Pearson r 1.000" in result.stdout


def test_calibrate_without_data_is_a_clear_error(tmp_path, lab_site):
    open_database(tmp_path / "e.db").close()
    result = run_edge("wifi", "calibrate", "--site", str(lab_site), "--db", str(tmp_path / "e.db"))
    assert result.returncode == 1
    assert result.stderr.strip().startswith("Error: need at least 4 windows")
    missing = run_edge("wifi", "calibrate", "--site", str(lab_site),
                       "--db", str(tmp_path / "no.db"))
    assert missing.returncode == 1 and not (tmp_path / "no.db").exists()
    assert missing.stderr.startswith(f"Error: database {tmp_path / 'no.db'} does not exist; ")


@pytest.mark.parametrize(
    "args, message",
    [
        (["wifi", "replay", "/nonexistent/x.pcap"],
         "capture file /nonexistent/x.pcap does not exist"),
        (["wifi", "sniff", "--iface", "wlx-nonexistent0"],
         "no network interface 'wlx-nonexistent0'"),
        (["wifi", "sniff", "--iface", "lo"], "interface 'lo' is not in monitor mode"),
    ],
)
def test_user_errors_are_one_line_with_the_fix(args, message):
    result = run_edge(*args)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0]
    if "sniff" in args:
        assert "iw dev" in lines[0] and "type monitor" in lines[0]


def test_garbage_file_is_a_clear_error(tmp_path):
    garbage = tmp_path / "garbage.pcap"
    garbage.write_bytes(b"\x13\x37" * 500)
    result = run_edge("wifi", "replay", str(garbage))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"Error: {garbage}: not a pcap or pcapng capture")


@pytest.mark.parametrize("size", [0, 10])
def test_a_capture_too_short_for_its_header_is_an_error(tmp_path, size):
    """A pcap cut inside its 24-byte file header used to exit 0 with a warning while an
    empty file exited 1; both are errors now."""
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(BRNO_DAY.read_bytes()[:size])
    result = run("wifi", "replay", str(cut))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(f"Error: capture {cut} is ")


def test_the_closing_line_splits_devices_as_the_windows_do():
    """One phone, hundreds of randomized addresses, the demo site: every window shows 1
    (now and then 2: keys are random per run) device in store; the closing line said
    "237 devices estimated in all"."""
    capture = SINGLE_PHONES / "iPhone11-B_anonymized.pcap"
    result = run("wifi", "replay", str(capture), "--json", "--site", str(PETS_SITE))
    assert result.returncode == 0, result.stderr
    windows = [json.loads(line) for line in result.stdout.splitlines()]
    summary = result.stderr.splitlines()[-1]
    match = re.fullmatch(
        r"Devices estimated above the RSSI gate: (\d+) in store \(heard for 60 s or more\), "
        r"(\d+) brief \(heard for less: a phone passing by, or an address not linked to its "
        r"phone; not counted in store\); below the gate: (\d+) passer-by bursts", summary)
    assert match, result.stderr
    in_store, brief, passers = (int(g) for g in match.groups())
    assert max(w["in_store_devices"] for w in windows) <= in_store <= 2
    assert brief > 200 and passers == sum(w["passers_by"] for w in windows) == 0
    assert "estimated in all" not in result.stderr


def test_bad_exclusion_address_names_the_line(tmp_path):
    site = write_site(tmp_path / "site.yaml", "wifi:\n  exclude_addresses: [dc:fb:48:zz:00:01]\n")
    result = run_edge("wifi", "replay", str(BRNO_DAY), "--site", str(site))
    assert result.returncode == 1
    assert "site.yaml:4" in result.stderr and "expected a MAC address" in result.stderr


# The privacy audit of everything these commands leave behind (database, output, logs
# at DEBUG, for every shared capture) is part of the full-run leak audit:
# tests/test_privacy_audit.py.


def test_a_truncated_capture_replays_what_it_has(tmp_path, lab_site):
    """Finding 9: what was read is kept, and the exit status says it was not all (it
    was 0, which scripts took for a complete replay; a truncated video exits 1)."""
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(BRNO_DAY.read_bytes()[:300_000])
    result = run("wifi", "replay", str(cut), "--json", "--site", str(lab_site))
    assert result.returncode == 1, result.stderr
    assert "the file ends inside" in result.stderr and result.stdout.count("\n") > 5
    assert result.stderr.splitlines()[-1].startswith(f"Error: capture {cut} is truncated or "
                                                     "damaged: the file ends inside")


def test_a_capture_corrupt_mid_file_keeps_what_it_read_and_exits_1(tmp_path, lab_site):
    """Finding 9: a record length corrupted mid-file lost most of the capture (53 of
    736 windows), said in a warning, and exited 0."""
    data = bytearray(BRNO_DAY.read_bytes())
    offset = 24
    while offset < len(data) // 3:  # walk the records to one a third of the way in
        offset += 16 + struct.unpack_from("<I", data, offset + 8)[0]
    struct.pack_into("<I", data, offset + 8, 0x7FFFFFFF)
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(bytes(data))
    db = tmp_path / "edge.db"
    result = run("wifi", "replay", str(bad), "--json", "--site", str(lab_site), "--db", str(db))
    assert result.returncode == 1, result.stderr
    assert "a record claims 2147483647 bytes" in result.stderr
    assert f"written to {db}" in result.stderr.splitlines()[-1]
    with sqlite3.connect(db) as connection:
        assert connection.execute("select count(*) from wifi_windows").fetchone()[0] > 0


def test_pcap_with_another_link_type_is_skipped_with_a_counted_warning(tmp_path):
    with CaptureFile(BRNO_DAY) as capture:
        frames = [frame for _, frame in zip(range(30), capture, strict=False)]
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for frame in frames:
        out += struct.pack("<IIII", int(frame.timestamp), 0, len(frame.data), len(frame.data))
        out += frame.data
    path = tmp_path / "ethernet.pcap"
    path.write_bytes(out)
    result = run("wifi", "replay", str(path))
    assert result.returncode == 0
    assert "Warning: skipped 30 frames: link type 1 (not radiotap)" in result.stderr


@pytest.mark.parametrize("records", [b"", struct.pack("<IIII", 1, 0, 80, 80) + b"\x00" * 10])
def test_a_capture_without_one_readable_frame_is_an_error(tmp_path, records):
    """Regression (issue 18): a capture cut off in its first record, or with none,
    replayed "0 frames" and exited 0."""
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(BRNO_DAY.read_bytes()[:24] + records)
    result = run("wifi", "replay", str(cut), "--db", str(tmp_path / "edge.db"))
    assert result.returncode == 1
    assert result.output.splitlines()[-1].startswith(
        f"Error: capture {cut}: no frame could be read")
    assert result.output.count("\n") == 1


def test_replay_says_why_pcapng_packet_blocks_were_skipped(tmp_path):
    """Regression (review, r8_pcapng_silent): blocks of an undescribed interface were
    dropped without a word, and a file of nothing else failed with "no frame could be
    read" and no reason."""
    data = write_pcapng(tmp_path / "whole.pcapng", real_frames(10)).read_bytes()
    blocks = pcapng_blocks(data)
    half = bytearray(data)
    for offset in [offset for offset, kind in blocks if kind == 6][::2]:
        struct.pack_into("<I", half, offset + 8, 1)
    (tmp_path / "half.pcapng").write_bytes(half)
    result = run("wifi", "replay", str(tmp_path / "half.pcapng"))
    assert result.returncode == 0
    assert ("Warning: 5 pcapng packet blocks skipped: they name an interface no Interface "
            "Description Block describes") in result.stderr
    idb = next(index for index, (_, kind) in enumerate(blocks) if kind == 1)
    orphans = data[:blocks[idb][0]] + data[blocks[idb + 1][0]:]     # the IDB cut out
    (tmp_path / "orphans.pcapng").write_bytes(orphans)
    result = run("wifi", "replay", str(tmp_path / "orphans.pcapng"))
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"Error: capture {tmp_path / 'orphans.pcapng'}: no frame could be read: 10 pcapng packet "
        "blocks skipped: they name an interface no Interface Description Block describes")


# `edge wifi replay` whose capture never ends: a window every 20 ms, each a day apart.
ENDLESS_REPLAY = """
import dataclasses, itertools, time
import edge.cli.wifi_commands as commands
from edge.cli import main
from edge.wifi.windows import WifiWindow

def endless(*args, **kwargs):
    for day in itertools.count():
        time.sleep(0.02)
        yield WifiWindow(start=1.7e9 + 86400 * day, window_s=900, sensor="pcap:test",
                         covered_s=900.0, frames=3, in_store_frames=0, excluded_frames=0,
                         in_store_devices=0, arrived_devices=0, brief_devices=0,
                         passers_by=1, occupancy_estimate=0.0)
    return None

commands.replay_capture = endless
main()
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_a_stopped_wifi_replay_keeps_the_windows_it_printed(tmp_path, signum):
    """Field report: `timeout 60 edge wifi replay big.pcap --db x.db` printed windows but
    wrote none of the last (up to 255) to the database: SIGTERM killed Python at once, and
    Ctrl-C skipped the write too."""
    db_path = tmp_path / "x.db"
    printed, rest, _ = stopped_by(
        signum, [sys.executable, "-c", ENDLESS_REPLAY, "wifi", "replay",
                 str(tmp_path / "any.pcap"), "--json", "--db", str(db_path), "--quiet"],
        lambda process: [process.stdout.readline() for _ in range(5)])
    printed += rest.splitlines()
    shown = {json.loads(line)["window_start"] for line in printed if line.strip()}
    with sqlite3.connect(db_path) as db:
        stored = [start for (start,) in db.execute(
            "select window_start from wifi_windows where window_s = 900")]
    assert len(shown) >= 5
    # every window printed is stored (the one being printed when the signal came may be too)
    assert {dt.datetime.fromisoformat(start).timestamp() for start in shown} <= set(stored)
    assert len(stored) <= len(shown) + 1
