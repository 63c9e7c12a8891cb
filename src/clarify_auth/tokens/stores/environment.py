"""``CLARIFY_TOKEN_CACHE``: the token store every authenticator without one uses."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from clarify_auth._errors import ConfigurationError

if TYPE_CHECKING:
    from clarify_auth.tokens.stores.protocol import TokenStore

__all__ = ["TOKEN_CACHE_ENV_VAR", "token_cache_from_environment"]

#: Turns a token store on for every authenticator not given a token_cache.
TOKEN_CACHE_ENV_VAR = "CLARIFY_TOKEN_CACHE"  # noqa: S105 - a variable name


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
