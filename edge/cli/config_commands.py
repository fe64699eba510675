"""``edge check-config``."""

from __future__ import annotations

import re
from pathlib import Path

import click
import numpy as np

from edge.calibration import fit_camera_calibrations
from edge.cli.options import resolve_site_path
from edge.config import load_site
from edge.errors import ConfigError


@click.command("check-config")
@click.argument("site_path", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--list-cameras", is_flag=True, help="Only print the camera ids, one a line.")
@click.option("--has-wifi", is_flag=True, help="Only exit 0 if a Wi-Fi sensor is configured.")
@click.option("--fuses-cameras", is_flag=True,
              help="Only exit 0 if the site has several cameras to fuse (a fusion service).")
@click.option("--service", "services", multiple=True, metavar="NAME",
              help="Check only what this service needs besides a valid config: web (a PIN "
                   "unless open-lan), camera:ID (its video file), sync, wifi. Repeatable; "
                   "default: every service. Each systemd unit checks its own.")
def check_config(site_path: Path | None, list_cameras: bool, has_wifi: bool,
                 fuses_cameras: bool, services: tuple[str, ...]) -> None:
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
    if list_cameras:
        for camera in site.cameras:
            click.echo(camera.id)
        return
    if has_wifi:
        raise SystemExit(0 if site.wifi is not None and site.wifi.interface else 1)
    if fuses_cameras:
        raise SystemExit(0 if site.fuses_cameras else 1)
    click.echo(f"{path}: valid site config for store {site.site.id!r}")
    for camera_id, homography in fit_camera_calibrations(site).items():
        errors = homography.reprojection_error_m
        if len(errors) == 0:
            click.echo(f"  camera {camera_id}: calibrated by its image-to-floor matrix")
            continue
        click.echo(
            f"  camera {camera_id}: {len(errors)} calibration points, reprojection error "
            f"median {float(np.median(errors)):.3f} m, worst {float(errors.max()):.3f} m"
        )
    click.echo(f"  floor: {len(site.floor.zones)} zones, {len(site.floor.lines)} counting lines")
