"""``edge eval … --json`` prints strict JSON: an undefined figure is null, never NaN."""

from __future__ import annotations

import json

from click.testing import CliRunner

from edge.cli import cli


def strict_json(text: str) -> dict:
    """``text`` parsed as JSON proper: NaN and Infinity are refused, as other parsers do."""
    def refuse(name: str) -> object:
        raise AssertionError(f"not JSON: {name} in {text!r}")
    return json.loads(text, parse_constant=refuse)


def test_eval_mot_json_with_no_match_prints_null_not_nan(tmp_path):
    """Field report: a wrong ground truth (no box overlaps the tracks) printed
    ``"MOTP": NaN``, which a script's JSON parser refuses."""
    gt, tracks = tmp_path / "gt.txt", tmp_path / "tracks.txt"
    gt.write_text("".join(f"{f},1,10,10,20,40,1,1,1\n" for f in range(1, 6)))
    tracks.write_text("".join(f"{f},7,500,300,20,40,0.9,-1,-1,-1\n" for f in range(1, 6)))
    result = CliRunner().invoke(cli, ["eval", "mot", "--gt", str(gt), "--tracks", str(tracks),
                                      "--json"])
    assert result.exit_code == 0, result.output
    figures = strict_json(result.stdout)
    assert figures["MOTP"] is None and figures["misses"] == 5


def test_eval_floor_tracks_json_with_no_match_prints_null_not_nan(tmp_path):
    """The same for the floor tracks: frames the tracks never reach gave ``"IDP": NaN``."""
    gt, tracks = tmp_path / "floor_gt.txt", tmp_path / "floor.txt"
    gt.write_text("1,1,0.5,0.5\n2,1,0.6,0.5\n")
    tracks.write_text("5,3,9.0,9.0\n")
    result = CliRunner().invoke(cli, ["eval", "floor", "--gt", str(gt), "--tracks",
                                      str(tracks), "--json"])
    assert result.exit_code == 0, result.output
    figures = strict_json(result.stdout)
    assert figures["IDP"] is None and figures["MOTP_m"] is None and figures["misses"] == 2
