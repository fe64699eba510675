"""Bad input to the report and the annotated video: one `Error:` line, nothing half-written;
and the --no-blur debug mode: refused under systemd, loud otherwise."""

from __future__ import annotations

import io
import sqlite3

import cv2
import numpy as np
import pytest

from edge.debug_modes import (
    DebugModeRefused,
    add_listener,
    announce_debug_mode,
    refuse_under_service,
    remove_listener,
    running_as_service,
)
from tests.conftest import PETS_DET, PETS_GT, PETS_VIDEO, SHARED
from tests.support.report_support import invoke, kept_detail, read_frames
from tests.test_vision_errors import assert_clean_error, last_line

pytestmark = pytest.mark.system

NOT_A_SERVICE: dict[str, str | None] = {"INVOCATION_ID": None, "NOTIFY_SOCKET": None}


@pytest.fixture
def blocker(tmp_path):
    """A plain file where a folder would have to be: nothing can be written under it."""
    path = tmp_path / "not-a-folder"
    path.write_text("x")
    return path


def test_annotated_video_to_an_unwritable_path_fails_before_the_replay(tmp_path, blocker):
    db = tmp_path / "edge.db"
    result = invoke("replay", "--annotate", str(blocker / "out.mp4"), "--db", str(db),
                      "--quiet")
    assert_clean_error(result, "cannot write the annotated video", str(blocker / "out.mp4"),
                       f"{blocker} is a file, not a folder")
    assert sqlite3.connect(db).execute("select count(*) from runs").fetchone()[0] == 0


@pytest.mark.parametrize("where", ["folder", "under-a-file"])
def test_report_to_an_unwritable_path(tmp_path, blocker, det_db, where):
    out = tmp_path if where == "folder" else blocker / "r.html"
    result = invoke("report", "--db", str(det_db), "--out", str(out))
    assert_clean_error(result, "cannot write the report")
    assert len(last_line(result.stderr)) < 300


def test_replay_report_checks_its_output_before_the_replay(tmp_path, blocker):
    db = tmp_path / "edge.db"
    result = invoke("replay", "--detections", str(PETS_DET), "--db", str(db),
                      "--report", str(blocker / "r.html"), "--quiet")
    assert_clean_error(result, "cannot write the report")
    assert not db.exists()


@pytest.mark.parametrize(
    "content, message",
    [
        ("frame;id;left;top;width;height;conf\n1;1;10;10;5;5;1\n",
         "expected at least 7 comma-separated columns"),
        ('{"frames": [1, 2, 3]}\n', "expected at least 7 comma-separated columns"),
        ("1,1,10,10,5,5,1,abc,2,-1\n", "non-numeric value"),
        ("0,1,10,10,5,5,1,1,2,-1\n", "frame numbers start at 1"),
        ("", "holds no rows"),
        ("1,1,10,10,5,5,0,1,2,-1\n", "every row is marked 'do not evaluate'"),
    ],
    ids=["semicolons", "json", "text", "frame-0", "empty", "all-ignored"],
)
def test_ground_truth_in_the_wrong_format(tmp_path, det_db, content, message):
    gt = tmp_path / "gt.txt"
    gt.write_text(content)
    out = tmp_path / "r.html"
    result = invoke("report", "--db", str(det_db), "--out", str(out), "--gt", str(gt))
    assert_clean_error(result, message)
    assert not out.exists()


def test_wrong_ground_truth_fails_before_the_replay(tmp_path):
    gt = tmp_path / "gt.txt"
    gt.write_text("this is not a ground truth file\n")
    db = tmp_path / "edge.db"
    result = invoke("replay", "--db", str(db), "--report", str(tmp_path / "r.html"),
                      "--gt", str(gt), "--quiet")
    assert_clean_error(result, "gt.txt:1: expected at least 7 comma-separated columns")
    assert not db.exists()


@pytest.fixture
def late_gt(tmp_path):
    """PETS ground truth of frames after 700 only."""
    gt = tmp_path / "gt_late.txt"
    gt.write_text("".join(line for line in PETS_GT.read_text().splitlines(keepends=True)
                          if int(line.split(",")[0]) > 700))
    return gt


