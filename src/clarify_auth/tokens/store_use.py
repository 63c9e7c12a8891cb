"""How a token lifecycle uses its store: load, lock, load again, fetch, save; discard.

Every call goes through :meth:`StoreUse._store_call`: whatever a store raises is
counted and logged (rate-limited, the secret masked), and the process goes on
without the store, so no store failure ever fails a request.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, TypeVar

from clarify_auth.tokens.stores.protocol import StoredToken, TokenStoreError, warn_limited
from clarify_auth.tokens.token import CachedToken

if TYPE_CHECKING:
    from collections import deque
    from collections.abc import Callable

    from clarify_auth.tokens.stores.protocol import StoreKey, TokenStore
    from clarify_auth.tokens.token import AccessToken

    Fetch = Callable[[], tuple[AccessToken, float]]

__all__ = ["StoreUse", "store_kind"]

_T = TypeVar("_T")

logger = logging.getLogger("clarify_auth")

# The same fault of one store is logged at most this often.
_STORE_WARNING_INTERVAL_S = 300.0


class StoreUse:
    """The store side of :class:`~clarify_auth.tokens.lifecycle.TokenLifecycle`."""

    clock: Callable[[], float]
    store: TokenStore | None
    store_key: StoreKey | None
    hold_s: float
    entry: CachedToken | None
    fetches: int
    store_hits: int
    store_failures: int
    _dropped: deque[str]

    def _obtain(self, fetch: Fetch) -> CachedToken:
        """A new token: from the store when another process has one, else fetched."""
        if self.store is None:
            return self._issued(fetch)
        shared = self._usable_from_store()
        if shared is not None:
            return shared
        lock = self._store_call("lock", lambda store, key: store.lock(key, hold=self.hold_s))
        held: bool | None = None  # unset, should entering the lock raise a BaseException
        try:
            held = lock is not None and self._store_call("lock", lambda *_: lock.__enter__())
            # Whoever held the lock before us may have just saved a token.
            shared = self._usable_from_store()
            if shared is not None:
                return shared
            entry = self._issued(fetch)
            self._save(entry)
            return entry
        finally:
            if lock is not None and held is not None:
                self._store_call("unlock", lambda *_: lock.__exit__(None, None, None))

    def _issued(self, fetch: Fetch) -> CachedToken:
        self.fetches += 1
        token, sent_at = fetch()
        return CachedToken.issued(token, requested_at=sent_at)

    def _usable_from_store(self) -> CachedToken | None:
        stored = self._store_call("load", lambda store, key: store.load(key))
        if stored is None:
            return None
        now = self.clock()
        shared = CachedToken.at(
            stored.token, refresh_at=now + stored.refresh_in, expires_at=now + stored.expires_in
        )
        current = self.entry
        if current is not None and shared.header == current.header:
            return None  # the token we are replacing
        if shared.header in self._dropped:
            return None  # refused here already; the store has not caught up
        if now < shared.refresh_at or (current is None and now < shared.expires_at):
            logger.info("using an access token another process fetched (%s)", self.store)
            self.store_hits += 1
            return shared
        return None

    def _save(self, entry: CachedToken) -> None:
        now = self.clock()
        stored = StoredToken(entry.token, entry.refresh_at - now, entry.expires_at - now)
        self._store_call("save", lambda store, key: store.save(key, stored))

    def _store_call(self, what: str, call: Callable[[TokenStore, StoreKey], _T]) -> _T | None:
        """``call(store, key)``, or ``None`` (counted, and logged once a while) if it fails."""
        store, key = self.store, self.store_key
        if store is None or key is None:
            return None
        try:
            return call(store, key)
        except Exception as exc:  # noqa: BLE001 - a store never fails a request
            self.store_failures += 1
            if not isinstance(exc, TokenStoreError):  # ours have said why already
                secret = key.secret.get_secret_value()
                reason = f"{type(exc).__name__}: {exc}".replace(secret, "**********")
                warn_limited(
                    (f"store {id(store)}", what),
                    _STORE_WARNING_INTERVAL_S,
                    "token store %r failed to %s (%s); going on without it",
                    store,
                    what,
                    reason,
                )
            return None

    def _discard(self, header: str) -> None:
        access_token = header.removeprefix("Bearer ")
        self._store_call("discard", lambda store, key: store.discard(key, access_token))


def store_kind(store: TokenStore) -> str:
    """What a store calls itself (``kind``: "file", "redis"), else its class's name."""
    kind = getattr(store, "kind", None)
    return kind if isinstance(kind, str) else type(store).__name__
