"""Zone dwell and entrance counts of PETS09-S2L1 replays against ground-truth floor
positions (the issue's targets), and the evaluator itself checked on perfect tracks."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edge.cli import cli
from edge.config import load_site
from edge.errors import DataFormatError
from edge.evaluation.groups import evaluate_groups
from edge.evaluation.layouts import evaluate_layouts
from edge.evaluation.visits import evaluate_visits
from edge.runtime.schema import open_database
from edge.storage.trajectories import finish_run, start_run
from tests.conftest import PETS_DET, PETS_GT, PETS_SITE, SHARED

pytestmark = pytest.mark.system


def tracks_from_gt(db, keep=lambda person: True, shift_m=0.0, frames=795):
    """Store the ground truth itself as a run's track points (frame = gt frame - 1), as
    a replay of its first ``frames`` frames."""
    run = start_run(db, "view001", "gt", "gt")
    rows = np.loadtxt(PETS_GT, delimiter=",")
    db["track_points"].insert_all(
        {"run_id": run, "camera_id": "view001", "track_id": int(r[1]) + 100,
         "frame": int(r[0]) - 1, "t": (r[0] - 1) / 7, "x": r[7] + shift_m, "y": r[8],
         "left": r[2], "top": r[3], "width": r[4], "height": r[5], "confidence": 1.0}
        for r in rows if keep(int(r[1])) and r[0] <= frames
    )
    finish_run(db, run, frames, "done")
    return run


def test_perfect_tracks_score_perfectly(pets_site):
    db = open_database(":memory:")
    tracks_from_gt(db)
    m = evaluate_visits(pets_site, str(PETS_GT), db).metrics
    assert m["gt_people"] == 19 and m["tracks"] == 19 and m["false_tracks"] == 0
    assert m["dwell_median_rel_error"] == 0.0 and m["dwell_p90_rel_error"] == 0.0
    assert m["spurious_dwell_pairs"] == 0
    assert m["entrance_gt_crossings"] >= 20
    assert m["entrance_crossing_recall"] == 1.0 and m["entrance_crossing_precision"] == 1.0


def test_missing_people_and_offsets_show_up(pets_site):
    db = open_database(":memory:")
    tracks_from_gt(db, keep=lambda person: person % 2 == 0, shift_m=0.6)
    m = evaluate_visits(pets_site, str(PETS_GT), db).metrics
    assert m["tracks"] == 9
    assert m["entrance_crossing_recall"] < 0.8       # half the people were never tracked
    assert m["dwell_p90_rel_error"] == 1.0
    assert m["dwell_mean_rel_error"] > 0.3


@pytest.fixture(scope="module")
def det_replay_db(tmp_path_factory):
    """The tracker on PETS's public detections (seconds, no detector)."""
    path = tmp_path_factory.mktemp("det") / "edge.db"
    result = CliRunner().invoke(cli, ["replay", "--detections", str(PETS_DET), "--site",
                                      str(PETS_SITE), "--db", str(path), "--quiet"])
    assert result.exit_code == 0, result.output
    return path


def test_tracker_on_public_detections(det_replay_db):
    result = CliRunner().invoke(cli, ["eval", "visits", "--gt", str(PETS_GT), "--site",
                                      str(PETS_SITE), "--db", str(det_replay_db), "--json"])
    assert result.exit_code == 0, result.output
    m = json.loads(result.output)
    assert m["entrance_crossing_recall"] >= 0.97
    # Public detections are sparse and fragment tracks: a regression guard, not the target.
    assert m["dwell_median_rel_error"] <= 0.35
    assert m["dwell_pairs"] >= 60