@pytest.mark.parametrize("source", ["video", "detections"])
def test_ground_truth_without_rows_in_the_frames_to_replay_fails_before_it(
    tmp_path, late_gt, source
):
    """Field report: `edge replay --max-frames 20 --report r.html --gt gt_late.txt` ran
    the whole replay, and only then said the ground truth "has no rows in the replayed
    frames 1-20"; docs/report.md says the ground truth is checked before."""
    db = tmp_path / "edge.db"
    inputs = ["--detections", str(PETS_DET)] if source == "detections" else []
    result = invoke("replay", *inputs, "--max-frames", "20", "--db", str(db), "--report",
                    str(tmp_path / "r.html"), "--gt", str(late_gt), "--quiet")
    assert_clean_error(result, "gt_late.txt has no rows in frames 1-20, the ones the replay "
                               "will cover; is it the ground truth of this recording?")
    assert result.stdout == "" and not db.exists()       # nothing replayed
    assert not (tmp_path / "r.html").exists()


def test_ground_truth_with_rows_in_the_frames_to_replay_is_accepted(tmp_path, late_gt):
    result = invoke("replay", "--detections", str(PETS_DET), "--max-frames", "720", "--db",
                    str(tmp_path / "edge.db"), "--report", str(tmp_path / "r.html"), "--gt",
                    str(late_gt), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "Note: the replay covered ground-truth frames 1-720 of 795" in result.stdout


def test_ground_truth_of_another_recording(tmp_path, det_db):
    """The TUD-Campus ground truth (71 frames, no world coordinates) on a PETS run: the
    MOT metrics are computed (and poor), the floor sections say why they are missing."""
    out = tmp_path / "r.html"
    result = invoke("report", "--db", str(det_db), "--out", str(out), "--gt",
                      str(SHARED / "mot" / "TUD-Campus" / "gt" / "gt.txt"))
    assert result.returncode == 0, result.stderr
    assert "has no world coordinates" in result.stdout


@pytest.mark.parametrize("kind", ["empty-file", "no-frames"])
def test_a_video_with_zero_frames(tmp_path, kind):
    video = tmp_path / "zero.avi"
    if kind == "empty-file":
        video.write_bytes(b"")
    else:  # a valid container whose stream holds no frame
        writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 7, (64, 48))
        writer.release()
        assert video.stat().st_size > 0
    out = tmp_path / "out.mp4"
    result = invoke("replay", str(video), "--db", str(tmp_path / "edge.db"),
                      "--annotate", str(out), "--report", str(tmp_path / "r.html"), "--quiet")
    assert_clean_error(result)
    assert ("holds no readable frames" in result.stderr
            or "cannot be decoded as video" in result.stderr), result.stderr
    assert not out.exists() and not (tmp_path / "r.html").exists()


def test_report_without_a_database_or_run(tmp_path, det_db):
    result = invoke("report", "--db", str(tmp_path / "none.db"), "--out",
                      str(tmp_path / "r.html"))
    assert_clean_error(result, "none.db does not exist")
    result = invoke("report", "--db", str(det_db), "--out", str(tmp_path / "r.html"),
                      "--run", "99")
    assert_clean_error(result, "the database has no run 99")


def test_a_bad_capture_fails_before_the_replay(tmp_path):
    pcap = tmp_path / "capture.pcap"
    pcap.write_bytes(b"not a capture at all")
    db = tmp_path / "edge.db"
    result = invoke("replay", "--detections", str(PETS_DET), "--db", str(db),
                      "--report", str(tmp_path / "r.html"), "--pcap", str(pcap), "--quiet")
    assert_clean_error(result, f"{pcap}: not a pcap or pcapng capture")
    assert not db.exists()


def test_annotate_needs_video_frames(tmp_path):
    result = invoke("replay", "--detections", str(PETS_DET), "--annotate",
                      str(tmp_path / "a.mp4"), "--db", str(tmp_path / "edge.db"))
    assert result.returncode == 2 and "--annotate needs the video's frames" in result.stderr


# -- the --no-blur debug mode ---------------------------------------------------------

