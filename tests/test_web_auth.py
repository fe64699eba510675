"""Who may read the page and use the IT endpoints; forged, wrong, oversized or
malformed requests get clear refusals, never a 500."""

from __future__ import annotations

import http.client
import re
import socket
import threading
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from edge.cli import cli
from edge.config import load_site, parse_site
from edge.errors import ConfigError
from edge.runtime.schema import open_database
from edge.web.app import create_app
from edge.web.dashboard import WebDeps
from tests.conftest import PETS_SITE
from tests.support.web_support import BASE_URL, NOW, served, with_web

pytestmark = pytest.mark.system

PIN = "2468"
TOKEN = "it-token-0123456789abcdef"
METRICS_TOKEN = "scrape-token-0123456789"


@pytest.fixture(scope="module")
def site():
    return load_site(PETS_SITE)


@pytest.fixture
def db_path(tmp_path) -> Path:
    path = tmp_path / "edge.db"
    open_database(path).close()
    return path


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(site, db_path, clock=None, restart=None, **web) -> TestClient:
    settings = {"access": "pin", "pin": PIN, "admin_token": TOKEN, "cache_s": 0, **web}
    deps = WebDeps(site=with_web(site, **settings), db_path=db_path, clock=clock or Clock(NOW),
                   restart=restart)
    return TestClient(create_app(deps), raise_server_exceptions=False, follow_redirects=False,
                      base_url=BASE_URL)


def from_address(web: TestClient, address: str) -> TestClient:
    """Another device calling the same app, from ``address``."""
    return TestClient(web.app, raise_server_exceptions=False, follow_redirects=False,
                      base_url=BASE_URL, client=(address, 50000))


def csrf_of(web: TestClient) -> str:
    page = web.get("/login")
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def sign_in(web: TestClient, pin: str = PIN, **extra):
    form = {"csrf": csrf_of(web), "pin": pin, "next": "/", **extra}
    return web.post("/login", data=form)


def test_pin_sign_in_then_page_and_api(site, db_path):
    with make(site, db_path) as web:
        first = web.get("/", params={"day": "2026-03-10"})
        assert first.status_code == 303
        assert first.headers["location"] == "/login?next=%2F%3Fday%3D2026-03-10"
        denied = web.get("/api/v1/summary")
        assert denied.status_code == 401 and denied.headers["www-authenticate"] == "Bearer"
        assert web.get("/partials/dashboard").status_code == 401
        wrong = sign_in(web, "1111")
        assert wrong.status_code == 401 and "That PIN is not right. 4 tries left" in wrong.text
        ok = sign_in(web, next="/?day=2026-03-10")
        assert ok.status_code == 303 and ok.headers["location"] == "/?day=2026-03-10"
        cookie = ok.headers["set-cookie"]
        assert "edge_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert PIN not in cookie
        assert web.get("/").status_code == 200
        assert web.get("/api/v1/summary").status_code == 200
        assert web.get("/metrics").status_code == 200


def test_wrong_pins_are_rate_limited_then_allowed_again(site, db_path):
    clock = Clock(NOW)
    with make(site, db_path, clock=clock) as web:
        for left in (4, 3, 2, 1):
            assert f"{left} tries left" in sign_in(web, "0000").text
        assert "Wait a minute" in sign_in(web, "0000").text
        limited = sign_in(web)  # even the right PIN waits now
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) <= 61
        assert "Too many wrong PINs" in limited.text
        clock.now += 61
        assert sign_in(web).status_code == 303


def test_sessions_expire_and_cannot_be_forged(site, db_path):
    clock = Clock(NOW)
    with make(site, db_path, clock=clock, session_hours=1) as web:
        assert sign_in(web).status_code == 303
        session = web.cookies.get("edge_session")
        role, expiry = session.split(".")[1:3]
        forged = session.replace(f".{role}.{expiry}.", f".admin.{int(expiry) + 10**6}.")
        web.cookies.clear()
        for value, status in ((forged, 401), (session, 200)):
            response = web.get("/api/v1/summary", headers={"Cookie": f"edge_session={value}"})
            assert response.status_code == status
        web.cookies.set("edge_session", session)
        clock.now += 3601
        assert web.get("/").status_code == 303


