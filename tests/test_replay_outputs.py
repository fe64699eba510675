"""Replay outputs (--mot-out, --floor-out) and failures: a bad input or a full disk
gives one ``Error:`` line and loses nothing the engineer had."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

import pytest
import sqlite_utils
import yaml
from click.testing import CliRunner

from edge.cli import cli
from tests.conftest import PETS_DET, PETS_SITE

pytestmark = pytest.mark.system  # replays the shared det files through the CLI

PREVIOUS = "1,1,10.00,10.00,5.00,5.00,0.9000,-1,-1,-1\n"


def short_det(folder: Path, rows: int = 100, tail: str = "") -> Path:
    """The first ``rows`` rows of the PETS detections (a few frames), then ``tail``."""
    det = folder / "det.txt"
    lines = PETS_DET.read_text().splitlines(keepends=True)[:rows]
    det.write_text("".join(lines) + tail)
    return det


def edge(*args: str):
    return CliRunner().invoke(cli, [*args, "--quiet"])


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def two_camera_site(folder: Path) -> Path:
    site = yaml.safe_load(PETS_SITE.read_text())
    site["cameras"].append(dict(site["cameras"][0], id="view001b"))
    path = folder / "site.yaml"
    path.write_text(yaml.safe_dump(site))
    return path


@pytest.mark.parametrize("tail", ["garbage\n", None, "1,-1,5"], ids=["bad-row", "empty", "cut"])
def test_a_bad_det_file_keeps_the_previous_outputs(tmp_path, tail):
    """Field report: rerunning into the previous --mot-out/--floor-out paths with a det
    file holding a garbage row at line 101 emptied the earlier good tracks file (the
    outputs were opened for writing before the input was read)."""
    out = tmp_path / "out"
    out.mkdir()
    tracks, floor = out / "tracks.txt", out / "floor.txt"
    tracks.write_text(PREVIOUS)
    floor.write_text("1,1,0.500,0.500\n")
    if tail is None:
        det = tmp_path / "det.txt"
        det.write_text("")
    else:
        det = short_det(tmp_path, tail=tail)
    result = edge("replay", "--detections", str(det), "--db", str(tmp_path / "x.db"),
                  "--mot-out", str(tracks), "--floor-out", str(floor))
    assert result.exit_code == 1, result.output
    assert "Error: " in result.output and "Traceback" not in result.output
    assert tracks.read_text() == PREVIOUS
    assert floor.read_text() == "1,1,0.500,0.500\n"
    assert leftovers(out) == []


def test_a_bad_det_file_creates_no_output(tmp_path):
    det = short_det(tmp_path, tail="1.5,-1,1,1,2,2,0.9\n")
    tracks = tmp_path / "new" / "tracks.txt"
    result = edge("replay", "--detections", str(det), "--db", str(tmp_path / "x.db"),
                  "--mot-out", str(tracks))
    assert result.exit_code == 1, result.output
    assert not tracks.exists()
    assert not tracks.parent.exists() or leftovers(tracks.parent) == []


def test_a_good_replay_replaces_the_previous_outputs(tmp_path):
    tracks, floor = tmp_path / "tracks.txt", tmp_path / "floor.txt"
    tracks.write_text(PREVIOUS)
    tracks.chmod(0o640)
    result = edge("replay", "--detections", str(short_det(tmp_path)), "--db",
                  str(tmp_path / "x.db"), "--mot-out", str(tracks), "--floor-out", str(floor))
    assert result.exit_code == 0, result.output
    rows = tracks.read_text().splitlines()
    assert rows and PREVIOUS.strip() not in rows and all(len(r.split(",")) == 10 for r in rows)
    assert floor.read_text().splitlines()[0].count(",") == 3
    assert tracks.stat().st_mode & 0o777 == 0o640  # the file keeps its mode
    assert floor.stat().st_mode & 0o044  # a new file is readable as any other would be
    assert leftovers(tmp_path) == []


def test_a_bad_det_file_keeps_the_previous_fused_floor_tracks(tmp_path):
    """The same for the fused --floor-out of a site of several cameras."""
    site = two_camera_site(tmp_path)
    good = short_det(tmp_path)
    bad = tmp_path / "bad.txt"
    bad.write_text(good.read_text() + "garbage\n")
    floor = tmp_path / "out" / "fused.txt"
    floor.parent.mkdir()
    floor.write_text("1,1,0.500,0.500\n")
    result = edge("replay", "--site", str(site), "--detections", f"view001={good}",
                  "--detections", f"view001b={bad}", "--db", str(tmp_path / "f.db"),
                  "--floor-out", str(floor))
    assert result.exit_code == 1, result.output
    assert "Error: " in result.output
    assert floor.read_text() == "1,1,0.500,0.500\n"
    assert leftovers(floor.parent) == []


class FullDisk:
    """A text file on a full disk: every write fails with ENOSPC."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def writelines(self, lines) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name: str):
        return getattr(self._stream, name)

    def __enter__(self) -> FullDisk:
        return self

    def __exit__(self, *_: object) -> None:
        self._stream.close()


