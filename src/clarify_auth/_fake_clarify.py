"""What :class:`~clarify_auth.testing.FakeClarify` serves: Clarify's endpoints over HTTP.

:class:`ClarifyEndpoints` answers token and JSON-RPC requests the way Clarify
does (form checks, RFC 6749 errors, tokens that expire on the fake's clock,
JSON-RPC errors), reading its settings from the fake and its faults from the
shared :class:`FakeState`. :class:`FakeServer` is the standard library's
threading HTTP server that carries them on 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["ClarifyEndpoints", "FakeServer", "FakeState", "Fault", "Method"]

# An answer: status (-1: close the connection without one), JSON or text, extra headers.
Answer = tuple[int, Any, dict[str, str]]


class FakeSettings(Protocol):
    """What the endpoints read of the fake, at each request (tests may change them)."""

    integration: str
    client_id: str
    client_secret: str
    basic_password: str
    token_lifetime: float
    scope: str
    token_latency: float
    rpc_latency: float
    api_url: str

    def now(self) -> float:
        """The fake's clock."""
        ...


@dataclass
class Fault:
    """One token request to answer badly: a status and body, or a dropped connection."""

    status: int
    body: Any
    retry_after: str | None
    drop: bool


@dataclass
class Method:
    """How a JSON-RPC method answers: a result, an error object or a handler."""

    result: Any = None
    error: dict[str, Any] | None = None
    handler: Callable[[Any], Any] | None = None


def _default_methods() -> dict[str, Method]:
    return {
        "clarify.selectItems": Method(result=empty_selection()),
        "clarify.selectSignals": Method(result=empty_selection()),
    }


@dataclass
class FakeState:
    """What the fake knows and counts; every change is made under ``lock``."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry on the fake's clock
    methods: dict[str, Method] = field(default_factory=_default_methods)
    token_faults: list[Fault] = field(default_factory=list)
    rpc_rejections: int = 0
    token_requests: int = 0
    tokens_issued: int = 0
    rpc_calls: int = 0
    log: list[Any] = field(default_factory=list)


class ClarifyEndpoints:
    """Clarify's token and RPC endpoints, answered from ``settings`` and ``state``."""

    def __init__(self, settings: FakeSettings, state: FakeState) -> None:
        """Answer with the fake's settings, its faults and its tokens."""
        self.settings = settings
        self.state = state

    def is_valid_token(self, token: str) -> bool:
        """Whether ``token`` was issued here, is not revoked and has not expired."""
        with self.state.lock:
            expiry = self.state.tokens.get(token)
        return expiry is not None and self.settings.now() < expiry

    def token(self, headers: dict[str, str], body: bytes) -> Answer:
        """Answer ``POST /v1/oauth/token``: a fault, an RFC 6749 error, or a new token."""
        state, settings = self.state, self.settings
        with state.lock:
            state.token_requests += 1
            fault = state.token_faults.pop(0) if state.token_faults else None
        if fault is not None:
            extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return (-1 if fault.drop else fault.status), fault.body, extra
        if settings.token_latency:
            time.sleep(settings.token_latency)
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return 400, oauth_error("invalid_request", "expected a form body"), {}
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "client_credentials":
            return (
                400,
                oauth_error("unsupported_grant_type", "grant_type must be client_credentials"),
                {},
            )
        if not (
            secrets.compare_digest(form.get("client_id", ""), settings.client_id)
            and secrets.compare_digest(form.get("client_secret", ""), settings.client_secret)
        ):
            return 401, oauth_error("access_denied", "Unauthorized"), {}
        if form.get("audience") != settings.api_url:
            return 403, oauth_error("access_denied", "Service not enabled within domain"), {}
        lifetime = settings.token_lifetime
        with state.lock:
            state.tokens_issued += 1
            token = f"fake-token-{state.tokens_issued}-{secrets.token_hex(8)}"
            state.tokens[token] = settings.now() + lifetime
        answer = {
            "access_token": token,
            "scope": settings.scope,
            # Clarify sends whole seconds as a JSON integer; some clients read nothing else.
            "expires_in": int(lifetime) if float(lifetime).is_integer() else lifetime,
            "token_type": "Bearer",
        }
        return 200, answer, {}

    def authorised(self, header: str) -> bool:
        """Whether an ``Authorization`` header carries a valid token or the Basic pair."""
        scheme, _, value = header.partition(" ")
        if scheme == "Bearer":
            return self.is_valid_token(value)
        if scheme == "Basic":
            settings = self.settings
            expected = f"{settings.integration}:{settings.basic_password}".encode()
            return secrets.compare_digest(value.encode(), base64.b64encode(expected))
        return False

    def rpc(self, headers: dict[str, str], body: bytes) -> Answer:  # noqa: PLR0911 - one return per JSON-RPC outcome
        """Answer ``POST /v1/rpc``: 401 without valid credentials, else a JSON-RPC answer."""
        state = self.state
        with state.lock:
            state.rpc_calls += 1
            rejected = state.rpc_rejections > 0
            state.rpc_rejections -= rejected
        if self.settings.rpc_latency:
            time.sleep(self.settings.rpc_latency)
        if rejected or not self.authorised(headers.get("authorization", "")):
            return (
                401,
                oauth_error("unauthorized", "missing or invalid credentials"),
                {"WWW-Authenticate": 'Bearer realm="clarify"'},
            )
        try:
            request = json.loads(body)
        except ValueError:
            return 200, rpc_error(None, -32700, "Parse error"), {}
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return 200, rpc_error(None, -32600, "Invalid Request"), {}
        with state.lock:
            method = state.methods.get(request["method"])
        request_id = request.get("id")
        if method is None:
            return 200, rpc_error(request_id, -32601, "Method not found"), {}
        if method.error is not None:
            return 200, {"jsonrpc": "2.0", "id": request_id, "error": method.error}, {}
        try:
            result = method.handler(request.get("params")) if method.handler else method.result
        except Exception as exc:  # noqa: BLE001 - a test's handler failing becomes a JSON-RPC error
            return 200, rpc_error(request_id, -32603, f"Internal error: {type(exc).__name__}"), {}
        return 200, {"jsonrpc": "2.0", "id": request_id, "result": result}, {}


