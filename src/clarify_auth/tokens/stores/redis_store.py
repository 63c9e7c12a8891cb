"""A token store on Redis: one token per lifetime for a whole fleet of machines.

Machines that share a Redis (or anything that speaks its protocol: Valkey,
managed Redis) share one token: the first that needs one takes a lock in Redis
(``SET NX PX`` with a random owner, released by a compare-and-delete script)
and fetches; the others poll for its token a bounded time, take the lock over
when its holder is gone, and fetch for themselves when the wait runs out. A
lost lock costs one extra token request, never a wrong answer, so one Redis
suffices (no Redlock).

Redis is never in the way: each command has a short timeout and no retries,
and after a failure Redis is skipped for a few seconds while every process
fetches for itself; one warning per outage, one line when Redis is back.
What Redis holds is useless without the client secret
(:mod:`clarify_auth.tokens.stores.redis_entries`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import random
import secrets
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from clarify_auth._errors import ConfigurationError
from clarify_auth.tokens.stores.protocol import TokenStoreError, warn_limited
from clarify_auth.tokens.stores.redis_entries import MARKER_CHARS, UnusableEntryError, entry_keys

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from clarify_auth.tokens.stores.protocol import StoredToken, StoreKey
    from clarify_auth.tokens.stores.redis_entries import EntryKeys

__all__ = ["RedisTokenCache", "redis_extra_missing"]

logger = logging.getLogger("clarify_auth")

_SCHEMES = ("redis", "rediss", "unix")
_DEFAULT_TIMEOUT_S = 0.2
_DEFAULT_LOCK_TIMEOUT_S = 15.0
_DEFAULT_LOCK_TTL_S = 10.0
_DEFAULT_POLL_S = 0.05
_DEFAULT_RETRY_AFTER_S = 5.0
# An entry is a few hundred bytes; a larger value under our name is not ours.
_MAX_ENTRY_BYTES = 16 * 1024
_ENTRY_WARNING_INTERVAL_S = 300.0

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
_LOCK = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1, ''} end
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'string' and kind ~= 'none' then return {-1, kind} end
if redis.call('PTTL', KEYS[1]) == -1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
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


def redis_extra_missing() -> str | None:
    """The packages of the ``redis`` extra that are not installed, or ``None``."""
    missing = [name for name in ("redis", "cryptography") if importlib.util.find_spec(name) is None]
    return " and ".join(missing) or None


class RedisTokenCache:
    """Share OAuth access tokens across machines through Redis.

    Pass one as ``token_cache=`` (sessions, authenticators, httpx clients), or
    set ``CLARIFY_TOKEN_CACHE=redis://...`` for every one of them. Machines
    that start cold together send one token request between them; at the
    refresh point one fetch serves the fleet; a token held in the process is
    used without asking Redis.

    Args:
        url: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://``
            (TLS; ``?ssl_ca_certs=/path/ca.pem`` for a private CA) or
            ``unix:///path/redis.sock``, as redis-py reads them.
        client: A ready redis-py client (``redis.Redis``,
            ``redis.cluster.RedisCluster``, Sentinel's master) instead of a
            URL, for IAM tokens or your own pool; its timeouts are yours to
            keep short.
        prefix: Starts every key name.
        timeout: Seconds one Redis command may take (connect or answer);
            commands are never retried.
        lock_timeout: Seconds a machine waits for another's token request
            before fetching for itself.
        lock_ttl: Seconds a lock lives at most (never longer than the token
            request's own deadline): a fetcher that died blocks no one longer.
        retry_after: Seconds Redis is left alone after a failure.

    Example:
        >>> cache = RedisTokenCache("rediss://:test-secret-pw@redis.internal:6380/0")
        >>> cache
        RedisTokenCache('rediss://:***@redis.internal:6380/0')
    """

    kind = "redis"

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        prefix: str = "clarify-auth",
        timeout: float = _DEFAULT_TIMEOUT_S,
        lock_timeout: float = _DEFAULT_LOCK_TIMEOUT_S,
        lock_ttl: float = _DEFAULT_LOCK_TTL_S,
        retry_after: float = _DEFAULT_RETRY_AFTER_S,
    ) -> None:
        """Check the settings; nothing connects until a token is needed."""
        if (url is None) == (client is None):
            raise ConfigurationError("RedisTokenCache: give a url or a client, not both")
        missing = redis_extra_missing()
        if missing is not None:
            raise ConfigurationError(
                f"RedisTokenCache needs the 'redis' extra ({missing} is not installed): "
                "pip install 'clarify-auth[redis]'"
            )
        if url is not None:
            _check_url(url)
        elif not callable(getattr(client, "register_script", None)):
            raise ConfigurationError(
                "RedisTokenCache: client must be a synchronous redis-py client "
                f"(redis.Redis, RedisCluster), got {type(client).__name__}"
            )
        if not isinstance(prefix, str) or not prefix or "{" in prefix or "}" in prefix:
            raise ConfigurationError(
                "RedisTokenCache: prefix must be a non-empty string without { or }"
            )
        for name, value in (
            ("timeout", timeout),
            ("lock_timeout", lock_timeout),
            ("lock_ttl", lock_ttl),
            ("retry_after", retry_after),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigurationError(f"RedisTokenCache: {name} must be a positive number")
        self._url = url
        self._given_client = client
        self.prefix = prefix
        self.timeout = float(timeout)
        self.lock_timeout = float(lock_timeout)
        self.lock_ttl = float(lock_ttl)
        self.retry_after = float(retry_after)
        self.poll_interval = _DEFAULT_POLL_S
        self._reset()

    def waiting_at_most(self, seconds: float) -> RedisTokenCache:
        """This store with ``lock_timeout`` at most ``seconds`` (for ``--timeout``)."""
        if seconds >= self.lock_timeout:
            return self
        narrowed = object.__new__(RedisTokenCache)
        narrowed.__dict__.update(self.__dict__)  # the same connections and scripts
        narrowed.lock_timeout = max(seconds, 0.001)
        return narrowed

    def _reset(self) -> None:
        """Forget connections and derived keys (after unpickling, and in a forked child)."""
        self._mutex = threading.Lock()
        self._pid = os.getpid()
        self._client: Any = None
        self._scripts: dict[str, Any] = {}
        self._keys: dict[str, EntryKeys] = {}
        self._down_until = float("-inf")
        self._outage = False
        _LIVE.add(self)

    def __repr__(self) -> str:
        """Show where Redis is, never a password."""
        if self._url is None:
            return f"RedisTokenCache(client={type(self._given_client).__name__})"
        return f"RedisTokenCache({masked_url(self._url)!r})"

    def describe(self) -> str:
        """Say where the tokens are kept (for ``clarify-auth cache``)."""
        where = masked_url(self._url) if self._url else type(self._given_client).__name__
        return f"redis at {where} (prefix {self.prefix!r})"

    def check(self, key: StoreKey) -> tuple[str | None, StoredToken | None]:
        """Ask Redis now, whatever failed lately: (what is wrong or None, the stored token).

        For ``clarify-auth cache``; never raises for Redis's own failures.
        """
        import redis  # noqa: PLC0415

        keys = self._entry_keys(key)
        try:
            self._redis().ping()
            reply = self._script("load")([keys.entry], [_MAX_ENTRY_BYTES])
        except (redis.RedisError, OSError) as exc:
            return self._reason(exc), None
        return None, self._opened(keys, reply)

    # -- the TokenStore protocol -------------------------------------------------------

    def load(self, key: StoreKey) -> StoredToken | None:
        """The fleet's token for ``key``: one round trip, the TTL read by Redis itself."""
        keys = self._entry_keys(key)
        reply = self._call("read", lambda: self._script("load")([keys.entry], [_MAX_ENTRY_BYTES]))
        return self._opened(keys, reply)

    def save(self, key: StoreKey, stored: StoredToken) -> None:
        """Write the sealed token, expiring with it (``SET ... PX``)."""
        if stored.expires_in <= 0:
            return
        keys = self._entry_keys(key)
        value, ttl_ms = keys.seal(stored, now_wall=time.time())
        self._call("write", lambda: self._redis().set(keys.entry, value, px=ttl_ms))

    def discard(self, key: StoreKey, access_token: str) -> None:
        """Remove the stored token only if it is still ``access_token`` (compare and delete)."""
        keys = self._entry_keys(key)
        marker = keys.marker(access_token)
        self._call("forget", lambda: self._script("discard")([keys.entry], [marker]))

    @contextlib.contextmanager
    def lock(self, key: StoreKey, *, hold: float) -> Iterator[bool]:
        """Take the fleet's lock for ``key``, or wait for the holder's token.

        Yields ``True`` holding the lock (for at most ``min(hold, lock_ttl)``
        seconds), ``False`` once another machine's new token is there, or
        after ``lock_timeout`` seconds of waiting.
        """
        keys = self._entry_keys(key)
        owner = secrets.token_hex(16)
        ttl_ms = max(int(min(hold, self.lock_ttl) * 1000), 1)
        give_up = time.monotonic() + self.lock_timeout
        attempt = self._script("lock")
        held, first = False, None
        while True:
            status, seen = self._call(
                "lock", lambda: attempt([keys.lock, keys.entry], [owner, ttl_ms, MARKER_CHARS])
            )
            if status == 1:
                held = True
                break
            if status == -1:
                self._warn_entry(keys.lock, f"it is a Redis {_text(seen)}, not a lock")
                break
            if first is None:
                first = seen
            elif seen != first:
                break  # the holder's token is there
            left = give_up - time.monotonic()
            if left <= 0:
                logger.info(
                    "waited %.0f s for another machine's token request; fetching without it",
                    self.lock_timeout,
                )
                break
            time.sleep(min(self.poll_interval * random.uniform(0.5, 1.5), left))  # noqa: S311
        try:
            yield held
        finally:
            if held:
                self._call("unlock", lambda: self._script("release")([keys.lock], [owner]))

    # -- Redis, guarded --------------------------------------------------------------------

    def _call(self, what: str, command: Callable[[], Any]) -> Any:
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
        except (redis.RedisError, OSError) as exc:
            self._down_until = time.monotonic() + self.retry_after
            if not self._outage:
                self._outage = True
                logger.warning(
                    "token cache %s failed to %s (%s); each process fetches its own "
                    "tokens until it is back (tried again every %.0f s)",
                    self.describe(),
                    what,
                    self._reason(exc),
                    self.retry_after,
                )
            raise TokenStoreError(f"Redis failed to {what}") from None
        if self._outage:
            self._outage = False
            logger.info("token cache %s is reachable again", self.describe())
        return result

    def _reason(self, exc: BaseException) -> str:
        text = f"{type(exc).__name__}: {exc}"
        password = urlsplit(self._url).password if self._url else None
        return text.replace(password, "***") if password else text

    def _redis(self) -> Any:
        """The client: the one given, or one made from the URL (a new one after fork)."""
        if self._given_client is not None:
            return self._given_client
        if self._client is None or self._pid != os.getpid():
            with self._mutex:
                if self._client is None or self._pid != os.getpid():
                    self._client, self._pid, self._scripts = self._connect(), os.getpid(), {}
        return self._client

    def _connect(self) -> Any:
        import redis  # noqa: PLC0415
        from redis.backoff import NoBackoff  # noqa: PLC0415
        from redis.retry import Retry  # noqa: PLC0415

        assert self._url is not None  # noqa: S101 - only URL-built stores connect
        return redis.Redis.from_url(
            self._url,
            socket_timeout=self.timeout,
            socket_connect_timeout=self.timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )

    def _script(self, name: str) -> Any:
        client = self._redis()
        script = self._scripts.get(name)
        if script is None:
            source = {"load": _LOAD, "lock": _LOCK, "release": _RELEASE, "discard": _DISCARD}
            script = self._scripts[name] = client.register_script(source[name])
        return script

    def _entry_keys(self, key: StoreKey) -> EntryKeys:
        found = self._keys.get(key.digest)
        if found is None:
            found = self._keys[key.digest] = entry_keys(key, self.prefix)
        return found

    def _opened(self, keys: EntryKeys, reply: Any) -> StoredToken | None:
        status = int(reply[0])
        if status == 0:
            return None
        if status == -1:
            self._warn_entry(keys.entry, f"it is a Redis {_text(reply[1])}, not an entry")
            return None
        if status == -2:  # noqa: PLR2004 - the script's "too large"
            self._warn_entry(keys.entry, f"it holds {_text(reply[1])} bytes, more than an entry")
            return None
        ttl_ms = int(reply[2])
        if ttl_ms < 0:
            self._warn_entry(keys.entry, "it never expires, and every entry written here does")
            return None
        try:
            return keys.open(reply[1], ttl_ms=ttl_ms, now_wall=time.time())
        except UnusableEntryError as exc:
            self._warn_entry(keys.entry, str(exc))
            return None

    def _warn_entry(self, name: str, reason: str) -> None:
        warn_limited(
            (name, reason),
            _ENTRY_WARNING_INTERVAL_S,
            "token cache %s: key %s ignored and will be replaced: %s",
            self.describe(),
            name,
            reason,
        )

    # -- pickle --------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the settings only: the copy connects from wherever it is unpickled."""
        if self._given_client is not None:
            raise TypeError(
                "a RedisTokenCache built from a client cannot be pickled (its connection "
                "setup is yours); build it from a URL, or set CLARIFY_TOKEN_CACHE on the workers"
            )
        settings = ("_url", "prefix", "timeout", "lock_timeout", "lock_ttl", "retry_after")
        return {name: getattr(self, name) for name in (*settings, "poll_interval")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore the settings; connect on first use."""
        self.__dict__.update(state)
        self._given_client = None
        self._reset()


# Every live store, so that a forked child drops the parent's connections and a
# mutex that a parent thread may have held at the moment of fork.
_LIVE: weakref.WeakSet[RedisTokenCache] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for store in list(_LIVE):
        store._reset()  # noqa: SLF001 - our own class


if hasattr(os, "register_at_fork"):  # pragma: no branch - absent on Windows only
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _text(value: object) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


def _check_url(url: object) -> None:
    """Refuse what redis-py would refuse later, without importing it; never echo the URL."""
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


def masked_url(url: str) -> str:
    """``url`` with its password (if any) shown as ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()
