"""OAuth 2.0 client credentials for ``requests``: the adapter around a token lifecycle.

The token's life (cache, single flight, refresh ahead, file cache, process
store) lives in :mod:`clarify_auth.tokens.lifecycle`; this module adds what belongs
to ``requests``: the header on each request, the origin check, the retry after
a 401, and the ``requests.Session`` that carries token requests.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any, Literal

from requests.structures import CaseInsensitiveDict

from clarify_auth._errors import ClarifyAuthError, shortened
from clarify_auth.credentials.model import ClientCredentials, Credentials
from clarify_auth.transports.requests.authenticators import Authenticator, inner_credentials
from clarify_auth.transports.requests.oauth_checks import checked_parts
from clarify_auth.transports.requests.retry_401 import retry_after_401
from clarify_auth.transports.requests.token_http import TokenHTTP
from clarify_auth.transports.requests.token_requests import DEFAULT_TOKEN_TIMEOUT

if TYPE_CHECKING:
    from collections.abc import Callable

    import requests
    from pydantic import SecretStr
    from typing_extensions import Unpack

    from clarify_auth._config import TimeoutSpec
    from clarify_auth.tokens.counters import TokenCounters
    from clarify_auth.tokens.stores.protocol import TokenStore
    from clarify_auth.tokens.token import AccessToken
    from clarify_auth.transports.requests.options import OAuthOptions

__all__ = ["OAuthClientCredentials"]

logger = logging.getLogger("clarify_auth")

_DEFAULT_ATTEMPTS = 4
_DEFAULT_DEADLINE_S = 60.0


class OAuthClientCredentials(Authenticator):
    """OAuth 2.0 client-credentials tokens, shared, cached and refreshed ahead of expiry.

    - One token for every authenticator in the process with the same token URL,
      client ID, audience and secret (``shared=False`` keeps a private one), and one
      token request however many threads need it; they share its result or error.
    - Reused until shortly before ``expires_in`` runs out, on a clock that counts
      sleep; a quarter of the lifetime early (at most 5 minutes) one caller refreshes
      in the background while everyone keeps using the still-valid token.
    - Transient failures are retried with capped exponential backoff and jitter,
      honouring ``Retry-After``; a rejected client raises :class:`TokenError` at once.
    - After a 401 on a request carrying its token, it drops that token, fetches a
      new one and retries the request once (when the body can be sent again).
    - Safe across ``os.fork()`` and ``pickle``.

    Args:
        client_id: The OAuth client ID (``clientId``).
        client_secret: The client secret (``clientSecret``).
        token_url: The token endpoint; https, or http to a loopback host only.
        audience: The ``audience`` form field, Clarify's ``apiUrl``.
        api_url: Sign only requests to this URL's origin (``from_credentials``
            passes ``apiUrl``); ``None`` signs requests to any origin.
        timeout: Per token request, seconds or ``(connect, read)``; a whole
            attempt, however slowly the server sends, takes at most
            ``connect + read`` (or the one number).
        attempts: Token requests per fetch, at most (at least 1).
        deadline: Seconds a whole fetch, retries and waits included, may take.
        refresh_in_background: Refresh ahead of expiry on a background thread
            (``True``) or on the calling thread (``False``).
        clock: Monotonic clock in seconds (tests inject one); default a clock
            that counts time suspended (``CLOCK_BOOTTIME`` on Linux).
        sleep: Sleeps between retries (tests inject one); default ``time.sleep``.
        token_cache: A :class:`~clarify_auth.TokenStore` to share tokens
            with other processes: a :class:`~clarify_auth.FileTokenCache` (this
            machine), a :class:`~clarify_auth.RedisTokenCache` (a fleet), or
            your own. ``None`` (the default) follows the environment variable
            ``CLARIFY_TOKEN_CACHE``; ``False`` turns stores off whatever it says.
        shared: Share the token with the other authenticators in this process
            that have the same client (the default); ``False`` gives this one a
            private token.
        session: A ``requests.Session`` to send token requests through (its
            proxies, CA bundle, client certificate); never with its ``auth``,
            never following redirects. ``None`` uses a private one.

    Example:
        >>> auth = OAuthClientCredentials(
        ...     "test-client", "test-secret-x",
        ...     token_url="https://api.clarify.io/v1/oauth/token",
        ...     audience="https://api.clarify.io/v1/",
        ... )
        >>> auth
        OAuthClientCredentials(client_id='test-client', token_url='https://api.clarify.io/v1/oauth/token')
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str | SecretStr,
        *,
        token_url: str,
        audience: str,
        api_url: str | None = None,
        timeout: TimeoutSpec = DEFAULT_TOKEN_TIMEOUT,
        attempts: int = _DEFAULT_ATTEMPTS,
        deadline: float = _DEFAULT_DEADLINE_S,
        refresh_in_background: bool = True,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        token_cache: TokenStore | Literal[False] | None = None,
        shared: bool = True,
        session: requests.Session | None = None,
    ) -> None:
        """Check the options; no token is fetched until one is needed."""
        self._restrict_to(api_url)
        self._endpoint, self._tokens = checked_parts(
            client_id,
            client_secret,
            token_url=token_url,
            audience=audience,
            timeout=timeout,
            attempts=attempts,
            deadline=deadline,
            clock=clock,
            sleep=sleep,
            token_cache=token_cache,
            shared=shared,
            background=refresh_in_background,
            session=session,
        )
        self._token_http = TokenHTTP(session)
        self._reset_runtime_state()

    def _reset_runtime_state(self) -> None:
        """Set what must never be carried in a pickle: the hot path's shortcuts."""
        self._lifecycle = lifecycle = self._tokens.lifecycle
        # Deadlines must be read on the clock they were set on: the lifecycle's.
        self._endpoint.clock = self._clock = lifecycle.clock
        self._hook = functools.partial(retry_after_401, self)  # made once, not per request

    @classmethod
    def from_credentials(
        cls, credentials: Credentials, **options: Unpack[OAuthOptions]
    ) -> OAuthClientCredentials:
        """Build from ``client-credentials`` credentials; options go to the constructor.

        The authenticator signs requests to the origin of ``credentials.api_url`` only.
        """
        inner = inner_credentials(credentials, ClientCredentials, "OAuthClientCredentials")
        options.setdefault("api_url", credentials.api_url)
        return cls(
            inner.client_id,
            inner.client_secret,
            token_url=credentials.token_url,
            audience=credentials.api_url,
            **options,
        )

    @property
    def client_id(self) -> str:
        """The OAuth client ID."""
        return self._endpoint.client_id

    @property
    def token_url(self) -> str:
        """The token endpoint."""
        return self._endpoint.token_url

    @property
    def audience(self) -> str:
        """The ``audience`` sent with every token request."""
        return self._endpoint.audience

    @property
    def timeout(self) -> TimeoutSpec:
        """The per-token-request timeout."""
        return self._endpoint.timeout

    @property
    def token_cache(self) -> TokenStore | None:
        """The store this authenticator was given (or the environment chose), or ``None``."""
        return self._tokens.store

    @property
    def counters(self) -> TokenCounters:
        """What this client's token cost this process so far: fetches, hits, store failures.

        Shared by the process's authenticators of this client (they share one token).
        """
        return self._lifecycle.counters()

    @property
    def shared(self) -> bool:
        """Whether the token is shared with this process's other authenticators of this client."""
        return self._tokens.shared

    def __repr__(self) -> str:
        """Show the client ID and token URL, never the secret or token."""
        return f"{type(self).__name__}(client_id={self.client_id!r}, token_url={self.token_url!r})"

    # -- tokens ---------------------------------------------------------------

    def token(self) -> AccessToken:
        """Return a valid access token, fetching one only when needed.

        Raises:
            TokenError: No token could be obtained.
        """
        try:
            return self._tokens.current(self._fetch).token
        except ClarifyAuthError as exc:
            raise shortened(exc) from exc.__cause__

    def authorization(self) -> str:
        """Return ``"Bearer <token>"``, fetching a token only when needed."""
        try:
            return self._tokens.current(self._fetch).header
        except ClarifyAuthError as exc:
            raise shortened(exc) from exc.__cause__

    def fetch_token(self) -> AccessToken:
        """Fetch a new token now, whatever is cached, and keep and share it.

        Raises:
            TokenError: No token could be obtained.
        """
        return self._lifecycle.fetch_new(self._fetch).token

    def invalidate(self) -> None:
        """Forget the token (in this process and the file cache); the next caller fetches anew."""
        self._lifecycle.invalidate()

    def cached_authorization(self) -> str | None:
        """``"Bearer <token>"`` if the token needs no refresh yet, else ``None`` (no I/O)."""
        entry = self._tokens.cached()
        return None if entry is None else entry.header

    def refused(self, header: str) -> bool:
        """Drop the token in ``header`` if it is still current; a Bearer header may be retried."""
        return self._tokens.refused(header)

    def _fetch(self) -> tuple[AccessToken, float]:
        return self._endpoint.fetch(self._token_http.session())

    def close(self) -> None:
        """Close the connections used for token requests (the token stays cached)."""
        self._token_http.close()

    # -- signing: the header, and one retry after a 401 -----------------------
    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        """Attach the bearer token and arrange one retry after a 401.

        This runs for every request, so it is kept to a few attribute reads:
        no lock, no allocation, unless the token needs refreshing. Requests to
        another origin than ``api_url``'s go out untouched.
        """
        url = r.url or ""
        if not url.startswith(self._trusted_origin) and not self.signs(url):
            return r
        lifecycle = self._lifecycle
        entry = lifecycle.entry
        if entry is None or self._clock() >= entry.refresh_at:
            entry = self._tokens.current(self._fetch)
        else:
            lifecycle.process_hits += 1
        headers = r.headers
        if type(headers) is CaseInsensitiveDict:
            # What CaseInsensitiveDict.__setitem__ does, without its two calls.
            headers._store["authorization"] = entry.header_item  # type: ignore[attr-defined]  # noqa: SLF001
        else:
            headers["Authorization"] = entry.header
        hooks = r.hooks["response"]
        if self._hook not in hooks:
            hooks.append(self._hook)
        return r

    # -- pickle ----------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """Carry the settings and the token (see ``ClientTokens``), never locks or connections."""
        return {key: value for key, value in self.__dict__.items() if key not in _RUNTIME}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Join this process's shared token (or make one); keep the carried token if better."""
        self.__dict__.update(state)
        self._reset_runtime_state()


# What _reset_runtime_state sets again after unpickling.
_RUNTIME = frozenset({"_lifecycle", "_clock", "_hook"})
