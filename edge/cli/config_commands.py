"""``edge check-config``."""

from __future__ import annotations

import math
import re
from pathlib import Path

import click
import cv2
import numpy as np
import shapely

from edge import assets
from edge.calibration import Homography, fit_camera_calibrations
from edge.cli.options import resolve_site_path
from edge.config import SiteConfig, load_site
from edge.config.vision import DEFAULT_FPS, CameraConfig, is_file_source
from edge.detection.base import resolve_model
from edge.detection.input_size import describe_input_size
from edge.detection.session import make_session
from edge.errors import ConfigError, EdgeError, ModelError
from edge.fusion.coverage import footprint
from edge.visits.layout import layout_warnings

# Folders the camera unit (systemd/store-edge-camera@.service) cannot see: its /tmp and
# /var/tmp are private and empty (PrivateTmp=yes), home folders hidden (ProtectHome=yes).
HIDDEN_FROM_SERVICES = {"/tmp": "PrivateTmp=yes", "/var/tmp": "PrivateTmp=yes",
                        "/home": "ProtectHome=yes", "/root": "ProtectHome=yes",
                        "/run/user": "ProtectHome=yes"}


# Below this detection rate the image tracker loses people who pass each other
# (docs/vision.md, "Tuning a new site": random counting lines on PETS at 7, 3.5 and 2.3
# frames/s, WILDTRACK's cameras alone at 2).
MIN_COUNTING_RATE = 3.0


def _camera_problems(path: Path, site: SiteConfig, camera_ids: set[str] | None,
                     fitted: dict[str, Homography]) -> tuple[list[str], list[str]]:
    """What a camera service could not run with, beyond the config's own checks: an
    ``asset:`` name the manifest lacks, the detector's model missing here, a
    ``floor_area`` where the camera sees nobody (errors); a video file its unit cannot see
    (tests and engineers run cameras on such files by hand), a ``detect_fps`` it cannot
    keep and a detection rate too low to count people by (warnings)."""
    errors, warnings = [], []
    checked = [camera for camera in site.cameras
               if camera_ids is None or camera.id in camera_ids]
    model = _model_problem(site) if checked else None
    if model:  # regression: check-config passed it, then the camera exited 78
        errors.append(f"{path} {model}")
    for camera in checked:
        index = site.cameras.index(camera)
        if camera.floor_area is not None:
            area = _floor_area_problem(camera, site, fitted[camera.id])
            if area:
                errors.append(f"{path} cameras[{index}].floor_area: {area}")
        rate = camera.detection_rate
        if camera.detect_fps and rate and not math.isclose(rate, camera.detect_fps, rel_tol=1e-3):
            # Regression: fps 10 and detect_fps 6 ran at 5 frames/s, without a word.
            warnings.append(
                f"{path} cameras[{index}].detect_fps: frames are skipped whole, so of "
                f"{camera.fps:g} frames/s the detector runs at {rate:.3g}, not "
                f"{camera.detect_fps:g}; set detect_fps: {rate:.3g} to say so")
        if rate and rate < MIN_COUNTING_RATE:
            warnings.append(
                f"{path} cameras[{index}]: the detector runs at {rate:.3g} frames/s; below "
                f"{MIN_COUNTING_RATE:g}, people passing each other swap tracks and counting "
                f"lines miss crossings (PETS: 4 % fewer at 2.3 frames/s than at 7; a crowd "
                f"at 2 frames/s loses a quarter); raise detect_fps if the CPU allows")
        where = f"{path} cameras[{index}].source"
        if camera.source.startswith(assets.ASSET_SCHEME):
            name = camera.source.removeprefix(assets.ASSET_SCHEME)
            samples = sorted(n for n, e in assets.manifest().items() if e.kind == "samples")
            if name not in samples:  # the service ran on with 0 frames
                errors.append(f"{where}: no sample recording named {name!r} in the model "
                              f"manifest; known: {', '.join(samples) or 'none'} "
                              f"(got {camera.source!r})")
        elif is_file_source(camera.source):
            resolved = Path(camera.source).resolve()
            for folder, setting in HIDDEN_FROM_SERVICES.items():
                if resolved.is_relative_to(folder):
                    warnings.append(
                        f"{where}: the camera service cannot see {resolved} ({setting} in "
                        f"its systemd unit); move the file under /var/lib/store-edge or "
                        f"/etc/store-edge")
                    break
    return errors, warnings


