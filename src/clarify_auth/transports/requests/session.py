"""``ClarifySession``: a ``requests.Session`` bound to one Clarify integration."""

from __future__ import annotations

import itertools
import logging
import os
import weakref
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import requests
from requests.adapters import HTTPAdapter
from requests.auth import HTTPBasicAuth
from requests.utils import resolve_proxies

from clarify_auth._config import TimeoutSpec, checked_timeout
from clarify_auth._errors import ClarifyAuthError, shortened
from clarify_auth._urls import check_proxy, check_transport, origin_of, origin_prefix
from clarify_auth.credentials.model import Credentials, load_credentials
from clarify_auth.transports.requests.authenticators import Authenticator
from clarify_auth.transports.requests.token_http import TokenHTTP
from clarify_auth.transports.requests.token_requests import USER_AGENT
from clarify_auth.transports.rpc import (
    DEFAULT_API_VERSION,
    checked_api_version,
    rpc_request,
    rpc_result,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from typing_extensions import Unpack

    from clarify_auth.transports.requests.options import SessionOptions

__all__ = ["DEFAULT_API_TIMEOUT", "ClarifySession"]

logger = logging.getLogger("clarify_auth")

# Pipelines call from dozens of threads; requests' default of 10 pooled
# connections per host would discard and reopen connections under that load.
_POOL_MAXSIZE = 64
#: For API requests that do not pass their own: 5 s to connect, 60 s for the answer.
DEFAULT_API_TIMEOUT: tuple[float, float] = (5.0, 60.0)


class ClarifySession(requests.Session):
    """A ``requests.Session`` that talks to one Clarify integration.

    Every request to the origin of ``api_url`` carries ``Authorization``
    (through ``session.auth``, so that ``requests`` strips it on redirects to
    another host), and every request ``X-API-Version``. A request to any other
    origin carries no credentials. Token requests use the session's
    ``proxies``, ``verify``, ``cert`` and ``trust_env``, as they stand at each
    token request.
    Relative URLs resolve against the credentials' ``api_url``; requests without
    a timeout get the session's. After a 401 on an OAuth token, the token is
    dropped and the request retried once with a new one.

    Args:
        credentials: :class:`Credentials`, a path to a credentials file, or
            ``None`` to find one with :func:`load_credentials`.
        authenticator: Use this instead of the one the credentials call for.
        api_version: Sent as ``X-API-Version``; ``None`` sends no such header.
        timeout: Default for requests that pass none: seconds or ``(connect, read)``.
        auth_options: Passed to :meth:`Authenticator.from_credentials`
            (for OAuth, for example ``timeout`` or ``attempts``).

    Example:
        >>> with ClarifySession("clarify-credentials.json") as session:  # doctest: +SKIP
        ...     items = session.rpc("clarify.selectItems", {"query": {"limit": 10}})
    """

    __attrs__ = [  # noqa: RUF012 - extends requests.Session's own pickling list
        *requests.Session.__attrs__,
        "credentials",
        "api_version",
        "timeout",
        "_owns_authenticator",
    ]

    def __init__(
        self,
        credentials: Credentials | str | os.PathLike[str] | None = None,
        *,
        authenticator: Authenticator | None = None,
        api_version: str | None = DEFAULT_API_VERSION,
        timeout: TimeoutSpec | None = DEFAULT_API_TIMEOUT,
        **auth_options: Unpack[SessionOptions],
    ) -> None:
        """Load the credentials (when not given) and set up auth and headers."""
        api_version = checked_api_version(api_version)
        if timeout is not None:
            timeout = checked_timeout(timeout, what="ClarifySession: timeout")
        if not isinstance(credentials, Credentials):
            credentials = load_credentials(credentials)
        if authenticator is not None and auth_options:
            raise TypeError("pass either authenticator= or options for it, not both")
        if authenticator is not None and not isinstance(authenticator, Authenticator):
            raise TypeError(
                f"authenticator must be a clarify_auth.Authenticator, "
                f"got {type(authenticator).__name__}"
            )
        super().__init__()
        for prefix in ("https://", "http://"):
            self.mount(prefix, HTTPAdapter(pool_maxsize=_POOL_MAXSIZE))
        self.credentials = credentials
        self.api_version = api_version
        self.timeout = timeout
        self._owns_authenticator = authenticator is None
        self.auth = authenticator or Authenticator.from_credentials(credentials, **auth_options)
        self.headers["User-Agent"] = USER_AGENT
        if api_version is not None:
            self.headers["X-API-Version"] = api_version
        self._setup_runtime_state()

    def _setup_runtime_state(self) -> None:
        self._rpc_ids = itertools.count(1)
        self._api_origin = origin_of(self.credentials.api_url)
        self._api_prefix = origin_prefix(self.credentials.api_url)
        if self._owns_authenticator:
            token_http = getattr(self.auth, "_token_http", None)
            if isinstance(token_http, TokenHTTP):
                token_http.follow(self)  # token requests go the way this session's requests go
        _LIVE_SESSIONS.add(self)

    def _is_api_origin(self, url: str) -> bool:
        return url.startswith(self._api_prefix) or origin_of(url) == self._api_origin

    @property
    def authenticator(self) -> Authenticator:
        """The authenticator that signs this session's requests."""
        assert isinstance(self.auth, Authenticator)  # noqa: S101 - set in __init__
        return self.auth

    @property
    def integration(self) -> str:
        """The integration ID from the credentials."""
        return self.credentials.integration

    @property
    def api_url(self) -> str:
        """The API base URL from the credentials, ending in ``/``."""
        return self.credentials.api_url

    def __repr__(self) -> str:
        """Show the integration and API URL, never a secret."""
        return f"{type(self).__name__}(integration={self.integration!r}, api_url={self.api_url!r})"

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        """Send a request; ``url`` may be relative to ``api_url``.

        Raises:
            InsecureTransportError: ``url`` is plain http to a host that is not loopback.
        """
        url = self._resolve(url)
        check_transport(url, what="Clarify credentials")
        if "timeout" not in kwargs and len(args) < 7:  # noqa: PLR2004 - timeout is the 8th
            kwargs["timeout"] = self.timeout
        try:
            return super().request(method, url, *args, **kwargs)
        except ClarifyAuthError as exc:  # a token error from deep in requests' auth hooks
            raise shortened(exc) from exc.__cause__

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        """Prepare a request; only the API's origin gets the session's credentials.

        The origin is judged on the URL as prepared (what is really sent), so
        no spelling of another host passes for the API. A request to another
        origin carries no credentials at all (not even ``~/.netrc``'s), unless
        it names its own ``auth``.
        """
        if request.auth is None:
            request.auth = self._sign_api_origin_only
        return super().prepare_request(request)

    def _sign_api_origin_only(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        auth = self.auth
        if isinstance(auth, tuple) and len(auth) == 2:  # noqa: PLR2004 - requests' (user, password)
            auth = HTTPBasicAuth(*auth)
        if callable(auth) and self._is_api_origin(r.url or ""):
            signed: requests.PreparedRequest = auth(r)
            return signed
        return r

    def rebuild_auth(
        self, prepared_request: requests.PreparedRequest, response: requests.Response
    ) -> None:
        """On a redirect: strip ``Authorization`` across origins, keep ours within one.

        Origins compare scheme, host and port: unlike ``requests``, even an
        http to https upgrade counts as another origin. ``requests`` would also
        put ``~/.netrc`` credentials in place of the SDK's own on a same-origin
        redirect; it never happens here.
        """
        headers = prepared_request.headers
        if "Authorization" in headers and origin_of(response.request.url or "") != origin_of(
            prepared_request.url or ""
        ):
            del headers["Authorization"]

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """Send a prepared request, with the session's timeout when it has none.

        Every request, redirects included, is checked as it will go out.

        Raises:
            InsecureTransportError: The request is plain http to a host that is
                not loopback, or (to loopback) a proxy off this machine would
                carry it.
        """
        kwargs.setdefault("timeout", self.timeout)
        url = request.url or ""
        check_transport(url, what="Clarify credentials")
        if url[:7].lower() == "http://":
            # The proxies the adapter will use: those requests resolved (request()
            # merged the environment's, a redirect rebuilt them), or, for a bare
            # send(), what requests' own send() would resolve. Never a second scan.
            if "proxies" not in kwargs:
                kwargs["proxies"] = resolve_proxies(request, dict(self.proxies), self.trust_env)
            check_proxy(url, kwargs["proxies"], what="requests")
        return super().send(request, **kwargs)

    def _resolve(self, url: str | bytes) -> str:
        # RFC 3986 resolution: "rpc" -> {api_url}rpc, "/x" -> the host's /x,
        # and an absolute URL stays as it is.
        text = url.decode() if isinstance(url, bytes) else str(url)
        return urljoin(self.credentials.api_url, text)

    def rpc(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Call a JSON-RPC 2.0 method at ``{api_url}rpc`` and return its ``result``.

        Raises:
            RPCError: The answer carried a JSON-RPC ``error`` member.
            RPCResponseError: The answer was not a JSON-RPC response.
            requests.HTTPError: The HTTP status was not 2xx.
        """
        response = self.post("rpc", json=rpc_request(method, params, next(self._rpc_ids)))
        response.raise_for_status()
        return rpc_result(
            method,
            status=response.status_code,
            content_type=response.headers.get("Content-Type"),
            read_json=response.json,
        )

    def close(self) -> None:
        """Close this session's connections, and its authenticator's if it made it."""
        super().close()
        if self._owns_authenticator:
            close = getattr(self.auth, "close", None)
            if callable(close):
                close()

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore from a pickle with fresh connection pools and counters."""
        super().__setstate__(state)  # type: ignore[misc]  # defined, but not in the stubs
        self._setup_runtime_state()


def _no_credentials(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """The auth of requests to other origins: nothing (and no ``~/.netrc`` lookup)."""
    return request


# Every live session, so that a forked child gets connection pools of its own
# instead of sharing the parent's sockets.
_LIVE_SESSIONS: weakref.WeakSet[ClarifySession] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for session in list(_LIVE_SESSIONS):
        for adapter in session.adapters.values():
            if isinstance(adapter, HTTPAdapter):
                # What HTTPAdapter.__setstate__ does: new pools, the parent's left alone.
                adapter.proxy_manager = {}
                adapter.init_poolmanager(
                    adapter._pool_connections,  # type: ignore[attr-defined]  # noqa: SLF001
                    adapter._pool_maxsize,  # type: ignore[attr-defined]  # noqa: SLF001
                    block=adapter._pool_block,  # type: ignore[attr-defined]  # noqa: SLF001
                )


if hasattr(os, "register_at_fork"):  # pragma: no branch - absent on Windows only
    os.register_at_fork(after_in_child=_after_fork_in_child)
