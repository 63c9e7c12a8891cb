"""``ClarifyAuth``: the ``httpx`` adapter around an authenticator's token lifecycle.

The token's life (cache, single flight, refresh ahead, process store, file
cache) belongs to :mod:`clarify_auth.tokens.lifecycle` through the authenticator;
this module adds what belongs to ``httpx``: the header on each request, the
origin check, and one retry after a 401, in a sync and an async flow.

The async flow takes a token without blocking the event loop: a token that is
good now is read straight from the lifecycle; anything that may wait (a token
request, another caller's flight, the file cache) runs on a worker thread
through ``anyio``. It creates no loop-bound object (no ``asyncio.Lock``), so it
works under any number of ``asyncio.run()`` calls and under trio: the single
flight is the lifecycle's, which already serves threads.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, TypeVar

import anyio.to_thread
import httpx

from clarify_auth._errors import ConfigurationError
from clarify_auth._urls import normalise_base_url, origin_of, origin_prefix
from clarify_auth.transports.requests.authenticators import Authenticator, BasicAuth
from clarify_auth.transports.requests.oauth import OAuthClientCredentials

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable, Generator

__all__ = ["ClarifyAuth"]

_T = TypeVar("_T")

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

    The async flow never blocks the event loop on a token request (it runs on
    a worker thread) and is bound to no event loop.

    Args:
        authenticator: Any :class:`~clarify_auth.Authenticator`, usually from
            :meth:`~clarify_auth.Authenticator.from_credentials`.
        api_url: Also restrict credentials to this URL's origin (for an
            authenticator built without one).

    Example:
        >>> auth = ClarifyAuth(Authenticator.from_credentials(creds))  # doctest: +SKIP
        >>> with httpx.Client(auth=auth) as client:  # doctest: +SKIP
        ...     client.post(creds.api_url + "rpc", json=...)
    """

    def __init__(self, authenticator: Authenticator, *, api_url: str | None = None) -> None:
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
            _header_without_waiting(authenticator) or authenticator.authorization()
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
            header = await _on_worker_thread(authenticator.authorization)
        request.headers["Authorization"] = header
        response = yield request
        refused = self._refused_token(response)
        if refused is None:
            return
        # Dropping the token touches the file cache: a worker thread too.
        retry_header = await _on_worker_thread(functools.partial(self._drop, refused, request))
        if retry_header is not None:
            request.headers["Authorization"] = retry_header
            yield request

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
        return authenticator.authorization()


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
