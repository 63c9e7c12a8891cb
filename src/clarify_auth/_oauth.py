"""OAuth 2.0 client credentials: tokens cached, shared between threads, refreshed ahead."""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr
from requests.cookies import extract_cookies_to_jar
from requests.structures import CaseInsensitiveDict

from clarify_auth._auth import Authenticator, _secret
from clarify_auth._cache import FileTokenCache
from clarify_auth._config import TimeoutSpec, checked_timeout, is_positive_number
from clarify_auth._credentials import ClientCredentials, Credentials
from clarify_auth._errors import ConfigurationError, CredentialsError, TokenError
from clarify_auth._token import AccessToken, CachedToken
from clarify_auth._token_endpoint import (
    DEFAULT_TOKEN_TIMEOUT,
    TokenEndpoint,
    new_token_http_session,
)
from clarify_auth._urls import check_transport, normalise_base_url

if TYPE_CHECKING:
    from collections.abc import Callable

    import requests

__all__ = ["OAuthClientCredentials"]

logger = logging.getLogger("clarify_auth")

_DEFAULT_ATTEMPTS = 4
_DEFAULT_DEADLINE_S = 60.0
# After a refresh ahead of expiry failed, wait this long before trying again
# while the current token is still good.
_EARLY_REFRESH_RETRY_S = 10.0
# Waiting for another thread's token request never outlasts its own deadline by more.
_WAIT_SLACK_S = 30.0