@click.command("check-config")
@click.argument("site_path", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--list-cameras", is_flag=True, help="Only print the camera ids, one a line.")
@click.option("--has-wifi", is_flag=True, help="Only exit 0 if a Wi-Fi sensor is configured.")
@click.option("--fuses-cameras", is_flag=True,
              help="Only exit 0 if the site has several cameras to fuse (a fusion service).")
@click.option("--purge-interval", is_flag=True,
              help="Only print service.purge_interval_s, whole seconds (the installer sets "
                   "store-edge-purge.timer to it).")
@click.option("--capacity", is_flag=True,
              help="Also time the detector on this box's processor, at each camera's input "
                   "size and rate, and say how much of it the cameras take (a few seconds "
                   "a camera size).")
@click.option("--service", "services", multiple=True, metavar="NAME",
              help="Check only what this service needs besides a valid config: web (a PIN "
                   "unless open-lan), camera:ID (its video file), sync, wifi. Repeatable; "
                   "default: every service. Each systemd unit checks its own.")
def check_config(site_path: Path | None, list_cameras: bool, has_wifi: bool,
                 fuses_cameras: bool, purge_interval: bool, capacity: bool,
                 services: tuple[str, ...]) -> None:
    """Validate a site config and report each camera's calibration error.

    Exits non-zero (78), naming the file, line and key, if anything is wrong,
    including what the services need to run (cameras' video files, the page's PIN).
    """
    for name in services:
        if not re.fullmatch(r"web|sync|wifi|fusion|camera:\S+", name):
            raise click.BadParameter(
                f"{name!r} is not a service; give web, sync, wifi, fusion or camera:ID",
                param_hint="--service")
    path = resolve_site_path(site_path)
    # What the services need too: a missing video file would leave its worker retrying
    # forever, a missing PIN would stop the page.
    site = load_site(path, services=services or True)
    unknown = sorted({name.removeprefix("camera:") for name in services
                      if name.startswith("camera:")} - {c.id for c in site.cameras})
    if unknown:
        raise ConfigError(f"{path} has no camera {', '.join(unknown)} (cameras: "
                          f"{', '.join(c.id for c in site.cameras) or 'none'})")
    cameras = (None if not services else
               {name.removeprefix("camera:") for name in services if name.startswith("camera:")})
    fitted = fit_camera_calibrations(site)
    problems, warnings = _camera_problems(path, site, cameras, fitted)
    if not services:
        warnings += [f"{path} {warning}" for warning in layout_warnings(site.floor)]
    late = site.settle_warning()
    if late and (not services or "sync" in services):
        warnings.append(f"{path} {late}")
    if problems:
        raise ConfigError("invalid site config: " + problems[0] if len(problems) == 1 else
                          "invalid site config:\n  " + "\n  ".join(problems))
    for warning in warnings:
        click.echo(f"Warning: {warning}", err=True)
    if list_cameras:
        for camera in site.cameras:
            click.echo(camera.id)
        return
    if has_wifi:
        raise SystemExit(0 if site.wifi is not None and site.wifi.interface else 1)
    if fuses_cameras:
        raise SystemExit(0 if site.fuses_cameras else 1)
    if purge_interval:
        # whole seconds, rounded down: a purge a little early never lets data outlive its period
        click.echo(int(site.service.purge_interval_s))
        return
    click.echo(f"{path}: valid site config for store {site.site.id!r}")
    for camera_id, homography in fitted.items():
        errors = homography.reprojection_error_m
        if len(errors) == 0:
            click.echo(f"  camera {camera_id}: calibrated by its image-to-floor matrix")
            continue
        click.echo(
            f"  camera {camera_id}: {len(errors)} calibration points, reprojection error "
            f"median {float(np.median(errors)):.3f} m, worst {float(errors.max()):.3f} m"
        )
    model = _model_input(site)
    for camera in site.cameras:
        line = ("unknown: the model file is missing" if model is None else
                describe_input_size(site.detector.input_size, *model, _frame_size(camera)))
        click.echo(f"  camera {camera.id}: detector input {line}")
    click.echo(f"  floor: {len(site.floor.zones)} zones, {len(site.floor.lines)} counting lines")
    if site.fuses_cameras:
        _check_fusion(site)
    if capacity:
        _check_capacity(site)


# A live camera's frame size is known once it runs; timed at this one, and said so.
ASSUMED_FRAME_SIZE = (1280, 720)


def _check_capacity(site: SiteConfig) -> None:
    """Time the detector on this processor for each camera and compare the cameras'
    share of it with the cores there are; a warning when they would fall behind."""
    from edge.capacity import USABLE_SHARE, CameraLoad, decode_cpu_ms, detector_cpu_ms
    from edge.detection import load_detector
    from edge.detection.session import usable_cores, worker_detector

    cores = usable_cores()
    # Timed as the camera workers run it: with their share of the threads.
    config = worker_detector(site.detector, len(site.cameras), cores)
    threads = config.threads
    shown_threads = ("onnxruntime's choice of detector threads" if threads is None else
                     f"{threads} detector thread{'s' if threads > 1 else ''} a camera")
    click.echo(f"  capacity, measured on this box's processor ({cores} cores, "
               f"{shown_threads}):")
    timed: dict[tuple[int, int], tuple[tuple[int, int] | None, float]] = {}
    decoding: dict[tuple[int, int], float] = {}
    loads = []
    for camera in site.cameras:
        frame = _frame_size(camera)
        assumed = frame is None
        frame = frame or ASSUMED_FRAME_SIZE
        if frame not in timed:  # the input size may follow the frame's: one detector each
            detector = load_detector(config)
            ms = detector_cpu_ms(detector, frame)
            timed[frame] = (detector.input_size, ms)
        size, ms = timed[frame]
        if frame not in decoding:
            decoding[frame] = decode_cpu_ms(frame)
        load = CameraLoad(camera.id, size, camera.detection_rate or DEFAULT_FPS, ms,
                          camera.fps, decoding[frame])
        loads.append(load)
        shown = f"{size[0]}x{size[1]}" if size else "model's own"
        skipped = (f"; it sends {camera.fps:g} frames/s, each decoded (at least "
                   f"{load.decode_ms:.1f} ms at {frame[0]}x{frame[1]})"
                   if camera.fps and camera.fps > load.pictures_per_s else "")
        click.echo(f"    camera {camera.id}: input {shown}"
                   f"{' (frames assumed 1280x720: give calibration.image_size)' if assumed else ''}"
                   f", {load.pictures_per_s:g} pictures/s x {ms:.1f} ms{skipped}: "
                   f"{load.cores:.2f} cores")
    total = sum(load.cores for load in loads)
    costliest = max(loads, key=lambda load: load.cores)
    room = math.floor((USABLE_SHARE * cores - total) / costliest.cores) if costliest.cores else 0
    click.echo(f"  cameras: {total:.2f} of {cores} cores ({100 * total / cores:.0f} %)"
               + (f"; at least {room} more like camera {costliest.camera_id} would fit"
                  if room > 0 else ""))
    if total > USABLE_SHARE * cores:
        click.echo(
            f"Warning: the cameras need about {total:.1f} of this box's {cores} cores (more "
            f"than {100 * USABLE_SHARE:.0f} %): they will fall behind and miss people (each "
            f"camera's health says 'falling behind'); lower detect_fps, give a smaller "
            f"detector.input_size, give the box each camera's sub-stream (fewer, smaller "
            f"frames to decode), or move cameras to another box", err=True)


def _model_input(site: SiteConfig) -> tuple[bool, tuple[int, int] | None] | None:
    """Whether the detector's model resizes, and its own ``(height, width)``: from the
    manifest for a model named there, else from the file's input; None when a file
    given by path is missing (an error where a camera's service is checked)."""
    name = site.detector.model
    if name in assets.manifest():
        shape = assets.entry(name).spec["input"]
        return bool(shape.get("resizable")), (int(shape["height"]), int(shape["width"]))
    try:
        path, _, _ = resolve_model(site.detector, download=False)
    except ModelError:
        return None
    dims = make_session(path, threads=1).get_inputs()[0].shape[2:]
    if all(isinstance(d, int) for d in dims):
        return False, (int(dims[0]), int(dims[1]))
    return True, None


def _model_problem(site: SiteConfig) -> str | None:
    """Why a camera service could not load the detector's model: a file that is not
    there, or a manifest model with no verified copy in the model folder (nothing is
    downloaded: the camera units may not reach the internet)."""
    try:
        resolve_model(site.detector, download=False)
    except ModelError as error:
        if site.detector.model not in assets.manifest():
            return f"detector.model: {error}"
        # The folder looked in: EDGE_MODEL_DIR, else the state folder's models/.
        return f"detector.model: {error} (model folder: {assets.model_store()})"
    return None


def _floor_area_problem(camera: CameraConfig, site: SiteConfig,
                        homography: Homography) -> str | None:
    """Why a camera would track nobody: its ``floor_area`` off the floor plan, or (its
    frame size known) off the floor it sees."""
    area = shapely.Polygon(camera.floor_area)
    (x0, y0), (x1, y1) = site.floor.bounds
    if area.intersection(shapely.box(x0, y0, x1, y1)).area <= 0:
        return (f"camera {camera.id}'s floor_area lies outside floor.bounds [[{x0:g}, "
                f"{y0:g}], [{x1:g}, {y1:g}]]: it would track nobody; give its corners in "
                "the floor plan's metres (a sign error or swapped axes?)")
    size = _frame_size(camera)
    if size is None:
        return None  # a live stream: what it sees is known once it runs
    # All it sees, however far: the worker tracks anyone whose feet map into the area.
    seen = footprint(homography.matrix, size, max_range_m=math.inf)
    if seen.intersection(area).area > 0:
        return None
    (sx0, sy0, sx1, sy1) = seen.bounds if not seen.is_empty else (math.nan,) * 4
    return (f"camera {camera.id}'s floor_area does not meet what it sees (the floor from "
            f"x {sx0:.1f} to {sx1:.1f} m, y {sy0:.1f} to {sy1:.1f} m, in its "
            f"{size[0]}x{size[1]} frames): it would track nobody; check the area's corners "
            "and the camera's calibration")


def _frame_size(camera: CameraConfig) -> tuple[int, int] | None:
    """``(width, height)`` of the camera's frames, when known without connecting to it:
    its calibration's image_size, or a video file's header."""
    if camera.calibration.image_size is not None:
        return camera.calibration.image_size
    if not (camera.source.startswith(assets.ASSET_SCHEME) or is_file_source(camera.source)):
        return None  # a live stream: known once it runs
    try:
        capture = cv2.VideoCapture(assets.resolve_uri(camera.source))
    except EdgeError:  # a sample not installed: said above
        return None
    try:
        size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    finally:
        capture.release()
    return size if min(size) > 0 else None


def _check_fusion(site: SiteConfig) -> None:
    """A multi-camera site: say how the cameras are fused, and warn about a camera whose
    footprint (known from calibration.image_size) is empty or overlaps no other
    camera's."""
    from edge.fusion.stage import FusionStage

    stage = FusionStage(site)
    unknown = [c for c, p in stage.coverage.footprints.items() if p is None]
    click.echo(f"  {len(site.cameras)} cameras fused into one track per person"
               + (f" (footprints of {', '.join(unknown)} unknown: give calibration.image_size)"
                  if unknown else ""))
    for camera, seen in stage.coverage.footprints.items():
        if seen is not None and seen.is_empty:  # a floor_area off the view is an error above
            click.echo(f"Warning: camera {camera}'s footprint is empty (its floor_area lies "
                       f"beyond fusion.max_range_m, {site.fusion.max_range_m:g} m, of it, or "
                       "misses what it sees): the fusion takes it as seeing nobody.", err=True)
    for camera in stage.lonely_cameras():
        click.echo(f"Warning: camera {camera}'s view overlaps no other camera's: people walking "
                   "between it and the others are followed by motion alone (edge calibrate "
                   "--footprints PLAN.png draws them).", err=True)
