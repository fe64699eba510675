"""``edge wifi``: probe-request counting from a pcap or a live monitor interface."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import sys
import threading
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from tqdm import tqdm

from edge.cli.options import load_site_option, resolve_db_path, sigterm_stops, site_option
from edge.config import SiteConfig
from edge.config.wifi import WifiConfig
from edge.errors import DataFormatError
from edge.runtime.schema import open_database
from edge.wifi.pipeline import ReplayResult, replay_capture
from edge.wifi.store import ReplayWriter
from edge.wifi.windows import WifiWindow

WIFI_FIRST = ("write Wi-Fi windows into it first (`edge wifi replay CAPTURE --db DB`, or the "
              "live Wi-Fi service)")
window_option = click.option(
    "--window", "window_s", type=click.IntRange(10, 86400), default=900, show_default=True,
    help="Window length (seconds) to print; 60 and 900 are the stored ones.",
)
json_option = click.option("--json", "as_json", is_flag=True,
                           help="One JSON object per window on stdout (JSON lines).")

_HEADER = (f"{'window start':25} {'covered':>7} {'frames':>6} {'in store':>8} {'arrived':>7} "
           f"{'brief':>5} "
           f"{'passers-by':>10} {'occupancy':>9}  dwell <5m/5-15/15-30/30-60/60m+")


def _wifi_config(site: SiteConfig) -> WifiConfig:
    return site.wifi or WifiConfig()


def _row(window: WifiWindow, tz: ZoneInfo) -> str:
    dwell = "/".join(str(count) for count in window.dwell_buckets.values())
    return (f"{window.iso_start(tz):25} {window.covered_s:7.0f} {window.frames:6d} "
            f"{window.in_store_devices:8d} {window.arrived_devices:7d} {window.brief_devices:5d} "
            f"{window.passers_by:10d} "
            f"{window.occupancy_estimate:9.1f}  {dwell}")


class _Printer:
    """Prints the windows of the chosen length as they close."""

    def __init__(self, window_s: int, as_json: bool, tz: ZoneInfo) -> None:
        self.window_s, self.as_json, self.tz = window_s, as_json, tz
        self.header_done = False

    def __call__(self, windows: list[WifiWindow]) -> None:
        for window in windows:
            if window.window_s != self.window_s:
                continue
            if self.as_json:
                click.echo(json.dumps(window.as_json(self.tz)))
            else:
                if not self.header_done:
                    click.echo(_HEADER)
                    self.header_done = True
                click.echo(_row(window, self.tz))
            sys.stdout.flush()


@click.group("wifi")
def wifi_group() -> None:
    """Count phones from Wi-Fi probe requests, anonymized at capture.

    Addresses become daily-keyed, truncated HMAC pseudonyms inside the parser and
    only per-window counts are printed or stored.
    """


@wifi_group.command("replay")
@click.argument("capture", type=click.Path(path_type=Path))
@json_option
@window_option
@site_option
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write every window (all configured lengths) into wifi_windows here.")
@click.option("--sensor", help="Sensor label stored with the windows (default: pcap: and a "
              "short hash of the file name; names are not stored).")
@click.option("--quiet", is_flag=True, help="No progress bar and no summary.")
@sigterm_stops
def replay_command(capture: Path, as_json: bool, window_s: int, site_path: Path | None,
                   db_path: Path | None, sensor: str | None, quiet: bool) -> None:
    """Replay a pcap or pcapng CAPTURE and print per-window device and occupancy estimates."""
    site = load_site_option(site_path)
    config = _wifi_config(site)
    tz = ZoneInfo(site.site.timezone)
    writer = ReplayWriter(open_database(db_path)) if db_path is not None else None
    sizes = sorted(set(config.windows_s) | {window_s})
    printer = _Printer(window_s, as_json, tz)
    bar = tqdm(total=None, unit="B", unit_scale=True, disable=quiet or None, file=sys.stderr,
               leave=False)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    generator = replay_capture(capture, config, timezone=site.site.timezone,
                               window_sizes=sizes, sensor=sensor, progress=progress)
    pending: list[WifiWindow] = []
    try:
        while True:
            try:
                window = next(generator)
            except StopIteration as stop:
                result: ReplayResult = stop.value
                break
            if writer is not None:  # held before it is printed: a printed window is kept
                pending.append(window)
            printer([window])
            if len(pending) >= 256:
                assert writer is not None
                writer.write(pending)
                pending.clear()
    except BaseException:  # Ctrl-C, SIGTERM, a bad record: the closed windows are kept
        if writer is not None and pending:
            with contextlib.suppress(sqlite3.Error, OSError):  # the first error is the one
                writer.write(pending)
        raise
    finally:
        bar.close()
    if result.stats.frames == 0:
        # Regression: "Replayed 0 frames" and exit 0, e.g. on a capture cut off in its
        # first record (as the other capture errors, this one names the file). Every
        # note: one reason may hide behind another (blocks skipped, then a cut).
        notes = f": {'; '.join(result.read_notes)}" if result.read_notes else ""
        raise DataFormatError(f"capture {capture}: no frame could be read{notes}")
    if writer is not None:
        writer.write(pending)
    if not quiet:
        _summary(result, db_path, window_s, config.min_dwell_s,
                 None if writer is None else writer.rows)
    if result.ended_early:
        # What was read is kept (printed, and written with --db); the exit status still
        # tells a script it was not all, as a truncated video's replay does.
        kept = f" and written to {db_path}" if db_path is not None else ""
        raise DataFormatError(
            f"capture {capture} is truncated or damaged: {'; '.join(result.read_notes)}; "
            f"the windows of the frames before it were printed{kept}, the rest of the "
            "capture is lost"
        )


def _summary(result: ReplayResult, db_path: Path | None, window_s: int,
             min_dwell_s: float, rows: int | None) -> None:
    # File names stay out of the output: test captures name SSIDs and devices.
    stats = result.stats
    devices = result.devices
    passers_by = sum(w.passers_by for w in result.windows if w.window_s == window_s)
    # The same split as each window's in store / brief / passers-by columns: a device
    # heard for less than min_dwell_s (often one randomized address of a phone that is
    # counted in store under another) is never "in store".
    lines = [
        f"Replayed {stats.frames} frames, {stats.probe_requests} probe requests "
        f"({stats.in_store_frames} above the RSSI gate, {stats.weak_frames} weak, "
        f"{stats.excluded_frames} excluded) in {result.seconds:.2f} s",
        f"Devices estimated above the RSSI gate: {devices.in_store} in store (heard for "
        f"{min_dwell_s:g} s or more), {devices.brief} brief (heard for less: a phone passing "
        f"by, or an address not linked to its phone; not counted in store); below the gate: "
        f"{passers_by} passer-by bursts"
        + (" (devices counted afresh each day)" if stats.key_rotations else ""),
    ]
    if stats.other_frames:
        lines.append(f"{stats.other_frames} frames were not probe requests (ignored)")
    for reason, count in sorted(stats.skipped.items()):
        lines.append(f"Warning: skipped {count} frames: {reason}")
    if stats.truncated_ies:
        lines.append(f"Warning: {stats.truncated_ies} probe requests had an information "
                     "element running past the frame (kept the elements before it)")
    lines += [f"Warning: {note}" for note in result.read_notes]
    if db_path is not None:
        lines.append(f"{rows} windows written to {db_path}")
    for line in lines:
        click.echo(line, err=True)


@wifi_group.command("sniff")
@click.option("--iface", required=True, help="Monitor-mode interface, e.g. mon0.")
@json_option
@window_option
@site_option
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="SQLite database. Default: the site's storage.db_path, else "
                   "<state dir>/edge.db.")
@click.option("--channel", "channels", type=int, multiple=True,
              help="Channel to listen on (repeat to hop). Default: the site's wifi.channels.")
@click.option("--duration", type=click.FloatRange(min=1), default=None,
              help="Stop after this many seconds (default: run until interrupted).")
@click.option("--debug-raw-pcap", "raw_pcap", type=click.Path(dir_okay=False, path_type=Path),
              default=None,
              help="DEBUG MODE, for driver debugging only: also keep every raw frame, with "
                   "its MAC addresses and SSIDs, in this new pcap file (mode 0600; an existing "
                   "path is refused). Refused under a service; "
                   "shown on the status page and in the privacy audit log while on.")
def sniff_command(iface: str, as_json: bool, window_s: int, site_path: Path | None,
                  db_path: Path | None, channels: tuple[int, ...], duration: float | None,
                  raw_pcap: Path | None) -> None:
    """Count probe requests live on a monitor-mode interface, writing windows to the database."""
    from edge.debug_modes import announce_debug_mode, refuse_under_service
    from edge.wifi.capture import check_monitor_interface
    from edge.wifi.debug_capture import refuse_existing
    from edge.wifi.service import run_sniffer

    if raw_pcap is not None:
        refuse_under_service("--debug-raw-pcap")
        refuse_existing(raw_pcap)  # before announcing the debug mode; opened with O_EXCL too
    check_monitor_interface(iface)  # before saying "listening"
    site = load_site_option(site_path)
    db = open_database(resolve_db_path(db_path, site))
    debug = None
    if raw_pcap is not None:
        debug = announce_debug_mode(
            "debug-raw-pcap", f"raw Wi-Fi frames of {iface}, with MAC addresses and SSIDs, "
            f"written to {raw_pcap}", db)
    printer = _Printer(window_s, as_json, ZoneInfo(site.site.timezone))
    stop = threading.Event()
    if duration is not None:
        timer = threading.Timer(duration, stop.set)
        timer.daemon = True
        timer.start()
    click.echo(f"Listening on {iface}; Ctrl-C to stop.", err=True)
    try:
        run_sniffer(site, iface, db, stop, channels=list(channels) or None,
                    window_sizes=[window_s], on_windows=printer, raw_pcap=raw_pcap,
                    source_name="edge wifi sniff")
    finally:
        if debug is not None:
            debug.stop()


@wifi_group.command("calibrate")
@site_option
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Database with wifi_windows (and track_points). Default: the site's.")
@click.option("--sensor", help="Only this sensor's windows (e.g. iface:mon0). Default: per "
              "window, the largest sensor's devices, as the status page and the aggregates "
              "count them.")
@click.option("--window", "window_s", type=int, default=900, show_default=True,
              help="Window length to fit on.")
@click.option("--counts", type=click.Path(dir_okay=False, path_type=Path),
              help="CSV of manual counts (window_start,people) instead of the cameras.")
def calibrate_command(site_path: Path | None, db_path: Path | None, sensor: str | None,
                      window_s: int, counts: Path | None) -> None:
    """Fit people per device against camera counts (or manual counts) for the same windows."""
    from edge.wifi.calibration import (
        camera_people,
        fit_people_per_device,
        manual_counts,
        wifi_devices,
    )

    site = load_site_option(site_path)
    db = open_database(resolve_db_path(db_path, site, must_exist=True, hint=WIFI_FIRST))
    # Per window the largest sensor's devices, as the page and the aggregates count them.
    devices_by_start = wifi_devices(db, window_s, sensor)
    if counts is not None:
        reference, source = manual_counts(counts), f"manual counts in {counts}"
    else:
        reference, source = camera_people(db, window_s, list(devices_by_start)), "camera tracks"
    starts = sorted(set(devices_by_start) & set(reference))
    fit = fit_people_per_device([devices_by_start[s] for s in starts],
                                [reference[s] for s in starts])
    r = "undefined" if fit.pearson_r is None else f"{fit.pearson_r:.3f}"
    click.echo(f"Fitted on {fit.windows} windows of {window_s} s against {source}: "
               f"people_per_device = {fit.people_per_device} (Pearson r {r}, mean error "
               f"{fit.mean_abs_error:.2f} people per window).")
    click.echo("Put it in site.yaml:\n  wifi:\n    people_per_device: "
               f"{fit.people_per_device}")