@pytest.fixture
def fill_disk(monkeypatch):
    """Call it to put the text files opened for writing from then on on a full disk
    (reads are untouched)."""
    real_open = io.open

    def open_full(file, mode="r", *args, **kwargs):
        stream = real_open(file, mode, *args, **kwargs)
        return FullDisk(stream) if "w" in mode and "b" not in mode else stream

    return lambda: monkeypatch.setattr(io, "open", open_full)


@pytest.mark.parametrize("option, what", [("--mot-out", "tracks"),
                                          ("--floor-out", "floor tracks")])
def test_a_full_disk_is_one_error_line_and_leaves_no_half_file(tmp_path, fill_disk, option,
                                                               what):
    """Field report: a disk filling up while --mot-out was written gave a Python
    traceback (OSError ENOSPC) and half a file under the real name."""
    out = tmp_path / "out"
    out.mkdir()
    target = out / "tracks.txt"
    target.write_bytes(PREVIOUS.encode())
    det = short_det(tmp_path)
    fill_disk()
    result = edge("replay", "--detections", str(det), "--db",
                  str(tmp_path / "x.db"), option, str(target))
    assert result.exit_code == 1, result.output
    assert not isinstance(result.exception, OSError), result.exception
    assert (f"Error: cannot write the {what} to {target}: No space left on device"
            in result.output), result.output
    assert target.read_bytes() == PREVIOUS.encode()
    assert leftovers(out) == []


def test_a_det_file_that_does_not_parse_leaves_no_database(tmp_path):
    """Field report: the error came after an empty database had been made at --db."""
    det = short_det(tmp_path, tail="garbage\n")
    db = tmp_path / "new.db"
    result = edge("replay", "--detections", str(det), "--db", str(db))
    assert result.exit_code == 1 and "Error: " in result.output, result.output
    assert not db.exists()
    site = two_camera_site(tmp_path)
    result = edge("replay", "--site", str(site), "--detections", f"view001={det}",
                  "--detections", f"view001b={det}", "--db", str(db))
    assert result.exit_code == 1 and "Error: " in result.output, result.output
    assert not db.exists()


def test_a_missing_video_leaves_no_database(tmp_path):
    """Field report: `edge replay missing.avi --db new.db` said the file does not exist
    after an empty database had been made at --db (the fused replay of a site whose
    camera's recording is missing too)."""
    db = tmp_path / "new.db"
    result = edge("replay", str(tmp_path / "missing.avi"), "--db", str(db))
    assert result.exit_code == 1, result.output
    assert "video file" in result.output and "does not exist" in result.output
    assert not db.exists()
    site = yaml.safe_load(two_camera_site(tmp_path).read_text())
    site["cameras"][1]["source"] = str(tmp_path / "gone.avi")
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site))
    result = edge("replay", "--site", str(tmp_path / "site.yaml"), "--detections",
                  f"view001={short_det(tmp_path)}", "--db", str(db))
    assert result.exit_code == 1, result.output
    assert "camera view001b: video file" in result.output and "gone.avi" in result.output
    assert not db.exists()


def test_duplicate_detection_rows_are_one_warning_line(tmp_path):
    """Field report: the warning came as a raw Python UserWarning with its source line."""
    det = short_det(tmp_path, rows=10)
    det.write_text(det.read_text() + det.read_text().splitlines(keepends=True)[0])
    result = edge("replay", "--detections", str(det), "--db", str(tmp_path / "x.db"))
    assert result.exit_code == 0, result.output
    assert (f"Warning: {det}: 1 duplicate detection rows (same frame, box and score) were "
            "dropped\n") in result.stderr, result.stderr
    assert "UserWarning" not in result.stderr and "warnings.warn" not in result.stderr


def test_a_fractional_frame_number_is_called_so(tmp_path):
    det = short_det(tmp_path, rows=0, tail="1.5,-1,1,1,2,2,0.9\n")
    result = edge("replay", "--detections", str(det), "--db", str(tmp_path / "x.db"))
    assert result.exit_code == 1
    assert f"Error: {det}:1: frame numbers are whole numbers (1, 2, ...), got 1.5" in \
        result.output, result.output


@pytest.mark.parametrize("fused", [False, True], ids=["one-camera", "fused"])
def test_an_output_that_cannot_be_put_in_place_fails_the_run(tmp_path, monkeypatch, fused):
    """The positions are kept, but a replay whose --floor-out could not be saved is not
    ``done`` (the fused replay said done while the command said Error)."""
    det = short_det(tmp_path)
    args = ["--detections", str(det)]
    if fused:
        args = ["--site", str(two_camera_site(tmp_path)), "--detections", f"view001={det}",
                "--detections", f"view001b={det}"]

    def refuse(source, target):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr("edge.outputs.os.replace", refuse)
    db_path = tmp_path / "x.db"
    result = edge("replay", *args, "--db", str(db_path), "--floor-out",
                  str(tmp_path / "floor.txt"))
    assert result.exit_code == 1, result.output
    assert "Error: " in result.output and "Traceback" not in result.output
    runs = list(sqlite_utils.Database(db_path).query(
        "select status, frames from runs where kind = 'replay'"))
    assert [r["status"] for r in runs] == ["failed"]
    assert runs[0]["frames"] > 0  # what was processed is stored