@pytest.mark.parametrize(
    "change, status, words",
    [
        ({"csrf": ""}, 403, "The form has expired"),
        ({"csrf": "forged-token-value"}, 403, "The form has expired"),
        ({"headers": {"Origin": "http://evil.example"}}, 403, "sent from another site"),
    ],
)
def test_forged_sign_in_forms_are_refused(site, db_path, change, status, words):
    with make(site, db_path) as web:
        form = {"csrf": csrf_of(web), "pin": PIN, "next": "/"}
        if "csrf" in change:
            form["csrf"] = change["csrf"]
        response = web.post("/login", data=form, headers=change.get("headers", {}))
    assert response.status_code == status and words in response.text
    assert "edge_session" not in response.headers.get("set-cookie", "")


def test_sign_out_needs_the_form_token(site, db_path):
    with make(site, db_path) as web:
        sign_in(web)
        assert web.post("/logout", data={"csrf": "nope"}).status_code == 403
        assert web.get("/").status_code == 200
        out = web.post("/logout", data={"csrf": web.cookies.get("edge_csrf")})
        assert out.status_code == 303 and out.headers["location"] == "/login"
        web.cookies.delete("edge_session")  # the browser drops the expired cookie
        assert web.get("/").status_code == 303


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil", "x"])
def test_sign_in_never_redirects_off_site(site, db_path, target):
    with make(site, db_path) as web:
        assert sign_in(web, next=target).headers["location"] == "/"


def test_it_endpoints_need_the_admin_token(site, db_path):
    restarts = []
    with make(site, db_path, restart=lambda: restarts.append(1)) as web:
        assert web.get("/admin/config").status_code == 401
        sign_in(web)  # an associate's session is not enough
        assert web.get("/admin/config").status_code == 401
        assert web.post("/admin/restart").status_code == 401
        wrong = web.get("/admin/debug", headers={"Authorization": "Bearer not-the-token-at-all"})
        assert wrong.status_code == 403
        auth = {"Authorization": f"Bearer {TOKEN}"}
        config = web.get("/admin/config", headers=auth)
        assert config.status_code == 200
        web_section = config.json()["config"]["web"]
        assert web_section["pin"] == "(hidden)" and web_section["admin_token"] == "(hidden)"
        assert PIN not in config.text and TOKEN not in config.text
        debug = web.get("/admin/debug", headers=auth).json()
        # The right token clears the client's earlier failure.
        assert debug["table_rows"]["visits"] == 0 and debug["clients_with_failed_sign_ins"] == 0
        assert restarts == []
        restarted = web.post("/admin/restart", headers=auth)
        assert restarted.status_code == 202 and restarts == [1]


