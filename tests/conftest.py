"""Fixtures shared by the test modules: a fake clock, credentials, a loopback server."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import clarify_auth
from _loopback import LoopbackServer, Reply

pytest_plugins = ["pytester", "clarify_auth.pytest_plugin"]

SECRET = "test-secret-0123456789abcdef"
BASIC_PASSWORD = "test-secret-basic-password"
TOKEN_URL = "https://api.clarify.io/v1/oauth/token"
API_URL = "https://api.clarify.io/v1/"


class FakeClock:
    """A monotonic clock that moves only when told to; sleep() moves it too."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __reduce__(self):
        return (FakeClock, (self.now,))

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


SRC = str(Path(__file__).resolve().parent.parent / "src")


def run_bare_python(code: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code`` with this checkout's src and nothing else in its environment."""
    return subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": SRC},
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
    )


@pytest.fixture(autouse=True)
def isolated_tokens(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    """Each test starts with an empty token store and no Clarify variables from the environment."""
    from clarify_auth.testing import forget_shared_tokens

    for variable in ("CLARIFY_TOKEN_CACHE", "CLARIFY_CREDENTIALS", "CLARIFY_CREDENTIALS_JSON"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    forget_shared_tokens()
    yield
    forget_shared_tokens()


@pytest.fixture
def fake():
    """A started FakeClarify for one test."""
    from clarify_auth.testing import FakeClarify

    with FakeClarify() as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def oauth_dict(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "apiUrl": API_URL,
        "integration": "test-integration",
        "credentials": {
            "type": "client-credentials",
            "clientId": "test-client",
            "clientSecret": SECRET,
        },
    }
    data.update(overrides)
    return data


def basic_dict(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "apiUrl": API_URL,
        "integration": "test-integration",
        "credentials": {
            "type": "basic-auth",
            "clientId": "test-integration",
            "clientSecret": BASIC_PASSWORD,
        },
    }
    data.update(overrides)
    return data


@pytest.fixture
def oauth_creds() -> clarify_auth.Credentials:
    return clarify_auth.Credentials.from_dict(oauth_dict())


@pytest.fixture
def basic_creds() -> clarify_auth.Credentials:
    return clarify_auth.Credentials.from_dict(basic_dict())


@pytest.fixture
def write_json(tmp_path: Path):
    def write(data: Any, name: str = "clarify-credentials.json") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(data), encoding="utf-8")
        return path

    return write


def make_oauth(
    clock: FakeClock | None = None, **options: Any
) -> clarify_auth.OAuthClientCredentials:
    options.setdefault("token_url", TOKEN_URL)
    options.setdefault("audience", API_URL)
    if clock is not None:
        options.setdefault("clock", clock)
        options.setdefault("sleep", clock.sleep)
    return clarify_auth.OAuthClientCredentials("test-client", SECRET, **options)


def token_body(n: int = 1, expires_in: Any = 3600, **extra: Any) -> dict[str, Any]:
    body = {"access_token": f"test-token-{n}", "token_type": "Bearer", "expires_in": expires_in}
    body.update(extra)
    return body


class ClarifyServer(LoopbackServer):
    """A loopback server with Clarify's token and RPC routes and counters."""

    def __init__(self) -> None:
        super().__init__()
        self.api_url = self.url + "/v1/"
        self.issued = 0
        self.token_delay = 0.0
        self.token_replies: list[Reply] = []  # served first, one per request
        self.expires_in: float = 3600
        self.valid_tokens: set[str] = set()
        self._token_lock = threading.Lock()
        self.routes["POST /v1/oauth/token"] = self._token
        self.routes["POST /v1/rpc"] = self._rpc

    def _token(self, seen: Any) -> Reply:
        with self._token_lock:
            if self.token_replies:
                return self.token_replies.pop(0)
            self.issued += 1
            token = f"test-token-{self.issued}"
            self.valid_tokens.add(token)
        return Reply(json=token_body(self.issued, self.expires_in), delay=self.token_delay)

    def _rpc(self, seen: Any) -> Reply:
        auth = seen.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.valid_tokens:
            return Reply(401, {"error": "unauthorized"})
        request = seen.json
        return Reply(json={"jsonrpc": "2.0", "id": request["id"], "result": {"ok": True}})

    def credentials(self) -> clarify_auth.Credentials:
        return clarify_auth.Credentials.from_dict(oauth_dict(apiUrl=self.api_url))


@pytest.fixture
def server():
    srv = ClarifyServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture):
    """Capture every log record at DEBUG, urllib3's included."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    caplog.set_level(logging.DEBUG, logger="clarify_auth")
    return caplog


@pytest.fixture
def loopback():
    """A bare loopback server whose answers a test scripts (no Clarify routes)."""
    server = LoopbackServer().start()
    yield server
    server.stop()
