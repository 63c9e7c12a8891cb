"""A fake of Clarify's token and JSON-RPC endpoints on 127.0.0.1, for tests.

``FakeClarify`` is a real HTTP server (standard library only) on an ephemeral
loopback port. It checks token requests the way Clarify does, issues tokens that
expire on its own clock, accepts only valid tokens (or the Basic pair) on
``/v1/rpc``, and injects faults on request. With pytest, the fixtures
``fake_clarify`` and ``clarify_credentials_file`` come with the package.

Example:
    >>> from clarify_auth.testing import FakeClarify
    >>> with FakeClarify() as fake:
    ...     fake.on("clarify.selectItems", result={"data": []})
    ...     with ClarifySession(fake.credentials()) as session:
    ...         session.rpc("clarify.selectItems")
    {'data': []}
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs

from clarify_auth.credentials.model import Credentials
from clarify_auth.tokens.lifecycle import clear_shared_lifecycles

if TYPE_CHECKING:
    from collections.abc import Callable

    from typing_extensions import Self

__all__ = ["FakeClarify", "RecordedRequest", "forget_shared_tokens"]

CredentialType = Literal["client-credentials", "basic-auth"]
_FIRST_SERVER_ERROR = 500
_UNSET: Any = object()


def forget_shared_tokens() -> None:
    """Empty this process's token store, so the next authenticator starts cold.

    Authenticators with the same client share one token in a process; tests
    that count token requests against a fixed URL (with ``responses``, say)
    call this between tests. Authenticators that already exist keep theirs.
    """
    clear_shared_lifecycles()


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received, with the status it answered."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def form(self) -> dict[str, str]:
        """The body as a form (token requests)."""
        return {k: v[0] for k, v in parse_qs(self.body.decode("utf-8", "replace")).items()}

    @property
    def json(self) -> Any:
        """The body as JSON (RPC requests)."""
        return json.loads(self.body)


@dataclass
class _Fault:
    status: int
    body: Any
    retry_after: str | None
    drop: bool


@dataclass
class _Method:
    result: Any = None
    error: dict[str, Any] | None = None
    handler: Callable[[Any], Any] | None = None


@dataclass
class _State:
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry on the fake's clock
    token_faults: list[_Fault] = field(default_factory=list)
    rpc_rejections: int = 0
    token_requests: int = 0
    tokens_issued: int = 0
    rpc_calls: int = 0
    log: list[RecordedRequest] = field(default_factory=list)


class FakeClarify:
    """A loopback fake of Clarify for authentication tests.

    Args:
        integration: The integration ID (and the Basic Auth user name).
        client_id: The OAuth client ID it accepts.
        client_secret: The OAuth client secret it accepts.
        basic_password: The Basic Auth password it accepts.
        token_lifetime: ``expires_in`` of issued tokens, seconds; enforced.
        scope: ``scope`` of issued tokens.
        clock: The fake's monotonic clock (seconds); ``advance_clock`` adds to it.
        port: The loopback port to listen on; 0 (the default) picks a free one.

    Attributes:
        token_latency: Seconds each token answer is delayed (settable).
        rpc_latency: Seconds each RPC answer is delayed (settable).
    """

    def __init__(
        self,
        *,
        integration: str = "test-integration",
        client_id: str = "test-client",
        client_secret: str = "test-secret-fake-clarify",  # noqa: S107 - an obviously fake default
        basic_password: str = "test-secret-fake-basic",  # noqa: S107 - an obviously fake default
        token_lifetime: float = 3600.0,
        scope: str = "clarify",
        clock: Callable[[], float] = time.monotonic,
        port: int = 0,
    ) -> None:
        """Prepare the server; :meth:`start` (or ``with``) opens the port."""
        self.integration = integration
        self.client_id = client_id
        self.client_secret = client_secret
        self.basic_password = basic_password
        self.token_lifetime = token_lifetime
        self.scope = scope
        self.token_latency = 0.0
        self.rpc_latency = 0.0
        self._clock = clock
        self._offset = 0.0
        self._lock = threading.Lock()
        self._state = _State()
        self._methods: dict[str, _Method] = {
            "clarify.selectItems": _Method(result=_empty_selection()),
            "clarify.selectSignals": _Method(result=_empty_selection()),
        }
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.fake = self
        self.port: int = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.url}/v1/"
        self.token_url = f"{self.api_url}oauth/token"
        self.rpc_url = f"{self.api_url}rpc"
        self._thread = threading.Thread(
            # A short poll keeps stop() quick: tests start and stop many fakes.
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="fake-clarify",
            daemon=True,
        )

    def __repr__(self) -> str:
        """Name the address, never the secrets."""
        return f"FakeClarify(api_url={self.api_url!r}, integration={self.integration!r})"

    # -- life cycle ----------------------------------------------------------------

    def start(self) -> Self:
        """Start serving on a background thread; returns ``self``."""
        if not self._thread.is_alive():
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the port."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> Self:
        """Start, for ``with FakeClarify() as fake:``."""
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        """Stop."""
        self.stop()

    # -- credentials -------------------------------------------------------------------

    def credentials(self, type: CredentialType = "client-credentials") -> Credentials:  # noqa: A002 - the file's own name for it
        """Credentials that this fake accepts, of either type."""
        return Credentials.from_dict(self.credentials_dict(type))

    def credentials_dict(self, type: CredentialType = "client-credentials") -> dict[str, Any]:  # noqa: A002
        """The JSON object of a credentials file for this fake."""
        if type == "basic-auth":
            inner = {
                "type": type,
                "clientId": self.integration,
                "clientSecret": self.basic_password,
            }
        else:
            inner = {"type": type, "clientId": self.client_id, "clientSecret": self.client_secret}
        return {"apiUrl": self.api_url, "integration": self.integration, "credentials": inner}

    def write_credentials(
        self,
        path: str | os.PathLike[str],
        type: CredentialType = "client-credentials",  # noqa: A002
    ) -> Path:
        """Write a credentials file for this fake (mode 0600 from the start) and return its path."""
        target = Path(path)
        text = json.dumps(self.credentials_dict(type), indent=2)
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(descriptor, "w", encoding="utf-8") as file:  # noqa: PTH123 - a descriptor
            file.write(text)
        target.chmod(0o600)  # a file that existed keeps its mode through O_TRUNC
        return target

    # -- behaviour -----------------------------------------------------------------------

    def on(
        self,
        method: str,
        result: Any = _UNSET,
        *,
        error: dict[str, Any] | None = None,
        handler: Callable[[Any], Any] | None = None,
    ) -> None:
        """Answer JSON-RPC ``method`` with ``result``, an ``error`` object or ``handler(params)``.

        ``clarify.selectItems`` and ``clarify.selectSignals`` answer an empty
        selection until told otherwise; other methods get "Method not found".
        """
        if sum(x is not None and x is not _UNSET for x in (result, error, handler)) > 1:
            raise ValueError("give one of result, error or handler")
        with self._lock:
            self._methods[method] = _Method(
                result=None if result is _UNSET else result, error=error, handler=handler
            )

    def fail_token_requests(
        self,
        count: int = 1,
        *,
        status: int = 503,
        body: Any = None,
        retry_after: float | str | None = None,
    ) -> None:
        """Answer the next ``count`` token requests with ``status`` and ``body``.

        ``body`` is JSON (a dict) or raw text (a str, sent as HTML); by default an
        RFC 6749 error fitting the status. ``retry_after`` sets ``Retry-After``.
        """
        if body is None:
            body = (
                {"error": "temporarily_unavailable"}
                if status >= _FIRST_SERVER_ERROR
                else {"error": "access_denied"}
            )
        header = None if retry_after is None else str(retry_after)
        with self._lock:
            self._state.token_faults += [_Fault(status, body, header, drop=False)] * count

    def drop_token_requests(self, count: int = 1) -> None:
        """Close the connection without an answer on the next ``count`` token requests."""
        with self._lock:
            self._state.token_faults += [_Fault(0, None, None, drop=True)] * count

    def clear_faults(self) -> None:
        """Forget pending token failures, drops and forced 401s (an outage ends)."""
        with self._lock:
            self._state.token_faults.clear()
            self._state.rpc_rejections = 0

    def revoke_tokens(self) -> None:
        """Make every token issued so far invalid (the next RPC call with one gets 401)."""
        with self._lock:
            self._state.tokens.clear()

    def reject_rpc_calls(self, count: int = 1) -> None:
        """Answer the next ``count`` RPC calls with 401, whatever their credentials."""
        with self._lock:
            self._state.rpc_rejections += count

    def advance_clock(self, seconds: float) -> None:
        """Move the fake's clock on, so issued tokens expire without waiting."""
        with self._lock:
            self._offset += seconds

    def now(self) -> float:
        """The fake's clock reading."""
        return self._clock() + self._offset

    # -- what happened -----------------------------------------------------------------------

    @property
    def token_requests(self) -> int:
        """Requests to the token endpoint, answered or not."""
        return self._state.token_requests

    @property
    def tokens_issued(self) -> int:
        """Tokens handed out."""
        return self._state.tokens_issued

    @property
    def rpc_calls(self) -> int:
        """Requests to the RPC endpoint, accepted or not."""
        return self._state.rpc_calls

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._state.log)

    def is_valid_token(self, token: str) -> bool:
        """Whether ``token`` was issued here, is not revoked and has not expired."""
        with self._lock:
            expiry = self._state.tokens.get(token)
        return expiry is not None and self.now() < expiry

    # -- the endpoints (called on server threads) ----------------------------------------------

    def _token(self, headers: dict[str, str], body: bytes) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            self._state.token_requests += 1
            fault = self._state.token_faults.pop(0) if self._state.token_faults else None
        if fault is not None:
            extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return (-1 if fault.drop else fault.status), fault.body, extra
        if self.token_latency:
            time.sleep(self.token_latency)
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return 400, _oauth_error("invalid_request", "expected a form body"), {}
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "client_credentials":
            return (
                400,
                _oauth_error("unsupported_grant_type", "grant_type must be client_credentials"),
                {},
            )
        if not (
            secrets.compare_digest(form.get("client_id", ""), self.client_id)
            and secrets.compare_digest(form.get("client_secret", ""), self.client_secret)
        ):
            return 401, _oauth_error("access_denied", "Unauthorized"), {}
        if form.get("audience") != self.api_url:
            return 403, _oauth_error("access_denied", "Service not enabled within domain"), {}
        with self._lock:
            self._state.tokens_issued += 1
            token = f"fake-token-{self._state.tokens_issued}-{secrets.token_hex(8)}"
            self._state.tokens[token] = self._clock() + self._offset + self.token_lifetime
        lifetime = self.token_lifetime
        answer = {
            "access_token": token,
            "scope": self.scope,
            # Clarify sends whole seconds as a JSON integer; some clients read nothing else.
            "expires_in": int(lifetime) if float(lifetime).is_integer() else lifetime,
            "token_type": "Bearer",
        }
        return 200, answer, {}

    def _authorised(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        if scheme == "Bearer":
            return self.is_valid_token(value)
        if scheme == "Basic":
            expected = f"{self.integration}:{self.basic_password}".encode()
            return secrets.compare_digest(value.encode(), base64.b64encode(expected))
        return False

    def _rpc(  # noqa: PLR0911 - one return per JSON-RPC outcome
        self, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            self._state.rpc_calls += 1
            rejected = self._state.rpc_rejections > 0
            self._state.rpc_rejections -= rejected
        if self.rpc_latency:
            time.sleep(self.rpc_latency)
        if rejected or not self._authorised(headers.get("authorization", "")):
            return (
                401,
                _oauth_error("unauthorized", "missing or invalid credentials"),
                {"WWW-Authenticate": 'Bearer realm="clarify"'},
            )
        try:
            request = json.loads(body)
        except ValueError:
            return 200, _rpc_error(None, -32700, "Parse error"), {}
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return 200, _rpc_error(None, -32600, "Invalid Request"), {}
        with self._lock:
            method = self._methods.get(request["method"])
        request_id = request.get("id")
        if method is None:
            return 200, _rpc_error(request_id, -32601, "Method not found"), {}
        if method.error is not None:
            return 200, {"jsonrpc": "2.0", "id": request_id, "error": method.error}, {}
        try:
            result = method.handler(request.get("params")) if method.handler else method.result
        except Exception as exc:  # noqa: BLE001 - a test's handler failing becomes a JSON-RPC error
            return 200, _rpc_error(request_id, -32603, f"Internal error: {type(exc).__name__}"), {}
        return 200, {"jsonrpc": "2.0", "id": request_id, "result": result}, {}

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._state.log.append(request)


def _oauth_error(error: str, description: str) -> dict[str, str]:
    return {"error": error, "error_description": description}


def _rpc_error(request_id: object, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


def _empty_selection() -> dict[str, Any]:
    return {
        "meta": {"total": 0, "format": {"dataAsArray": True, "groupIncludedByType": True}},
        "data": [],
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # thread storms connect all at once
    fake: FakeClarify


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; with Nagle's algorithm on, the
    # client's delayed ACK would hold every answer back by about 40 ms.
    disable_nagle_algorithm = True
    server: _Server

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
        fake = self.server.fake
        body = self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        path = self.path.split("?", 1)[0]
        if self.command == "POST" and path == "/v1/oauth/token":
            status, payload, extra = fake._token(headers, body)  # noqa: SLF001 - its own server
        elif self.command == "POST" and path == "/v1/rpc":
            status, payload, extra = fake._rpc(headers, body)  # noqa: SLF001
        else:
            status, payload, extra = 404, {"error": "not_found"}, {}
        seen = RecordedRequest(self.command, self.path, dict(self.headers.items()), body, status)
        fake._record(seen)  # noqa: SLF001 - the fake's own server
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