def test_it_endpoints_off_without_a_token_and_restart_off_without_a_service(site, db_path):
    with make(site, db_path, admin_token=None) as web:
        response = web.get("/admin/config", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 403 and "set web.admin_token" in response.text
    with make(site, db_path) as web:
        response = web.post("/admin/restart", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 409 and "cannot restart" in response.json()["detail"]


def test_wrong_tokens_are_rate_limited(site, db_path):
    with make(site, db_path) as web:
        bad = {"Authorization": "Bearer guess-guess-guess-guess"}
        assert [web.get("/admin/debug", headers=bad).status_code for _ in range(5)] == [403] * 5
        limited = web.get("/admin/debug", headers={"Authorization": f"Bearer {TOKEN}"})
        assert limited.status_code == 429 and "retry-after" in limited.headers
        assert web.get("/api/v1/summary", headers=bad).status_code == 429


def test_many_addresses_cannot_lock_out_tokens_or_tablets_that_signed_in(site, db_path):
    """Field report (issue 18): ten addresses x five wrong PINs tripped a global limit;
    then the right PIN, the admin token and Prometheus's metrics token all got 429
    ("from this device"), and 50 requests a minute kept the box locked."""
    clock = Clock(NOW)
    with make(site, db_path, clock=clock, metrics_token=METRICS_TOKEN) as tablet:
        assert sign_in(tablet).status_code == 303  # the till's tablet, signed in before
        tablet.post("/logout", data={"csrf": tablet.cookies.get("edge_csrf")})
        answers: Counter[int] = Counter()
        for i in range(20):  # 100 wrong PINs from 20 addresses
            with from_address(tablet, f"10.0.0.{i + 1}") as guesser:
                answers.update(sign_in(guesser, f"{i:02d}{j}0").status_code for j in range(5))
        # Only pin_failures_per_hour (30) of them were checked at all.
        assert answers == {401: 30, 429: 70}
        with from_address(tablet, "10.0.1.1") as it, from_address(tablet, "10.0.1.2") as scraper:
            assert it.get("/admin/debug", headers={"Authorization": f"Bearer {TOKEN}"}
                          ).status_code == 200
            assert scraper.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
                               ).status_code == 200
        assert sign_in(tablet).status_code == 303  # it knew the PIN before: not held back
        with from_address(tablet, "10.0.1.3") as new_tablet:
            held = sign_in(new_tablet)
            assert held.status_code == 429 and "on this box from other devices" in held.text
            assert "from this device" not in held.text
            clock.now += 3601
            assert sign_in(new_tablet).status_code == 303


def test_docs_state_the_worst_case_time_to_guess_a_pin():
    """The figure in docs/web.md follows from the limits in force by default."""
    from edge.config.web import WebConfig

    web = WebConfig()
    hours = 10**4 / web.pin_failures_per_hour  # every wrong PIN checked is one guess
    docs = (Path(__file__).parents[1] / "docs" / "web.md").read_text()
    assert f"{web.pin_failures_per_hour} wrong PINs an hour" in docs
    assert f"{hours:,.0f} hours ({hours / 24:.1f} days)" in docs


def test_a_valid_token_does_not_clear_wrong_pins(site, db_path):
    """Field report (issue 18): one address made 32 wrong PIN guesses in 4.4 s by sending
    a valid metrics token between them, which cleared its failure count."""
    metrics = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    with make(site, db_path, metrics_token=METRICS_TOKEN) as web:
        for _ in range(5):
            assert sign_in(web, "0000").status_code == 401
            assert web.get("/metrics", headers=metrics).status_code == 200
        assert sign_in(web, "0000").status_code == 429
        assert sign_in(web).status_code == 429  # the PIN count holds, the tokens still work
        assert web.get("/admin/debug", headers={"Authorization": f"Bearer {TOKEN}"}
                       ).status_code == 200


def test_wrong_tokens_at_metrics_count_against_the_admin_token(site, db_path):
    """/metrics accepts the admin token too: guesses there, between scrapes with the
    known metrics token, must still use up the admin token's tries."""
    with make(site, db_path, metrics_token=METRICS_TOKEN) as web:
        for i in range(5):
            guess = {"Authorization": f"Bearer admin-guess-{i:012d}"}
            assert web.get("/metrics", headers=guess).status_code == 403
            assert web.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
                           ).status_code == 200
        limited = web.get("/admin/debug", headers={"Authorization": "Bearer admin-guess-again"})
        assert limited.status_code == 429 and "wrong tokens from this device" in limited.text