class OAuthClientCredentials(Authenticator):
    """OAuth 2.0 client-credentials tokens, cached, shared and refreshed ahead of expiry.

    - One token request however many threads need a token at once; they share
      its result or its error.
    - The token is reused until shortly before ``expires_in`` runs out. Ahead of
      that (by a quarter of the lifetime, at most 5 minutes) one caller starts a
      refresh in the background while everyone keeps using the still-valid token.
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
        timeout: Per token request, seconds or ``(connect, read)``.
        attempts: Token requests per fetch, at most (at least 1).
        deadline: Seconds a whole fetch, retries and waits included, may take.
        refresh_in_background: Refresh ahead of expiry on a background thread
            (``True``) or on the calling thread (``False``).
        clock: Monotonic clock in seconds (tests inject one); default ``time.monotonic``.
        sleep: Sleeps between retries (tests inject one); default ``time.sleep``.
        token_cache: A :class:`FileTokenCache` to share tokens with other
            processes on this machine; ``None`` keeps them in this process.

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
        timeout: TimeoutSpec = DEFAULT_TOKEN_TIMEOUT,
        attempts: int = _DEFAULT_ATTEMPTS,
        deadline: float = _DEFAULT_DEADLINE_S,
        refresh_in_background: bool = True,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        token_cache: FileTokenCache | None = None,
    ) -> None:
        """Check the options; no token is fetched until one is needed."""
        if not isinstance(client_id, str) or not client_id.strip():
            raise CredentialsError("OAuthClientCredentials: client_id must be a non-empty string")
        secret = (
            client_secret
            if isinstance(client_secret, SecretStr)
            else _secret(client_secret, "client_secret")
        )
        if not secret.get_secret_value():
            raise CredentialsError("OAuthClientCredentials: client_secret must not be empty")
        token_url = _checked_url(token_url, "token_url").rstrip("/")
        check_transport(token_url, what="the client secret")
        if not isinstance(audience, str) or not audience:
            raise ConfigurationError("OAuthClientCredentials: audience must be a non-empty string")
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ConfigurationError("OAuthClientCredentials: attempts must be an int >= 1")
        if not is_positive_number(deadline):
            raise ConfigurationError("OAuthClientCredentials: deadline must be a positive number")
        self._endpoint = TokenEndpoint(
            token_url=token_url,
            client_id=client_id,
            client_secret=secret,
            audience=audience,
            timeout=checked_timeout(timeout, what="OAuthClientCredentials: timeout"),
            attempts=attempts,
            deadline=float(deadline),
            # Looked up now, not at import, so a test that patched time.monotonic is obeyed.
            clock=clock or time.monotonic,
            sleep=sleep or time.sleep,
        )
        if token_cache is not None and not isinstance(token_cache, FileTokenCache):
            raise ConfigurationError(
                "OAuthClientCredentials: token_cache must be a clarify_auth.FileTokenCache"
            )
        self._cache = token_cache
        self._cache_key = (
            token_cache.key(token_url, client_id, audience, secret) if token_cache else ""
        )
        self._refresh_in_background = refresh_in_background
        self._entry: CachedToken | None = None
        self._reset_runtime_state()

    def _reset_runtime_state(self) -> None:
        """Create what must never be shared with a fork or carried in a pickle."""
        self._lock = threading.Lock()
        self._clock = self._endpoint.clock
        self._hook = self._retry_after_401  # bound once, not per request
        self._flight: _Flight | None = None
        self._http: requests.Session | None = None
        self._next_early_refresh_at = float("-inf")
        _LIVE_AUTHENTICATORS.add(self)

    @classmethod
    def from_credentials(cls, credentials: Credentials, **options: Any) -> OAuthClientCredentials:
        """Build from ``client-credentials`` credentials; options go to the constructor."""
        inner = credentials.credentials
        if not isinstance(inner, ClientCredentials):
            raise CredentialsError(
                "credentials.type: is 'basic-auth'; OAuthClientCredentials needs "
                "'client-credentials' credentials (use BasicAuth or Authenticator.from_credentials)"
            )
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

    def __repr__(self) -> str:
        """Show the client ID and token URL, never the secret or token."""
        return f"{type(self).__name__}(client_id={self.client_id!r}, token_url={self.token_url!r})"

    # -- tokens ---------------------------------------------------------------

    def token(self) -> AccessToken:
        """Return a valid access token, fetching one only when needed.

        Raises:
            TokenError: No token could be obtained.
        """
        return self._current().token

    def authorization(self) -> str:
        """Return ``"Bearer <token>"``, fetching a token only when needed."""
        return self._current().header

    def invalidate(self) -> None:
        """Forget the cached token (here and in a shared cache); the next caller fetches anew."""
        with self._lock:
            entry, self._entry = self._entry, None
        if self._cache is not None and entry is not None:
            self._cache.forget(self._cache_key, entry.header)

    def _invalidate_if_current(self, header: str) -> None:
        """Forget the cached token if it is still the one that got a 401.

        When many requests fail with the same token at once, the first drops it
        and fetches anew; the rest find the new token already in place.
        """
        with self._lock:
            if self._entry is not None and self._entry.header == header:
                self._entry = None
        if self._cache is not None:
            self._cache.forget(self._cache_key, header)

    def _current(self) -> CachedToken:
        entry = self._entry
        if entry is not None and self._clock() < entry.refresh_at:
            return entry  # the hot path: no lock, no allocation
        return self._refresh_or_wait()

    def _refresh_or_wait(self) -> CachedToken:
        with self._lock:
            now = self._endpoint.clock()
            entry = self._entry
            if entry is not None and now < entry.refresh_at:
                return entry  # another thread refreshed while we waited for the lock
            flight = self._flight
            still_valid = entry is not None and now < entry.expires_at
            if still_valid and (flight is not None or now < self._next_early_refresh_at):
                return entry  # type: ignore[return-value]  # still_valid implies entry
            leader = flight is None
            if leader:
                flight = self._flight = _Flight()
        assert flight is not None  # noqa: S101 - set above when it was None
        if still_valid:
            assert entry is not None  # noqa: S101 - still_valid implies entry
            if self._refresh_in_background:
                threading.Thread(
                    target=self._lead, args=(flight,), name="clarify-auth-refresh", daemon=True
                ).start()
                return entry
            self._lead(flight)
            return flight.entry or entry
        if leader:
            self._lead(flight)
        return flight.result(self._endpoint.deadline + _WAIT_SLACK_S)

    def _lead(self, flight: _Flight) -> None:
        """Fetch a token for everyone waiting on ``flight``; never raises."""
        try:
            entry = self._obtain()
        except BaseException as exc:
            with self._lock:
                if self._flight is flight:
                    self._flight = None
                self._next_early_refresh_at = self._endpoint.clock() + _EARLY_REFRESH_RETRY_S
                current = self._entry
            if current is not None and self._endpoint.clock() < current.expires_at:
                logger.warning(
                    "refreshing the access token ahead of expiry failed (%s); "
                    "still using the current token, valid for %.0f s more",
                    exc,
                    current.expires_at - self._endpoint.clock(),
                )
            if isinstance(exc, Exception):
                flight.fail(exc)
                return
            # KeyboardInterrupt or SystemExit belongs to this thread alone;
            # the threads waiting on it get an ordinary, retryable TokenError.
            interrupted = TokenError(
                f"the token request to {self.token_url} was interrupted "
                f"({type(exc).__name__}) in another thread",
                retryable=True,
            )
            flight.fail(interrupted)
            raise
        with self._lock:
            self._entry = entry
            if self._flight is flight:
                self._flight = None
        flight.succeed(entry)

    def _obtain(self) -> CachedToken:
        """A new token: from the shared cache when another process has one, else fetched."""
        cache = self._cache
        if cache is None:
            return self._fetch()
        key = self._cache_key
        shared = self._usable_from_cache(cache, key)
        if shared is not None:
            return shared
        with cache.locked(key):
            # Whoever held the lock before us may have just written a token.
            shared = self._usable_from_cache(cache, key)
            if shared is not None:
                return shared
            entry = self._fetch()
            cache.store(key, entry, now=self._clock())
            return entry

    def _usable_from_cache(self, cache: FileTokenCache, key: str) -> CachedToken | None:
        now = self._clock()
        shared = cache.load(key, now=now)
        if shared is None:
            return None
        current = self._entry
        if current is not None and shared.header == current.header:
            return None  # the token we are replacing
        if now < shared.refresh_at or (current is None and now < shared.expires_at):
            logger.info("using an access token another process fetched (shared cache)")
            return shared
        return None

    def _fetch(self) -> CachedToken:
        token, sent_at = self._endpoint.fetch(self._token_http())
        return CachedToken.issued(token, requested_at=sent_at)

    def _token_http(self) -> requests.Session:
        http = self._http
        if http is None:
            http = self._http = new_token_http_session()
        return http

    def close(self) -> None:
        """Close the connections used for token requests (the token stays cached)."""
        http, self._http = self._http, None
        if http is not None:
            http.close()

    # -- 401: drop the token, fetch anew, retry once ------------------------

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        """Attach the bearer token and arrange one retry after a 401.

        This runs for every request, so it is kept to a few attribute reads:
        no lock, no allocation, unless the token needs refreshing.
        """
        url = r.url or ""
        if not url.startswith(self._trusted_origin):
            self._check_origin(url)
        entry = self._entry
        if entry is None or self._clock() >= entry.refresh_at:
            entry = self._refresh_or_wait()
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
        request = response.request
        if response.status_code != 401 or getattr(request, "_clarify_auth_retried", False):  # noqa: PLR2004
            return response
        sent = request.headers.get("Authorization")
        # No header: requests stripped it on a redirect to another host. Never re-add it there.
        if sent is None or not sent.startswith("Bearer "):
            return response
        if request.body is not None and not isinstance(request.body, bytes | str):
            return response  # a stream cannot be sent twice
        logger.info("request to %s got 401; fetching a new token and retrying once", request.url)
        self._invalidate_if_current(sent)
        retry = request.copy()
        retry.headers["Authorization"] = self.authorization()
        retry._clarify_auth_retried = True  # type: ignore[attr-defined]  # noqa: SLF001
        response.content  # noqa: B018 - read the body so the connection can be reused
        response.close()
        cookies = getattr(retry, "_cookies", None)
        if cookies is not None:
            extract_cookies_to_jar(cookies, request, response.raw)  # type: ignore[no-untyped-call]
            retry.prepare_cookies(cookies)
        if response.connection is None:  # pragma: no cover - only for hand-made responses
            return response
        new = response.connection.send(retry, **kwargs)
        new.history.append(response)
        new.request = retry
        return new

    # -- pickle ----------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """Carry the settings and the cached token, never locks or connections.

        A monotonic reading means nothing in another process or machine, so
        the token travels as its remaining lifetime plus the wall-clock time of
        pickling; the copy rebases it on its own clock.
        """
        state = {
            key: value
            for key, value in self.__dict__.items()
            if key
            not in {
                "_lock",
                "_flight",
                "_http",
                "_next_early_refresh_at",
                "_entry",
                "_clock",
                "_hook",
            }
        }
        entry = self._entry
        if entry is not None:
            now = self._endpoint.clock()
            state["_entry_remaining"] = (
                entry.token,
                entry.refresh_at - now,
                entry.expires_at - now,
                time.time(),
            )
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuild locks and connections; rebase a carried token on this clock."""
        carried = state.pop("_entry_remaining", None)
        self.__dict__.update(state)
        self._entry = None
        self._reset_runtime_state()
        if carried is not None:
            token, refresh_in, expires_in, pickled_at = carried
            elapsed = max(time.time() - pickled_at, 0.0)
            now = self._endpoint.clock()
            if expires_in - elapsed > 0:
                self._entry = CachedToken.at(
                    token,
                    refresh_at=now + refresh_in - elapsed,
                    expires_at=now + expires_in - elapsed,
                )