def test_a_partial_replay_is_measured_on_the_frames_it_covered(tmp_path):
    """Field report: after `edge replay --max-frames 150`, `edge eval visits` measured
    against all 795 ground-truth frames (every later person "missed"), while the
    report restricts to the frames replayed. Now both restrict, and the command says so."""
    db_path = tmp_path / "edge.db"
    tracks_from_gt(open_database(db_path), frames=150)
    result = CliRunner().invoke(cli, ["eval", "visits", "--gt", str(PETS_GT), "--site",
                                      str(PETS_SITE), "--db", str(db_path), "--json"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ("Note: the replay covered ground-truth frames 1-150 of 795; "
                             "figures are for those frames.\n")
    m = json.loads(result.stdout)
    assert m["dwell_median_rel_error"] == 0.0 and m["spurious_dwell_pairs"] == 0
    gt = np.loadtxt(PETS_GT, delimiter=",")
    assert m["gt_people"] == len(np.unique(gt[gt[:, 0] <= 150, 1])) < 19
    if m["entrance_gt_crossings"]:
        assert m["entrance_crossing_recall"] == 1.0
    whole = CliRunner().invoke(cli, ["eval", "visits", "--gt", str(PETS_GT), "--site",
                                     str(PETS_SITE), "--db", str(db_path), "--json"])
    assert json.loads(whole.stdout) == m                 # the same, run after run


def test_a_whole_replay_gets_no_note(tmp_path):
    db_path = tmp_path / "edge.db"
    tracks_from_gt(open_database(db_path))
    result = CliRunner().invoke(cli, ["eval", "visits", "--gt", str(PETS_GT), "--site",
                                      str(PETS_SITE), "--db", str(db_path)])
    assert result.exit_code == 0 and result.stderr == ""


def test_ground_truth_without_world_coordinates_is_a_clear_error(tmp_path):
    """Field report: TUD-Campus ground truth (columns 8-9 = -1) printed rows of nan and
    exited 0; `edge eval floor` said why it cannot. Now eval visits says it too."""
    db_path = tmp_path / "edge.db"
    tracks_from_gt(open_database(db_path))
    tud = SHARED / "mot" / "TUD-Campus" / "gt" / "gt.txt"
    for command in (["visits", "--site", str(PETS_SITE)], ["floor"]):
        result = CliRunner().invoke(cli, ["eval", *command, "--gt", str(tud), "--db",
                                          str(db_path)])
        assert result.exit_code == 1, result.output
        assert result.output.startswith("Error: the ground truth has no world coordinates "
                                        "(columns 8 and 9 are -1); ")
        assert "nan" not in result.output
    with pytest.raises(DataFormatError, match="no world coordinates"):
        evaluate_visits(load_site(PETS_SITE), str(tud), open_database(db_path))


def test_eval_on_a_missing_database_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(cli, ["eval", "visits", "--gt", str(PETS_GT), "--db",
                                      str(tmp_path / "none.db")])
    assert result.exit_code == 1 and "does not exist" in result.output


@pytest.fixture(scope="session")
def detector_replay_db(pets_replay):
    """The whole recording through the detector, tracker and calibration (slow): the
    session's one `edge replay --site PETS_SITE` of it (tests/test_vision_accuracy.py),
    which its tests only read."""
    return Path(pets_replay["db"])


@pytest.mark.slow
@pytest.mark.xdist_group("pets_replay")
@pytest.mark.timeout(1200)  # the shared whole-recording replay, if this test runs first
def test_recording_meets_the_dwell_and_count_targets(detector_replay_db, pets_site):
    """Issue 3's targets on the real recording: median |dwell error| <= 10% per
    (person, zone), entrance-line crossings >= 97% of ground truth."""
    report = evaluate_visits(pets_site, str(PETS_GT), open_database(detector_replay_db))
    m = report.metrics
    assert m["dwell_median_rel_error"] <= 0.10, m
    assert m["entrance_crossing_recall"] >= 0.97, m
    db = open_database(detector_replay_db)
    assert db["visits"].count >= 15                 # edge replay built the demo's visits


def test_random_counting_lines_on_public_detections(det_replay_db, pets_site):
    """Issue 14: counting lines placed at random over the plaza (24 per seed, seeds 1
    and 2), scored against ground-truth world trajectories. On det.txt (seconds) the
    tracker fragments and swaps ids more than with the detector, so this is a
    regression guard; the 0.97 targets are asserted on the detector replay below."""
    m = evaluate_layouts(pets_site, str(PETS_GT), open_database(det_replay_db)).metrics
    assert m["lines"] == 48 and m["lines_crossed"] >= 40 and m["gt_crossings"] >= 200
    assert m["crossing_recall"] >= 0.90, m
    assert m["crossing_precision"] >= 0.90, m


def recording_pieces(db_path, site):
    """A replay's raw track pieces, as the visit builder reads them (frames at 7 /s)."""
    from edge.visits.trajectory import track_segments

    rows = np.array(open_database(db_path).execute(
        "select track_id, frame, x, y from track_points order by track_id, frame").fetchall())
    return [piece for track in np.unique(rows[:, 0])
            for piece in track_segments("cam", 1, int(track), rows[rows[:, 0] == track, 1] / 7.0,
                                        rows[rows[:, 0] == track, 2:4],
                                        gap_s=site.visits.close_after_s, smoothing_s=0.0)]


@pytest.mark.slow
@pytest.mark.xdist_group("pets_replay")
@pytest.mark.timeout(1200)  # the shared whole-recording replay, if this test runs first
def test_swap_repair_cuts_only_the_lamp_post_handover(detector_replay_db, pets_site):
    """Swap repair (edge.visits.swaps) on the whole recording: of the track's floor
    jumps (hundreds over 3.5 m/s), one is cut: at frame 148 person 16's track takes
    person 15's box 0.86 m away, and person 16 comes back as a new track at frame 159,
    0.4 m from where they were heading. Held-out recall 0.961 -> 0.973 (docs/visits.md)."""
    from edge.visits.swaps import SwapRule

    pieces = recording_pieces(detector_replay_db, pets_site)
    cuts = SwapRule.from_config(pets_site.visits).cuts(pieces)
    assert len(cuts) == 1, cuts
    head, successor = pieces[cuts[0].piece], pieces[cuts[0].successor]
    k = cuts[0].after
    assert round(head.t[k] * 7) == 148 and round(successor.start_t * 7) == 159
    assert np.hypot(*(head.xy[k + 1] - head.xy[k])) == pytest.approx(0.86, abs=0.02)


def test_swap_repair_on_public_detections(det_replay_db, pets_site):
    """On det.txt two tracks are cut, each where a second track started on the same
    person (5 at frame 732, 6 at 711) while the first jumped: the head and the new
    track are one person's visit either way. A guard against the rule growing loose."""
    from edge.visits.swaps import SwapRule

    pieces = recording_pieces(det_replay_db, pets_site)
    cuts = SwapRule.from_config(pets_site.visits).cuts(pieces)
    assert sorted(round(pieces[c.successor].start_t * 7) for c in cuts) == [711, 732]


def test_random_layouts_from_the_command_line(det_replay_db, tmp_path):
    """``--seeds`` picks the layouts (the held-out 3-6 included), and a floor ground
    truth ``frame,id,x,y`` (as WILDTRACK's gt/floor.txt) scores as the gt.txt it was
    made from."""
    gt = np.loadtxt(PETS_GT, delimiter=",")
    floor = tmp_path / "floor.txt"
    np.savetxt(floor, gt[:, [0, 1, 7, 8]], delimiter=",", fmt=["%d", "%d", "%.17g", "%.17g"])
    figures = {}
    for truth in (PETS_GT, floor):
        result = CliRunner().invoke(cli, [
            "eval", "visits", "--gt", str(truth), "--site", str(PETS_SITE), "--db",
            str(det_replay_db), "--random-layouts", "--seeds", "3,5", "--json"])
        assert result.exit_code == 0, result.output
        figures[truth] = json.loads(result.output)
    assert figures[PETS_GT] == figures[floor]
    assert {"seed3.lines", "seed5.lines"} <= set(figures[floor])
    assert "seed1.lines" not in figures[floor]
    bad = CliRunner().invoke(cli, ["eval", "visits", "--gt", str(floor), "--db",
                                   str(det_replay_db), "--random-layouts", "--seeds", "3;4"])
    assert bad.exit_code == 2 and "comma-separated list of whole numbers" in bad.output


def test_random_layouts_score_perfect_tracks_perfectly(pets_site):
    db = open_database(":memory:")
    tracks_from_gt(db)
    m = evaluate_layouts(pets_site, str(PETS_GT), db, seeds=(3,)).metrics
    assert m["crossing_recall"] == 1.0 and m["crossing_precision"] == 1.0
    assert m["dwell_median_rel_error"] == 0.0


@pytest.mark.slow
@pytest.mark.xdist_group("pets_replay")
@pytest.mark.timeout(1200)  # the shared whole-recording replay, if this test runs first
def test_recording_meets_the_random_line_targets(detector_replay_db, pets_site):
    """Issue 14's targets on random counting lines (48, seeds 1-2): recall and
    precision >= 0.97. Before excursions were dropped (line_settle_s) and crossings
    dated mid-passage: 0.980 / 0.948; then 0.983 / 0.987; with split tracks stitched
    (edge.visits.stitch) 0.983 / 0.991; with swaps repaired (edge.visits.swaps) 0.987 / 0.991;
    with hidden feet put back (edge.feet) the same; with outlying positions replaced by their
    neighbours' median (visits.outlier_m) 0.987 / 0.996."""
    m = evaluate_layouts(pets_site, str(PETS_GT), open_database(detector_replay_db)).metrics
    assert m["crossing_recall"] >= 0.97, m
    assert m["crossing_precision"] >= 0.97, m


def test_groups_of_perfect_tracks_score_perfectly(pets_site):
    """The group evaluator on the ground truth itself: PETS09-S2L1 has two pairs who walk
    together (people 11 and 12; 9 and 15), both found, nothing else."""
    db = open_database(":memory:")
    tracks_from_gt(db)
    m = evaluate_groups(pets_site, str(PETS_GT), db)
    assert m["true_pair_ids"] == [(9, 15), (11, 12)]
    assert m["precision"] == 1.0 and m["recall"] == 1.0


def test_groups_on_public_detections(det_replay_db, pets_site):
    """A regression guard: person 15 walks hidden behind person 9 for the first 17 s and
    is then picked up by a track that followed someone else until 21 s, so the pair
    9-15 is missed (recall 0.5); nobody is grouped wrongly."""
    m = evaluate_groups(pets_site, str(PETS_GT), open_database(det_replay_db))
    assert m["found_pair_ids"] == [(11, 12)], m
    assert m["precision"] == 1.0 and m["recall"] >= 0.5, m


@pytest.mark.slow
@pytest.mark.xdist_group("pets_replay")
@pytest.mark.timeout(1200)  # the shared whole-recording replay, if this test runs first
@pytest.mark.xfail(reason="not met: recall 0.5 (1 of the 2 true pairs), precision 1.0; the "
                   "detector never sees person 15 while hidden behind person 9, and the track "
                   "that later follows 15 started on another person")
def test_recording_meets_the_group_targets(detector_replay_db, pets_site):
    """Issue 17's target on the recording: group membership precision and recall >= 0.90."""
    m = evaluate_groups(pets_site, str(PETS_GT), open_database(detector_replay_db))
    assert m["precision"] >= 0.90, m
    assert m["recall"] >= 0.90, m


def test_eval_visits_groups_prints_the_pair_scores(det_replay_db):
    result = CliRunner().invoke(cli, ["eval", "visits", "--groups", "--gt", str(PETS_GT),
                                      "--site", str(PETS_SITE), "--db", str(det_replay_db),
                                      "--json"])
    assert result.exit_code == 0, result.output
    m = json.loads(result.output)
    assert m["true_pair_ids"] == [[9, 15], [11, 12]] and m["precision"] == 1.0


@pytest.fixture(scope="session")
def held_out_layouts(detector_replay_db):
    """Random layouts never used to choose a setting (seeds 3-6: 96 lines, 48 zones)."""
    return evaluate_layouts(load_site(PETS_SITE), str(PETS_GT),
                            open_database(detector_replay_db), seeds=(3, 4, 5, 6)).metrics


@pytest.mark.slow
@pytest.mark.xdist_group("pets_replay")
@pytest.mark.timeout(1200)  # the shared whole-recording replay, if this test runs first
def test_random_lines_not_tuned_on(held_out_layouts):
    """Held-out seeds 3-6 meet the 0.97 targets: precision 0.936 before excursions
    were dropped, 0.975 after, 0.977 with split tracks stitched; recall 0.957 before
    stitching, 0.961 after, 0.973 with the lamp-post handover repaired (edge.visits.swaps),
    0.975 / 0.979 with hidden feet put back (edge.feet; outlier_m changes neither).
    What is left: people entering together in the first seconds, whom the tracker never
    separates (docs/visits.md)."""
    m = held_out_layouts
    assert m["lines"] == 96 and m["gt_crossings"] >= 400
    assert m["crossing_precision"] >= 0.97, m
    assert m["crossing_recall"] >= 0.97, m


@pytest.mark.slow
@pytest.mark.xdist_group("pets_replay")
@pytest.mark.timeout(1200)  # the shared whole-recording replay, if this test runs first
def test_random_zone_dwell_meets_the_5_percent_target(held_out_layouts):
    """Issue 14's target: median dwell error <= 5 % on held-out random zones. 0.087 with
    stays dated by samples, 0.063 timed between them, 0.058 with split tracks stitched
    (0.042-0.070 per seed), 0.055 with swaps repaired, 0.053 with hidden feet put back
    (edge.feet), 0.0503 with outlying positions replaced by their neighbours' median
    (visits.outlier_m), 0.0445 with a window's mean moved to its centre where frames
    are missing on one side (edge.visits.trajectory). With perfect identities it would
    be lower still: the rest is tracker swaps."""
    m = held_out_layouts
    assert m["dwell_pairs"] >= 400
    assert m["dwell_median_rel_error"] <= 0.05, m
