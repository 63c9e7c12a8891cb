"""A real mosquitto on 127.0.0.1 with TLS (a CA and server certificate made here) and a password file."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from _network import PrivateCA

USER = "test-integration"
PASSWORD = "test-secret-mqtt-password"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Broker:
    port: int
    ca: Path  # the CA that signed the broker's certificate
    other_ca: Path  # a CA that did not
    process: subprocess.Popen[bytes]
    log: Path
    log_handle: object

    def stop(self) -> None:
        self.log_handle.close()  # type: ignore[attr-defined]
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - mosquitto stops on SIGTERM
            self.process.kill()


def start_broker(folder: Path) -> Broker:
    """Start mosquitto with a TLS listener and a password file; wait until it listens."""
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    # Python 3.13 verifies with VERIFY_X509_STRICT: PrivateCA's certificates carry
    # the key identifiers and critical constraints that RFC 5280 asks for.
    ca = PrivateCA(folder, "test-ca")
    ca_path, other_ca = ca.path, PrivateCA(folder, "other-ca").path
    cert, key = ca.issue("server", server=True)
    key.chmod(0o600)
    passwords = folder / "passwd"
    passwords.write_text("")
    passwords.chmod(0o600)
    subprocess.run(
        ["mosquitto_passwd", "-b", str(passwords), USER, PASSWORD],
        check=True,
        capture_output=True,
        timeout=30,
    )
    port = free_port()
    config = folder / "mosquitto.conf"
    lines = [
        f"listener {port} 127.0.0.1",
        f"cafile {ca_path}",
        f"certfile {cert}",
        f"keyfile {key}",
        "allow_anonymous false",
        f"password_file {passwords}",
        "persistence false",
        "log_dest stderr",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        lines.append("user root")  # else it drops to 'mosquitto', who cannot read tmp_path
    config.write_text("\n".join(lines) + "\n")
    log = folder / "mosquitto.log"
    log_handle = log.open("wb")
    process = subprocess.Popen(
        [mosquitto, "-c", str(config)], stdout=log_handle, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log_handle.close()
            raise RuntimeError(f"mosquitto exited: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return Broker(port, ca_path, other_ca, process, log, log_handle)
        except OSError:
            time.sleep(0.05)
    process.kill()
    log_handle.close()
    raise RuntimeError(f"mosquitto did not listen within 15 s: {log.read_text()}")