class _Flight:
    """One token fetch in progress, whose outcome every waiting thread shares."""

    __slots__ = ("_done", "entry", "error")

    def __init__(self) -> None:
        self._done = threading.Event()
        self.entry: CachedToken | None = None
        self.error: BaseException | None = None

    def succeed(self, entry: CachedToken) -> None:
        self.entry = entry
        self._done.set()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self._done.set()

    def result(self, timeout: float) -> CachedToken:
        if not self._done.wait(timeout):
            raise TokenError(
                f"gave up after waiting {timeout:g} s for another thread's token request",
                retryable=True,
            )
        if self.error is not None:
            raise self.error
        assert self.entry is not None  # noqa: S101 - set before _done
        return self.entry


# Every live OAuth authenticator, so that a forked child can drop locks and
# connections that belong to the parent (a lock held by a parent thread at the
# moment of fork would otherwise stay locked forever in the child).
_LIVE_AUTHENTICATORS: weakref.WeakSet[OAuthClientCredentials] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for authenticator in list(_LIVE_AUTHENTICATORS):
        authenticator._reset_runtime_state()  # noqa: SLF001 - our own class


if hasattr(os, "register_at_fork"):  # pragma: no branch - absent on Windows only
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _checked_url(url: object, name: str) -> str:
    if not isinstance(url, str):
        raise ConfigurationError(f"{name} must be a string, got {type(url).__name__}")
    try:
        return normalise_base_url(url)
    except ValueError as exc:
        raise ConfigurationError(f"{name}: {exc}") from None