@pytest.mark.parametrize("variable", ["INVOCATION_ID", "NOTIFY_SOCKET"])
def test_no_blur_refuses_to_run_under_systemd(tmp_path, variable):
    out = tmp_path / "a.mp4"
    env = {**NOT_A_SERVICE, variable: "5f1c0ffee" if variable == "INVOCATION_ID" else "@sd"}
    result = invoke("replay", "--annotate", str(out), "--no-blur", "--max-frames", "2",
                      "--db", str(tmp_path / "edge.db"), "--quiet", env=env)
    assert_clean_error(result, "--no-blur is a debug mode", variable, "refuses to run under "
                       "systemd")
    assert not out.exists() and not (tmp_path / "edge.db").exists()


def test_no_blur_needs_annotate(tmp_path):
    result = invoke("replay", "--no-blur", "--db", str(tmp_path / "edge.db"), env=NOT_A_SERVICE)
    assert result.returncode == 2 and "--no-blur only applies to --annotate" in result.stderr


def test_no_blur_is_loud_and_keeps_people_visible(tmp_path):
    out, db = tmp_path / "a.mp4", tmp_path / "edge.db"
    result = invoke("replay", "--annotate", str(out), "--no-blur", "--max-frames", "12",
                      "--db", str(db), "--quiet", env=NOT_A_SERVICE)
    assert result.returncode == 0, result.stderr
    assert "WARNING: DEBUG MODE NO-BLUR" in result.stderr
    assert "people NOT pixelated (debug mode)" in result.stdout
    boxes = sqlite3.connect(db).execute(
        "select left, top, width, height from track_points where frame = 10 and height > 60"
    ).fetchall()
    assert boxes
    original, drawn = read_frames(PETS_VIDEO, [10])[10], read_frames(out, [10])[10]
    kept = []
    for left, top, width, height in boxes:
        x1, y1, x2, y2 = int(left), int(top), int(left + width), int(top + height)
        inner = (slice(max(y1, 0) + 5, y2 - 5), slice(max(x1, 0) + 4, x2 - 4))
        kept.append(kept_detail(original[inner], drawn[inner]))
    # Pixelated people score about 0 (at most 0.5); the zones' tint and outlines drawn
    # over a visible person cost a little.
    assert min(kept) > 0.5 and float(np.median(kept)) > 0.7, kept


def test_debug_mode_helpers():
    assert running_as_service({"INVOCATION_ID": "1"}) and running_as_service({"NOTIFY_SOCKET": "x"})
    assert not running_as_service({"INVOCATION_ID": ""}) and not running_as_service({})
    with pytest.raises(DebugModeRefused, match="NOTIFY_SOCKET"):
        refuse_under_service("--no-blur", {"NOTIFY_SOCKET": "/run/systemd/notify"})
    refuse_under_service("--no-blur", {})
    heard: list[tuple[str, str]] = []

    def listener(name: str, detail: str) -> None:
        heard.append((name, detail))

    add_listener(listener)
    try:
        stream = io.StringIO()
        announce_debug_mode("no-blur", "faces visible in x.mp4", stream=stream)
    finally:
        remove_listener(listener)
    assert heard == [("no-blur", "faces visible in x.mp4")]
    assert "WARNING: DEBUG MODE NO-BLUR: faces visible in x.mp4" in stream.getvalue()
    announce_debug_mode("no-blur", "again", stream=io.StringIO())
    assert len(heard) == 1  # removed listeners hear nothing


def test_gt_and_pcap_go_with_report(tmp_path):
    result = invoke("replay", "--gt", str(PETS_GT), "--db", str(tmp_path / "edge.db"))
    assert result.returncode == 2 and "--gt and --pcap go with --report" in result.stderr


def test_frames_a_replay_will_cover(pets_site):
    from edge.replay import frames_to_cover

    assert frames_to_cover(pets_site) == 795                    # the demo video's frame count
    assert frames_to_cover(pets_site, max_frames=20) == 20
    assert frames_to_cover(pets_site, max_frames=5000) == 795
    assert frames_to_cover(pets_site, detections=PETS_DET) == 795
    assert frames_to_cover(pets_site, detections=PETS_DET, max_frames=150) == 150
    assert frames_to_cover(pets_site, video="rtsp://127.0.0.1:9/x", max_frames=30) == 30
    assert frames_to_cover(pets_site, video="rtsp://127.0.0.1:9/x") is None
    strided = pets_site.model_copy(update={"cameras": [
        pets_site.cameras[0].model_copy(update={"detect_fps": 3.5})]})
    assert frames_to_cover(strided, max_frames=20) == 39           # every 2nd frame: 1..39
