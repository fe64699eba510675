"""Bad input to the vision side: one clear `Error:` line, a non-zero exit, nothing lost."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from edge.errors import DataFormatError
from edge.evaluation.floor import evaluate_floor, floor_errors
from edge.runtime.schema import open_database
from tests.conftest import PETS_GT, PETS_SITE, PETS_VIDEO
from tests.support.cli import run_edge
from tests.test_detection import _write_model

pytestmark = pytest.mark.system


def last_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def assert_clean_error(result, *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    line = last_line(result.stderr)
    assert line.startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def site_variant(tmp_path: Path, replace: dict[str, str]) -> Path:
    text = PETS_SITE.read_text()
    for old, new in replace.items():
        assert re.search(old, text, flags=re.S), old
        text = re.sub(old, new, text, count=1, flags=re.S)
    path = tmp_path / "site.yaml"
    path.write_text(text)
    return path


def test_truncated_video_processes_what_it_can_and_says_so(tmp_path):
    """The real recording cut to 400 KB (26 frames): those frames are tracked and
    stored, then the command fails with one line saying how much was read."""
    truncated = tmp_path / "truncated.avi"
    with PETS_VIDEO.open("rb") as source:
        truncated.write_bytes(source.read(400_000))
    db_path = tmp_path / "x.db"
    result = run_edge("replay", str(truncated), "--db", str(db_path), "--quiet")
    assert_clean_error(result)
    match = re.search(r"ended after (\d+) of the 795 frames", last_line(result.stderr))
    assert match, result.stderr
    frames = int(match.group(1))
    assert 10 <= frames < 795
    db = open_database(db_path)
    run = db.execute("select frames, status from runs").fetchone()
    assert run == (frames, "done")
    assert db.execute("select count(*) from track_points").fetchone()[0] > 0


def test_a_truncated_video_read_with_max_frames_says_so_too(tmp_path):
    """Reviewer's report: with --max-frames the header's count was not checked at all,
    so 26 frames of a truncated file read for 60 exited 0 without a word."""
    truncated = tmp_path / "truncated.avi"
    with PETS_VIDEO.open("rb") as source:
        truncated.write_bytes(source.read(400_000))
    result = run_edge("replay", str(truncated), "--db", str(tmp_path / "x.db"), "--quiet",
                      "--max-frames", "60")
    assert_clean_error(result)
    assert re.search(r"ended after \d+ of the 60 frames asked for", last_line(result.stderr))
    whole = run_edge("replay", str(PETS_VIDEO), "--db", str(tmp_path / "y.db"), "--quiet",
                     "--max-frames", "20")
    assert whole.returncode == 0, whole.stderr


def test_a_few_kilobytes_of_video_is_not_video(tmp_path):
    stub = tmp_path / "stub.avi"
    with PETS_VIDEO.open("rb") as source:
        stub.write_bytes(source.read(3000))
    result = run_edge("replay", str(stub), "--db", str(tmp_path / "x.db"), "--quiet")
    assert_clean_error(result, "cannot be decoded as video")
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1


def test_nonexistent_detections_file(tmp_path):
    result = run_edge(
        "replay", "--detections", "/nonexistent/det.txt", "--db", str(tmp_path / "x.db")
    )
    assert_clean_error(result, "/nonexistent/det.txt does not exist")


def test_site_config_missing_a_field(tmp_path):
    site = site_variant(tmp_path, {r"    source: asset:pets09_s2l1_view001[^\n]*\n": ""})
    result = run_edge("replay", "--site", str(site), "--db", str(tmp_path / "x.db"))
    assert_clean_error(result, "cameras[0].source: Field required")


def test_collinear_calibration(tmp_path):
    site = site_variant(
        tmp_path,
        {
            r"image_points:.*?floor_points:": (
                "image_points: [[100, 100], [200, 200], [300, 300], [400, 400]]\n"
                "      floor_points:"
            ),
            r"floor_points:.*?# Track": (
                "floor_points: [[0, 0], [1, 1], [2, 2], [3, 3]]\n    # Track"
            ),
        },
    )
    result = run_edge("replay", "--site", str(site), "--db", str(tmp_path / "x.db"))
    assert_clean_error(result, "collinear")
    assert last_line(result.stderr).count("\n") == 0 and "collinear" in last_line(result.stderr)


def test_self_crossing_floor_area(tmp_path):
    site = site_variant(
        tmp_path, {r"floor_area: \[[^\n]*\]\n": "floor_area: [[0, 0], [5, 5], [5, 0], [0, 5]]\n"}
    )
    result = run_edge("replay", "--site", str(site), "--db", str(tmp_path / "x.db"))
    assert_clean_error(result, "floor_area is not a simple polygon")


def test_wrong_shape_model(tmp_path):
    model = _write_model(tmp_path / "bad.onnx", [1, 1, 32, 32], [1, 1, 1024])
    site = site_variant(
        tmp_path,
        {
            r"  model: yolox_nano_416x416\n  input_size: [^\n]*\n[^\n]*\n": (
                f"  model: {model}\n  kind: yolox\n"
            )
        },
    )
    result = run_edge("replay", "--site", str(site), "--db", str(tmp_path / "x.db"), "--quiet")
    assert_clean_error(result, "expected a YOLOX input of shape [1, 3, H, W], got [1, 1, 32, 32]")
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1


def test_eval_floor_without_a_replay(tmp_path):
    result = run_edge("eval", "floor", "--gt", str(PETS_GT), "--db", str(tmp_path / "none.db"))
    assert_clean_error(result, "does not exist; run `edge replay` first")


def test_eval_floor_on_an_empty_database(tmp_path):
    open_database(tmp_path / "empty.db")
    result = run_edge("eval", "floor", "--gt", str(PETS_GT), "--db", str(tmp_path / "empty.db"))
    assert_clean_error(result, "no finished replay run")


def test_floor_errors_need_world_coordinates():
    gt = np.array([[1, 1, 10, 10, 20, 50, 1, -1, -1, -1]], float)
    with pytest.raises(DataFormatError, match="no world coordinates"):
        floor_errors(gt, np.zeros((0, 7)))


def test_floor_errors_measure_matched_points_only():
    gt = np.array(
        [
            [1, 1, 10, 10, 20, 50, 1, 1.0, 2.0, 0],
            [1, 2, 100, 10, 20, 50, 1, 5.0, 5.0, 0],
            [2, 1, 12, 10, 20, 50, 1, 1.5, 2.0, 0],
            [2, 3, 300, 10, 20, 50, 0, 9.0, 9.0, 0],  # "do not evaluate"
        ]
    )
    points = np.array(
        [
            [1, 11, 10, 20, 50, 1.3, 2.4],  # 0.5 m off person 1
            [1, 400, 10, 20, 50, 0.0, 0.0],  # matches nobody
            [2, 12, 10, 20, 50, 1.5, 2.0],  # exact
            [2, 300, 10, 20, 50, 0.0, 0.0],  # on the ignored person: unmatched
        ]
    )
    distances, unmatched = floor_errors(gt, points)
    np.testing.assert_allclose(sorted(distances), [0.0, 0.5])
    assert unmatched == 2


def test_evaluate_floor_reads_the_latest_run(tmp_path):
    """A run written through the real store, read back and scored."""
    from edge.records import FloorTracks, Tracks
    from edge.storage.trajectories import finish_run, start_run, write_track_points

    db = open_database(tmp_path / "x.db")
    gt_path = tmp_path / "gt.txt"
    gt_path.write_text("1,1,10,10,20,50,1,1.0,2.0,0\n2,1,12,10,20,50,1,1.5,2.0,0\n")
    for offset in (3.0, 0.25):  # the second run is the one evaluated
        run_id = start_run(db, "cam", "test", "model")
        floors = [
            FloorTracks(
                "cam", frame, float(frame),
                Tracks(np.array([1]), np.array([[x, 10, x + 20, 60]], np.float32),
                       np.array([0.9], np.float32)),
                np.array([[truth + offset, 2.0]]),
            )
            for frame, x, truth in ((0, 10, 1.0), (1, 12, 1.5))
        ]
        write_track_points(db, run_id, floors)
        finish_run(db, run_id, 2, "done")
    accuracy = evaluate_floor(gt_path, db)
    assert accuracy.run_id == run_id
    assert accuracy.matched == 2 and accuracy.unmatched == 0
    assert accuracy.median_m == pytest.approx(0.25)
    assert evaluate_floor(gt_path, db, run_id=1).median_m == pytest.approx(3.0)
    with pytest.raises(DataFormatError, match="no run 99"):
        evaluate_floor(gt_path, db, run_id=99)
