"""OAuth 2.0 client credentials for ``requests``: the adapter around a token lifecycle.

The token's life (cache, single flight, refresh ahead, file cache, process
store) lives in :mod:`clarify_auth.tokens.lifecycle`; this module adds what belongs
to ``requests``: the header on each request, the origin check, the retry after
a 401, and the ``requests.Session`` that carries token requests.
"""

from __future__ import annotations

import logging
import os
import time
import weakref
from typing import TYPE_CHECKING, Any, Literal

from requests.structures import CaseInsensitiveDict

from clarify_auth._config import (
    TimeoutSpec,
    checked_timeout,
)
from clarify_auth._errors import ClarifyAuthError, CredentialsError, shortened
from clarify_auth.credentials.model import ClientCredentials, Credentials
from clarify_auth.tokens.clock import suspend_aware_clock
from clarify_auth.tokens.lifecycle import (
    TokenCounters,
    TokenLifecycle,
    lifecycle_key,
    shared_lifecycle,
)
from clarify_auth.tokens.stores.protocol import StoreKey, TokenStore
from clarify_auth.transports.requests.authenticators import Authenticator
from clarify_auth.transports.requests.oauth_checks import checked_settings, lock_timeout
from clarify_auth.transports.requests.retry_401 import retry_after_401
from clarify_auth.transports.requests.token_requests import (
    DEFAULT_TOKEN_TIMEOUT,
    TokenEndpoint,
    new_token_http_session,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    import requests
    from pydantic import SecretStr
    from typing_extensions import Unpack

    from clarify_auth.tokens.token import AccessToken, CachedToken
    from clarify_auth.transports.requests.options import OAuthOptions

__all__ = ["OAuthClientCredentials"]

logger = logging.getLogger("clarify_auth")

_DEFAULT_ATTEMPTS = 4
_DEFAULT_DEADLINE_S = 60.0
# Waiting for another thread's token request never outlasts its own deadline by more.
_WAIT_SLACK_S = 2.0
# requests copies these from a ClarifySession onto its token requests.
_TRANSPORT_SETTINGS = ("proxies", "verify", "cert", "trust_env")


class OAuthClientCredentials(Authenticator):
    """OAuth 2.0 client-credentials tokens, shared, cached and refreshed ahead of expiry.

    - One token for every authenticator in the process with the same token URL,
      client ID, audience and secret (``shared=False`` keeps a private one), and
      one token request however many threads need a token at once; they share
      its result or its error.
    - The token is reused until shortly before ``expires_in`` runs out, counted
      on a clock that keeps running while the machine sleeps. Ahead of that (by
      a quarter of the lifetime, at most 5 minutes) one caller starts a refresh
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
        secret, token_url, token_cache = checked_settings(
            client_id, client_secret, token_url, audience, attempts, deadline, session, token_cache
        )
        self._restrict_to(api_url)
        self._endpoint = TokenEndpoint(
            token_url=token_url,
            client_id=client_id,
            client_secret=secret,
            audience=audience,
            timeout=checked_timeout(timeout, what="OAuthClientCredentials: timeout"),
            attempts=attempts,
            deadline=float(deadline),
            clock=clock or suspend_aware_clock(),
            sleep=sleep or time.sleep,
        )
        self._injected_clock = clock
        self._cache = token_cache or None
        self._shared = bool(shared)
        self._session = session
        self._refresh_in_background = refresh_in_background
        self._settings_from: Callable[[], requests.Session | None] = _nothing
        self._lifecycle = self._find_lifecycle()
        self._reset_runtime_state()

    def _find_lifecycle(self) -> TokenLifecycle:
        """This client's lifecycle: the process's shared one, or a private one."""
        endpoint, cache = self._endpoint, self._cache
        store_key = StoreKey(
            endpoint.token_url, endpoint.client_id, endpoint.audience, endpoint.client_secret
        )

        def create() -> TokenLifecycle:
            return TokenLifecycle(
                clock=endpoint.clock,
                store=cache,
                store_key=store_key,
                token_url=endpoint.token_url,
                hold_s=endpoint.deadline,
            )

        if not self._shared:
            return create()
        key = lifecycle_key(
            endpoint.token_url,
            endpoint.client_id,
            endpoint.audience,
            endpoint.client_secret,
            # An injected clock shares only with itself; every default clock is one.
            clock=self._injected_clock,
        )
        lifecycle = shared_lifecycle(key, create)
        if cache is not None:
            lifecycle.use_store(cache, store_key)
        endpoint.clock = lifecycle.clock  # deadlines must be read on the clock they were set on
        return lifecycle

    def _reset_runtime_state(self) -> None:
        """Create what must never be shared with a fork or carried in a pickle."""
        self._clock = self._lifecycle.clock
        self._hook = self._retry_after_401  # bound once, not per request
        self._http: requests.Session | None = None
        _LIVE_AUTHENTICATORS.add(self)

    @classmethod
    def from_credentials(
        cls, credentials: Credentials, **options: Unpack[OAuthOptions]
    ) -> OAuthClientCredentials:
        """Build from ``client-credentials`` credentials; options go to the constructor.

        The authenticator signs requests to the origin of ``credentials.api_url`` only.
        """
        inner = credentials.credentials
        if not isinstance(inner, ClientCredentials):
            raise CredentialsError(
                "credentials.type: is 'basic-auth'; OAuthClientCredentials needs "
                "'client-credentials' credentials (use BasicAuth or Authenticator.from_credentials)"
            )
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
        return self._cache

    @property
    def counters(self) -> TokenCounters:
        """What this client's token cost this process so far: fetches, hits, store failures.

        Shared by every authenticator of this process with the same client
        (they share one token).
        """
        return self._lifecycle.counters()

    @property
    def shared(self) -> bool:
        """Whether the token is shared with this process's other authenticators of this client."""
        return self._shared

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
            return self._current().token
        except ClarifyAuthError as exc:
            raise shortened(exc) from exc.__cause__

    def authorization(self) -> str:
        """Return ``"Bearer <token>"``, fetching a token only when needed."""
        try:
            return self._current().header
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
        lifecycle = self._lifecycle
        entry = lifecycle.entry
        if entry is not None and lifecycle.clock() < entry.refresh_at:
            lifecycle.process_hits += 1
            return entry.header
        return None

    def refused(self, header: str) -> bool:
        """Drop the token in ``header`` if it is still current; a Bearer header may be retried."""
        if not header.startswith("Bearer "):
            return False
        self._lifecycle.invalidate_if_current(header)
        return True

    def _current(self) -> CachedToken:
        return self._current_via(self._fetch)

    def _current_via(self, fetch: Callable[[], tuple[AccessToken, float]]) -> CachedToken:
        """The current token, fetched through ``fetch`` when needed (a transport's own)."""
        lifecycle = self._lifecycle
        entry = lifecycle.entry
        if entry is not None and lifecycle.clock() < entry.refresh_at:
            lifecycle.process_hits += 1
            return entry
        return lifecycle.refresh_or_wait(
            fetch, background=self._refresh_in_background, wait_s=self._wait_bound()
        )

    def _wait_bound(self) -> float:
        """The longest a caller waits for a token: a store's lock, then a whole fetch."""
        store = self._lifecycle.store
        lock_wait = lock_timeout(store) if store is not None else 0.0
        return lock_wait + self._endpoint.deadline + _WAIT_SLACK_S

    def _fetch(self) -> tuple[AccessToken, float]:
        return self._endpoint.fetch(self._token_http())

    def _token_http(self) -> requests.Session:
        """The session that carries token requests, set up as the user's own would be."""
        if self._session is not None:
            return self._session
        http = self._http
        if http is None:
            http = self._http = new_token_http_session()
        source = self._settings_from()
        if source is not None:
            # Read at each token request: the user may set them after building the session.
            for name in _TRANSPORT_SETTINGS:
                setattr(http, name, getattr(source, name))
        return http

    def _take_transport_settings_from(self, session: requests.Session) -> None:
        """Send token requests with ``session``'s proxies, verify, cert and trust_env."""
        if self._session is None:
            self._settings_from = weakref.ref(session)

    def close(self) -> None:
        """Close the connections used for token requests (the token stays cached)."""
        http, self._http = self._http, None
        if http is not None:
            http.close()

    # -- 401: drop the token, fetch anew, retry once ------------------------

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
            entry = self._current()
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

    def _retry_after_401(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        return retry_after_401(self, response, **kwargs)

    # -- pickle ----------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """Carry the settings and the current token, never locks or connections.

        The token travels as its remaining lifetime plus the wall-clock time of
        pickling; the copy rebases it on its own clock.
        """
        runtime = {"_lifecycle", "_http", "_clock", "_hook", "_settings_from"}
        state = {key: value for key, value in self.__dict__.items() if key not in runtime}
        state["_carried_token"] = self._lifecycle.export()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Join this process's shared token (or make one); keep the carried token if better."""
        carried = state.pop("_carried_token", None)
        self.__dict__.update(state)
        self._endpoint.clock = self._injected_clock or suspend_aware_clock()
        self._settings_from = _nothing
        self._lifecycle = self._find_lifecycle()
        self._reset_runtime_state()
        if carried is not None:
            self._lifecycle.adopt(carried)


def _nothing() -> None:
    return None


# Every live OAuth authenticator, so that a forked child gets token
# connections of its own instead of sharing the parent's sockets.
_LIVE_AUTHENTICATORS: weakref.WeakSet[OAuthClientCredentials] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for authenticator in list(_LIVE_AUTHENTICATORS):
        authenticator._http = None  # noqa: SLF001 - our own class


if hasattr(os, "register_at_fork"):  # pragma: no branch - absent on Windows only
    os.register_at_fork(after_in_child=_after_fork_in_child)
