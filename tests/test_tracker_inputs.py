"""Bad tracker-only inputs: det files out of order or with repeated rows, scenes whose
frame rate is missing or zero."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.errors import DataFormatError
from edge.evaluation.scenes import read_scene
from edge.evaluation.trackers import for_public_detections, load_detections, track_ours
from edge.motformat import mot_array, read_mot, save_mot
from tests.conftest import PETS_DET

pytestmark = pytest.mark.system

SEQINFO = "[Sequence]\nname=test\nframeRate={fps}\nseqLength=3\nimWidth=640\nimHeight=480\n"


def first_lines(count: int) -> list[str]:
    return PETS_DET.read_text().splitlines()[:count]


def tracks_of(path: Path) -> np.ndarray:
    rows, _ = track_ours(load_detections(path), 7.0, for_public_detections())
    return rows


def test_unsorted_rows_are_sorted_by_frame(tmp_path):
    lines = first_lines(400)
    shuffled = lines[:]
    np.random.default_rng(0).shuffle(shuffled)
    (tmp_path / "sorted.txt").write_text("\n".join(lines))
    (tmp_path / "shuffled.txt").write_text("\n".join(shuffled))
    frames = load_detections(tmp_path / "shuffled.txt")
    assert len(frames) == max(int(line.split(",")[0]) for line in lines)
    # Within a frame the order may differ, the tracks may not.
    ours = tracks_of(tmp_path / "shuffled.txt")
    reference = tracks_of(tmp_path / "sorted.txt")
    key = np.lexsort(ours[:, [3, 2, 0]].T)
    assert np.allclose(ours[key][:, [0, 2, 3, 4, 5]],
                       reference[np.lexsort(reference[:, [3, 2, 0]].T)][:, [0, 2, 3, 4, 5]])


def test_duplicate_rows_are_dropped_with_a_warning(tmp_path):
    lines = first_lines(400)
    (tmp_path / "det.txt").write_text("\n".join(lines))
    (tmp_path / "twice.txt").write_text("\n".join(lines + lines[:50]))
    with pytest.warns(UserWarning, match="50 duplicate detection rows"):
        frames = load_detections(tmp_path / "twice.txt")
    assert sum(len(d) for d in frames) == len(lines)
    with pytest.warns(UserWarning):
        doubled = tracks_of(tmp_path / "twice.txt")
    assert np.array_equal(doubled, tracks_of(tmp_path / "det.txt"))


@pytest.mark.parametrize(("rate", "message"), [
    ("0", "must be > 0"), ("-5", "must be > 0"), ("", "is missing"), ("fast", "a number"),
])
def test_a_scene_without_a_usable_frame_rate_is_refused(tmp_path, rate, message):
    (tmp_path / "seqinfo.ini").write_text(SEQINFO.format(fps=rate))
    with pytest.raises(DataFormatError, match=message):
        read_scene(tmp_path)


def test_a_given_frame_rate_stands_in_for_a_missing_one(tmp_path):
    (tmp_path / "seqinfo.ini").write_text(SEQINFO.format(fps=""))
    assert read_scene(tmp_path, fps=14.0).fps == 14.0
    with pytest.raises(DataFormatError, match="> 0"):
        read_scene(tmp_path, fps=0.0)


def test_a_folder_without_seqinfo_is_refused(tmp_path):
    with pytest.raises(DataFormatError, match="seqinfo.ini"):
        read_scene(tmp_path)


def test_mot_rows_written_are_read_back_as_written(tmp_path):
    """The one MOT writer (edge.motformat.mot_array/save_mot) round-trips through the
    reader: corners become left, top, width, height; detections carry id -1."""
    rows = mot_array([0, 0, 4], [-1, 7, 3], [[10, 20, 40, 100], [1.5, 2.5, 11.5, 42.5],
                                             [0, 0, 1, 1]], [0.9, 0.25, 1.0], frame_offset=1)
    save_mot(tmp_path / "det.txt", rows)
    assert (tmp_path / "det.txt").read_text().splitlines()[1] == (
        "1,7,1.50,2.50,10.00,40.00,0.2500,-1,-1,-1")
    np.testing.assert_array_equal(read_mot(tmp_path / "det.txt"), rows)
    assert rows[:, 0].tolist() == [1, 1, 5] and rows[0, 2:6].tolist() == [10, 20, 30, 80]
