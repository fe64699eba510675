"""The ``edge`` command: every command has help; user errors are one line, no traceback."""


import click
import pytest
from click.testing import CliRunner

from edge.cli import cli
from tests.conftest import PETS_DET, PETS_GT
from tests.support.cli import run_edge

pytestmark = pytest.mark.system


def all_commands(group: click.Group, prefix=()):
    context = click.Context(group)
    for name in group.list_commands(context):  # the top level loads its commands lazily
        command = group.get_command(context, name)
        assert command is not None and command.name == name, name
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


def test_a_fresh_process_lists_every_eval_command():
    """Regression: `edge eval visits` was registered by importing the visits commands'
    module, which the lazy CLI no longer does for `edge eval`: in a fresh process the
    command was missing (in this process, another test had imported the module)."""
    result = run_edge("eval", "--help")
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0] for line in result.stdout.split("Commands:")[1].splitlines()
              if line.strip()}
    assert listed == {"floor", "mot", "suite", "visits"}, result.stdout


@pytest.mark.parametrize("path", [p for p, _ in all_commands(cli)], ids=" ".join)
def test_every_command_has_help(path):
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    command = dict(all_commands(cli))[path]
    assert command.help, f"edge {' '.join(path)} has no help text"


@pytest.mark.parametrize(
    "args, message",
    [
        (["replay", "/nonexistent/video.avi", "--quiet"],
         "video file /nonexistent/video.avi does not exist"),
        (["replay", "--site", "/nonexistent/site.yaml"],
         "site config /nonexistent/site.yaml does not exist"),
        (["eval", "mot", "--gt", "/nonexistent", "--tracks", "/nonexistent"],
         "/nonexistent does not exist"),
        (["replay", "rtsp://127.0.0.1:9/stream", "--quiet"],
         "rtsp://127.0.0.1:9/stream stream did not answer"),
    ],
)
def test_user_errors_are_one_line(tmp_path, args, message):
    if args[0] == "replay":
        args = [*args, "--db", str(tmp_path / "x.db")]
    result = run_edge(*args)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("Error: ") and message in lines[-1], result.stderr


def test_corrupt_video_is_a_clear_error(tmp_path):
    corrupt = tmp_path / "corrupt.avi"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00AVI LIST" + bytes(range(256)) * 40)
    result = run_edge("replay", str(corrupt), "--db", str(tmp_path / "x.db"), "--quiet")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "cannot be decoded as video" in result.stderr or "no readable frames" in result.stderr


def test_tracker_only_replay_then_eval(tmp_path):
    tracks = tmp_path / "tracks.txt"
    result = run_edge(
        "replay", "--detections", str(PETS_DET), "--db", str(tmp_path / "x.db"),
        "--mot-out", str(tracks), "--quiet",
    )
    assert result.returncode == 0, result.stderr
    assert "Replayed 795 frames" in result.stdout
    first = tracks.read_text().splitlines()[0].split(",")
    assert len(first) == 10 and int(first[0]) >= 1
    result = run_edge("eval", "mot", "--gt", str(PETS_GT), "--tracks", str(tracks), "--json")
    assert result.returncode == 0, result.stderr
    assert '"HOTA"' in result.stdout
