"""``edge calibrate``: fit a camera's homography from point pairs and draw the check.

The picture is a camera's view of the store, so the people in it are pixelated
(every person the site's detector finds), unless the engineer turns on the
``--no-blur`` debug mode.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import click
import cv2
import numpy as np
import yaml

from edge.annotate import cover_scene, pixelate
from edge.calibration import Homography, fit_homography
from edge.calibration_overlay import MAX_GRID_LINES, draw_floor_grid, grid_step
from edge.cli.options import (
    FiniteFloatRange,
    db_option,
    load_site_option,
    resolve_db_path,
    site_option,
)
from edge.config.vision import CalibrationConfig
from edge.debug_modes import announce_debug_mode, refuse_under_service
from edge.errors import DataFormatError, OutputError, SourceError
from edge.runtime.schema import open_database

PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
MIN_STEP_M, MAX_STEP_M = 0.05, 50.0   # grid spacing: 5 cm tiles to a car park's rows


def read_pairs(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Point pairs from a CSV with columns ``u,v,x,y`` (pixels, metres)."""
    try:
        with path.open(newline="") as stream:
            rows = list(csv.DictReader(stream))
    except OSError as error:
        raise DataFormatError(f"cannot read point pairs {path}: {error.strerror}") from None
    if not rows or not {"u", "v", "x", "y"} <= set(rows[0]):
        raise DataFormatError(f"{path}: expected a CSV with columns u,v,x,y (pixels, metres)")
    try:
        values = np.array([[float(r[k]) for k in ("u", "v", "x", "y")] for r in rows])
    except (TypeError, ValueError):
        raise DataFormatError(f"{path}: every u,v,x,y must be a number") from None
    return values[:, :2], values[:, 2:]


def read_frame(video: Path, index: int) -> np.ndarray:
    """One picture: an image file, or frame ``index`` of a video."""
    if video.suffix.lower() in PICTURE_SUFFIXES:
        image = cv2.imread(str(video))
    else:
        capture = cv2.VideoCapture(str(video))
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, image = capture.read()
        capture.release()
        image = image if ok else None
    if image is None:
        raise SourceError(f"cannot read a picture from {video} (frame {index})")
    return image


@click.command("calibrate")
@click.argument("picture", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                required=False)
@click.option("--pairs", type=click.Path(dir_okay=False, path_type=Path),
              help="CSV of floor marks: u,v (pixels in the picture), x,y (metres on the plan).")
@click.option("--footprints", type=click.Path(dir_okay=False, path_type=Path),
              help="Instead: draw every camera's footprint of the site on its floor plan, with "
                   "the overlaps, here (PNG), and print the floor each camera and each pair "
                   "sees.")
@click.option("--frame", "frame_index", default=0, show_default=True,
              help="Which frame, when PICTURE is a video.")