def test_concurrent_wrong_tokens_are_counted_before_they_are_checked(site, db_path):
    """Field report (issue 18): the limit was checked, then the slow hash, then the
    failure recorded; 16 of 60 concurrent wrong tokens got through the limit of 5."""
    app = make(site, db_path).app
    with served(app) as base:
        port = int(base.rsplit(":", 1)[1])
        start = threading.Barrier(60)
        statuses: list[int] = []

        def guess(i: int) -> None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            connection.connect()
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            start.wait()
            connection.request("GET", "/admin/debug",
                               headers={"Authorization": f"Bearer wrong-token-{i:010d}"})
            statuses.append(connection.getresponse().status)
            connection.close()

        threads = [threading.Thread(target=guess, args=(i,)) for i in range(60)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    assert Counter(statuses) == {403: 5, 429: 55}


def test_sign_out_revokes_the_session_on_the_box(site, db_path):
    """Field report (issue 18): after signing out, a copy of the old cookie still read
    the figures until it expired."""
    with make(site, db_path) as web:
        assert sign_in(web).status_code == 303
        session = web.cookies.get("edge_session")
        assert web.post("/logout", data={"csrf": web.cookies.get("edge_csrf")}
                        ).status_code == 303
        web.cookies.clear()
        copied = {"Cookie": f"edge_session={session}"}
        assert web.get("/api/v1/summary", headers=copied).status_code == 401
        assert web.get("/", headers=copied).status_code == 303
        assert sign_in(web).status_code == 303  # a new sign-in works as before
        assert web.get("/api/v1/summary").status_code == 200


@pytest.mark.parametrize("host, status", [
    ("evil.example", 421), ("evil.example:8080", 421), ("rebind.127.0.0.1.nip.io", 421),
    ("localhost", 200), ("localhost:8080", 200), ("127.0.0.1:8080", 200),
    ("192.168.1.20:8080", 200), ("[::1]:8080", 200), ("[fe80::1]", 200),
    ("edge-0042.store.lan", 200), ("EDGE-0042.store.lan.", 200), (socket.gethostname(), 200),
])
def test_only_the_box_s_own_names_are_answered(site, db_path, host, status):
    """Field report (issue 18): any Host was accepted, so a page on another site could
    rebind its name to the box's address and read the status page."""
    with make(site, db_path, access="open-lan", allowed_hosts=["edge-0042.store.lan"]) as web:
        for path in ("/api/v1/summary", "/healthz"):
            response = web.get(path, headers={"Host": host})
            assert response.status_code == status, (path, response.text)
        if status == 421:
            assert "web.allowed_hosts" in response.json()["detail"]


def test_allowed_hosts_take_names_only():
    with pytest.raises(ConfigError, match="'https://edge.lan' is not a host name"):
        parse_site("site: {id: s}\nfloor: {bounds: [[0, 0], [1, 1]]}\n"
                   "web: {access: open-lan, allowed_hosts: ['https://edge.lan']}\n")


def test_metrics_access(site, db_path):
    with make(site, db_path, metrics_token=METRICS_TOKEN) as web:
        assert web.get("/metrics").status_code == 401
        assert web.get("/metrics", headers={"Authorization": "Bearer x" * 3}).status_code == 403
        for token in (METRICS_TOKEN, TOKEN):
            response = web.get("/metrics", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200 and "edge_database_readable 1.0" in response.text
        # The metrics token reads metrics only.
        assert web.get("/api/v1/summary",
                       headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).status_code == 403
    with make(site, db_path, access="open-lan") as web:
        assert web.get("/metrics").status_code == 200
        assert web.get("/").status_code == 200 and web.get("/login").status_code == 303


def test_oversized_and_malformed_requests(site, db_path):
    with make(site, db_path, max_request_bytes=1024) as web:
        big = web.post("/login", content=b"pin=" + b"1" * 5000,
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert big.status_code == 413 and big.json() == {"detail": "The request is too large."}

        def chunks():
            for _ in range(10):
                yield b"x" * 500

        streamed = web.post("/login", content=chunks(),
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert streamed.status_code == 413
        json_body = web.post("/login", json={"pin": PIN})
        assert json_body.status_code == 415 and "x-www-form-urlencoded" in json_body.text
        binary = web.post("/login", content=b"\xff\xfe\x00pin",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert binary.status_code == 400 and "could not be read" in binary.text
        bad_length = web.post("/login", content=b"", headers={"Content-Length": "abc"})
        assert bad_length.status_code == 400
        many = web.post("/login", content="&".join(f"f{i}=1" for i in range(50)).encode(),
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert many.status_code == 400
        for response in (big, streamed, json_body, binary, many):
            assert "Traceback" not in response.text
        assert web.get("/healthz").json() == {"status": "ok"}


def test_security_headers(site, db_path):
    with make(site, db_path) as web:
        response = web.get("/login")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"


SITE_YAML = """
site: {id: test-store, timezone: Europe/London}
floor: {bounds: [[0, 0], [10, 10]]}
web:
  pin: ${EDGE_WEB_PIN}
  admin_token: "%s"
"""


def test_secrets_from_environment_and_hashes(site, db_path, monkeypatch):
    hashed = CliRunner().invoke(cli, ["web", "hash-secret", "--stdin"], input=TOKEN + "\n")
    assert hashed.exit_code == 0 and hashed.output.startswith("pbkdf2_sha256$")
    monkeypatch.setenv("EDGE_WEB_PIN", PIN)
    parsed = parse_site(SITE_YAML % hashed.output.strip())
    assert parsed.web.pin.get_secret_value() == PIN
    assert TOKEN not in repr(parsed) and PIN not in repr(parsed)
    app = create_app(WebDeps(site=parsed, db_path=db_path))
    with TestClient(app, follow_redirects=False, base_url=BASE_URL) as web:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert web.get("/admin/debug", headers=auth).status_code == 200
        assert sign_in(web).status_code == 303


@pytest.mark.parametrize(
    "web, message",
    [
        ("pin: '12ab'", "web.pin: the PIN must be 4 to 12 digits"),
        ("admin_token: short", "a token needs at least 16 characters (got 5)"),
        ("access: everyone", "web.access: Input should be 'pin' or 'open-lan'"),
        ("port: 70000", "web.port"),
        ("pin: ${NOT_SET_ANYWHERE}", "and no environment variable NOT_SET_ANYWHERE"),
    ],
)
def test_bad_web_config_is_a_clear_error(web, message):
    text = "site: {id: s}\nfloor: {bounds: [[0, 0], [1, 1]]}\nweb:\n  " + web + "\n"
    with pytest.raises(ConfigError) as error:
        parse_site(text, source="site.yaml")
    assert message in str(error.value)
