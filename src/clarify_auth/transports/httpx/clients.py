"""``Client`` and ``AsyncClient``: the ``httpx`` counterparts of ``ClarifySession``."""

from __future__ import annotations

import contextlib
import itertools
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import anyio.lowlevel
import httpx

from clarify_auth._config import checked_timeout
from clarify_auth._version import __version__
from clarify_auth.credentials.model import Credentials, load_credentials
from clarify_auth.transports.httpx.auth import ClarifyAuth
from clarify_auth.transports.httpx.network import refuse_remote_proxy
from clarify_auth.transports.requests.authenticators import Authenticator
from clarify_auth.transports.requests.session import DEFAULT_API_TIMEOUT
from clarify_auth.transports.rpc import (
    DEFAULT_API_VERSION,
    checked_api_version,
    rpc_request,
    rpc_result,
)

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Mapping
    from types import TracebackType

    from typing_extensions import Self

    from clarify_auth._config import TimeoutSpec
    from clarify_auth.tokens.stores.protocol import TokenStore
    from clarify_auth.transports.requests.options import OAuthOptions

__all__ = ["AsyncClient", "Client"]

USER_AGENT = f"clarify-auth/{__version__} python-httpx/{httpx.__version__}"

CredentialsSource = Credentials | str | os.PathLike[str] | None
TimeoutOption = httpx.Timeout | float | tuple[float, float] | None


@dataclass(frozen=True)
class _Setup:
    """What both clients are built from, checked once."""

    credentials: Credentials
    authenticator: Authenticator
    owns_authenticator: bool
    api_version: str | None
    httpx_options: dict[str, Any]
    auth: ClarifyAuth


def _setup(
    kind: str,
    credentials: CredentialsSource,
    authenticator: Authenticator | None,
    api_version: str | None,
    timeout: TimeoutOption,
    token_cache: TokenStore | Literal[False] | None,
    httpx_options: dict[str, Any],
) -> _Setup:
    api_version = checked_api_version(api_version)
    for taken in ("base_url", "auth"):
        if taken in httpx_options:
            raise TypeError(
                f"{kind}: {taken} comes from the credentials (apiUrl) and the authenticator"
            )
    checked = _httpx_timeout(timeout, what=f"{kind}: timeout")
    if not isinstance(credentials, Credentials):
        credentials = load_credentials(credentials)
    owns = authenticator is None
    if authenticator is None:
        options: OAuthOptions = {} if token_cache is None else {"token_cache": token_cache}
        authenticator = Authenticator.from_credentials(credentials, **options)
    elif token_cache is not None:
        raise TypeError("pass either authenticator= or token_cache= for it, not both")
    elif not isinstance(authenticator, Authenticator):
        raise TypeError(
            "authenticator must be a clarify_auth.Authenticator, "
            f"got {type(authenticator).__name__}"
        )
    headers = httpx.Headers({"User-Agent": USER_AGENT})
    headers.update(httpx_options.pop("headers", None) or {})
    if api_version is not None:
        headers["X-API-Version"] = api_version
    # Restricted to the API's origin even when the caller's own authenticator is not.
    auth = ClarifyAuth(authenticator, api_url=credentials.api_url)
    httpx_options.update(base_url=credentials.api_url, auth=auth, headers=headers, timeout=checked)
    return _Setup(credentials, authenticator, owns, api_version, httpx_options, auth)


def _httpx_timeout(timeout: object, *, what: str) -> httpx.Timeout:
    """An ``httpx.Timeout`` from one, from seconds, or from ``(connect, read)`` seconds."""
    if timeout is None or isinstance(timeout, httpx.Timeout):
        return httpx.Timeout(timeout)
    checked: TimeoutSpec = checked_timeout(timeout, what=what)
    if isinstance(checked, tuple):
        connect, read = checked
        return httpx.Timeout(read, connect=connect)
    return httpx.Timeout(checked)


#: For requests that pass none: 5 s to connect, 60 s for the rest, as ``ClarifySession``.
DEFAULT_TIMEOUT = _httpx_timeout(DEFAULT_API_TIMEOUT, what="timeout")