@click.option("--overlay", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the picture with the floor's metre grid drawn on it here (PNG/JPEG).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the camera's `calibration:` section (YAML) here.")
@click.option("--step", type=FiniteFloatRange(MIN_STEP_M, MAX_STEP_M), default=1.0,
              show_default=True,
              help=f"Grid spacing in metres, {MIN_STEP_M:g} to {MAX_STEP_M:g} (widened to a "
                   f"multiple when more than {MAX_GRID_LINES} lines would be drawn).")
@site_option
@db_option
@click.option("--no-blur", is_flag=True,
              help="DEBUG MODE: do not cover the overlay picture (people stay sharp). Only for "
                   "your own test footage; refused under systemd; announced loudly (and recorded "
                   "in the site's database, --db, for its status page and audit log).")
def calibrate_command(
    picture: Path | None, pairs: Path | None, footprints: Path | None, frame_index: int,
    overlay: Path | None, out: Path | None, step: float, site_path: Path | None,
    db_path: Path | None, no_blur: bool,
) -> None:
    """Fit a camera's image-to-floor calibration from point pairs, print each point's
    error, and draw the floor grid on PICTURE (an image or a video frame) to check it.
    The picture is covered as the annotated video is: the people the site's detector
    finds pixelated, then the whole scene, so that nobody the detector misses is
    recognisable either; the file is readable by its owner only.

    With --footprints instead: draw where every camera of the site sees the floor."""
    if footprints is not None:
        if picture is not None or pairs is not None or overlay is not None:
            raise click.UsageError("--footprints draws the site's cameras: drop PICTURE, "
                                   "--pairs and --overlay")
        _draw_footprints(footprints, site_path)
        return
    if picture is None or pairs is None or overlay is None:
        raise click.UsageError("give PICTURE, --pairs and --overlay (or --footprints PLAN.png)")
    if overlay.suffix.lower() not in PICTURE_SUFFIXES:
        raise OutputError(f"the overlay picture {overlay} must be a {'/'.join(PICTURE_SUFFIXES)} "
                          "file")
    if no_blur:
        refuse_under_service("--no-blur")
    image_points, floor_points = read_pairs(pairs)
    homography = fit_homography(image_points, floor_points)
    image = read_frame(picture, frame_index)
    if no_blur:  # recorded in the site's database: its status page shows the banner
        db = open_database(resolve_db_path(db_path, load_site_option(site_path)))
        announce_debug_mode("no-blur", f"people are NOT pixelated in the picture {overlay}", db)
    else:
        image = cover_scene(_pixelate_people(image, site_path))
    pad = max(step, 1.0)
    bounds = (tuple(floor_points.min(axis=0) - pad), tuple(floor_points.max(axis=0) + pad))
    drawn = draw_floor_grid(image, homography, bounds, step, image_points, floor_points)
    drawn_step = grid_step(bounds, step)
    _write_private_picture(overlay, drawn)
    for (u, v), (x, y), error in zip(image_points, floor_points, homography.reprojection_error_m,
                                     strict=True):
        click.echo(f"  ({u:7.1f}, {v:7.1f}) px -> ({x:7.2f}, {y:7.2f}) m: off by {error:.3f} m")
    errors = homography.reprojection_error_m
    click.echo(f"{len(errors)} points; error median {np.median(errors):.3f} m, "
               f"worst {errors.max():.3f} m")
    limit = CalibrationConfig.model_fields["max_reprojection_error_m"].default
    if errors.max() > limit:
        click.echo(f"Warning: a point is off by more than {limit} m, which a site config refuses "
                   "by default (calibration.max_reprojection_error_m); check that pair.", err=True)
    if drawn_step != step:
        click.echo(f"Note: grid lines drawn every {drawn_step:g} m, not {step:g} m, so that "
                   f"at most {MAX_GRID_LINES} cross the {_span(bounds):g} m the marks span.",
                   err=True)
    click.echo(f"Overlay: {overlay}")
    if out is not None:
        section = {"calibration": {"image_points": image_points.round(1).tolist(),
                                   "floor_points": floor_points.round(3).tolist()}}
        try:
            out.write_text(_fit_comment(homography, picture, frame_index)
                           + yaml.safe_dump(section, default_flow_style=None, sort_keys=False))
        except OSError as error:
            raise OutputError(f"cannot write {out}: {error.strerror}") from None
        click.echo(f"Calibration section for the site config: {out}")


def _draw_footprints(path: Path, site_path: Path | None) -> None:
    """``edge calibrate --footprints``: every camera's footprint on the floor plan."""
    from edge.fusion.plan import coverage_report, draw_footprints
    from edge.fusion.stage import FusionStage
    from edge.video import VideoSource, is_live_source

    if path.suffix.lower() != ".png":
        raise OutputError(f"the footprint plan {path} must be a .png file")
    site = load_site_option(site_path)
    if not site.cameras:
        raise SourceError("the site config has no cameras")
    sizes = {}
    for camera in site.cameras:  # a recording's frame size, where the config lacks it
        if camera.calibration.image_size is None and not is_live_source(camera.source):
            try:
                with VideoSource(camera.id, camera.source, fps=camera.fps) as source:
                    sizes[camera.id] = (source.info.width, source.info.height)
            except SourceError:
                pass
    stage = FusionStage(site, sizes)
    footprints = stage.coverage.footprints
    report = coverage_report(footprints, site.floor)
    if not cv2.imwrite(str(path), draw_footprints(footprints, site.floor)):
        raise OutputError(f"cannot write the footprint plan {path}")
    for camera in site.cameras:
        seen = report.seen_m2.get(camera.id)
        click.echo(f"  camera {camera.id}: " + (f"sees {seen:.1f} m² of the floor plan"
                   if seen is not None else "footprint unknown (give calibration.image_size)"))
    for (a, b), area in report.shared_m2.items():
        if area > 0:
            click.echo(f"  cameras {a} and {b} both see {area:.1f} m²")
    click.echo(f"  no camera sees {report.unseen_m2:.1f} m² of the floor plan")
    for lonely in report.lonely:
        click.echo(f"Warning: camera {lonely}'s view overlaps no other camera's: people walking "
                   "between it and the others are followed by motion alone.", err=True)
    click.echo(f"Footprints: {path}")


def _span(bounds: tuple[tuple[float, float], tuple[float, float]]) -> float:
    (x0, y0), (x1, y1) = bounds
    return round(max(x1 - x0, y1 - y0), 1)


def _write_private_picture(path: Path, image: np.ndarray) -> None:
    """Write ``image`` to ``path`` (the format its suffix names), readable by its owner
    only: a camera picture, covered or not, is mode 0600, also when the file existed
    with another mode, and is never written through a symbolic link.

    Raises:
        OutputError: the picture cannot be encoded or the file cannot be written.
    """
    try:
        encoded, data = cv2.imencode(path.suffix.lower(), image)
    except cv2.error:
        encoded = False
    if not encoded:
        raise OutputError(f"cannot write the overlay picture {path}: cannot encode it")
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            os.fchmod(file.fileno(), 0o600)  # an existing file keeps its mode otherwise
            file.write(data.tobytes())
    except OSError as error:
        raise OutputError(f"cannot write the overlay picture {path}: {error.strerror}") from None


def _pixelate_people(image: np.ndarray, site_path: Path | None) -> np.ndarray:
    """The picture with every person the site's detector finds pixelated."""
    from edge.detection import load_detector

    detector = load_detector(load_site_option(site_path).detector)
    return pixelate(image, detector.detect(image).xyxy)


def _fit_comment(homography: Homography, picture: Path, frame_index: int) -> str:
    """YAML comments recording the fit: the site loader refits the same homography
    from the points, so the matrix here is for the record only."""
    errors = homography.reprojection_error_m
    rows = "\n".join("#   [" + ", ".join(f"{value:.6g}" for value in row) + "]"
                     for row in homography.matrix)
    return (f"# edge calibrate on {picture.name} (frame {frame_index}): {len(errors)} points, "
            f"error median {np.median(errors):.3f} m, worst {errors.max():.3f} m\n"
            f"# homography, image pixels -> floor metres:\n{rows}\n")
