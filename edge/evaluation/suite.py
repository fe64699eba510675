"""Every accuracy figure of the project against the shared ground truth, by section.

``edge eval suite`` prints them; each section is a function returning
``figure name -> number`` (``None`` where a figure is undefined, e.g. a correlation
over a constant series). The names are an interface (docs/report.md lists them).

Sections:
    reference: the evaluator itself on py-motmetrics' TUD-Campus data (published
        IDF1 0.557659, MOTA 0.526462): proves the metrics are wired correctly.
    video: ``edge replay`` of the PETS09-S2L1 recording (detector, tracker,
        calibration): MOT metrics, floor-position error, zone dwell error and
        entrance-line counts.
    tracker: our tracker alone on the public PETS det.txt, and supervision's
        ByteTrack on the same detections when it is installed.
    wifi: Brno lab captures (estimate vs room occupancy) and single-phone captures
        (devices estimated for one phone).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edge.config import SiteConfig
from edge.evaluation.accuracy import evaluate_run, read_ground_truth
from edge.evaluation.mot import evaluate_mot, evaluate_mot_files
from edge.evaluation.trackers import (
    load_detections,
    supervision_available,
    track_ours,
    track_supervision,
)
from edge.evaluation.wifi import brno_config, evaluate_occupancy, single_phone_devices
from edge.motformat import read_mot
from edge.replay import replay
from edge.storage import trajectories
from edge.storage.database import open_database

Figures = dict[str, float | int | None]

TUD_PUBLISHED = {"IDF1": 0.557659, "MOTA": 0.526462}
MOT_NAMES = ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "id_switches", "false_positives",
             "misses", "frames")
FLOOR_NAMES = ("median_m", "p90_m", "mean_m", "matched")
VISIT_NAMES = ("dwell_median_rel_error", "dwell_pairs_within_10pct", "dwell_pairs",
               "false_tracks", "entrance_gt_crossings", "entrance_measured_crossings",
               "entrance_crossing_recall", "entrance_crossing_precision", "entrance_count_ratio")
BRNO_CAPTURES = {
    "day_p1": "position_1_sc6-61_2024-03-15_anonymized.pcap",
    "day_p2": "position_2_sc6-61_2024-03-15_anonymized.pcap",
    "lecture": "position_1_sc6-61_2023-02-08_anonymized.pcap",
    "night": "position_1_sc6-61_2023-04-17_anonymized.pcap",
}
PETS_FPS = 7.0


def _number(value: object) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, bool | int | np.integer):
        return int(value)
    number = float(value)  # type: ignore[arg-type]
    return round(number, 6) if np.isfinite(number) else None


def _pick(prefix: str, values: dict, names: tuple[str, ...]) -> Figures:
    return {f"{prefix}.{name}": _number(values.get(name)) for name in names}


def reference(shared: Path) -> Figures:
    """The evaluator on py-motmetrics' own TUD-Campus test data."""
    folder = shared / "mot" / "motmetrics-TUD-Campus"
    metrics = evaluate_mot_files(folder / "gt.txt", folder / "test.txt")
    figures = _pick("reference.tud_campus", metrics,
                    ("IDF1", "MOTA", "false_positives", "misses", "id_switches"))
    figures["reference.tud_campus.matches_published"] = int(all(
        abs(float(metrics[name]) - value) < 1e-6 for name, value in TUD_PUBLISHED.items()
    ))
    return figures


def video(site: SiteConfig, shared: Path, max_frames: int | None = None) -> Figures:
    """Replay the PETS recording through the whole pipeline and measure it."""
    gt_path = shared / "mot" / "PETS09-S2L1" / "gt" / "gt.txt"
    with tempfile.TemporaryDirectory(prefix="edge-evaluate-") as folder:
        # A replay writes runs and track points only: their tables are all it needs.
        db = open_database(Path(folder) / "evaluate.db", migrations=[trajectories.MIGRATIONS])
        summary = replay(site, db, start_time=0.0, max_frames=max_frames)
        accuracy = evaluate_run(db, site, summary.run_id, read_ground_truth(gt_path), "gt.txt")
        db.close()
    figures = _pick("pets.video", accuracy.mot, MOT_NAMES)
    figures.update(_pick("pets.floor", accuracy.floor or {}, FLOOR_NAMES))
    figures.update(_pick("pets.visits", accuracy.visits or {}, VISIT_NAMES))
    figures["pets.video.frames_per_s"] = _number(summary.fps)
    return figures


def tracker(site: SiteConfig, shared: Path) -> Figures:
    """Tracker only, on the public detections: ours, and supervision's if installed."""
    folder = shared / "mot" / "PETS09-S2L1"
    frames = load_detections(folder / "det" / "det.txt")
    gt = read_mot(folder / "gt" / "gt.txt")
    names = ("HOTA", "IDF1", "MOTA", "id_switches")
    tracks, _ = track_ours(frames, PETS_FPS, site.tracker)
    figures = _pick("pets.tracker", evaluate_mot(gt, tracks), names)
    if supervision_available():
        tracks, _ = track_supervision(frames, PETS_FPS)
        figures.update(_pick("pets.tracker_supervision", evaluate_mot(gt, tracks), names))
    return figures


def wifi(shared: Path) -> Figures:
    """Brno occupancy correlation per capture and single-phone device counts."""
    figures: Figures = {}
    brno = shared / "wifi" / "brno-sc6-61"
    config = brno_config(brno)
    for label, name in BRNO_CAPTURES.items():
        result = evaluate_occupancy(brno / name, config)
        prefix = f"wifi.brno.{label}"
        figures[f"{prefix}.r"] = _number(result.r)
        figures[f"{prefix}.r_raw_addresses"] = _number(result.r_raw)
        figures[f"{prefix}.r_gated_addresses"] = _number(result.r_gated)
        figures[f"{prefix}.mae_people"] = _number(result.mae)
        figures[f"{prefix}.windows"] = len(result.people)
        figures[f"{prefix}.max_devices"] = max(
            (w.in_store_devices for w in result.windows), default=0)
    for capture in sorted((shared / "wifi" / "single-phone").glob("*.pcap")):
        label = capture.name.removesuffix("_anonymized.pcap")
        count = single_phone_devices(capture)
        figures[f"wifi.single_phone.{label}.devices"] = count.whole
        figures[f"wifi.single_phone.{label}.per_window_max"] = count.per_window_max
    return figures


SECTIONS: dict[str, Callable[..., Figures]] = {
    "reference": lambda site, shared, max_frames: reference(shared),
    "tracker": lambda site, shared, max_frames: tracker(site, shared),
    "wifi": lambda site, shared, max_frames: wifi(shared),
    "video": video,
}


def run(
    site: SiteConfig,
    shared: Path,
    sections: list[str] | None = None,
    *,
    max_frames: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> Figures:
    """Run the chosen sections (default all) and merge their figures.

    Each section's wall time is added as ``seconds.<section>``.
    """
    figures: Figures = {}
    for name in sections or list(SECTIONS):
        if progress is not None:
            progress(name)
        started = time.monotonic()
        figures.update(SECTIONS[name](site, shared, max_frames))
        figures[f"seconds.{name}"] = round(time.monotonic() - started, 1)
    return figures
