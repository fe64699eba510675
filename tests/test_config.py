"""Site config validation: precise, line-numbered errors; nothing half-loaded."""

import json
import re
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from edge.calibration import fit_homography
from edge.config import load_site, parse_site
from edge.errors import CalibrationError, ConfigError
from tests.conftest import PETS_SITE, REPO

pytestmark = pytest.mark.system

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
web: {access: open-lan}
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


def test_a_missing_secret_names_the_credential_file_expected(monkeypatch, tmp_path):
    """Regression (issue 18 #13): "neither the environment variable nor a systemd
    credential is set" named no file, and IT did not know where to put the PIN."""
    text = MINIMAL.replace("web: {access: open-lan}", "web: {pin: '${EDGE_WEB_PIN}'}")
    monkeypatch.delenv("EDGE_WEB_PIN", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(ConfigError) as raised:
        parse_site(text)
    assert "/etc/store-edge/credentials/EDGE_WEB_PIN" in str(raised.value)
    assert "CREDENTIALS_DIRECTORY=/etc/store-edge/credentials" in str(raised.value)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    with pytest.raises(ConfigError) as raised:
        parse_site(text)
    assert f"no credential file {tmp_path / 'EDGE_WEB_PIN'}" in str(raised.value)
    (tmp_path / "EDGE_WEB_PIN").write_text("2468\n")
    assert parse_site(text).web.pin is not None
    # A command that uses no secret (edge status) reads the config all the same.
    (tmp_path / "EDGE_WEB_PIN").unlink()
    assert parse_site(text, secrets=False).web.pin is None


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
        parse_site(MINIMAL.replace("web: {access: open-lan}", "web: {pin: 'abc-secret-123'}"))
    assert "web.pin" in str(raised.value)
    assert "abc-secret-123" not in str(raised.value) and "***" in str(raised.value)


def check_config(path: Path, *options: str):
    from click.testing import CliRunner

    from edge.cli import cli

    return CliRunner().invoke(cli, ["check-config", *options, str(path)])


@pytest.mark.parametrize(
    "old, new, expected",
    [
        # Regression: check-config accepted these; the services then refused them (exit 78).
        ("{id: test-store}", "{id: test-store, timezone: Europe/Londn}",
         r"site\.yaml:1 site\.timezone: not a known IANA time zone, e\.g\. Europe/London or UTC "
         r"\(got 'Europe/Londn'\)$"),
        ("{id: test-store}", "{id: test-store, timezone: Europe}",  # a folder of zones
         r"site\.yaml:1 site\.timezone: not a known IANA time zone"),
        ("web: {access: open-lan}", "web:\n  port: 8080\n  access: pin",
         r"site\.yaml:12 web\.access: 'pin' needs a PIN but no web\.pin is set: add "
         r"`pin: \$\{EDGE_WEB_PIN\}`.*\(got 'pin'\)$"),
        ("web: {access: open-lan}\n", "",
         r"site\.yaml:1 web\.access: 'pin' \(the default\) needs a PIN but no web\.pin is set"),
    ],
)
def test_what_the_services_refuse_check_config_refuses(tmp_path, old, new, expected):
    path = write(tmp_path, MINIMAL.replace(old, new, 1))
    (tmp_path / "video.avi").write_bytes(b"")
    with pytest.raises(ConfigError, match=expected) as raised:
        load_site(path, services=["web"])
    result = check_config(path)
    assert result.exit_code == 78
    assert result.output.splitlines() == [f"Error: {raised.value}"]  # one line, the same


def test_what_a_service_needs_is_checked_for_that_service_only(tmp_path):
    """A site without a PIN is a valid site for an engineer's replay or trajectory
    import, and for the cameras' units; the page's unit and check-config refuse it."""
    path = write(tmp_path, MINIMAL.replace("web: {access: open-lan}\n", "", 1))
    (tmp_path / "video.avi").write_bytes(b"")
    assert load_site(path).web.pin is None
    assert check_config(path, "--service", "camera:cam1").exit_code == 0
    assert check_config(path, "--service", "sync", "--service", "wifi").exit_code == 0
    for service in ((), ("--service", "web")):
        result = check_config(path, *service)
        assert result.exit_code == 78 and "no web.pin is set" in result.output
    unknown = check_config(path, "--service", "camera:nope")
    assert unknown.exit_code == 78 and "has no camera nope (cameras: cam1)" in unknown.output
    assert check_config(path, "--service", "printer").exit_code == 2


def test_check_config_says_the_purge_interval_the_installer_sets_the_timer_to(tmp_path):
    """The purge timer ran hourly whatever service.purge_interval_s said: scripts/install
    now writes the timer's interval from this (tests/test_installer.py checks the unit)."""
    path = write(tmp_path, MINIMAL + "service: {purge_interval_s: 900.7}\n")
    (tmp_path / "video.avi").write_bytes(b"")
    result = check_config(path, "--purge-interval")
    assert result.exit_code == 0 and result.stdout == "900\n"  # never later than configured


@pytest.mark.parametrize(
    "text, expected",
    [
        ("site:\n  id: test-store\n  name: First\n  name: Second\n",
         r"site\.yaml:4: not valid YAML: duplicate key site\.name \(first on line 3\)"),
        ("site: {id: test-store, id: other}\n", r"site\.yaml:1: not valid YAML: duplicate key "
         r"site\.id \(first on line 1\)"),
        ("site: {id: test-store}\nfloor: {bounds: [[0, 0], [9, 9]]}\nfloor: {bounds: [[0, 0], "
         "[1, 1]]}\n", r"site\.yaml:3: not valid YAML: duplicate key floor \(first on line 2\)"),
        ("site: {id: test-store}\ncameras:\n  - {id: a, id: b}\n",
         r"site\.yaml:3: not valid YAML: duplicate key cameras\[0\]\.id \(first on line 3\)"),
    ],
)
def test_a_key_given_twice_is_refused_not_overwritten(tmp_path, text, expected):
    """Regression: PyYAML keeps the last of two equal keys without a word."""
    with pytest.raises(ConfigError, match=expected):
        load_site(write(tmp_path, text))


def test_yaml_merge_keys_are_not_duplicates():
    text = MINIMAL.replace("site: {id: test-store}", "site: &s {id: test-store, name: A}\n"
                           "x-copy: {<<: *s, name: B}")
    with pytest.raises(ConfigError) as raised:  # an unknown section, but valid YAML
        parse_site(text)
    assert "x-copy: Extra inputs are not permitted" in str(raised.value)


def test_a_segment_spec_with_a_key_twice_is_refused():
    from edge.visits.spec import SpecError, parse_spec

    text = REPO_SPEC.read_text() + '\nspec_version: "9.9.9"\n'
    with pytest.raises(SpecError, match=r"spec\.yaml:\d+: not valid YAML: duplicate key "
                       r"spec_version \(first on line 9\)"):
        parse_spec(text, source="spec.yaml")


REPO_SPEC = PETS_SITE.parents[2] / "models" / "segments" / "default.yaml"


@pytest.mark.parametrize(
    "floor, expected",
    [
        ("  zones:\n    - {id: far, kind: product, polygon: [[20, 20], [24, 20], [24, 24]]}\n",
         r"site\.yaml:5 floor\.zones\[0\]\.polygon: zone 'far' lies entirely outside "
         r"floor\.bounds \[\[0, 0\], \[10, 10\]\]"),
        # Touching the edge is not inside either: nobody can stand in it.
        ("  zones:\n    - {id: edge, kind: product, polygon: [[10, 0], [12, 0], [12, 4]]}\n",
         r"zone 'edge' lies entirely outside"),
        ("  lines:\n    - {id: door, start: [-5, -1], end: [-5, 4], inside: left}\n",
         r"site\.yaml:5 floor\.lines\[0\]: line 'door' lies entirely outside floor\.bounds"),
    ],
)
def test_zones_and_lines_off_the_floor_plan_are_refused(tmp_path, floor, expected):
    text = MINIMAL.replace("  bounds: [[0, 0], [10, 10]]\n", "  bounds: [[0, 0], [10, 10]]\n"
                           + floor)
    with pytest.raises(ConfigError, match=expected):
        load_site(write(tmp_path, text))


def test_partly_inside_zones_and_lines_are_kept(tmp_path):
    text = MINIMAL.replace("  bounds: [[0, 0], [10, 10]]\n", "  bounds: [[0, 0], [10, 10]]\n"
                           "  zones:\n    - {id: door, kind: entrance, polygon: [[8, 8], [12, 8],"
                           " [12, 12], [8, 12]]}\n"
                           "  lines:\n    - {id: in, start: [-5, 1], end: [5, 1], inside: left}\n")
    site = load_site(write(tmp_path, text))
    assert [z.id for z in site.floor.zones] == ["door"] and site.floor.lines[0].id == "in"


@pytest.mark.parametrize("shipped, services", [("pets09/site.yaml", True),
                                               ("site.example.yaml", False)])
def test_shipped_sites_validate(shipped, services, monkeypatch):
    monkeypatch.setenv("EDGE_WEB_PIN", "2468")  # the skeleton reads it as a credential
    site = load_site(PETS_SITE.parents[1] / shipped, services=services)
    for zone in site.floor.zones:
        assert zone.polygon  # every zone passed the bounds check


def test_check_config_says_the_skeletons_placeholders_are_still_there(monkeypatch):
    """Regression (issue 18): the skeleton as installed passed check-config, and the
    services ran as store-0001 on a camera URL that does not exist."""
    monkeypatch.setenv("EDGE_WEB_PIN", "2468")
    skeleton = PETS_SITE.parents[1] / "site.example.yaml"
    result = check_config(skeleton)
    assert result.exit_code == 78
    assert result.output.splitlines() == [
        "Error: invalid site config:",
        f"  {skeleton}:10 site.id: still the placeholder of the site skeleton; set this "
        "store's own id (lower-case letters, digits, - and _) (got 'store-0001')",
        f"  {skeleton}:18 cameras[0].source: still the placeholder of the site skeleton; set "
        "this camera's stream (rtsp://user:${CAMERA_PASSWORD}@host/path), usb:N or a video "
        "file (got 'rtsp://camera-1.local:554/stream1')"]
    web_only = check_config(skeleton, "--service", "web")  # the id is every service's
    assert web_only.exit_code == 78 and "site.id: still the placeholder" in web_only.output
    assert "cameras[0]" not in web_only.output


def test_a_repeated_zone_id_names_the_repeat_and_its_line(tmp_path):
    """Regression: the error pointed at `floor:` and printed the whole section."""
    text = MINIMAL.replace("  bounds: [[0, 0], [10, 10]]\n", "  bounds: [[0, 0], [10, 10]]\n"
                           "  zones:\n"
                           "    - {id: till, kind: checkout, polygon: [[0, 0], [2, 0], [2, 2]]}\n"
                           "    - {id: till, kind: checkout, polygon: [[4, 4], [6, 4], [6, 6]]}\n")
    with pytest.raises(ConfigError) as raised:
        load_site(write(tmp_path, text))
    assert str(raised.value) == (
        f"invalid site config: {tmp_path / 'site.yaml'}:6 floor.zones[1].id: id 'till' is "
        "already used by floor.zones[0]; zone and line ids must be unique (got 'till')")


def test_a_repeated_camera_id_names_the_repeat(tmp_path):
    camera = MINIMAL[MINIMAL.index("  - id: cam1"):MINIMAL.index("web:")]
    text = MINIMAL.replace("web:", camera + "web:")
    with pytest.raises(ConfigError, match=r"site\.yaml:10 cameras\[1\]\.id: camera id 'cam1' is "
                       r"already used by cameras\[0\]; camera ids must be unique \(got 'cam1'\)$"):
        load_site(write(tmp_path, text))


def test_input_size_error_says_it_once(tmp_path):
    text = MINIMAL + "detector: {input_size: [481, 640]}\n"
    with pytest.raises(ConfigError) as raised:
        load_site(write(tmp_path, text))
    message = str(raised.value)
    assert message.endswith("detector.input_size: input_size must be multiples of 32, "
                            "e.g. [480, 640] (got [481, 640])")
    assert message.count("481") == 1


def test_a_missing_video_file_is_refused_by_check_config(tmp_path):
    path = write(tmp_path, MINIMAL)  # source: video.avi, next to the site file: not there
    assert load_site(path).cameras[0].source == str(tmp_path / "video.avi")  # replay may pass
    result = check_config(path)
    assert result.exit_code == 78
    assert result.output.splitlines() == [
        f"Error: invalid site config: {path}:6 cameras[0].source: the video file "
        f"{tmp_path / 'video.avi'} does not exist; fix the path (relative to the site file) or "
        "put the file there (got 'video.avi')"]
    (tmp_path / "video.avi").write_bytes(b"")  # a file is there: decoding it is the worker's job
    assert load_site(path, services=True).cameras[0].source == str(tmp_path / "video.avi")


@pytest.mark.parametrize(
    "source",
    ["rtsp://user:pw@camera-1.local:554/stream1", "http://127.0.0.1:9/stream.mjpg", "usb:0",
     "/dev/video0", "asset:pets09_s2l1_view001"],
)
def test_sources_that_are_not_files_are_not_looked_for(tmp_path, source):
    site = load_site(write(tmp_path, MINIMAL.replace("video.avi", source)), services=True)
    assert site.cameras[0].source == source


def test_only_the_named_cameras_files_are_required(tmp_path):
    camera = MINIMAL[MINIMAL.index("  - id: cam1"):MINIMAL.index("web:")]
    text = MINIMAL.replace("web:", camera.replace("cam1", "cam2").replace("video.avi", "usb:0")
                           + "web:")
    path = write(tmp_path, text)
    assert load_site(path, services=["camera:cam2"]).cameras[1].source == "usb:0"
    with pytest.raises(ConfigError, match=r"cameras\[0\]\.source: the video file"):
        load_site(path, services=["camera:cam1"])


def test_a_tls_file_that_is_no_certificate_stops_check_config_for_the_sync(tmp_path):
    """It exists, so it passed; the sync then failed at its first connection."""
    (tmp_path / "video.avi").write_bytes(b"")
    (tmp_path / "ca.pem").write_text("not a certificate\n")
    path = write(tmp_path, MINIMAL + "sync:\n  mqtt:\n    tls: {ca_file: ca.pem}\n")
    assert load_site(path).sync.mqtt.tls.ca_file == str(tmp_path / "ca.pem")
    for service in ((), ("--service", "sync")):
        result = check_config(path, *service)
        assert result.exit_code == 78
        assert "sync.mqtt.tls" in result.output and "not a readable PEM CA bundle" in result.output
    assert check_config(path, "--service", "web").exit_code == 0


def test_the_status_page_s_tls_files_are_checked_like_the_sync_s(tmp_path):
    """web.tls: a missing file is an error for everyone; a file that is no certificate
    stops check-config for the page (and the page's start), not for the other services."""
    (tmp_path / "video.avi").write_bytes(b"")
    (tmp_path / "cert.pem").write_text("not a certificate\n")
    (tmp_path / "key.pem").write_text("not a key\n")
    missing = write(tmp_path, MINIMAL.replace(
        "web: {access: open-lan}", "web: {access: open-lan, tls: {cert_file: cert.pem, "
        "key_file: nokey.pem}}"))
    with pytest.raises(ConfigError, match=r"web\.tls\.key_file: .*TLS file .*nokey.pem does not"):
        load_site(missing)
    path = write(tmp_path, MINIMAL.replace(
        "web: {access: open-lan}", "web: {access: open-lan, tls: {cert_file: cert.pem, "
        "key_file: key.pem}}"))
    assert load_site(path).web.tls.cert_file == str(tmp_path / "cert.pem")
    for service in ((), ("--service", "web")):
        result = check_config(path, *service)
        assert result.exit_code == 78
        assert "web.tls" in result.output
        assert "not a usable PEM certificate and matching key" in result.output
    assert check_config(path, "--service", "sync").exit_code == 0


def _alias_bomb(levels: int = 9) -> bytes:
    """"Billion laughs": anchors each a list of 9 aliases of the one before (9**9 leaves)."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for before, name in zip("abcdefgh"[:levels - 1], "bcdefghi"[:levels - 1], strict=True):
        lines.append(f"{name}: &{name} [{', '.join([f'*{before}'] * 9)}]")
    return ("\n".join(lines) + "\n").encode()


HOSTILE_YAML = {
    "alias bomb": (_alias_bomb(), r":5: not valid YAML: this value expands to more than 20,000 "
                   r"values \(aliases included\)"),
    "deep nesting": (b"site: " + b"[" * 5000 + b"]" * 5000 + b"\n",
                     r":1: not valid YAML: nested more than 32 levels deep"),
    "long integer": (b"site: {id: x}\nstorage: {visit_days: " + b"9" * 5000 + b"}\n",
                     r":2: not valid YAML: an integer of 5,000 characters; Python reads at most "
                     r"4,300 digits"),
    "latin-1": ("site: {id: x}\n# Caf\xe9 du coin\n".encode("latin-1"),
                r":2: not UTF-8 text \(byte 0xe9 in column 6\); save the site config as UTF-8"),
}


def _cap_memory() -> None:
    # check-config's imports reserve ~0.6 GB of address space; the bomb used to take 3.4 GB.
    resource.setrlimit(resource.RLIMIT_AS, (1536 * 2**20, 1536 * 2**20))


@pytest.mark.parametrize("name", HOSTILE_YAML)
def test_hostile_yaml_is_one_error_line_within_a_second_and_a_few_mb(tmp_path, name):
    """Regression (issue 18): check-config died after 27 s and 3.4 GB (MemoryError) on a
    430-byte alias bomb, and with a RecursionError, a ValueError or a UnicodeDecodeError
    traceback on deep nesting, a 5,000-digit integer and a Latin-1 file."""
    data, expected = HOSTILE_YAML[name]
    path = tmp_path / "site.yaml"
    path.write_bytes(data)
    result = subprocess.run([sys.executable, "-m", "edge", "check-config", str(path)], cwd=REPO,
                            capture_output=True, text=True, timeout=30, preexec_fn=_cap_memory)
    assert result.returncode == 78, result.stderr
    assert re.fullmatch(f"Error: {re.escape(str(path))}{expected}[^\n]*\n", result.stderr)
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(ConfigError):
        load_site(path)
    elapsed, peak = time.perf_counter() - start, tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 1.0 and peak < 4 * 2**20, (elapsed, peak)


def test_a_segment_spec_shares_the_loaders_limits(tmp_path):
    from edge.visits.spec import SpecError, parse_spec, read_spec

    # 5 levels (66,430 values): enough to refuse, and harmless to the code it regresses on.
    with pytest.raises(SpecError, match=r"^spec\.yaml:5: not valid YAML: this value expands"):
        parse_spec(_alias_bomb(levels=5).decode(), source="spec.yaml")
    path = tmp_path / "spec.yaml"
    path.write_bytes(HOSTILE_YAML["latin-1"][0])
    with pytest.raises(SpecError, match=r"spec\.yaml:2: not UTF-8 text .* as UTF-8$"):
        read_spec(path)


def test_a_recursive_alias_is_refused():
    with pytest.raises(ConfigError, match=r"<site>:1: not valid YAML: alias \*a refers to a "
                       r"node that contains it"):
        parse_site("site: &a {id: x, self: *a}\n")


def test_anchors_and_aliases_within_the_budget_still_load():
    text = MINIMAL.replace("calibration:", "calibration: &cal").replace(
        "web:", "  - {id: cam2, source: usb:1, calibration: *cal}\nweb:")
    site = parse_site(text)
    assert site.cameras[1].calibration == site.cameras[0].calibration


@pytest.mark.parametrize(
    "old, new, expected",
    [
        # A 23.8 GiB input tensor: the camera service died of MemoryMax, restarting.
        ("web:", "detector: {input_size: [320000, 640000]}\nweb:",
         r"site\.yaml:10 detector\.input_size: input_size must be at most 4096 per side: memory "
         r"and time grow with its square \(416 to 1280 suit a shop floor\) "
         r"\(got \[320000, 640000\]\)$"),
        # Retried forever: "bad USB source" is a source error, not a config error.
        ("video.avi", "usb:-1", r"site\.yaml:6 cameras\[0\]\.source: a USB camera is usb:N or "
         r"/dev/videoN, N its device number \(0 for /dev/video0\) \(got 'usb:-1'\)$"),
        ("video.avi", "/dev/videox", r"cameras\[0\]\.source: a USB camera is usb:N"),
    ],
)
def test_camera_settings_the_camera_service_cannot_run_are_refused(tmp_path, old, new, expected):
    """Regression (issue 18): check-config passed these; the camera service could not run."""
    path = write(tmp_path, MINIMAL.replace(old, new, 1))
    (tmp_path / "video.avi").write_bytes(b"")
    with pytest.raises(ConfigError, match=expected) as raised:
        load_site(path)
    result = check_config(path)
    assert result.exit_code == 78
    assert result.output.splitlines() == [f"Error: {raised.value}"]


@pytest.mark.parametrize(
    "fps, detect_fps, used",
    [(10, 6, 5), (25, 10, 8.33), (7, 3, 2.33), (5, 8, 5), (10, 5, None), (7, 3.5, None),
     (10, 10, None), (None, 6, None)],
)
def test_check_config_says_the_detection_rate_really_used(tmp_path, fps, detect_fps, used):
    """Regression (issue 18): fps 10 with detect_fps 6 ran at 5 frames/s without a word
    (the detector skips whole frames), and the tracker was told 6."""
    rate = f"\n    fps: {fps}" if fps else ""
    path = write(tmp_path, MINIMAL.replace(
        "source: video.avi", f"source: usb:0{rate}\n    detect_fps: {detect_fps}"))
    result = check_config(path)
    assert result.exit_code == 0
    warnings = [line for line in result.stderr.splitlines()
                if "people passing each other swap tracks" not in line]  # below 3 frames/s
    if used is None:
        assert warnings == []
    else:
        assert warnings == [
            f"Warning: {path} cameras[0].detect_fps: frames are skipped whole, so of {fps} "
            f"frames/s the detector runs at {used:g}, not {detect_fps}; set detect_fps: "
            f"{used:g} to say so"]
        assert load_site(path).cameras[0].detection_rate == pytest.approx(used, abs=0.01)


@pytest.mark.parametrize("fps, detect_fps, warned", [
    (7, 3, True), (10, 2.5, True), (None, 2, True), (7, 3.5, False), (10, 5, False),
    (None, None, False)])
def test_check_config_warns_of_a_detection_rate_too_low_to_count(tmp_path, fps, detect_fps,
                                                                 warned):
    """At 2-3 frames/s the image tracker swaps people who pass each other: held-out
    random lines on PETS lose 4 % of their crossings at 2.3 frames/s (docs/vision.md)."""
    lines = "source: usb:0" + (f"\n    fps: {fps}" if fps else "") + (
        f"\n    detect_fps: {detect_fps}" if detect_fps else "")
    path = write(tmp_path, MINIMAL.replace("source: video.avi", lines))
    result = check_config(path)
    assert result.exit_code == 0
    low = [line for line in result.stderr.splitlines() if "swap tracks" in line]
    assert len(low) == int(warned), result.stderr
    if warned:
        assert low[0].startswith(f"Warning: {path} cameras[0]: the detector runs at ")
        assert "raise detect_fps if the CPU allows" in low[0]


def test_a_misspelt_asset_is_refused_by_check_config(tmp_path):
    """Regression (issue 18): the camera service ran on with 0 frames, never exiting 78."""
    path = write(tmp_path, MINIMAL.replace("video.avi", "asset:pets09_s2l1_view01"))
    assert load_site(path).cameras[0].source == "asset:pets09_s2l1_view01"  # a replay's own
    result = check_config(path, "--service", "camera:cam1")
    assert result.exit_code == 78
    assert result.output.splitlines() == [
        f"Error: invalid site config: {path} cameras[0].source: no sample recording named "
        "'pets09_s2l1_view01' in the model manifest; known: pets09_s2l1_view001 "
        "(got 'asset:pets09_s2l1_view01')"]
    assert check_config(path, "--service", "web").exit_code == 0
    model = write(tmp_path, MINIMAL.replace("video.avi", "asset:yolox_nano_416x416"))
    assert "no sample recording named 'yolox_nano_416x416'" in check_config(model).output
    good = write(tmp_path, MINIMAL.replace("video.avi", "asset:pets09_s2l1_view001"))
    assert check_config(good).exit_code == 0


def test_a_video_file_the_camera_unit_cannot_see_is_warned_about(tmp_path):
    """Regression (issue 18): a file under /tmp or /home passed check-config in a shell;
    the camera unit (PrivateTmp=yes, ProtectHome=yes) then found no file there."""
    path = write(tmp_path, MINIMAL)
    (tmp_path / "video.avi").write_bytes(b"")
    assert str(tmp_path).startswith("/tmp/")
    result = check_config(path)
    assert result.exit_code == 0  # engineers and tests run cameras on such files by hand
    assert result.stderr.splitlines() == [
        f"Warning: {path} cameras[0].source: the camera service cannot see "
        f"{tmp_path / 'video.avi'} (PrivateTmp=yes in its systemd unit); move the file "
        "under /var/lib/store-edge or /etc/store-edge"]
    assert check_config(path, "--service", "web").stderr == ""


@pytest.mark.parametrize(
    "camera, detector, expected",
    [
        ("", "", "detector input 224x384 (from its 640x360 frames: a 60-pixel person is 37 "
         "input pixels tall)"),
        ("\n      image_size: [1920, 1080]", "", "detector input 544x960 (from its 1920x1080 "
         "frames: a 60-pixel person is 30 input pixels tall)"),
        ("", "detector: {input_size: [320, 576]}\n", "detector input 320x576 "
         "(detector.input_size)"),
        ("", "detector: {model: light_person_detector_192x192}\n", "detector input 192x192 "
         "(the model's own size: it does not resize)"),
    ],
    ids=["from-the-file", "from-image-size", "configured", "fixed-model"],
)
def test_check_config_says_each_cameras_detector_input_size(tmp_path, camera, detector,
                                                             expected):
    """Regression (issue 14): the input size a camera got from its frame size was only
    known once it ran; check-config now says it, from the calibration's image_size or
    the video file's header."""
    import cv2

    writer = cv2.VideoWriter(str(tmp_path / "video.avi"), cv2.VideoWriter_fourcc(*"MJPG"),
                             5.0, (640, 360))
    writer.write(np.zeros((360, 640, 3), np.uint8))
    writer.release()
    text = MINIMAL.replace("      floor_points: [[0, 0], [10, 0], [10, 10], [0, 10]]",
                           "      floor_points: [[0, 0], [10, 0], [10, 10], [0, 10]]" + camera)
    path = write(tmp_path, text + detector)
    result = check_config(path)
    assert result.exit_code == 0, result.output
    assert f"  camera cam1: {expected}" in result.stdout.splitlines()


def test_check_config_waits_for_a_live_cameras_first_frame(tmp_path):
    path = write(tmp_path, MINIMAL.replace("source: video.avi", "source: usb:0"))
    result = check_config(path)
    assert result.exit_code == 0, result.output
    assert ("  camera cam1: detector input 0.6 of its frame size, set when the first frame "
            "arrives (give calibration.image_size to see it here)") in result.stdout.splitlines()


def test_windows_sent_before_their_visits_are_stored_are_warned_about(tmp_path):
    """A window is aggregated sync.settle_s after it ends; a visit is stored up to
    close_after_s + stitch_max_gap_s + visits_interval_s + flush_interval_s (+ a picture in
    flight) after its shopper leaves. Shorter, visits ending late in a window were never
    sent, and check-config said "valid"."""
    (tmp_path / "video.avi").write_bytes(b"")
    default = write(tmp_path, MINIMAL)
    assert load_site(default).settle_warning() is None    # 120 s against 55.5 s
    short = write(tmp_path, MINIMAL + "sync: {settle_s: 30}\n")
    site = load_site(short)
    assert site.visit_stored_within_s == pytest.approx(10 + 2.5 + 30 + 2 + 1)
    result = check_config(short, "--service", "sync")
    assert result.exit_code == 0, result.output
    assert ("sync.settle_s (30 s) is shorter than the 55.5 s a visit can take to be stored"
            in result.output)
    assert "set sync.settle_s to at least 56" in result.output
    assert "settle_s" not in check_config(short, "--service", "web").output
    no_sync = write(tmp_path, MINIMAL + "sync: {settle_s: 30, enabled: false}\n")
    assert load_site(no_sync).settle_warning() is None


@pytest.mark.parametrize("hours, purge_every_s, refused", [
    (1, None, True),           # the default hourly purge kept 1 h up to 1.5 h
    (2, 21600, True),          # kept up to 7 h
    (4, 21600, True),
    (2, None, False),
    (12, 21600, False),
    (0.5, 900, False),
])
def test_raw_trajectories_kept_less_than_two_purge_intervals_are_refused(
        tmp_path, hours, purge_every_s, refused):
    """Regression (privacy review, repro 06): a purge keeps at least half the period
    (edge.retention.cutoff), so raw_trajectory_hours under twice the purge interval
    was outlived silently (1 h kept 1.5 h, 2 h kept 7 h). The config refuses it."""
    text = MINIMAL + f"storage: {{raw_trajectory_hours: {hours}}}\n"
    if purge_every_s is not None:
        text += f"service: {{purge_interval_s: {purge_every_s}}}\n"
    if not refused:
        assert load_site(write(tmp_path, text)).storage.raw_trajectory_hours == hours
        return
    with pytest.raises(ConfigError) as error:
        load_site(write(tmp_path, text))
    every = purge_every_s or 3600
    assert re.search(r"site\.yaml:11 storage\.raw_trajectory_hours: raw positions kept "
                     rf"{hours:g} h with a purge every {every:g} s", str(error.value))
    assert f"set raw_trajectory_hours to at least {2 * every / 3600:g}" in str(error.value)


@pytest.mark.parametrize("tag", ["café", "-promo", "_promo", "Kids", "", "a b"])
def test_a_tag_the_feature_names_cannot_carry_is_refused(tag):
    """Regression: the site accepted tags such as café, -promo or _promo that the
    feature vocabulary does not (dwell_tag_<tag>_s), so the box refused a classifier
    model trained on its own site. One pattern now serves both."""
    from edge.config import parse_site

    site = ("site: {id: s}\nfloor:\n  bounds: [[0, 0], [9, 9]]\n  zones:\n"
            f"    - {{id: z, kind: product, tags: [{json.dumps(tag)}], "
            "polygon: [[0, 0], [2, 0], [2, 2]]}\n")
    with pytest.raises(ConfigError, match=r"zones\[0\]\.tags.*must be ASCII lower-case"):
        parse_site(site)


@pytest.mark.parametrize("tag", ["promo", "ready-to-eat", "formal_wear", "4kids", "a-"])
def test_every_tag_the_site_accepts_makes_known_features(tag):
    from edge.config import parse_site
    from edge.visits.features import feature_names, unknown_feature_reason

    site = parse_site("site: {id: s}\nfloor:\n  bounds: [[0, 0], [9, 9]]\n  zones:\n"
                      f"    - {{id: z, kind: product, tags: [{tag}], "
                      "polygon: [[0, 0], [2, 0], [2, 2]]}\n")
    assert site.floor.zones[0].tags == [tag]
    for name in feature_names([tag]):
        assert unknown_feature_reason(name, [tag]) is None, name


def test_check_config_warns_about_overlapping_zones_and_repeated_tags(tmp_path):
    """Regression: a zone inside another and `tags: [kids, kids]` were accepted without
    a word. Both are legitimate (a promo table in an aisle) and each counts once in the
    features, so check-config warns and still exits 0."""
    zones = """\
  zones:
    - {id: aisle, kind: product, tags: [kids], polygon: [[0, 0], [6, 0], [6, 6], [0, 6]]}
    - {id: promo, kind: product, tags: [kids, kids], polygon: [[1, 1], [3, 1], [3, 3], [1, 3]]}
    - {id: till, kind: checkout, polygon: [[7, 7], [9, 7], [9, 9], [7, 9]]}
"""
    path = write(tmp_path, MINIMAL.replace("  bounds: [[0, 0], [10, 10]]\n",
                                           "  bounds: [[0, 0], [10, 10]]\n" + zones, 1))
    (tmp_path / "video.avi").write_bytes(b"")
    result = check_config(path)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("Warning:")]
    assert any("floor.zones[1].tags: 'kids' listed more than once" in w for w in warnings)
    assert any("floor.zones[1]: zone 'promo' overlaps zone 'aisle' (floor.zones[0]) by 4 m²"
               in w for w in warnings)
    assert not any("till" in w for w in warnings)
