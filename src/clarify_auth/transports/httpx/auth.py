"""``ClarifyAuth``: the ``httpx`` adapter around an authenticator's token lifecycle.

The token's life (cache, single flight, refresh ahead, process store, file
cache) belongs to :mod:`clarify_auth.tokens.lifecycle` through the authenticator;
this module adds what belongs to ``httpx``: the header on each request, the
origin check, and one retry after a 401, in a sync and an async flow.

Bound to its client (:meth:`ClarifyAuth.bind`, which ``clarify_auth.httpx.Client``
and ``AsyncClient`` do themselves), an OAuth token request goes through the
transport that client would use for the token URL
(:mod:`clarify_auth.transports.httpx.token_requests`), and the async flow
awaits it on the event loop with no thread. Unbound, token requests go through
``requests``, on a worker thread for the async flow. Either way the flow
creates no loop-bound object (no ``asyncio.Lock``), so it works under any
number of ``asyncio.run()`` calls and under trio: the single flight is the
lifecycle's, which serves threads and tasks alike.
"""

from __future__ import annotations

import functools
import logging
import weakref
from typing import TYPE_CHECKING, TypeVar

import anyio
import anyio.to_thread
import httpx

from clarify_auth._errors import ConfigurationError
from clarify_auth._urls import normalise_base_url, origin_of, origin_prefix
from clarify_auth.tokens.async_flight import refresh_or_wait_async
from clarify_auth.transports.httpx import token_requests
from clarify_auth.transports.requests.authenticators import Authenticator, BasicAuth
from clarify_auth.transports.requests.oauth import OAuthClientCredentials

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable, Generator

__all__ = ["ClarifyAuth"]

_T = TypeVar("_T")
_C = TypeVar("_C", httpx.Client, httpx.AsyncClient)

logger = logging.getLogger("clarify_auth")