class _ClarifyClient:
    """What ``Client`` and ``AsyncClient`` add to their ``httpx`` base class."""

    _clarify: _Setup

    def _take(self, setup: _Setup, client: httpx.Client | httpx.AsyncClient) -> None:
        self._clarify = setup
        self._rpc_ids = itertools.count(1)
        refuse_remote_proxy(client, setup.credentials.api_url)
        # Token requests go through this client's own transport for the token URL.
        setup.auth.bind(client)

    @property
    def credentials(self) -> Credentials:
        """The credentials this client signs with."""
        return self._clarify.credentials

    @property
    def authenticator(self) -> Authenticator:
        """The authenticator that signs this client's requests to the API."""
        return self._clarify.authenticator

    @property
    def integration(self) -> str:
        """The integration ID from the credentials."""
        return self._clarify.credentials.integration

    @property
    def api_url(self) -> str:
        """The API base URL from the credentials, ending in ``/`` (the ``base_url``)."""
        return self._clarify.credentials.api_url

    @property
    def api_version(self) -> str | None:
        """Sent as ``X-API-Version``, or ``None``."""
        return self._clarify.api_version

    def __repr__(self) -> str:
        """Show the integration and API URL, never a secret."""
        return f"{type(self).__name__}(integration={self.integration!r}, api_url={self.api_url!r})"

    def _rpc_payload(self, method: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
        return rpc_request(method, params, next(self._rpc_ids))

    def _close_authenticator(self) -> None:
        if self._clarify.owns_authenticator:
            close = getattr(self._clarify.authenticator, "close", None)
            if callable(close):
                close()


class Client(_ClarifyClient, httpx.Client):
    """An ``httpx.Client`` that talks to one Clarify integration.

    ``base_url`` is the credentials' ``apiUrl``; every request to its origin
    carries ``Authorization`` (through :class:`ClarifyAuth`, so the token is
    shared with every other client and session of the same credentials), and
    every request ``X-API-Version``. Requests to other origins carry no
    credentials. After a 401 on an OAuth token, the token is dropped and the
    request retried once with a new one.

    Token requests go through this client's own transport for the token URL,
    so ``verify`` (an ``ssl.SSLContext`` too), ``cert``, ``proxy``, ``mounts``,
    ``transport=``, ``trust_env`` and HTTP/2 apply to them as to API calls;
    they never carry this client's headers, cookies or auth, never show in its
    event hooks and never follow a redirect. Each attempt is bounded in
    wall-clock time and its connection closed when abandoned.

    Args:
        credentials: :class:`~clarify_auth.Credentials`, a path to a
            credentials file, or ``None`` to find one with
            :func:`~clarify_auth.load_credentials`.
        authenticator: Use this instead of the one the credentials call for.
        api_version: Sent as ``X-API-Version``; ``None`` sends no such header.
        timeout: An ``httpx.Timeout``, seconds, or ``(connect, read)``
            seconds; by default 5 s to connect and 60 s for the rest.
        token_cache: A :class:`~clarify_auth.TokenStore`, ``False`` for
            none, or ``None`` to follow ``CLARIFY_TOKEN_CACHE``.
        httpx_options: Passed to ``httpx.Client`` (``headers`` are added to ours).

    Raises:
        InsecureTransportError: The API is plain ``http`` and a proxy off this
            machine would carry it.

    Example:
        >>> with Client("clarify-credentials.json") as client:  # doctest: +SKIP
        ...     items = client.rpc("clarify.selectItems", {"query": {"limit": 10}})
    """

    def __init__(
        self,
        credentials: CredentialsSource = None,
        *,
        authenticator: Authenticator | None = None,
        api_version: str | None = DEFAULT_API_VERSION,
        timeout: TimeoutOption = DEFAULT_TIMEOUT,
        token_cache: TokenStore | Literal[False] | None = None,
        **httpx_options: Any,
    ) -> None:
        """Load the credentials (when not given) and set up auth, base URL and headers."""
        setup = _setup(
            "Client", credentials, authenticator, api_version, timeout, token_cache, httpx_options
        )
        super().__init__(**setup.httpx_options)
        try:
            self._take(setup, self)
        except BaseException:
            self.close()
            raise

    def rpc(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Call a JSON-RPC 2.0 method at ``{api_url}rpc`` and return its ``result``.

        Raises:
            RPCError: The answer carried a JSON-RPC ``error`` member.
            RPCResponseError: The answer was not a JSON-RPC response.
            httpx.HTTPStatusError: The HTTP status was not 2xx.
        """
        response = self.post("rpc", json=self._rpc_payload(method, params))
        return _rpc_result(method, response)

    def close(self) -> None:
        """Close the connections, and the authenticator's if this client made it."""
        super().close()
        self._close_authenticator()

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        """Close, as :meth:`close` does."""
        super().__exit__(exc_type, exc_value, traceback)
        self._close_authenticator()

    def __enter__(self) -> Self:
        """Open, for ``with Client(...) as client:``."""
        super().__enter__()
        return self


class AsyncClient(_ClarifyClient, httpx.AsyncClient):
    """An ``httpx.AsyncClient`` that talks to one Clarify integration.

    The async twin of :class:`Client`, with the same arguments; ``rpc()`` is
    awaitable. Token requests go through this client's own transport, as for
    :class:`Client`, awaited on the event loop with no thread; one fetch
    serves every task and thread that needs the token (a cancelled waiter,
    or a cancelled task that started the fetch, breaks nobody else), and the
    token is shared with every client, session and thread in the process.
    The client works under asyncio and trio.

    Unlike a plain ``httpx.AsyncClient``, one client serves one event loop
    after another (``asyncio.run()`` twice, or asyncio then trio): the
    connections it keeps belong to the loop that opened them, so it closes them
    as that loop shuts down (through the loop's async-generator finalisation,
    which ``asyncio.run``, ``anyio.run`` and ``trio.run`` do; a loop closed by
    hand must first ``await loop.shutdown_asyncgens()``, as asyncio asks) and
    opens new ones in the next loop. A new client costs no token request
    either, since the token lives in the process.

    Example:
        >>> async def main():  # doctest: +SKIP
        ...     async with AsyncClient("clarify-credentials.json") as client:
        ...         return await client.rpc("clarify.selectItems", {"query": {"limit": 10}})
    """

    def __init__(
        self,
        credentials: CredentialsSource = None,
        *,
        authenticator: Authenticator | None = None,
        api_version: str | None = DEFAULT_API_VERSION,
        timeout: TimeoutOption = DEFAULT_TIMEOUT,
        token_cache: TokenStore | Literal[False] | None = None,
        **httpx_options: Any,
    ) -> None:
        """Load the credentials (when not given) and set up auth, base URL and headers."""
        setup = _setup(
            "AsyncClient",
            credentials,
            authenticator,
            api_version,
            timeout,
            token_cache,
            httpx_options,
        )
        super().__init__(**setup.httpx_options)
        self._take(setup, self)
        self._loop_token: object = None
        self._loop_closer: AsyncGenerator[None] | None = None

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        """Send ``request``; connections kept from an event loop that ended are not reused."""
        token = anyio.lowlevel.current_token()
        token = getattr(token, "native_token", token)  # anyio >= 4.11 wraps the loop or trio token
        if token is not self._loop_token:
            # The first request in this event loop: arrange for this loop's
            # connections to be closed while the loop can still close them.
            self._loop_token = token
            self._loop_closer = self._close_connections_when_the_loop_ends()
            await self._loop_closer.__anext__()
        return await super().send(request, **kwargs)

    async def _close_connections_when_the_loop_ends(self) -> AsyncGenerator[None]:
        # Suspended until the loop shuts its async generators down (asyncio.run
        # and trio.run both do); then the kept connections close on their loop.
        try:
            yield
        finally:
            transports = [self._transport, *(t for t in self._mounts.values() if t)]
            for transport in transports:
                with contextlib.suppress(Exception):
                    await transport.aclose()

    async def rpc(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Call a JSON-RPC 2.0 method at ``{api_url}rpc`` and return its ``result``.

        Raises:
            RPCError: The answer carried a JSON-RPC ``error`` member.
            RPCResponseError: The answer was not a JSON-RPC response.
            httpx.HTTPStatusError: The HTTP status was not 2xx.
        """
        response = await self.post("rpc", json=self._rpc_payload(method, params))
        return _rpc_result(method, response)

    async def aclose(self) -> None:
        """Close the connections, and the authenticator's if this client made it."""
        await super().aclose()
        self._close_authenticator()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        """Close, as :meth:`aclose` does."""
        await super().__aexit__(exc_type, exc_value, traceback)
        self._close_authenticator()

    async def __aenter__(self) -> Self:
        """Open, for ``async with AsyncClient(...) as client:``."""
        await super().__aenter__()
        return self


def _rpc_result(method: str, response: httpx.Response) -> Any:
    """The ``result`` of a JSON-RPC answer, or the error it carries, as ``ClarifySession.rpc``."""
    response.raise_for_status()
    return rpc_result(
        method,
        status=response.status_code,
        content_type=response.headers.get("Content-Type"),
        read_json=response.json,
    )
