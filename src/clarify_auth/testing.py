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

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs

from clarify_auth._fake_clarify import ClarifyEndpoints, FakeServer, FakeState, Fault, Method
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
        self._state = FakeState()
        self._lock = self._state.lock
        self._endpoints = ClarifyEndpoints(self, self._state)
        self._server = FakeServer(port, self._endpoints, self._record)
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
            self._state.methods[method] = Method(
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
            self._state.token_faults += [Fault(status, body, header, drop=False)] * count

    def drop_token_requests(self, count: int = 1) -> None:
        """Close the connection without an answer on the next ``count`` token requests."""
        with self._lock:
            self._state.token_faults += [Fault(0, None, None, drop=True)] * count

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
        return self._endpoints.is_valid_token(token)

    def _record(
        self, method: str, path: str, headers: dict[str, str], body: bytes, status: int
    ) -> None:
        seen = RecordedRequest(method, path, headers, body, status)
        with self._lock:
            self._state.log.append(seen)
