"""A real redis-server on 127.0.0.1, started by the tests: plain, with a password, or TLS.

No persistence. Faults are real: SIGSTOP/SIGCONT (frozen), kill, restart on the
same port. CI sets CLARIFY_AUTH_REQUIRE_REDIS so that a missing server fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from _network import PrivateCA

PASSWORD = "test-secret-redis-password"
#: What the README says an ACL user of the store needs.
ACL_COMMANDS = (
    "evalsha", "eval", "script|load", "set", "get", "getrange", "strlen", "type", "pttl",
    "pexpire", "del", "ping",
)  # fmt: skip
SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def require_redis_server() -> None:
    """Skip (or fail in CI) when there is no redis-server to start."""
    if Path(SERVER).exists():
        return
    if os.environ.get("CLARIFY_AUTH_REQUIRE_REDIS"):
        pytest.fail("redis-server is not installed, and CLARIFY_AUTH_REQUIRE_REDIS is set")
    pytest.skip("redis-server is not installed (apt-get install redis-server)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """One redis-server process; ``url`` reaches it (with the password and CA when set)."""

    def __init__(
        self,
        folder: Path,
        *,
        password: str | None = None,
        tls: bool = False,
        acl: bool = False,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.folder = folder
        self.extra = extra
        self.port = free_port()
        self.password = password
        self.tls = tls
        self.acl = acl
        self.ca: Path | None = None
        self._cert: tuple[Path, Path] | None = None
        if tls:
            ca = PrivateCA(folder, "redis-test-ca")
            self.ca = ca.path
            self._cert = ca.issue("redis-server", server=True)
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        auth = ""
        if self.acl:
            auth = f"fleet:{PASSWORD}@"
        elif self.password:
            auth = f":{self.password}@"
        query = f"?ssl_ca_certs={self.ca}" if self.tls else ""
        return f"{scheme}://{auth}127.0.0.1:{self.port}/0{query}"

    def arguments(self) -> list[str]:
        args = [SERVER, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        args += ["--dir", str(self.folder), "--protected-mode", "no", "--loglevel", "warning"]
        if self.tls:
            assert self._cert is not None
            cert, key = self._cert
            args += ["--port", "0", "--tls-port", str(self.port)]
            args += ["--tls-cert-file", str(cert), "--tls-key-file", str(key)]
            args += ["--tls-ca-cert-file", str(self.ca), "--tls-auth-clients", "no"]
        else:
            args += ["--port", str(self.port)]
        if self.password:
            args += ["--requirepass", self.password]
        if self.acl:
            # A user that may run what the store needs (README), on its own keys only.
            commands = [f"+{name}" for name in ACL_COMMANDS]
            args += ["--user", "fleet", "on", f">{PASSWORD}", "~clarify-auth:*", *commands]
            args += ["--user", "default", "off"]
        return [*args, *self.extra]

    def start(self) -> None:
        """Start (or restart) on the same port; wait until it answers PING."""
        self.process = subprocess.Popen(
            self.arguments(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            try:
                self.client().ping()
            except Exception:
                time.sleep(0.02)
            else:
                return
        raise RuntimeError("redis-server did not start within 15 s")

    def client(self):
        """A redis-py client for the test's own look at the server (short timeouts)."""
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)

    def freeze(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL and wait: the port closes, connections reset."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.thaw()
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
