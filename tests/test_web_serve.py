"""``edge web serve`` as a real process: it answers, stops cleanly, restarts on
IT's request with exit status 75, and explains a taken port or a missing PIN."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from edge.runtime.schema import open_database
from tests.support.mqtt_broker import make_tls_files
from tests.support.net import free_port

pytestmark = pytest.mark.system

TOKEN = "it-token-0123456789abcdef"
SITE = """
site: {id: serve-test, name: Serve test, timezone: Europe/London}
floor: {bounds: [[0, 0], [10, 8]]}
web:
  pin: ${EDGE_WEB_PIN}
  admin_token: ${EDGE_WEB_ADMIN_TOKEN}
"""


def start(tmp_path: Path, *args: str, named_db: bool = True, site_text: str = SITE,
          tls: ssl.SSLContext | None = None) -> tuple[subprocess.Popen, str]:
    site = tmp_path / "site.yaml"
    site.write_text(site_text)
    db_args: list[str] = []
    if named_db:
        open_database(tmp_path / "edge.db").close()   # a named --db must exist
        db_args = ["--db", str(tmp_path / "edge.db")]
    port = free_port()
    env = {**os.environ, "EDGE_WEB_PIN": "2468", "EDGE_WEB_ADMIN_TOKEN": TOKEN}
    process = subprocess.Popen(
        [sys.executable, "-m", "edge", "web", "serve", "--site", str(site), *db_args,
         "--host", "127.0.0.1", "--port", str(port), *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.stderr.read())
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1, context=tls)
            return process, base
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("edge web serve did not answer in 30 s")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def status_of(request: urllib.request.Request | str) -> int:
    try:
        return urllib.request.build_opener(NoRedirect).open(request, timeout=5).status
    except urllib.error.HTTPError as error:
        return error.code


def test_serve_answers_then_restarts_on_request(tmp_path):
    process, base = start(tmp_path)
    try:
        assert status_of(base + "/") == 303  # PIN mode: to the sign-in page
        assert status_of(base + "/api/v1/summary") == 401
        assert (tmp_path / "edge.db").exists()  # schema created for the services
        # The config in use is the one served: --host/--port, not the file's defaults.
        config = urllib.request.Request(base + "/admin/config",
                                        headers={"Authorization": f"Bearer {TOKEN}"})
        web = json.loads(urllib.request.urlopen(config, timeout=5).read())["config"]["web"]
        assert (web["host"], web["port"]) == ("127.0.0.1", int(base.rsplit(":", 1)[1]))
        restart = urllib.request.Request(base + "/admin/restart", method="POST",
                                         headers={"Authorization": f"Bearer {TOKEN}"})
        assert status_of(restart) == 202
        assert process.wait(20) == 75
    finally:
        process.kill()
    assert "Traceback" not in process.stderr.read()


def test_serve_stops_cleanly_on_sigterm(tmp_path):
    process, base = start(tmp_path, "--open-lan")
    try:
        assert status_of(base + "/") == 200
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal so that the
        # service manager sees a stop by SIGTERM (systemd counts it as clean).
        assert process.wait(20) in (0, -signal.SIGTERM)
    finally:
        process.kill()
    log = process.stderr.read()
    assert "Application shutdown complete" in log and "Traceback" not in log
    assert "OPEN-LAN" not in log  # loopback only: nobody else can reach it


def test_open_lan_on_every_interface_warns_loudly(tmp_path):
    """Field report (issue 18): `--open-lan` with the default host 0.0.0.0 served the API
    and /metrics without a PIN on every interface, and said nothing."""
    process, base = start(tmp_path, "--open-lan", "--host", "0.0.0.0")
    try:
        assert status_of(base + "/metrics") == 200  # open indeed, hence the warning
    finally:
        process.kill()
    log = process.stderr.read()
    assert "OPEN-LAN: the status page, its API and /metrics are served WITHOUT a PIN" in log
    assert "on every interface of this box" in log


def test_serves_https_with_the_configured_certificate(tmp_path):
    """web.tls: the page is served over HTTPS only, and its cookies are Secure."""
    files = make_tls_files(tmp_path / "tls")
    site = SITE + f"  tls: {{cert_file: tls/server.pem, key_file: {files['server_key']}}}\n"
    trust = ssl.create_default_context(cafile=str(files["ca"]))
    process, base = start(tmp_path, site_text=site, tls=trust)
    try:
        opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(context=trust))
        login = opener.open(base + "/login", timeout=5)
        csrf_cookie = login.headers["set-cookie"]
        assert "edge_csrf=" in csrf_cookie and "Secure" in csrf_cookie
        token = re.search(r'name="csrf" value="([^"]+)"', login.read().decode()).group(1)
        form = urllib.request.Request(
            base + "/login", data=f"csrf={token}&pin=2468&next=/".encode(), method="POST",
            headers={"Cookie": f"edge_csrf={token}",
                     "Content-Type": "application/x-www-form-urlencoded"})
        try:
            opener.open(form, timeout=5)
            raise AssertionError("signing in should redirect")
        except urllib.error.HTTPError as redirect:
            assert redirect.code == 303
            cookies = redirect.headers.get_all("set-cookie")
        session = next(c for c in cookies if c.startswith("edge_session="))
        assert "Secure" in session and "HttpOnly" in session
        with pytest.raises(OSError):  # plain HTTP on the same port gets no page
            urllib.request.urlopen(base.replace("https:", "http:") + "/healthz", timeout=5)
    finally:
        process.kill()
    log = process.stderr.read()
    assert "Status page on https://127.0.0.1" in log and "Traceback" not in log


@pytest.mark.parametrize("case", ["port-taken", "no-pin"])
def test_serve_refuses_with_one_line(tmp_path, case):
    open_database(tmp_path / "edge.db").close()
    args = ["--db", str(tmp_path / "edge.db")]
    if case == "port-taken":
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        args += ["--open-lan", "--host", "127.0.0.1", "--port", str(blocker.getsockname()[1])]
    else:
        site = tmp_path / "site.yaml"
        site.write_text(SITE.split("web:")[0] + "web: {access: pin}\n")
        args += ["--site", str(site)]
    result = subprocess.run([sys.executable, "-m", "edge", "web", "serve", *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr
    expected = ("cannot listen on 127.0.0.1" if case == "port-taken"
                else "web.access: 'pin' needs a PIN but no web.pin is set")
    assert lines[-1].startswith("Error: ") and expected in lines[-1], result.stderr


def test_serve_refuses_a_named_database_that_is_not_there(tmp_path):
    """Field report: `edge web serve --db nodir/sub/edge.db` made the folders and an empty
    database, and served a page of nothing. Without --db the default one is still made."""
    missing = tmp_path / "nodir" / "sub" / "edge.db"
    result = subprocess.run([sys.executable, "-m", "edge", "web", "serve", "--open-lan",
                             "--db", str(missing)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (f"Error: database {missing} does not exist; give the "
                                     "database the services write (storage.db_path), or "
                                     "leave out --db")
    assert not (tmp_path / "nodir").exists()


def test_serve_without_db_creates_the_default_database(tmp_path, _isolated_state):
    process, base = start(tmp_path, "--open-lan", named_db=False)
    try:
        assert status_of(base + "/") == 200
        assert (_isolated_state / "edge.db").is_file()   # as before: made for the services
    finally:
        process.kill()
