"""A full run of the box on the shared recordings, leaving everything behind for the
leak audit (``tests/test_privacy_audit.py``).

Real parts throughout: ``edge -v replay`` of the PETS video with the real detector,
``edge -v wifi replay`` of every shared capture into the same database, ``edge -v
visits build``, the sync service publishing to a real mosquitto (with a signed
downlink raising k), a subscriber on ``#`` keeping every payload, and every page and
API endpoint of the status page. The CLI steps run as processes at DEBUG level with
their output kept; in-process logs are kept at DEBUG too.

Layout under the run folder: ``state/`` (EDGE_STATE_DIR: the database, its WAL,
downlinked files), ``logs/``, ``mqtt/`` (one file per payload, ``topics.json``),
``web/`` (one file per response), ``broker/`` (mosquitto's own files), ``site.yaml``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import paho.mqtt.client as paho
import yaml

from edge.config import load_site
from tests.conftest import PETS_SITE, SHARED
from tests.support.mqtt_broker import Broker
from tests.support.session import session_lock
from tests.support.waiting import wait_for
from tests.test_wifi_brno import lab_pcs

CAPTURES = sorted((SHARED / "wifi").glob("*/*.pcap*"))
MAX_FRAMES = 150
PRAGUE = ZoneInfo("Europe/Prague")
START = dt.datetime(2024, 3, 15, 10, 0, tzinfo=PRAGUE)   # the day of the Brno captures
CLOCK = (START + dt.timedelta(hours=15)).timestamp()     # the sync service's "now"
PREFIX = "privacy-audit"
DOWNLINK_KEY = "d" * 40
ADMIN_TOKEN = "admin-token-for-the-privacy-audit-0001"
METRICS_TOKEN = "metrics-token-for-the-privacy-audit-01"
RAISED_K = 6


def write_site(path: Path, port: int) -> Path:
    """The demo site, with Wi-Fi (the lab's own PCs excluded), sync to the test broker,
    IT tokens, and a smaller detector input (the real detector, faster)."""
    site = yaml.safe_load(PETS_SITE.read_text())
    site["site"]["timezone"] = "Europe/Prague"
    site["detector"]["input_size"] = [288, 384]
    site["wifi"] = {"rssi_gate_dbm": -70, "exclude_addresses": lab_pcs()}
    site["sync"] = {
        "window_s": 3600, "settle_s": 0, "poll_s": 0.2, "stats_interval_s": 1,
        "homeassistant_discovery": True, "downlink_key": DOWNLINK_KEY,
        "downlink_max_age_s": 600,
        "mqtt": {"host": "127.0.0.1", "port": port, "topic_prefix": PREFIX,
                 "reconnect_min_s": 1, "reconnect_max_s": 2},
    }
    site["web"] = {"access": "open-lan", "admin_token": ADMIN_TOKEN,
                   "metrics_token": METRICS_TOKEN}
    path.write_text(yaml.safe_dump(site, sort_keys=False))
    return path


class Capture:
    """A subscriber on ``#``: every payload the broker carries, retained ones included."""

    def __init__(self, port: int) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.subscribed = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload))
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe("#", 1)
        if not self.subscribed.wait(10):
            raise RuntimeError("the capture subscriber was not subscribed within 10 s")

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        topics = {}
        for index, (topic, payload) in enumerate(self.messages):
            name = f"{index:05d}.payload"
            (folder / name).write_bytes(payload)
            topics[name] = topic
        (folder / "topics.json").write_text(json.dumps(topics, indent=1))


def edge(args: list[str], log: Path, env: dict[str, str], cwd: Path) -> None:
    """``python -m edge -v ARGS``, stdout and stderr kept in ``log``; must succeed."""
    result = subprocess.run([sys.executable, "-m", "edge", "-v", *args], capture_output=True,
                            env=env, cwd=cwd, timeout=300)
    log.write_bytes(b"$ edge -v " + " ".join(args).encode() + b"\n" + result.stdout
                    + b"\n--- stderr ---\n" + result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"edge {' '.join(args)} failed ({result.returncode}): "
                           f"{result.stderr.decode(errors='replace')[-2000:]}")


