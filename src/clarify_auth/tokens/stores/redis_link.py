"""The Redis store's connection: short timeouts, no retries, and a circuit breaker.

Every command runs through :meth:`RedisLink.call`: with the 0.2 s timeouts and
no retries passed to redis-py explicitly (its defaults block for 5 s times 11
attempts in 8.x, for ever in 7.x), and after a failure Redis is left alone for
``retry_after`` seconds, so an outage costs each process at most one timeout
per period. One warning per outage, one info line when Redis is back; never
the password. A forked child connects anew.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlsplit

from clarify_auth._errors import ConfigurationError
from clarify_auth.tokens.stores.protocol import TokenStoreError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "SCRIPTS",
    "RedisLink",
    "check_url",
    "import_the_extra",
    "masked_url",
    "redis_extra_missing",
]

logger = logging.getLogger("clarify_auth")

_SCHEMES = ("redis", "rediss", "unix")

# Each script checks the key's type first: a key of another type under our
# name is reported, never a WRONGTYPE error.
_LOAD = """
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then return {0} end
if kind ~= 'string' then return {-1, kind} end
local size = redis.call('STRLEN', KEYS[1])
if size > tonumber(ARGV[1]) then return {-2, tostring(size)} end
return {1, redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}
"""
# A lock of another type is not ours (the name is an HMAC only we compute):
# removed, and the lock taken (-1 says so, for the warning). A lock that would
# outlive this one's TTL (planted, or a client with a longer lock_ttl) is cut
# down to it, so no one waits for it longer than a lock can live.
_LOCK = """
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'string' and kind ~= 'none' then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {-1, kind}
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1, ''} end
local left = redis.call('PTTL', KEYS[1])
if left == -1 or left > tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if redis.call('TYPE', KEYS[2])['ok'] ~= 'string' then return {0, ''} end
return {0, redis.call('GETRANGE', KEYS[2], 0, tonumber(ARGV[3]) - 1)}
"""
_RELEASE = """
if redis.call('TYPE', KEYS[1])['ok'] ~= 'string' then return 0 end
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_DISCARD = """
if redis.call('TYPE', KEYS[1])['ok'] ~= 'string' then return 0 end
if redis.call('GETRANGE', KEYS[1], 0, string.len(ARGV[1]) - 1) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
SCRIPTS = {"load": _LOAD, "lock": _LOCK, "release": _RELEASE, "discard": _DISCARD}


def redis_extra_missing() -> str | None:
    """The packages of the ``redis`` extra that are not installed, or ``None``."""
    missing = [name for name in ("redis", "cryptography") if importlib.util.find_spec(name) is None]
    return " and ".join(missing) or None


def import_the_extra() -> None:
    """Import what a Redis store uses, ahead of its first request."""
    import redis.backoff  # noqa: PLC0415 - only where a Redis store is used
    import redis.retry  # noqa: PLC0415, F401
    from cryptography.hazmat.primitives.ciphers import aead  # noqa: PLC0415, F401
    from cryptography.hazmat.primitives.kdf import hkdf  # noqa: PLC0415, F401


class RedisLink:
    """One store's way to Redis: the client, its scripts, and the breaker."""

    def __init__(self, *, url: str | None, client: Any, timeout: float, retry_after: float) -> None:
        """Connect on first use (a URL) or use ``client`` as given."""
        self.url = url
        self.given_client = client
        self.timeout = timeout
        self.retry_after = retry_after
        self.reset()

    def reset(self) -> None:
        """Forget connections (after unpickling, and in a forked child)."""
        self._mutex = threading.Lock()
        self._pid = os.getpid()
        self._client: Any = None
        self._scripts: dict[str, Any] = {}
        self._down_until = float("-inf")
        self._outage = False
        _LIVE.add(self)

    def where(self) -> str:
        """Where Redis is, never a password."""
        return masked_url(self.url) if self.url else type(self.given_client).__name__

    def call(self, what: str, command: Callable[[], Any], *, store: str) -> Any:
        """Run one Redis command, unless Redis failed lately; failures open the breaker.

        Raises:
            TokenStoreError: Redis is being left alone, or the command failed
                (already logged, once per outage).
        """
        import redis  # noqa: PLC0415 - only where a Redis store is used

        if time.monotonic() < self._down_until:
            raise TokenStoreError("skipped: Redis failed a moment ago")
        try:
            result = command()
        except (redis.RedisError, OSError, ValueError) as exc:
            self._down_until = time.monotonic() + self.retry_after
            if not self._outage:
                self._outage = True
                logger.warning(
                    "token cache %s failed to %s (%s); each process fetches its own "
                    "tokens until it is back (tried again every %.0f s)",
                    store,
                    what,
                    self.reason(exc),
                    self.retry_after,
                )
            raise TokenStoreError(f"Redis failed to {what}") from None
        if self._outage:
            self._outage = False
            logger.info("token cache %s is reachable again", store)
        return result

    def reason(self, exc: BaseException) -> str:
        """``exc`` as one line, every password of the URL masked (as written and decoded)."""
        text = f"{type(exc).__name__}: {exc}"
        for secret in url_passwords(self.url) if self.url else ():
            text = text.replace(secret, "***")
        return text

    def client(self) -> Any:
        """The client: the one given, or one made from the URL (a new one after fork)."""
        if self.given_client is not None:
            return self.given_client
        if self._client is None or self._pid != os.getpid():
            with self._mutex:
                if self._client is None or self._pid != os.getpid():
                    self._client, self._pid, self._scripts = self._connect(), os.getpid(), {}
        return self._client

    def _connect(self) -> Any:
        import redis  # noqa: PLC0415
        from redis.backoff import NoBackoff  # noqa: PLC0415
        from redis.retry import Retry  # noqa: PLC0415

        assert self.url is not None  # noqa: S101 - only URL-built stores connect
        return redis.Redis.from_url(
            self.url,
            socket_timeout=self.timeout,
            socket_connect_timeout=self.timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )

    def script(self, name: str) -> Any:
        """One of :data:`SCRIPTS`, registered with the client (EVALSHA, loaded on NOSCRIPT)."""
        client = self.client()
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = client.register_script(SCRIPTS[name])
        return script


