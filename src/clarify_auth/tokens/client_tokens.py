"""One OAuth client's token, as every transport's adapter asks for it.

:class:`ClientTokens` finds the client's :class:`~clarify_auth.tokens.lifecycle.TokenLifecycle`
(the process's shared one, or a private one), answers the hot path without a
lock, sends the slow path through the lifecycle with the transport's own
*fetch*, bounds how long a caller waits, and carries the token through
``pickle``. The ``requests`` authenticator and the httpx auth both hold one;
neither reaches into the lifecycle for more than its current entry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clarify_auth.tokens.clock import suspend_aware_clock
from clarify_auth.tokens.lifecycle import TokenLifecycle, lifecycle_key, shared_lifecycle

if TYPE_CHECKING:
    from collections.abc import Callable

    from clarify_auth.tokens.lifecycle import Fetch
    from clarify_auth.tokens.stores.protocol import StoreKey, TokenStore
    from clarify_auth.tokens.token import CachedToken

__all__ = ["ClientTokens", "lock_timeout"]

# Waiting for another thread's token request never outlasts its own deadline by more.
_WAIT_SLACK_S = 2.0


def lock_timeout(store: TokenStore) -> float:
    """The store's longest wait for another holder; a user store's odd value counts as 0."""
    try:
        wait = float(store.lock_timeout)
    except Exception:  # noqa: BLE001 - a user's store: its property may fail
        return 0.0
    return wait if 0 <= wait < float("inf") else 0.0


class ClientTokens:
    """One client's token for an adapter: its lifecycle, the way to ask, the bound on waiting.

    Args:
        key: The client (token URL, client ID, audience, secret).
        clock: The monotonic clock, or ``None`` for the default that counts
            suspend; an injected clock shares a lifecycle only with itself.
        store: Shares the token beyond the process, or ``None``.
        shared: Share the lifecycle with this process's other adapters of the client.
        deadline: The longest one fetch may take, seconds.
        background: Refresh ahead of expiry on a background thread.
    """

    def __init__(
        self,
        key: StoreKey,
        *,
        clock: Callable[[], float] | None,
        store: TokenStore | None,
        shared: bool,
        deadline: float,
        background: bool,
    ) -> None:
        """Find (or make) the client's lifecycle; nothing is fetched."""
        self.key = key
        self.store = store
        self.shared = shared
        self.deadline = deadline
        self.background = background
        self._injected_clock = clock
        self.lifecycle = self._find_lifecycle()

    def _find_lifecycle(self) -> TokenLifecycle:
        """The process's shared lifecycle for this client, or a private one."""
        key, store = self.key, self.store
        clock = self._injected_clock or suspend_aware_clock()

        def create() -> TokenLifecycle:
            return TokenLifecycle(
                clock=clock,
                store=store,
                store_key=key,
                token_url=key.token_url,
                hold_s=self.deadline,
            )

        if not self.shared:
            return create()
        process_key = lifecycle_key(
            key.token_url,
            key.client_id,
            key.audience,
            key.secret,
            # An injected clock shares only with itself; every default clock is one.
            clock=self._injected_clock,
        )
        lifecycle = shared_lifecycle(process_key, create)
        if store is not None:
            lifecycle.use_store(store, key)
        return lifecycle

    def current(self, fetch: Fetch) -> CachedToken:
        """The token to use now, fetched through ``fetch`` (the transport's own) when needed."""
        lifecycle = self.lifecycle
        entry = lifecycle.entry
        if entry is not None and lifecycle.clock() < entry.refresh_at:
            lifecycle.process_hits += 1
            return entry
        return lifecycle.refresh_or_wait(
            fetch, background=self.background, wait_s=self.wait_bound()
        )

    def cached(self) -> CachedToken | None:
        """The token if it needs no refresh yet, else ``None``; no I/O, no lock."""
        lifecycle = self.lifecycle
        entry = lifecycle.entry
        if entry is not None and lifecycle.clock() < entry.refresh_at:
            lifecycle.process_hits += 1
            return entry
        return None

    def wait_bound(self) -> float:
        """The longest a caller waits for a token: a store's lock, then a whole fetch."""
        store = self.lifecycle.store
        lock_wait = lock_timeout(store) if store is not None else 0.0
        return lock_wait + self.deadline + _WAIT_SLACK_S

    def refused(self, header: str) -> bool:
        """Drop the token in ``header`` if it is still current; a Bearer header may be retried."""
        if not header.startswith("Bearer "):
            return False
        self.lifecycle.invalidate_if_current(header)
        return True

    def __getstate__(self) -> dict[str, Any]:
        """Carry the settings and the current token, never the lifecycle's locks.

        The token travels as its remaining lifetime plus the wall-clock time of
        pickling; the copy rebases it on its own clock.
        """
        state = {key: value for key, value in self.__dict__.items() if key != "lifecycle"}
        state["_carried_token"] = self.lifecycle.export()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Join this process's shared token (or make one); keep the carried token if better."""
        carried = state.pop("_carried_token", None)
        self.__dict__.update(state)
        self.lifecycle = self._find_lifecycle()
        if carried is not None:
            self.lifecycle.adopt(carried)
