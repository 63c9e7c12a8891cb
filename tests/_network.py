"""Loopback infrastructure of a corporate network: a private CA, a forward proxy, a slow server."""

from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

if TYPE_CHECKING:
    from pathlib import Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, key_cert_sign=ca, crl_sign=ca, content_commitment=False,
        key_encipherment=False, data_encipherment=False, key_agreement=False,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip


class PrivateCA:
    """A CA of our own, with every extension Python 3.13's strict verification wants."""

    def __init__(self, folder: Path, name: str = "test-private-ca") -> None:
        self.folder = folder
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        public = self.key.public_key()
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.path = folder / f"{name}.pem"
        self.path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, name: str, *, server: bool) -> tuple[Path, Path]:
        """A certificate for 127.0.0.1 and localhost (server) or a client: PEM and key paths."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        ca_ski = self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
                ),
                critical=False,
            )
        cert = builder.sign(self.key, hashes.SHA256())
        cert_path, key_path = self.folder / f"{name}.pem", self.folder / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert_path, key_path


class ForwardProxy:
    """An HTTP forward proxy on 127.0.0.1 that logs what passes: absolute-form and CONNECT."""

    def __init__(self) -> None:  # noqa: C901 - the handler class is defined inline
        self.seen: list[tuple[str, str]] = []  # (method, target)
        self._lock = threading.Lock()
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _record(self) -> None:
                with outer._lock:
                    outer.seen.append((self.command, self.path))

            def _forward(self) -> None:
                self._record()
                target = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() != "proxy-connection"}
                upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
                try:
                    path = target.path + (f"?{target.query}" if target.query else "")
                    upstream.request(self.command, path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                finally:
                    upstream.close()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in {"transfer-encoding", "connection", "content-length"}:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_CONNECT(self) -> None:
                self._record()
                host, _, port = self.path.rpartition(":")
                upstream = socket.create_connection((host, int(port)), timeout=10)
                self.send_response(200, "Connection established")
                self.end_headers()
                self.close_connection = True
                sockets = [self.connection, upstream]
                try:
                    for _ in range(100_000):  # bounded: a test tunnel carries a few requests
                        readable, _, _ = select.select(sockets, [], [], 5)
                        if not readable:
                            return
                        for source in readable:
                            data = source.recv(65536)
                            if not data:
                                return
                            (upstream if source is self.connection else self.connection).sendall(
                                data
                            )
                finally:
                    upstream.close()

            do_GET = do_POST = _forward  # noqa: N815

        class _Server(ThreadingHTTPServer):
            daemon_threads = True

        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> ForwardProxy:  # noqa: PYI034 - a test helper, never subclassed
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)

    def count(self, method: str, contains: str) -> int:
        with self._lock:
            return sum(1 for m, target in self.seen if m == method and contains in target)


class TricklingServer:
    """Accepts, reads the request, then sends one byte every 0.2 s until the client leaves.

    ``phase`` is where it trickles: ``"headers"`` (a header line that never
    ends), ``"body"`` (a body that never completes) or ``"reused"`` (a quick
    503 first, then the headers of the next request on the same connection).
    """

    def __init__(self, phase: str) -> None:
        self.phase = phase
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.open = 0
        self.accepted = 0
        self.reused = 0  # "reused": requests that came on a connection kept alive
        self._waiting_for_a_retry = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> TricklingServer:  # noqa: PYI034 - a test helper
        thread = threading.Thread(target=self._accept, name="trickle-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        self.listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            with self._lock:
                self.open += 1
                self.accepted += 1
            thread = threading.Thread(
                target=self._trickle, args=(conn,), name="trickle-conn", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _trickle(self, conn: socket.socket) -> None:
        start = b"HTTP/1.1 200 OK\r\nX-Slow: "
        if self.phase == "body":
            start = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n{"
        try:
            _read_request(conn)
            if self.phase == "reused":
                with self._lock:
                    # A retry that came on a new connection (the client did not
                    # reuse the kept-alive one): trickle on it at once.
                    quick = self._waiting_for_a_retry == 0
                    self._waiting_for_a_retry += quick
                if quick:
                    # A quick 503 on a connection kept alive; the retry comes on it.
                    conn.sendall(b"HTTP/1.1 503 Busy\r\nContent-Length: 2\r\n\r\n{}")
                    try:
                        retried_here = _read_request(conn)
                    finally:
                        with self._lock:
                            self._waiting_for_a_retry -= 1
                    if not retried_here:
                        return  # the client closed it, or sent its retry elsewhere
                    with self._lock:
                        self.reused += 1
            conn.sendall(start)
            for _ in range(300):  # bounded: 60 s at most
                if self._stop.is_set():
                    return
                readable, _, _ = select.select([conn], [], [], 0.2)
                if readable and not conn.recv(65536):
                    return  # the client closed
                conn.sendall(b"a")
        except OSError:
            return
        finally:
            conn.close()
            with self._lock:
                self.open -= 1

    def wait_all_closed(self, within: float) -> int:
        give_up_at = time.monotonic() + within
        while time.monotonic() < give_up_at and self.open:
            time.sleep(0.02)
        return self.open


def _read_request(conn: socket.socket) -> bool:
    """Read one whole request (headers, then a Content-Length body), within 5 s; False if none came."""
    conn.settimeout(5)
    data = b""
    for _ in range(1000):  # bounded: a token request is a few hundred bytes
        if b"\r\n\r\n" in data:
            break
        chunk = conn.recv(65536)
        if not chunk:
            return False
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    for _ in range(1000):
        if len(body) >= length:
            break
        chunk = conn.recv(65536)
        if not chunk:
            return False
        body += chunk
    conn.settimeout(None)
    return True


def threads_alive() -> set[int | None]:
    """The threads alive now that are not a test server's."""
    servers = ("trickle-", "fake-clarify")
    return {
        t.ident
        for t in threading.enumerate()
        if not t.name.startswith(servers) and "process_request_thread" not in t.name
    }