def oauth_error(error: str, description: str) -> dict[str, str]:
    """An RFC 6749 error body."""
    return {"error": error, "error_description": description}


def rpc_error(request_id: object, code: int, message: str) -> dict[str, Any]:
    """A JSON-RPC 2.0 error answer."""
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


def empty_selection() -> dict[str, Any]:
    """What Clarify answers a select call that matches nothing."""
    return {
        "meta": {"total": 0, "format": {"dataAsArray": True, "groupIncludedByType": True}},
        "data": [],
    }


class FakeServer(ThreadingHTTPServer):
    """The fake's HTTP server: the endpoints on 127.0.0.1, every request recorded."""

    daemon_threads = True
    request_queue_size = 256  # thread storms connect all at once

    def __init__(
        self,
        port: int,
        endpoints: ClarifyEndpoints,
        record: Callable[[str, str, dict[str, str], bytes, int], None],
    ) -> None:
        """Listen on 127.0.0.1:``port`` (0: a free port); serve nothing until asked."""
        super().__init__(("127.0.0.1", port), _Handler)
        self.endpoints = endpoints
        self.record = record


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; with Nagle's algorithm on, the
    # client's delayed ACK would hold every answer back by about 40 ms.
    disable_nagle_algorithm = True
    server: FakeServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Keep quiet: tests read the request log instead."""

    def do_GET(self) -> None:
        """Only POST is served."""
        self._serve()

    def do_POST(self) -> None:
        """Token and RPC requests."""
        self._serve()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        endpoints = self.server.endpoints
        body = self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        path = self.path.split("?", 1)[0]
        if self.command == "POST" and path == "/v1/oauth/token":
            status, payload, extra = endpoints.token(headers, body)
        elif self.command == "POST" and path == "/v1/rpc":
            status, payload, extra = endpoints.rpc(headers, body)
        else:
            status, payload, extra = 404, {"error": "not_found"}, {}
        self.server.record(self.command, self.path, dict(self.headers.items()), body, status)
        if status == -1:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if isinstance(payload, str):
            data, content_type = payload.encode(), "text/html; charset=utf-8"
        else:
            data, content_type = json.dumps(payload).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
