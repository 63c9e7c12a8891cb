"""The life of one client's access token, whatever carries the HTTP requests.

A :class:`TokenLifecycle` holds the current token and decides when a new one is
needed: one fetch in flight however many threads ask (they share its result or
its error), a refresh ahead of expiry while the old token stays in use, a file
cache shared with other processes, compare-and-invalidate after a 401, and the
token's journey through ``pickle`` and ``os.fork()``. It knows stores only
through the :class:`~clarify_auth.tokens.stores.protocol.TokenStore` protocol, and nothing of
``requests`` or ``httpx``: the caller that needs a token hands it a *fetch*
function, and each transport is a thin adapter around the lifecycle.

Every authenticator in a process with the same token URL, client ID, audience,
secret and clock holds the same lifecycle (see :func:`shared_lifecycle`),
so ten sessions built from one credentials file cost one token request.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from typing import TYPE_CHECKING

from clarify_auth._errors import TokenError
from clarify_auth.tokens.counters import TokenCounters
from clarify_auth.tokens.flight import Flight, LeaderGoneError
from clarify_auth.tokens.process_store import (
    clear_shared_lifecycles,
    lifecycle_key,
    shared_lifecycle,
)
from clarify_auth.tokens.store_use import StoreUse, store_kind
from clarify_auth.tokens.token import AccessToken, CachedToken

if TYPE_CHECKING:
    from collections.abc import Callable

    from clarify_auth.tokens.stores.protocol import StoreKey, TokenStore

    #: Fetches a new token from the endpoint: the token and the clock reading
    #: (on the lifecycle's clock) taken when its request left.
    Fetch = Callable[[], tuple[AccessToken, float]]

__all__ = [
    "Flight",
    "LeaderGoneError",
    "TokenCounters",
    "TokenLifecycle",
    "clear_shared_lifecycles",
    "lifecycle_key",
    "shared_lifecycle",
]

logger = logging.getLogger("clarify_auth")

# Dropped tokens remembered per client, against stale pickles.
_DROPPED_REMEMBERED = 8
# After a refresh ahead of expiry failed, wait this long before trying again
# while the current token is still good.
_EARLY_REFRESH_RETRY_S = 10.0
# How long a store's lock may be held for a fetch when nobody said.
_DEFAULT_HOLD_S = 60.0


class TokenLifecycle(StoreUse):
    """One client's token: cached, fetched once for all, refreshed ahead of expiry.

    Args:
        clock: Monotonic seconds that count time suspended; deadlines live on it.
        store: Shares the token with other processes or machines, or ``None``.
        store_key: The client's key in ``store``.
        token_url: Named in messages only.
        hold_s: The longest one fetch may take (a store's lock lasts no longer).
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        store: TokenStore | None = None,
        store_key: StoreKey | None = None,
        token_url: str = "",
        hold_s: float = _DEFAULT_HOLD_S,
    ) -> None:
        """Start with no token; nothing is fetched until a caller needs one."""
        self.clock = clock
        self.store = store if store_key is not None else None
        self.store_key = store_key
        self.token_url = token_url
        self.hold_s = hold_s
        #: The current token; read without the lock on the hot path.
        self.entry: CachedToken | None = None
        #: Counters (see :class:`TokenCounters`); process_hits is counted by
        #: the adapters on their hot paths, without a lock.
        self.fetches = 0
        self.process_hits = 0
        self.store_hits = 0
        self.store_failures = 0
        # Headers of tokens dropped here (refused or invalidated), so that an
        # older pickle arriving later cannot bring one back.
        self._dropped: deque[str] = deque(maxlen=_DROPPED_REMEMBERED)
        self._reset_runtime_state()

    def _reset_runtime_state(self) -> None:
        """Create what a forked child must not inherit (a lock a parent thread held)."""
        self._lock = threading.Lock()
        self._flight: Flight | None = None
        self._next_early_refresh_at = float("-inf")
        _LIVE.add(self)

    def __repr__(self) -> str:
        """Show the token URL and whether a token is held, never the token."""
        held = "a token" if self.entry is not None else "no token"
        return f"TokenLifecycle(token_url={self.token_url!r}, holding {held})"

    def use_store(self, store: TokenStore, store_key: StoreKey) -> None:
        """Share through ``store``, unless a store is in use already.

        Authenticators of one client share one lifecycle whether or not each
        was given a store; the first store any of them brings serves all.
        """
        with self._lock:
            if self.store is None:
                self.store = store
                self.store_key = store_key

    def counters(self) -> TokenCounters:
        """A snapshot of the counters."""
        store = self.store
        return TokenCounters(
            fetches=self.fetches,
            process_hits=self.process_hits,
            store_hits=self.store_hits,
            store_failures=self.store_failures,
            store=None if store is None else store_kind(store),
        )

    # -- asking for a token ----------------------------------------------------

    def refresh_or_wait(self, fetch: Fetch, *, background: bool, wait_s: float) -> CachedToken:
        """The slow path of :meth:`current`: lead a fetch, or join the one in flight.

        A leader that is interrupted (an async task cancelled) hands over: its
        waiters claim again, and one of them leads a new fetch.
        """
        give_up_at = time.monotonic() + wait_s
        while True:
            entry, flight, leader = self.claim()
            if flight is None:
                return entry  # type: ignore[return-value]  # no flight: a token to use
            if entry is not None:  # still valid: a refresh ahead of expiry
                if background:
                    threading.Thread(
                        target=self._lead,
                        args=(flight, fetch),
                        name="clarify-auth-refresh",
                        daemon=True,
                    ).start()
                    return entry
                self._lead(flight, fetch)
                return flight.entry or entry
            if leader:
                self._lead(flight, fetch)
            try:
                return flight.result(max(give_up_at - time.monotonic(), 0.0))
            except LeaderGoneError:
                if time.monotonic() >= give_up_at:
                    raise

    def claim(self) -> tuple[CachedToken | None, Flight | None, bool]:
        """Under the lock: a token to use now, or the flight to lead (``True``) or join.

        Returns ``(token, None, False)`` when ``token`` is good to send now;
        ``(still_valid_token_or_None, flight, leader)`` otherwise.
        """
        with self._lock:
            now = self.clock()
            entry = self.entry
            if entry is not None and now < entry.refresh_at:
                return entry, None, False  # another caller refreshed while we waited
            flight = self._flight
            still_valid = entry is not None and now < entry.expires_at
            if still_valid and (flight is not None or now < self._next_early_refresh_at):
                return entry, None, False
            leader = flight is None
            if flight is None:
                flight = self._flight = Flight()
            return (entry if still_valid else None), flight, leader

    def fetch_new(self, fetch: Fetch) -> CachedToken:
        """Fetch a token now, whatever is cached, and keep and share it.

        For ``clarify-auth check``, which is there to test the credentials.
        """
        entry = self._issued(fetch)
        with self._lock:
            self.entry = entry
        self._save(entry)
        return entry

    def _lead(self, flight: Flight, fetch: Fetch) -> None:
        """Get a token for everyone waiting on ``flight``; never raises but BaseException."""
        try:
            entry = self._obtain(fetch)
        except BaseException as exc:
            self.finish(flight, error=exc)
            if isinstance(exc, Exception):
                return
            raise
        self.finish(flight, entry)

    def finish(
        self,
        flight: Flight,
        entry: CachedToken | None = None,
        *,
        error: BaseException | None = None,
        hand_over: bool = False,
    ) -> None:
        """Settle ``flight`` with ``entry`` or ``error``; ``hand_over`` lets a waiter lead anew."""
        with self._lock:
            if self._flight is flight:
                self._flight = None
            if entry is not None:
                self.entry = entry
            elif not hand_over:
                self._next_early_refresh_at = self.clock() + _EARLY_REFRESH_RETRY_S
            current = self.entry
        if entry is not None:
            flight.succeed(entry)
            return
        if isinstance(error, Exception):
            if current is not None and self.clock() < current.expires_at:
                logger.warning(
                    "refreshing the access token ahead of expiry failed (%s); "
                    "still using the current token, valid for %.0f s more",
                    error,
                    current.expires_at - self.clock(),
                )
            flight.fail(error)
            return
        kind = type(error).__name__
        if hand_over:
            flight.fail(LeaderGoneError(f"the token request to {self.token_url} was {kind}"))
            return
        # KeyboardInterrupt or SystemExit belongs to this thread alone;
        # the threads waiting on it get an ordinary, retryable TokenError.
        flight.fail(
            TokenError(
                f"the token request to {self.token_url} was interrupted ({kind}) in another thread",
                retryable=True,
            )
        )

    # -- dropping a token --------------------------------------------------------

    def invalidate(self) -> None:
        """Forget the token (here and in the store); the next caller fetches anew."""
        with self._lock:
            entry, self.entry = self.entry, None
            if entry is not None:
                self._dropped.append(entry.header)
        if entry is not None:
            self._discard(entry.header)

    def invalidate_if_current(self, header: str) -> None:
        """Forget the token if it is still the one in ``header`` (the server refused it).

        When many requests fail with the same token at once, the first drops it
        and fetches anew; the rest find the new token already in place.
        """
        with self._lock:
            self._dropped.append(header)
            if self.entry is not None and self.entry.header == header:
                self.entry = None
        self._discard(header)

    # -- crossing a process boundary -------------------------------------------------

    def export(self) -> tuple[AccessToken, float, float, float] | None:
        """The token as it can travel: its remaining deadlines and the wall-clock time.

        A monotonic reading means nothing in another process or machine, so the
        token travels as seconds left plus the ``time.time()`` of leaving.
        """
        entry = self.entry
        if entry is None:
            return None
        now = self.clock()
        return (entry.token, entry.refresh_at - now, entry.expires_at - now, time.time())

    def adopt(self, carried: tuple[AccessToken, float, float, float]) -> None:
        """Take a token that came out of :meth:`export`, unless one as good is held."""
        token, refresh_in, expires_in, left_at = carried
        elapsed = max(time.time() - left_at, 0.0)
        if expires_in - elapsed <= 0:
            return
        now = self.clock()
        arrived = CachedToken.at(
            token, refresh_at=now + refresh_in - elapsed, expires_at=now + expires_in - elapsed
        )
        with self._lock:
            if arrived.header in self._dropped:
                return  # this process already dropped that token
            held = self.entry
            if held is None or held.expires_at < arrived.expires_at:
                self.entry = arrived


# Every live lifecycle, so that a forked child can drop locks and flights that
# belong to the parent (a lock held by a parent thread at the moment of fork
# would otherwise stay locked forever in the child).
_LIVE: weakref.WeakSet[TokenLifecycle] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for lifecycle in list(_LIVE):
        lifecycle._reset_runtime_state()  # noqa: SLF001 - our own class


if hasattr(os, "register_at_fork"):  # pragma: no branch - absent on Windows only
    os.register_at_fork(after_in_child=_after_fork_in_child)
