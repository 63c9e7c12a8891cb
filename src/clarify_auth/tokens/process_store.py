"""The process store: one :class:`~clarify_auth.tokens.lifecycle.TokenLifecycle` per client.

Every authenticator in a process with the same token URL, client ID, audience,
secret and clock holds the same lifecycle, so ten sessions built from one
credentials file cost one token request.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable

    from pydantic import SecretStr

    from clarify_auth.tokens.lifecycle import TokenLifecycle

__all__ = ["clear_shared_lifecycles", "lifecycle_key", "shared_lifecycle"]

# Distinct clients a process keeps tokens for; the least recently used beyond
# this are dropped from the store (their authenticators keep working).
_STORE_SIZE = 256
_STORE: OrderedDict[Hashable, TokenLifecycle] = OrderedDict()
_STORE_LOCK = threading.Lock()


def lifecycle_key(
    token_url: str,
    client_id: str,
    audience: str,
    secret: SecretStr,
    *,
    clock: Hashable,
) -> tuple[Hashable, ...]:
    """What makes two authenticators share a token: the secret enters only as a hash.

    ``clock`` is ``None`` for the default clock; an injected one shares only
    with itself (deadlines on two clocks cannot be compared).
    """
    secret_hash = hashlib.sha256(secret.get_secret_value().encode()).hexdigest()
    return (token_url, client_id, audience, secret_hash, clock)


def shared_lifecycle(key: Hashable, create: Callable[[], TokenLifecycle]) -> TokenLifecycle:
    """The process's lifecycle for ``key``, made by ``create`` the first time."""
    with _STORE_LOCK:
        lifecycle = _STORE.get(key)
        if lifecycle is None:
            lifecycle = _STORE[key] = create()
            while len(_STORE) > _STORE_SIZE:
                _STORE.popitem(last=False)
        else:
            _STORE.move_to_end(key)
        return lifecycle


def clear_shared_lifecycles() -> None:
    """Empty the process store: authenticators built from now on start without a token."""
    with _STORE_LOCK:
        _STORE.clear()


def _after_fork_in_child() -> None:
    global _STORE_LOCK  # noqa: PLW0603 - the parent's lock may be held by a thread that is gone
    _STORE_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):  # pragma: no branch - absent on Windows only
    os.register_at_fork(after_in_child=_after_fork_in_child)
