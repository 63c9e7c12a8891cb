"""The one seam between a token's lifecycle and where tokens are kept beyond the process.

A :class:`TokenStore` keeps access tokens where other processes or machines
can find them: files on this machine (:class:`~clarify_auth.FileTokenCache`),
a Redis server shared by a fleet (:class:`~clarify_auth.RedisTokenCache`), or
a user's own database or secrets manager. The lifecycle
(:mod:`clarify_auth.tokens.lifecycle`) knows only this protocol; it asks a store
only when the process itself holds no usable token, and treats every
exception a store raises as "the store is unavailable": a warning, never an
error from a request.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from pydantic import SecretStr

    from clarify_auth.tokens.token import AccessToken

from clarify_auth._errors import ClarifyAuthError

__all__ = ["StoreKey", "StoredToken", "TokenStore", "TokenStoreError", "warn_limited"]

logger = logging.getLogger("clarify_auth")


@dataclass(frozen=True, slots=True)
class StoreKey:
    """Which client a token belongs to: what a store files an entry under.

    Two authenticators share a stored token exactly when their keys are equal.
    ``digest`` names the client without revealing the secret (a SHA-256 over
    the token URL, client ID, audience and a hash of the secret); a store that
    needs key material of its own (the Redis store encrypts with it) derives
    it from ``secret``.

    Example:
        >>> from pydantic import SecretStr
        >>> key = StoreKey("https://api.clarify.io/v1/oauth/token", "test-client",
        ...                "https://api.clarify.io/v1/", SecretStr("test-secret-x"))
        >>> len(key.digest)
        64
        >>> "test-secret-x" in repr(key)
        False
    """

    token_url: str
    client_id: str
    audience: str
    secret: SecretStr = field(repr=False)
    digest: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Compute the digest once."""
        secret_hash = hashlib.sha256(self.secret.get_secret_value().encode()).hexdigest()
        material = f"clarify-auth\n{self.token_url}\n{self.client_id}\n{self.audience}\n"
        digest = hashlib.sha256((material + secret_hash).encode()).hexdigest()
        object.__setattr__(self, "digest", digest)


@dataclass(frozen=True, slots=True)
class StoredToken:
    """A token as a store hands it over: the token and how long it stays usable.

    Both durations count from the moment of the call (:meth:`TokenStore.save`
    or :meth:`TokenStore.load`), in seconds, so no clock has to be shared
    between the processes or machines that use the store.

    Attributes:
        token: The access token.
        refresh_in: Seconds until a refresh ahead of expiry is due.
        expires_in: Seconds until the token must no longer be sent; a store
            should keep the entry no longer than this.
    """

    token: AccessToken
    refresh_in: float
    expires_in: float

    def __repr__(self) -> str:
        """Show the deadlines, never the token."""
        return f"StoredToken(refresh_in={self.refresh_in:.1f}, expires_in={self.expires_in:.1f})"


@runtime_checkable
class TokenStore(Protocol):
    """Where tokens are kept beyond the process: pass one as ``token_cache=``.

    The lifecycle calls a store only when the process holds no usable token
    (cold, or at the refresh point): first :meth:`load`; when that finds
    nothing, :meth:`lock` (so that one of the processes sharing the store
    fetches while the others wait), :meth:`load` again, and after a fetch
    :meth:`save`. After the API refused a token (401) it calls
    :meth:`discard`. Any exception from a store is logged as a warning and the
    process goes on without it, so a store may simply let its errors escape.

    A working store in a few lines, for one process's dict (a database or a
    secrets manager looks the same, with the wall-clock deadline stored next to
    the token)::

        import contextlib, time

        class DictStore:
            lock_timeout = 0.0

            def __init__(self):
                self.entries = {}

            def load(self, key):
                found = self.entries.get(key.digest)
                if found is None:
                    return None
                token, refresh_at, expires_at = found
                now = time.monotonic()
                if now >= expires_at:
                    return None
                return StoredToken(token, refresh_at - now, expires_at - now)

            def save(self, key, stored):
                now = time.monotonic()
                self.entries[key.digest] = (
                    stored.token, now + stored.refresh_in, now + stored.expires_in
                )

            def discard(self, key, access_token):
                found = self.entries.get(key.digest)
                if found and found[0].access_token.get_secret_value() == access_token:
                    del self.entries[key.digest]

            def lock(self, key, *, hold):
                return contextlib.nullcontext(False)
    """

    @property
    def lock_timeout(self) -> float:
        """The longest :meth:`lock` waits for another holder, in seconds."""

    def load(self, key: StoreKey) -> StoredToken | None:
        """The stored token for ``key`` if there is one still usable, else ``None``."""

    def save(self, key: StoreKey, stored: StoredToken) -> None:
        """Keep ``stored`` for ``key`` for at most ``stored.expires_in`` seconds."""

    def discard(self, key: StoreKey, access_token: str) -> None:
        """Remove the stored token for ``key`` if it is still ``access_token`` (refused)."""

    def lock(self, key: StoreKey, *, hold: float) -> AbstractContextManager[bool]:
        """Become the one that fetches for ``key``, for at most ``hold`` seconds.

        Yields ``True`` while this caller holds the lock, ``False`` when it
        gave up waiting (after at most :attr:`lock_timeout` seconds), could
        not lock, or saw another holder's token arrive: the caller then loads
        again and fetches for itself only if there is still nothing.
        """


class TokenStoreError(ClarifyAuthError):
    """A store could not be used; it has already said why (the lifecycle logs no more)."""


_warned_lock = threading.Lock()
_last_warned: dict[tuple[str, str], float] = {}


def _after_fork_in_child() -> None:
    global _warned_lock  # noqa: PLW0603 - a parent thread may have held it at the fork
    _warned_lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # pragma: no branch - absent on Windows only
    os.register_at_fork(after_in_child=_after_fork_in_child)


def warn_limited(key: tuple[str, str], interval: float, message: str, *args: object) -> None:
    """Log a warning unless the same ``key`` was logged less than ``interval`` seconds ago."""
    now = time.monotonic()
    with _warned_lock:
        last = _last_warned.get(key)
        if last is not None and now - last < interval:
            return
        _last_warned[key] = now
    logger.warning(message, *args)