@contextlib.contextmanager
def debug_logs(path: Path):
    """Every in-process log record at DEBUG into ``path``."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        path.write_text(buffer.getvalue())


def _count(db_path: Path, sql: str) -> int:
    import sqlite3

    with contextlib.closing(sqlite3.connect(db_path, timeout=10)) as connection:
        return connection.execute(sql).fetchone()[0]


def run_sync(site_path: Path, db_path: Path, capture: Capture) -> dict:
    """The sync service (as ``edge run sync`` runs it, on a thread that owns its database
    connection) until the outbox is empty, then a signed downlink raising k, and the
    new state published."""
    from edge.privacy.settings import record_service_start
    from edge.runtime.schema import open_database
    from sync.downlink import config_body, sign_body
    from sync.publisher import SyncService

    site = load_site(site_path)
    stop = threading.Event()
    services: list[SyncService] = []

    def serve() -> None:
        db = open_database(db_path)
        record_service_start(db, site, "service:sync", now=CLOCK)
        services.append(SyncService(site, db, clock=lambda: CLOCK))
        services[0].run(stop)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    pending = "select count(*) from sync_outbox where status = 'pending'"
    delivered = "select count(*) from sync_outbox where status = 'delivered'"
    try:
        wait_for(lambda: services and services[0].client.connected.is_set(), 15,
                 "the broker connection")
        wait_for(lambda: _count(db_path, delivered) > 0 and _count(db_path, pending) == 0,
                 90, "every aggregate delivered")
        body = config_body(site.site.id, {"min_publishable_count": RAISED_K}, issued_at=CLOCK)
        capture.publish(f"{PREFIX}/{site.site.id}/config/set", sign_body(body, DOWNLINK_KEY))
        wait_for(lambda: services[0].last_downlink is not None, 15, "the downlink applied")
        time.sleep(1.0)     # the new config state goes out
    finally:
        stop.set()
        thread.join(15)
    downlink = services[0].last_downlink if services else None
    return {"delivered": _count(db_path, delivered),
            "refused": _count(db_path, "select count(*) from sync_outbox where status = 'refused'"),
            "downlink": downlink.status if downlink else None}


def render_web(site_path: Path, db_path: Path, folder: Path) -> dict[str, int]:
    """Every GET page and endpoint of the status page, saved; returns path -> status."""
    from fastapi.testclient import TestClient

    from edge.web.app import create_app
    from edge.web.dashboard import WebDeps
    from tests.support.web_support import BASE_URL

    folder.mkdir(parents=True, exist_ok=True)
    app = create_app(WebDeps(site=load_site(site_path), db_path=db_path, clock=lambda: CLOCK))
    day = START.date().isoformat()
    statuses = {}
    with TestClient(app, base_url=BASE_URL) as client:
        schema = client.get("/api/openapi.json").json()
        paths = sorted(path for path, methods in schema["paths"].items()
                       if "get" in methods and "{" not in path)
        # The pages are not in the API schema.
        paths += ["/", "/partials/dashboard", "/login", "/static/app.js", "/static/style.css"]
        for path in paths:
            for query in ("", f"?day={day}"):
                token = METRICS_TOKEN if path == "/metrics" else ADMIN_TOKEN
                response = client.get(path + query, headers={"Authorization": f"Bearer {token}"},
                                      follow_redirects=True)
                statuses[path + query] = response.status_code
                name = (path + query).strip("/").replace("/", "_").replace("?", "_") or "index"
                (folder / f"{name}.body").write_bytes(response.content)
    return statuses


def full_run(root: Path) -> dict:
    """Run everything; returns figures about what ran (also saved as ``run.json``)."""
    state, logs = root / "state", root / "logs"
    logs.mkdir(parents=True)
    broker = Broker(root / "broker").start()
    site_path = write_site(root / "site.yaml", broker.port)
    db_path = state / "edge.db"
    env = {**os.environ, "EDGE_STATE_DIR": str(state), "PYTHONUNBUFFERED": "1"}
    for variable in ("INVOCATION_ID", "NOTIFY_SOCKET", "EDGE_SERVICE"):
        env.pop(variable, None)
    before = os.environ.get("EDGE_STATE_DIR")
    os.environ["EDGE_STATE_DIR"] = str(state)
    capture = Capture(broker.port)
    try:
        edge(["replay", "--site", str(site_path), "--db", str(db_path), "--max-frames",
              str(MAX_FRAMES), "--start-time", START.isoformat(), "--quiet"],
             logs / "replay.log", env, root)
        for index, path in enumerate(CAPTURES):
            edge(["wifi", "replay", str(path), "--site", str(site_path), "--db", str(db_path),
                  "--json"], logs / f"wifi-{index:02d}.log", env, root)
        edge(["visits", "build", "--site", str(site_path), "--db", str(db_path)],
             logs / "visits.log", env, root)
        with debug_logs(logs / "in-process.log"):
            sync = run_sync(site_path, db_path, capture)
            pages = render_web(site_path, db_path, root / "web")
        edge(["privacy", "audit-log", "--site", str(site_path), "--db", str(db_path)],
             logs / "audit-log.log", env, root)
    finally:
        capture.close()
        broker.stop()
        if before is None:
            os.environ.pop("EDGE_STATE_DIR", None)
        else:
            os.environ["EDGE_STATE_DIR"] = before
    capture.save(root / "mqtt")
    figures = {"sync": sync, "pages": pages, "messages": len(capture.messages),
               "topics": sorted({topic.split("/", 2)[-1] for topic, _ in capture.messages})}
    (root / "run.json").write_text(json.dumps(figures, indent=1))
    return figures


def shared_full_run(tmp_path_factory) -> Path:
    """The run folder, made once per test session and shared by xdist workers."""
    with session_lock(tmp_path_factory, "privacy-run") as root:
        folder = root / "privacy-run"
        if not (folder / "run.json").exists():
            if folder.exists():
                raise RuntimeError(f"an earlier full run failed half-way: see {folder}")
            full_run(folder)
    return folder


def audit_run(audit, root: Path) -> None:
    """Search everything the run left: the state directory (database raw and value by
    value, WAL, downlinked files), logs, every MQTT payload (bytes and JSON shape),
    every page and API response, and the broker's own files."""
    audit.tree(root / "state")
    for path in sorted((root / "logs").iterdir()):
        audit.file(path, f"logs/{path.name}")
    topics = json.loads((root / "mqtt" / "topics.json").read_text())
    for name, topic in topics.items():
        audit.message(f"mqtt {topic} ({name})", (root / "mqtt" / name).read_bytes())
    for path in sorted((root / "web").iterdir()):
        audit.message(f"web {path.name}", path.read_bytes())
    audit.tree(root / "broker")
