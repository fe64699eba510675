"""Site config validation: precise, line-numbered errors; nothing half-loaded."""

from pathlib import Path

import numpy as np
import pytest

from edge.calibration import fit_homography
from edge.config import load_site, parse_site
from edge.errors import CalibrationError, ConfigError
from tests.conftest import PETS_SITE

MINIMAL = """\
site: {id: test-store}
floor:
  bounds: [[0, 0], [10, 10]]
cameras:
  - id: cam1
    source: video.avi
    calibration:
      image_points: [[0, 0], [100, 0], [100, 100], [0, 100]]
      floor_points: [[0, 0], [10, 0], [10, 10], [0, 10]]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(text)
    return path


def test_shipped_pets_site_loads(pets_site):
    assert pets_site.site.id == "pets09-demo"
    assert {z.kind for z in pets_site.floor.zones} >= {"entrance", "checkout", "product"}


def test_relative_source_resolves_next_to_the_site_file(tmp_path):
    site = load_site(write(tmp_path, MINIMAL))
    assert site.cameras[0].source == str(tmp_path / "video.avi")


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("site: {id: test-store}\n", "", r"site\.yaml.*site: Field required"),
        ("id: cam1", "id: Cam 1", r"site\.yaml:5 cameras\[0\]\.id: String should match"),
        ("[0, 100]]\n      floor", "[0, 100], [5, 5]]\n      floor",
         r"site\.yaml:7 cameras\[0\]\.calibration: "
         r"image_points has 5 points but floor_points has 4"),
        ("bounds:", "bounds_typo:", r"floor\.bounds_typo: Extra inputs are not permitted"),
        ("floor:\n",
         "floor:\n  zones: [{id: z, kind: product, polygon: [[0,0],[2,2],[2,0],[0,2]]}]\n",
         r"floor\.zones\[0\]\.polygon: zone polygon is not a simple polygon: Self-intersection"),
    ],
)
def test_invalid_configs_name_line_and_key(tmp_path, old, new, expected):
    with pytest.raises(ConfigError, match=expected):
        load_site(write(tmp_path, MINIMAL.replace(old, new, 1)))


def test_yaml_syntax_error_names_the_line(tmp_path):
    with pytest.raises(ConfigError, match=r"site\.yaml:3: not valid YAML"):
        load_site(write(tmp_path, "site: {id: x}\nfloor:\n  bounds: a: b\n"))


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_site(tmp_path / "nope.yaml")


def test_collinear_calibration_is_refused(tmp_path):
    text = MINIMAL.replace(
        "image_points: [[0, 0], [100, 0], [100, 100], [0, 100]]",
        "image_points: [[0, 0], [10, 10], [20, 20], [30, 30]]",
    )
    with pytest.raises(CalibrationError, match=r"cameras\[0\] \(cam1\)\.calibration: .*collinear"):
        load_site(write(tmp_path, text))


def test_mismatched_point_pair_is_refused(tmp_path):
    text = MINIMAL.replace(
        "image_points: [[0, 0], [100, 0], [100, 100], [0, 100]]",
        "image_points: [[0, 0], [100, 0], [100, 100], [0, 100], [50, 50]]",
    ).replace(
        "floor_points: [[0, 0], [10, 0], [10, 10], [0, 10]]",
        "floor_points: [[0, 0], [10, 0], [10, 10], [0, 10], [9, 1]]",
    )
    with pytest.raises(CalibrationError, match="reprojects"):
        load_site(write(tmp_path, text))


def test_secrets_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("STORE_NAME", "Main street")
    site = parse_site(
        MINIMAL.replace("{id: test-store}", "{id: test-store, name: '${STORE_NAME}'}"))
    assert site.site.name == "Main street"
    monkeypatch.delenv("STORE_NAME")
    with pytest.raises(ConfigError, match=r"\$\{STORE_NAME\}"):
        parse_site(MINIMAL.replace("{id: test-store}", "{id: test-store, name: '${STORE_NAME}'}"))


def test_homography_recovers_a_known_mapping():
    truth = np.array([[0.02, 0.001, -3.0], [0.0005, 0.03, -1.0], [0.0001, 0.0004, 1.0]])
    image = np.array([[10, 10], [700, 20], [650, 560], [30, 540], [350, 300]], float)
    homogeneous = np.c_[image, np.ones(len(image))] @ truth.T
    floor = homogeneous[:, :2] / homogeneous[:, 2:]
    fitted = fit_homography(image, floor)
    assert fitted.reprojection_error_m.max() < 1e-6
    assert np.allclose(fitted.floor_to_image(fitted.image_to_floor(image)), image, atol=1e-6)


def test_pets_calibration_matches_ground_truth_world_coordinates(pets_site):
    """All 4,476 gt boxes' feet map within a few centimetres of their world position."""
    from edge.calibration import fit_camera_calibrations
    from tests.conftest import PETS_GT

    gt = np.loadtxt(PETS_GT, delimiter=",")
    feet = np.c_[gt[:, 2] + gt[:, 4] / 2, gt[:, 3] + gt[:, 5]]
    homography = fit_camera_calibrations(pets_site)["view001"]
    error = np.linalg.norm(homography.image_to_floor(feet) - gt[:, 7:9], axis=1)
    assert np.median(error) < 0.05
    assert PETS_SITE.is_file()


def test_a_rejected_secret_is_not_echoed_into_the_error():
    """Config errors go to the journal: a mistyped PIN must not be printed there."""
    with pytest.raises(ConfigError) as raised:
        parse_site(MINIMAL + "web: {pin: 'abc-secret-123'}\n")
    assert "web.pin" in str(raised.value)
    assert "abc-secret-123" not in str(raised.value) and "***" in str(raised.value)