class ClarifyAuth(httpx.Auth):
    """An ``httpx.Auth`` that signs requests with a Clarify authenticator.

    It works with ``httpx.Client`` and ``httpx.AsyncClient`` alike and shares
    the authenticator's token: the same single flight, process store and file
    cache as a :class:`~clarify_auth.ClarifySession` built from the same
    credentials. Only requests to the authenticator's API origin (and to the
    origin of ``api_url``, when given) get ``Authorization``; a plain ``http``
    URL to a host that is not loopback is refused before anything is sent.
    After a 401 on an OAuth token, the token is dropped and the request sent
    once more with a new one, when its body can be sent again (bytes, text,
    JSON, a form); a streamed body gets the 401 back, and the next request a
    new token.

    Token requests: an auth flow does not know the client it runs in, so tell
    it with ``client=`` (or :meth:`bind`). Bound, an OAuth token request goes
    through the transport that client would use for the token URL (its
    ``verify``, ``cert``, proxy, mounts, ``transport=``, HTTP/2), as a bare
    request: never with the client's headers, cookies or auth, never in its
    event hooks, never following a redirect; the async flow awaits it on the
    event loop with no thread. Unbound, token requests go through
    ``requests`` (the authenticator's own session), on a worker thread for
    the async flow; so do they for an authenticator given its own
    ``session=``. Either way the event loop never blocks on a token request
    and the flow is bound to no event loop.

    Args:
        authenticator: Any :class:`~clarify_auth.Authenticator`, usually from
            :meth:`~clarify_auth.Authenticator.from_credentials`.
        api_url: Also restrict credentials to this URL's origin (for an
            authenticator built without one).
        client: The ``httpx.Client`` or ``httpx.AsyncClient`` whose transport
            carries the token requests (held weakly); see :meth:`bind`.

    Example:
        >>> with httpx.Client(verify=ssl_context) as client:  # doctest: +SKIP
        ...     client.auth = ClarifyAuth(Authenticator.from_credentials(creds), client=client)
        ...     client.post(creds.api_url + "rpc", json=...)
    """

    def __init__(
        self,
        authenticator: Authenticator,
        *,
        api_url: str | None = None,
        client: httpx.Client | httpx.AsyncClient | None = None,
    ) -> None:
        """Wrap ``authenticator``; nothing is fetched until a request needs a token."""
        if not isinstance(authenticator, Authenticator):
            raise TypeError(
                "ClarifyAuth needs a clarify_auth.Authenticator, "
                f"got {type(authenticator).__name__}"
            )
        self._authenticator = authenticator
        self._signed_origin: tuple[str, bytes, int | None] | None = None
        self._api_prefix = "\0"
        self._api_origin = None
        if api_url is not None:
            try:
                url = normalise_base_url(api_url)
            except (TypeError, ValueError, AttributeError) as exc:
                raise ConfigurationError(f"ClarifyAuth: api_url: {exc}") from None
            self._api_prefix = origin_prefix(url)
            self._api_origin = origin_of(url)
        self._client: Callable[[], httpx.Client | httpx.AsyncClient | None] = _unbound
        if client is not None:
            self.bind(client)

    def bind(self, client: httpx.Client | httpx.AsyncClient) -> None:
        """Send token requests through ``client``'s transport from now on (held weakly)."""
        if not isinstance(client, httpx.Client | httpx.AsyncClient):
            raise TypeError(
                "ClarifyAuth.bind needs an httpx.Client or AsyncClient, "
                f"got {type(client).__name__}"
            )
        self._client = weakref.ref(client)

    def __getstate__(self) -> dict[str, object]:
        """Pickle unbound: a client (and its sockets) never travels; bind the copy anew."""
        state = self.__dict__.copy()
        state["_client"] = _unbound
        return state

    @property
    def authenticator(self) -> Authenticator:
        """The authenticator whose token this signs with."""
        return self._authenticator

    def __repr__(self) -> str:
        """Show the authenticator's repr, which shows no secret."""
        return f"{type(self).__name__}({self._authenticator!r})"

    # -- the flows -------------------------------------------------------------

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        """Sign ``request``; after a 401 on our token, drop it and retry once."""
        if not self._signs(request):
            yield request
            return
        authenticator = self._authenticator
        request.headers["Authorization"] = (
            _header_without_waiting(authenticator) or self._authorization()
        )
        response = yield request
        refused = self._refused_token(response)
        if refused is None:
            return
        retry_header = self._drop(refused, request)
        if retry_header is not None:
            request.headers["Authorization"] = retry_header
            yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Sign ``request`` without blocking the event loop; retry once after a 401."""
        if not self._signs(request):
            yield request
            return
        authenticator = self._authenticator
        header = _header_without_waiting(authenticator)
        if header is None:
            header = await self._aauthorization()
        request.headers["Authorization"] = header
        response = yield request
        refused = self._refused_token(response)
        if refused is None:
            return
        if self._native(httpx.AsyncClient) is None:
            # Dropping the token touches the file cache: a worker thread too.
            retry_header = await _on_worker_thread(functools.partial(self._drop, refused, request))
        else:
            retry_header = None
            if await self._adrop(refused, request):
                retry_header = await self._aauthorization()
        if retry_header is not None:
            request.headers["Authorization"] = retry_header
            yield request

    # -- token requests ------------------------------------------------------------

    def _native(self, kind: type[_C]) -> tuple[OAuthClientCredentials, _C] | None:
        """The OAuth authenticator and the bound client of type ``kind``, or ``None``."""
        authenticator = self._authenticator
        client = self._client()
        if (
            isinstance(authenticator, OAuthClientCredentials)
            and isinstance(client, kind)
            # An authenticator given its own requests.Session keeps using it.
            and authenticator._token_http.given is None  # noqa: SLF001 - the SDK's own class
        ):
            return authenticator, client
        return None

    def _authorization(self) -> str:
        """The header, fetching through the bound client's transport when there is one."""
        native = self._native(httpx.Client)
        if native is None:
            return self._authenticator.authorization()
        authenticator, client = native
        transport = token_requests.transport_for(client, authenticator.token_url)
        endpoint = authenticator._endpoint  # noqa: SLF001 - the SDK's own authenticator
        return authenticator._tokens.current(  # noqa: SLF001
            lambda: token_requests.fetch(endpoint, transport)  # type: ignore[arg-type]
        ).header

    async def _aauthorization(self) -> str:
        """The header without blocking the loop: on the loop when bound, else on a thread."""
        native = self._native(httpx.AsyncClient)
        if native is None:
            return await _on_worker_thread(self._authenticator.authorization)
        authenticator, client = native
        transport = token_requests.transport_for(client, authenticator.token_url)
        endpoint = authenticator._endpoint  # noqa: SLF001 - the SDK's own authenticator
        tokens = authenticator._tokens  # noqa: SLF001 - the SDK's own authenticator
        entry = await refresh_or_wait_async(
            tokens.lifecycle,
            lambda: token_requests.afetch(endpoint, transport),  # type: ignore[arg-type]
            wait_s=tokens.wait_bound(),
            sleep=anyio.sleep,
        )
        return entry.header

    async def _adrop(self, refused: str, request: httpx.Request) -> bool:
        """Drop the refused token (the store's call on a worker thread); whether to retry."""
        if self._authenticator._lifecycle.store is None:  # type: ignore[attr-defined]  # noqa: SLF001
            self._authenticator.refused(refused)
        else:
            await _on_worker_thread(functools.partial(self._authenticator.refused, refused))
        if not isinstance(request.stream, httpx.ByteStream):
            logger.info(
                "request to %s got 401; dropped the token (the body cannot be resent)",
                request.url,
            )
            return False
        logger.info("request to %s got 401; fetching a new token and retrying once", request.url)
        return True

    # -- the pieces --------------------------------------------------------------

    def _signs(self, request: httpx.Request) -> bool:
        """Whether ``request`` gets credentials; raises for plain http to a remote host."""
        parsed = request.url
        # httpx has the origin's parts at hand; building the URL's text costs more than
        # the rest of the hot path. The same origin always gets the same answer.
        origin = (parsed.scheme, parsed.raw_host, parsed.port)
        if origin == self._signed_origin:
            return True
        url = str(parsed)
        if (
            self._api_origin is not None
            and not url.startswith(self._api_prefix)
            and origin_of(url) != self._api_origin
        ):
            return False
        if not self._authenticator.signs(url):
            return False
        self._signed_origin = origin
        return True

    def _refused_token(self, response: httpx.Response) -> str | None:
        """The header the API refused with a 401, or ``None`` (nothing to drop).

        ``response.request`` is the last hop of any redirects. httpx strips
        ``Authorization`` on a redirect to another origin, so a header still
        there went to ours; a 401 from elsewhere never touches the token.
        """
        if response.status_code != 401:  # noqa: PLR2004
            return None
        sent: str | None = response.request.headers.get("Authorization")
        if sent is None or not self._signs(response.request):
            return None
        return sent

    def _drop(self, refused: str, request: httpx.Request) -> str | None:
        """Drop the refused token; the header for a retry, or ``None`` when there is none."""
        authenticator = self._authenticator
        if not authenticator.refused(refused):
            return None  # Basic credentials: a 401 is the server's final word
        if not isinstance(request.stream, httpx.ByteStream):
            # A stream cannot be sent twice: return the 401, but the next
            # request gets a new token instead of the one just refused.
            logger.info(
                "request to %s got 401; dropped the token (the body cannot be resent)",
                request.url,
            )
            return None
        logger.info("request to %s got 401; fetching a new token and retrying once", request.url)
        return self._authorization()


def _header_without_waiting(authenticator: Authenticator) -> str | None:
    """The ``Authorization`` value when it is at hand with no I/O and no wait, else ``None``.

    This is the hot path of every request. A subclass of a built-in
    authenticator may do I/O in its methods, so only the SDK's own are asked.
    """
    if type(authenticator) in _OWN_AUTHENTICATORS:
        return authenticator.cached_authorization()
    return None


_OWN_AUTHENTICATORS = (OAuthClientCredentials, BasicAuth)


async def _on_worker_thread(call: Callable[[], _T]) -> _T:
    """Run ``call`` on anyio's worker threads, under asyncio or trio alike.

    A cancelled caller stops waiting at once; the thread finishes the token
    request and stores the token for everyone else.
    """
    return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)


def _unbound() -> None:
    return None
