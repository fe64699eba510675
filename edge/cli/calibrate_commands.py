"""``edge calibrate``: fit a camera's homography from point pairs and draw the check."""

from __future__ import annotations

import csv
from pathlib import Path

import click
import cv2
import numpy as np
import yaml

from edge.calibration import fit_homography
from edge.calibration_overlay import draw_floor_grid
from edge.errors import DataFormatError, OutputError, SourceError


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
    if video.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp"):
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
@click.argument("picture", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--pairs", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="CSV of floor marks: u,v (pixels in the picture), x,y (metres on the plan).")
@click.option("--frame", "frame_index", default=0, show_default=True,
              help="Which frame, when PICTURE is a video.")
@click.option("--overlay", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Write the picture with the floor's metre grid drawn on it here (PNG/JPEG).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the camera's `calibration:` section (YAML) here.")
@click.option("--step", default=1.0, show_default=True, help="Grid spacing in metres.")
def calibrate_command(
    picture: Path, pairs: Path, frame_index: int, overlay: Path, out: Path | None, step: float
) -> None:
    """Fit a camera's image-to-floor calibration from point pairs, print each point's
    error, and draw the floor grid on PICTURE (an image or a video frame) to check it."""
    image_points, floor_points = read_pairs(pairs)
    homography = fit_homography(image_points, floor_points)
    image = read_frame(picture, frame_index)
    pad = max(step, 1.0)
    bounds = (tuple(floor_points.min(axis=0) - pad), tuple(floor_points.max(axis=0) + pad))
    drawn = draw_floor_grid(image, homography, bounds, step, image_points, floor_points)
    if not cv2.imwrite(str(overlay), drawn):
        raise OutputError(f"cannot write the overlay picture {overlay}")
    for (u, v), (x, y), error in zip(image_points, floor_points, homography.reprojection_error_m,
                                     strict=True):
        click.echo(f"  ({u:7.1f}, {v:7.1f}) px -> ({x:7.2f}, {y:7.2f}) m: off by {error:.3f} m")
    errors = homography.reprojection_error_m
    click.echo(f"{len(errors)} points; error median {np.median(errors):.3f} m, worst {errors.max():.3f} m")
    click.echo(f"Overlay: {overlay}")
    if out is not None:
        section = {"calibration": {"image_points": image_points.round(1).tolist(),
                                   "floor_points": floor_points.round(3).tolist()}}
        try:
            out.write_text(yaml.safe_dump(section, default_flow_style=None, sort_keys=False))
        except OSError as error:
            raise OutputError(f"cannot write {out}: {error.strerror}") from None
        click.echo(f"Calibration section for the site config: {out}")
