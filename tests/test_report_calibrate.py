"""`edge calibrate` as the report's helper: a video frame and point pairs in; the fitted
calibration saved (loadable by the site config, the same homography) and an overlay
picture with the floor's metre grid, people pixelated, out."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import yaml

from edge.calibration import fit_homography
from edge.config.vision import CalibrationConfig
from tests.conftest import PETS_GT, PETS_VIDEO
from tests.support.report_support import invoke, kept_detail, read_frames
from tests.test_vision_errors import assert_clean_error

pytestmark = pytest.mark.system

PAIRS = ("u,v,x,y\n98.1,251.7,-9.627,1.038\n378.4,214.4,-3.779,-3.281\n646.3,210.0,-0.713,-9.393\n"
         "193.7,565.5,-19.825,-10.835\n399.5,562.6,-18.546,-12.924\n694.6,571.4,-17.129,-16.005\n")
FRAME = 100
NOT_A_SERVICE: dict[str, str | None] = {"INVOCATION_ID": None, "NOTIFY_SOCKET": None}


def people_boxes(frame_index: int, min_height: float = 60) -> np.ndarray:
    gt = np.loadtxt(PETS_GT, delimiter=",")
    rows = gt[(gt[:, 0] == frame_index + 1) & (gt[:, 5] >= min_height)]
    return np.c_[rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]].astype(int)


@pytest.fixture
def pairs(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text(PAIRS)
    return path


def calibrate(tmp_path, pairs, *extra, env=None):
    overlay, section = tmp_path / "overlay.png", tmp_path / "calibration.yaml"
    result = invoke("calibrate", str(PETS_VIDEO), "--pairs", str(pairs), "--frame", str(FRAME),
                      "--overlay", str(overlay), "--out", str(section), *extra, env=env)
    return result, overlay, section


def test_saved_calibration_loads_and_gives_the_same_homography(tmp_path, pairs):
    result, _, section = calibrate(tmp_path, pairs)
    assert result.returncode == 0, result.stderr
    text = section.read_text()
    assert "# homography, image pixels -> floor metres:" in text
    loaded = CalibrationConfig(**yaml.safe_load(text)["calibration"])
    refit = fit_homography(np.array(loaded.image_points), np.array(loaded.floor_points))
    rows = [line.strip("# []").split(",") for line in text.splitlines()[2:5]]
    recorded = np.array([[float(v) for v in row] for row in rows])
    assert np.allclose(recorded, refit.matrix, rtol=1e-4, atol=1e-6)
    assert refit.reprojection_error_m.max() < 0.05


def test_overlay_pixelates_people(tmp_path, pairs):
    result, overlay, _ = calibrate(tmp_path, pairs)
    assert result.returncode == 0, result.stderr
    original, drawn = read_frames(PETS_VIDEO, [FRAME])[FRAME], cv2.imread(str(overlay))
    boxes = people_boxes(FRAME)
    assert len(boxes) >= 3
    kept = [kept_detail(original[y1 + 5 : y2 - 5, x1 + 4 : x2 - 4],
                        drawn[y1 + 5 : y2 - 5, x1 + 4 : x2 - 4]) for x1, y1, x2, y2 in boxes]
    # The detector finds most people; one hidden behind the sign may stay (see docs).
    assert sorted(kept)[len(kept) // 2] < 0.3, kept


def test_overlay_covers_people_the_detector_misses_and_is_private(tmp_path, pairs):
    """Regression (privacy review, repro 04): the overlay pixelated only the people the
    detector found, so one it missed (behind the sign) kept a sharp face, in a file of
    mode 0644 (0644 kept over an existing file). It is covered whole now, as the
    annotated video is, and mode 0600."""
    overlay = tmp_path / "overlay.png"
    overlay.write_bytes(b"old")
    overlay.chmod(0o644)
    result, overlay, _ = calibrate(tmp_path, pairs)
    assert result.returncode == 0, result.stderr
    assert overlay.stat().st_mode & 0o777 == 0o600
    original, drawn = read_frames(PETS_VIDEO, [FRAME])[FRAME], cv2.imread(str(overlay))
    boxes = people_boxes(FRAME, 0)
    kept = [kept_detail(original[y1 + 5 : y2 - 5, x1 + 4 : x2 - 4],
                        drawn[y1 + 5 : y2 - 5, x1 + 4 : x2 - 4]) for x1, y1, x2, y2 in boxes]
    # every one, the person behind the sign too (0.74 with the detections alone)
    assert len(kept) >= 5 and max(kept) < 0.3, kept
    # never written through a symbolic link
    target = tmp_path / "elsewhere.png"
    link = tmp_path / "link.png"
    link.symlink_to(target)
    refused = invoke("calibrate", str(PETS_VIDEO), "--pairs", str(pairs), "--frame", str(FRAME),
                     "--overlay", str(link))
    assert_clean_error(refused, "cannot write the overlay picture")
    assert not target.exists()


def test_no_blur_overlay_is_a_refused_or_loud_debug_mode(tmp_path, pairs):
    refused, overlay, _ = calibrate(tmp_path, pairs, "--no-blur",
                                    env={**NOT_A_SERVICE, "INVOCATION_ID": "abc"})
    assert_clean_error(refused, "--no-blur is a debug mode")
    assert not overlay.exists()
    result, overlay, _ = calibrate(tmp_path, pairs, "--no-blur", env=NOT_A_SERVICE)
    assert result.returncode == 0, result.stderr
    assert "WARNING: DEBUG MODE NO-BLUR" in result.stderr
    original, drawn = read_frames(PETS_VIDEO, [FRAME])[FRAME], cv2.imread(str(overlay))
    # The PNG is lossless: apart from the grid lines (dense far from the camera), people's
    # pixels are the frame's; pixelated, almost none would be.
    for x1, y1, x2, y2 in people_boxes(FRAME):
        same = np.all(original[y1:y2, x1:x2] == drawn[y1:y2, x1:x2], axis=2).mean()
        assert same > 0.4, (x1, y1, same)


@pytest.mark.parametrize("name, message", [
    ("overlay.txt", "must be a .png/.jpg/.jpeg/.bmp file"),
    ("missing-folder/overlay.png", "cannot write the overlay picture"),
])
def test_overlay_that_cannot_be_written(tmp_path, pairs, name, message):
    result = invoke("calibrate", str(PETS_VIDEO), "--pairs", str(pairs),
                      "--overlay", str(tmp_path / name))
    assert_clean_error(result, message)


@pytest.mark.parametrize("step", ["0", "-1", "nan", "inf", "0.0001", "51"])
def test_grid_step_must_be_a_sensible_number_of_metres(tmp_path, pairs, step):
    """Field report: --step 0 or nan gave a traceback, -1 no grid and exit 0, and 0.0001
    took 37 s."""
    result, overlay, _ = calibrate(tmp_path, pairs, "--step", step)
    assert result.returncode == 2, result.stderr
    assert "Invalid value for '--step'" in result.stderr and "Traceback" not in result.stderr
    assert not overlay.exists()


def test_a_fine_grid_is_capped(tmp_path, pairs):
    result, overlay, _ = calibrate(tmp_path, pairs, "--step", "0.05")
    assert result.returncode == 0, result.stderr
    assert overlay.is_file()
    assert ("Note: grid lines drawn every 0.1 m, not 0.05 m, so that at most 400 cross"
            in result.stderr)


def test_grid_step_keeps_to_the_line_budget():
    from edge.calibration_overlay import MAX_GRID_LINES, grid_step

    assert grid_step(((0, 0), (10, 5)), 1.0) == 1.0
    assert grid_step(((0, 0), (10, 5)), 0.05) == pytest.approx(0.05)
    step = grid_step(((0, 0), (10_000, 5)), 0.05)
    assert 10_000 / step <= MAX_GRID_LINES and step / 0.05 == pytest.approx(round(step / 0.05))


def test_no_blur_is_recorded_in_the_sites_own_database(tmp_path, pairs, monkeypatch):
    """Reviewer's report: `edge calibrate --no-blur` recorded its debug mode in the state
    directory's database (./var/edge.db at a shell), never in the site's, so the status
    page and `edge privacy audit-log` of the box did not show it."""
    from edge.paths import default_site_config
    from edge.privacy.store import read_audit_log
    from edge.runtime.schema import open_database

    site = yaml.safe_load(default_site_config().read_text())
    site["storage"] = {"db_path": str(tmp_path / "store.db")}
    site_path = tmp_path / "site.yaml"
    site_path.write_text(yaml.safe_dump(site))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EDGE_STATE_DIR", raising=False)
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    result, _, _ = calibrate(tmp_path, pairs, "--no-blur", "--site", str(site_path),
                             env=NOT_A_SERVICE)
    assert result.returncode == 0, result.stderr
    log = [(row["setting"], row["old"], row["new"])
           for row in read_audit_log(open_database(tmp_path / "store.db"))]
    # Turned off when the process exits (here: the test worker's exit).
    assert log[-1] == ("debug_mode.no-blur", "off", "on")
    assert not (tmp_path / "var").exists()
