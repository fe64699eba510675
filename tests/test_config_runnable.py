"""check-config refuses what a camera service could not run with, though the config is
valid: the detector's model missing here, a floor_area where the camera sees nobody."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import shapely
import yaml
from click.testing import CliRunner

from edge.cli import cli
from edge.config.vision import DetectorConfig
from edge.detection import load_detector
from edge.errors import ModelError
from edge.fusion.coverage import Coverage, footprint

pytestmark = pytest.mark.system

# 1 px = 1 cm: a 600x500 frame sees the floor from (0, 0) to (6, 5) m.
CENTIMETRES = [[0.01, 0, 0], [0, 0.01, 0], [0, 0, 1]]


def write_site(tmp_path: Path, *, floor_area=None, image_size=(600, 500),
               detector=None, second_camera=False) -> Path:
    calibration: dict = {"homography": CENTIMETRES}
    if image_size is not None:
        calibration["image_size"] = list(image_size)
    camera: dict = {"id": "cam1", "source": "rtsp://192.168.1.10/s", "calibration": calibration}
    if floor_area is not None:
        camera["floor_area"] = floor_area
    cameras = [camera]
    if second_camera:
        cameras.append({"id": "cam2", "source": "rtsp://192.168.1.11/s", "calibration":
                        {"homography": [[0.01, 0, 3], [0, 0.01, 0], [0, 0, 1]],
                         "image_size": [600, 500]}})
    site: dict = {"site": {"id": "store-0042"}, "cameras": cameras,
                  "floor": {"bounds": [[0, 0], [30, 30]]}, "web": {"access": "open-lan"}}
    if detector is not None:
        site["detector"] = detector
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(site))
    return path


def check_config(path: Path, *options: str):
    return CliRunner().invoke(cli, ["check-config", *options, str(path)])


@pytest.fixture
def no_models(tmp_path, monkeypatch):
    """A box whose model folder is empty and no offline copy is given."""
    empty = tmp_path / "models"
    empty.mkdir()
    monkeypatch.setenv("EDGE_ASSETS_DIR", str(tmp_path / "no-assets"))
    monkeypatch.setenv("EDGE_MODEL_DIR", str(empty))
    monkeypatch.setenv("EDGE_OFFLINE", "1")
    return empty


@pytest.mark.parametrize("detector", [None, {"model": "/etc/store-edge/detector.onnx",
                                             "kind": "yolox"}],
                         ids=["manifest-model-not-fetched", "model-file-missing"])
def test_a_missing_model_stops_the_cameras_check_not_the_page_s(tmp_path, no_models, detector):
    """Reviewer's report: with the model missing, check-config and `--service camera:ID`
    passed ("detector input unknown: the model file is missing"), the installer enabled
    and started the units, and each camera then exited 78 on "model file ... does not
    exist", with no word of how to get it."""
    path = write_site(tmp_path, detector=detector)
    for service in ((), ("--service", "camera:cam1")):
        result = check_config(path, *service)
        assert result.exit_code == 78, result.output
        assert "detector.model:" in result.output and "edge models fetch" in result.output
        assert (f"model folder: {no_models}" in result.output) == (detector is None)
    # The page, sync and fusion do not load the model.
    assert check_config(path, "--service", "web").exit_code == 0


def test_the_camera_worker_s_model_error_says_how_to_get_one(tmp_path):
    config = DetectorConfig(model=str(tmp_path / "detector.onnx"), kind="yolox")
    with pytest.raises(ModelError, match=r"does not exist; put the \.onnx file there, or set "
                       r"detector\.model to a model of the manifest .*edge models fetch"):
        load_detector(config)


@pytest.mark.parametrize(
    "area, expected",
    [
        ([[40, 40], [45, 40], [45, 45], [40, 45]],
         r"cameras\[0\]\.floor_area: camera cam1's floor_area lies outside floor\.bounds "
         r"\[\[0, 0\], \[30, 30\]\]: it would track nobody"),
        ([[20, 20], [25, 20], [25, 25], [20, 25]],
         r"cameras\[0\]\.floor_area: camera cam1's floor_area does not meet what it sees "
         r"\(the floor from x 0\.0 to 6\.0 m, y 0\.0 to 5\.0 m, in its 600x500 frames\): it "
         r"would track nobody"),
    ],
    ids=["outside-bounds", "outside-the-view"],
)
def test_a_floor_area_where_the_camera_sees_nobody_is_refused(tmp_path, area, expected):
    """Reviewer's report: check-config passed such a site, saying "(footprints of cam1
    unknown: give calibration.image_size)" though it was given; the camera then tracked
    nobody, and the fusion took it as seeing the whole floor."""
    path = write_site(tmp_path, floor_area=area, second_camera=True)
    for service in ((), ("--service", "camera:cam1")):
        result = check_config(path, *service)
        assert result.exit_code == 78, result.output
        assert "unknown: give calibration.image_size" not in result.output
        assert len(re.findall(expected, result.output)) == 1, result.output
    assert check_config(path, "--service", "camera:cam2").exit_code == 0
    fusion = check_config(path, "--service", "fusion")  # it runs, taking cam1 as blind
    assert fusion.exit_code == 0, fusion.output
    assert "camera cam1's footprint is empty" in fusion.stderr


def test_a_floor_area_inside_the_view_passes(tmp_path):
    inside = write_site(tmp_path, floor_area=[[1, 1], [5, 1], [5, 4], [1, 4]])
    assert check_config(inside).exit_code == 0
    live = write_site(tmp_path, floor_area=[[20, 20], [25, 20], [25, 25], [20, 25]],
                      image_size=None)  # a live stream's view is known once it runs
    assert check_config(live).exit_code == 0


def test_an_empty_footprint_covers_nothing_an_unknown_one_everything():
    """A floor_area that misses the view gave a footprint of None, which the fusion reads
    as "frame size not known yet: sees everywhere": people it could never see were
    declared gone as soon as it was live."""
    area = shapely.Polygon([(20, 20), (25, 20), (25, 25), (20, 25)])
    seen = footprint(np.array(CENTIMETRES), (600, 500), max_range_m=40.0, area=area)
    assert seen is not None and seen.is_empty
    inside = footprint(np.array(CENTIMETRES), (600, 500), max_range_m=40.0,
                       area=shapely.box(1, 1, 5, 4))
    assert inside.area == pytest.approx(12.0)
    coverage = Coverage({"blind": seen, "unknown": None, "inside": inside})
    xy = np.array([[22.0, 22.0], [2.0, 2.0]])
    assert coverage.covering(xy, {"blind"}).tolist() == [0, 0]
    assert coverage.covering(xy, {"unknown"}).tolist() == [1, 1]
    assert coverage.covering(xy, {"inside"}).tolist() == [0, 1]
    assert coverage.near(xy, {"blind"}, 1.0).tolist() == [False, False]
    assert coverage.overlaps()[("blind", "inside")] == 0.0
