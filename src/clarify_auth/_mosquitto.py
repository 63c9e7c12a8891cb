"""A local mosquitto with TLS and a password, for testing MQTT code without Clarify's broker.

Behind the ``mosquitto_broker`` pytest fixture. The broker listens on
127.0.0.1 only, with a server certificate from a CA made for it (so clients
verify TLS exactly as against Clarify's broker) and one user, whose password
is the basic-auth secret of the credentials it hands out.

``cryptography`` (in the ``test`` extra, not a runtime dependency) is imported
only when a broker starts.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from clarify_auth._errors import ClarifyAuthError
from clarify_auth.credentials.model import Credentials

_START_TIMEOUT_S = 15.0  # mosquitto listens within a second; a loaded CI machine gets slack
_STOP_TIMEOUT_S = 10.0
_FALLBACK_FOLDERS = ("/usr/sbin", "/usr/bin")  # Debian's, when they are not on PATH


class BrokerUnavailableError(ClarifyAuthError):
    """mosquitto or cryptography is not installed here: the fixture skips with this message."""


@dataclass(frozen=True)
class MosquittoBroker:
    """A running local mosquitto: where it listens, the CA to trust, and the login.

    Example::

        def test_publish(mosquitto_broker):
            client = clarify_auth.mqtt.connect(
                mosquitto_broker.credentials(),
                host=mosquitto_broker.host,
                port=mosquitto_broker.port,
                ca_certs=mosquitto_broker.ca_certs,
            )
    """

    host: str
    port: int
    ca_certs: Path  # the CA that signed the broker's certificate
    username: str
    password: str = field(repr=False)

    def credentials(self) -> Credentials:
        """``basic-auth`` credentials that log in to this broker."""
        return Credentials.from_dict(
            {
                "integration": self.username,
                "credentials": {
                    "type": "basic-auth",
                    "clientId": self.username,
                    "clientSecret": self.password,
                },
            }
        )

    def write_credentials(self, path: str | os.PathLike[str]) -> Path:
        """Write a ``basic-auth`` credentials file for this broker (mode 0600); return its path."""
        target = Path(path)
        creds = self.credentials()
        document = creds.model_dump(mode="json", by_alias=True)
        document["credentials"]["clientSecret"] = self.password
        target.touch(mode=0o600)
        target.write_text(_json_dumps(document), encoding="utf-8")
        return target


def _json_dumps(document: dict[str, Any]) -> str:
    import json  # noqa: PLC0415 - only when a file is written

    return json.dumps(document, indent=2) + "\n"


def find_mosquitto() -> tuple[str, str]:
    """The paths of ``mosquitto`` and ``mosquitto_passwd``, or BrokerUnavailableError."""
    found = []
    for name in ("mosquitto", "mosquitto_passwd"):
        path = shutil.which(name) or next(
            (f"{d}/{name}" for d in _FALLBACK_FOLDERS if Path(f"{d}/{name}").is_file()),
            None,
        )
        if path is None:
            raise BrokerUnavailableError(
                f"{name} is not installed: apt-get install mosquitto (or brew install mosquitto)"
            )
        found.append(path)
    return found[0], found[1]


def _write_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 and localhost: CA, cert and key paths."""
    try:
        from cryptography import x509  # noqa: PLC0415 - not a runtime dependency
        from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: PLC0415
    except ImportError as exc:
        raise BrokerUnavailableError(
            "cryptography is not installed (it makes the broker's CA): pip install cryptography"
        ) from exc

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    def usage(*, ca: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=True, key_cert_sign=ca, crl_sign=ca, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False,
        )  # fmt: skip

    # Python 3.13 verifies with VERIFY_X509_STRICT: key identifiers and critical
    # constraints as RFC 5280 asks.
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("clarify-auth local test CA"))
        .issuer_name(name("clarify-auth local test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(ca=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_path, cert_path, key_path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RunningMosquitto:
    """A mosquitto process started in ``folder``; :meth:`stop` ends it."""

    def __init__(self, folder: Path, *, username: str = "test-integration") -> None:
        """Start mosquitto on a free loopback port and wait (bounded) until it listens."""
        mosquitto, mosquitto_passwd = find_mosquitto()
        ca_path, cert, key = _write_certificates(folder)
        password = secrets.token_urlsafe(18)
        passwords = folder / "passwd"
        passwords.touch(mode=0o600)
        subprocess.run(  # noqa: S603 - a fixed program and arguments
            [mosquitto_passwd, "-b", str(passwords), username, password],
            check=True,
            capture_output=True,
            timeout=30,
        )
        port = _free_port()
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
        if hasattr(os, "geteuid") and os.geteuid() == 0:  # pragma: no cover - root in CI only
            lines.append("user root")  # else it drops to 'mosquitto', who cannot read folder
        config = folder / "mosquitto.conf"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.log = folder / "mosquitto.log"
        self._log: IO[bytes] = self.log.open("wb")
        self._process = subprocess.Popen(  # noqa: S603 - a fixed program and arguments
            [mosquitto, "-c", str(config)], stdout=self._log, stderr=subprocess.STDOUT
        )
        self.broker = MosquittoBroker("127.0.0.1", port, ca_path, username, password)
        self._wait_until_listening()

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:  # pragma: no cover - a broken install
                self._log.close()
                msg = f"mosquitto exited: {self.log.read_text(errors='replace')}"
                raise ClarifyAuthError(msg)
            try:
                socket.create_connection((self.broker.host, self.broker.port), timeout=0.5).close()
            except OSError:
                time.sleep(0.05)
            else:
                return
        self.stop()  # pragma: no cover - mosquitto listens within a second
        msg = f"mosquitto did not listen within {_START_TIMEOUT_S:.0f} s"  # pragma: no cover
        raise ClarifyAuthError(msg)  # pragma: no cover

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after 10 s) and close its log."""
        self._process.terminate()
        try:
            self._process.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:  # pragma: no cover - mosquitto stops on SIGTERM
            self._process.kill()
            self._process.wait(timeout=_STOP_TIMEOUT_S)
        self._log.close()
