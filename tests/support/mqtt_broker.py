"""A real mosquitto broker for tests: own config file, free loopback port, stop/restart.

Never the system broker on 1883: each test gets its own process and folder, with
persistence on (so a persistent consumer session survives a broker restart, as it
would in production), and optional password file, ACL and TLS listener.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.net import free_port
from tests.support.waiting import terminate

MOSQUITTO = Path("/usr/sbin/mosquitto")
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Broker:
    """One mosquitto process on ``127.0.0.1:port``, configured by the test.

    Args:
        folder: where its config, persistence file and log go.
        users: user -> password (written with mosquitto_passwd); None = anonymous allowed.
        acl: text of an ACL file, or None.
        tls: (ca, cert, key) paths for a TLS listener requiring client certificates.
    """

    def __init__(
        self,
        folder: Path,
        *,
        users: dict[str, str] | None = None,
        acl: str | None = None,
        tls: tuple[Path, Path, Path] | None = None,
    ) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log = folder / "mosquitto.log"
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'false' if users else 'true'}",
            "persistence true",
            f"persistence_location {folder}/",
            f"log_dest file {self.log}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "log_type subscribe",
            "max_queued_messages 10000",
        ]
        if getpass.getuser() == "root":
            lines.append(
                "user root"
            )  # otherwise mosquitto drops to 'mosquitto' and cannot write here
        if users:
            password_file = folder / "passwords"
            password_file.write_text("")
            for user, password in users.items():
                subprocess.run(
                    [MOSQUITTO_PASSWD, "-b", str(password_file), user, password],
                    check=True,
                    capture_output=True,
                )
            lines.append(f"password_file {password_file}")
        if acl is not None:
            (folder / "acl").write_text(acl)
            lines.append(f"acl_file {folder / 'acl'}")
        if tls is not None:
            ca, cert, key = tls
            lines += [
                f"cafile {ca}",
                f"certfile {cert}",
                f"keyfile {key}",
                "require_certificate true",
            ]
        self.config = folder / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 10.0) -> Broker:
        self.process = subprocess.Popen(
            [str(MOSQUITTO), "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout_s
        while not _port_open(self.port):
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"mosquitto exited: {self.process.stderr.read().decode()} "
                    f"{self.log.read_text() if self.log.exists() else ''}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not listen on {self.port} in {timeout_s} s")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Stop cleanly (SIGTERM: mosquitto saves its persistence file)."""
        if self.process is not None:
            terminate(self.process, 10)
        self.process = None

    def restart(self) -> Broker:
        self.stop()
        return self.start()

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


@pytest.fixture(name="broker")
def broker_fixture(tmp_path: Path):
    """A running anonymous broker; stopped after the test."""
    instance = Broker(tmp_path / "broker").start()
    yield instance
    instance.stop()


@pytest.fixture(name="tls_broker")
def tls_broker_fixture(tmp_path: Path):
    """A running broker on a TLS listener, with its certificates (:func:`make_tls_files`,
    under ``tmp_path / "tls"``): ``(broker, files)``; stopped after the test."""
    files = make_tls_files(tmp_path / "tls")
    instance = Broker(
        tmp_path / "broker", tls=(files["ca"], files["server"], files["server_key"])
    ).start()
    yield instance, files
    instance.stop()


def make_tls_files(folder: Path) -> dict[str, Path]:
    """A throw-away CA, a broker certificate for 127.0.0.1/localhost and a client certificate."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        name: folder / f"{name}.pem"
        for name in ("ca", "ca_key", "server", "server_key", "client", "client_key")
    }

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    run(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        str(paths["ca_key"]),
        "-out",
        str(paths["ca"]),
    )
    extensions = folder / "san.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, subject in (("server", "/CN=localhost"), ("client", "/CN=store-client")):
        csr = folder / f"{name}.csr"
        run(
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            subject,
            "-keyout",
            str(paths[f"{name}_key"]),
            "-out",
            str(csr),
        )
        run(
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(paths["ca"]),
            "-CAkey",
            str(paths["ca_key"]),
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            str(paths[name]),
            *(["-extfile", str(extensions)] if name == "server" else []),
        )
    os.chmod(paths["server_key"], 0o644)
    return paths
