"""Putting a report together: checks done before a replay, the Wi-Fi capture replayed
into the same database, the accuracy measured, the file written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlite_utils

from edge.config import SiteConfig
from edge.config.wifi import WifiConfig
from edge.errors import DataFormatError
from edge.evaluation.accuracy import (
    Accuracy,
    evaluate_run,
    ground_truth_of_frames,
    read_ground_truth,
)
from edge.outputs import ensure_writable
from edge.report.data import ReportData
from edge.report.html import write_report
from edge.wifi.pcapfile import CaptureFile
from edge.wifi.pipeline import capture_sensor_name, replay_to_list
from edge.wifi.store import replace_windows


@dataclass(frozen=True, slots=True)
class ReportPlan:
    """A report asked for, its inputs checked (so a bad one fails before a long replay).

    Attributes:
        out: the HTML file to write.
        gt: ground-truth rows, when given.
        gt_name: the ground-truth file's name.
        pcap: a Wi-Fi capture to replay into the same database, when given.
    """

    out: Path
    gt: np.ndarray | None = None
    gt_name: str | None = None
    pcap: Path | None = None


def plan_report(
    out: Path, gt: Path | None = None, pcap: Path | None = None, *,
    frames: int | None = None,
) -> ReportPlan:
    """Check the report's output and inputs now.

    Args:
        frames: the last frame the replay about to start will cover (see
            :func:`edge.replay.frames_to_cover`), when known: the ground truth must
            have rows to evaluate in frames 1 to it.

    Raises:
        OutputError: the report cannot be written there.
        DataFormatError: the ground truth or the capture is not in the expected format,
            or the ground truth has nothing in the frames to replay.
    """
    ensure_writable(out, "report")
    rows = read_ground_truth(gt) if gt is not None else None
    if rows is not None and gt is not None and frames is not None:
        ground_truth_of_frames(rows, frames, gt.name, replayed=False)
    if pcap is not None:
        try:
            with CaptureFile(pcap):
                pass  # a missing, empty or unknown file fails here, in one line
        except DataFormatError as error:
            message = str(error)
            raise DataFormatError(
                message if str(pcap) in message else f"{pcap}: {message}"
            ) from None
    return ReportPlan(out, rows, gt.name if gt is not None else None, pcap)


def replay_wifi(db: sqlite_utils.Database, site: SiteConfig, pcap: Path) -> tuple[str, int]:
    """Run a capture through the Wi-Fi pipeline into ``wifi_windows``; (sensor, windows)."""
    config = site.wifi or WifiConfig()
    result = replay_to_list(pcap, config, timezone=site.site.timezone)
    written = replace_windows(db, result.windows)   # a report built again replaces its rows
    return capture_sensor_name(pcap), written


def make_report(
    plan: ReportPlan, db: sqlite_utils.Database, site: SiteConfig, run_id: int
) -> tuple[ReportData, Accuracy | None, str | None]:
    """Measure, draw and write the report of ``run_id``.

    Returns:
        What the report shows, its accuracy section (or None), and the Wi-Fi sensor
        replayed from ``plan.pcap`` (or None).
    """
    sensor = None
    if plan.pcap is not None:
        sensor, _ = replay_wifi(db, site, plan.pcap)
    accuracy = None
    if plan.gt is not None:
        accuracy = evaluate_run(db, site, run_id, plan.gt, plan.gt_name or "ground truth")
    data = write_report(plan.out, db, site, run_id, accuracy,
                        wifi_sensors=[sensor] if sensor is not None else None)
    return data, accuracy, sensor
