"""Checks for options shared by the authenticators and the session."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from clarify_auth._errors import ConfigurationError

if TYPE_CHECKING:
    from clarify_auth.tokens.stores.protocol import TokenStore

__all__ = [
    "TOKEN_CACHE_ENV_VAR",
    "TimeoutSpec",
    "checked_timeout",
    "is_positive_number",
    "token_cache_from_environment",
]

#: Turns the file cache on for every authenticator not given a token_cache.
TOKEN_CACHE_ENV_VAR = "CLARIFY_TOKEN_CACHE"  # noqa: S105 - a variable name

#: A ``requests`` timeout: seconds, or ``(connect, read)`` seconds.
TimeoutSpec = float | tuple[float, float]


def is_positive_number(value: object) -> bool:
    """Tell whether ``value`` is an int or float above zero (``bool`` excluded)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def checked_timeout(timeout: object, *, what: str) -> TimeoutSpec:
    """Return ``timeout`` as floats, or raise ``ConfigurationError`` naming ``what``."""
    if is_positive_number(timeout):
        return float(timeout)  # type: ignore[arg-type]  # checked just above
    if (
        isinstance(timeout, tuple)
        and len(timeout) == 2  # noqa: PLR2004 - (connect, read)
        and all(is_positive_number(part) for part in timeout)
    ):
        return (float(timeout[0]), float(timeout[1]))
    raise ConfigurationError(
        f"{what} must be a positive number of seconds or a (connect, read) tuple of them"
    )


def token_cache_from_environment(*, default_on: bool = False) -> TokenStore | None:
    """The token store that ``$CLARIFY_TOKEN_CACHE`` asks for, or ``None``.

    ``default`` is :class:`FileTokenCache`'s default folder, an absolute path
    that folder, a ``redis://``, ``rediss://`` or ``unix://`` URL a
    :class:`RedisTokenCache` (one per URL and process, so that every
    authenticator shares its connections); unset or empty is off (or, with
    ``default_on``, the default folder, as the command line wants).

    Raises:
        ConfigurationError: Any other value, a malformed Redis URL, or a Redis
            URL without the ``redis`` extra; the message names the variable
            and never shows the value (a URL may hold a password).
    """
    from clarify_auth.tokens.stores.file_store import FileTokenCache  # noqa: PLC0415 - only when asked for

    value = os.environ.get(TOKEN_CACHE_ENV_VAR, "")
    if not value:
        return FileTokenCache() if default_on else None
    if value == "default":
        return FileTokenCache()
    if value.partition(":")[0].lower() in _REDIS_SCHEMES:
        return _redis_store(value)
    if os.path.isabs(value):  # noqa: PTH117 - a plain string check, no Path needed
        return FileTokenCache(value)
    raise ConfigurationError(
        f"${TOKEN_CACHE_ENV_VAR} must be 'default', an absolute path to a folder, or a "
        "redis://, rediss:// or unix:// URL (or unset or empty for no token cache)"
    )


_REDIS_SCHEMES = ("redis", "rediss", "unix")
_redis_stores: dict[str, TokenStore] = {}
_redis_stores_lock = threading.Lock()


def _redis_store(url: str) -> TokenStore:
    with _redis_stores_lock:
        store = _redis_stores.get(url)
        if store is not None:
            return store
        from clarify_auth.tokens.stores.redis_store import RedisTokenCache  # noqa: PLC0415 - only for Redis

        try:
            store = _redis_stores[url] = RedisTokenCache(url)
        except ConfigurationError as exc:
            raise ConfigurationError(f"${TOKEN_CACHE_ENV_VAR}: {exc}") from None
        return store