# Every live link, so that a forked child drops the parent's connections and a
# mutex that a parent thread may have held at the moment of fork.
_LIVE: weakref.WeakSet[RedisLink] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for link in list(_LIVE):
        link.reset()


if hasattr(os, "register_at_fork"):  # pragma: no branch - absent on Windows only
    os.register_at_fork(after_in_child=_after_fork_in_child)


# Query options that would undo the store's own bounds: timeout= sets them.
_REFUSED_OPTIONS = ("socket_timeout", "socket_connect_timeout", "retry_on_timeout", "timeout")


def check_url(url: object) -> None:
    """Refuse a URL redis-py would refuse later, or one that undoes our timeouts; never echo it."""
    if not isinstance(url, str):
        raise ConfigurationError(f"RedisTokenCache: url must be a string, got {type(url).__name__}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ConfigurationError("RedisTokenCache: the url cannot be parsed") from None
    if parts.scheme not in _SCHEMES:
        raise ConfigurationError(
            "RedisTokenCache: the url must start with redis://, rediss:// or unix://"
        )
    if parts.scheme == "unix" and not parts.path:
        raise ConfigurationError("RedisTokenCache: a unix:// url needs the socket's path")
    options = {name.lower() for name, _ in parse_qsl(parts.query, keep_blank_values=True)}
    refused = sorted(options.intersection(_REFUSED_OPTIONS))
    if refused:
        raise ConfigurationError(
            f"RedisTokenCache: the url sets {', '.join(refused)}, which would undo the store's "
            "own bounds; pass RedisTokenCache(timeout=...) instead"
        )
    from redis.connection import parse_url  # noqa: PLC0415 - the extra is there by now

    try:
        parse_url(url)  # type: ignore[no-untyped-call]
    except ValueError as exc:
        # redis-py's messages name the option, never its value.
        raise ConfigurationError(f"RedisTokenCache: the url: {exc}") from None


def url_passwords(url: str) -> list[str]:
    """The passwords ``url`` carries (user info and ``?password=``), raw and decoded."""
    parts = urlsplit(url)
    found = [parts.password or ""]
    found += [value for name, value in parse_qsl(parts.query) if name.lower() == "password"]
    raw = parts.netloc.rpartition("@")[0].partition(":")[2]
    found += [raw, *(quote(value, safe="") for value in found)]
    return sorted({value for value in found if value}, key=len, reverse=True)


def masked_url(url: str) -> str:
    """Where ``url`` points, to show: scheme, user, host, port and path; no password, no query."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    user = ""
    if "@" in parts.netloc:
        user = (
            f"{parts.username or ''}:***@" if parts.password is not None else f"{parts.username}@"
        )
    query = "?..." if parts.query else ""
    return f"{parts.scheme}://{user}{host}{parts.path}{query}"
