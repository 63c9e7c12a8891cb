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
import logging
import random
import secrets
import time
from typing import TYPE_CHECKING, Any

from clarify_auth._errors import ConfigurationError
from clarify_auth.tokens.stores import redis_link
from clarify_auth.tokens.stores.protocol import warn_limited
from clarify_auth.tokens.stores.redis_entries import (
    MARKER_CHARS,
    entry_keys,
    opened_reply,
    text_of,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from clarify_auth.tokens.stores.protocol import StoredToken, StoreKey
    from clarify_auth.tokens.stores.redis_entries import EntryKeys

__all__ = ["RedisTokenCache"]

logger = logging.getLogger("clarify_auth")

_DEFAULT_TIMEOUT_S = 0.2
_DEFAULT_LOCK_TIMEOUT_S = 15.0
_DEFAULT_LOCK_TTL_S = 10.0
_DEFAULT_POLL_S = 0.05
_DEFAULT_RETRY_AFTER_S = 5.0
# An entry is a few hundred bytes; a larger value under our name is not ours.
_MAX_ENTRY_BYTES = 16 * 1024
_ENTRY_WARNING_INTERVAL_S = 300.0


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
        missing = redis_link.redis_extra_missing()
        if missing is not None:
            raise ConfigurationError(
                f"RedisTokenCache needs the 'redis' extra ({missing} is not installed): "
                "pip install 'clarify-auth[redis]'"
            )
        # Imported here, once the store is there, so that no request pays for it
        # (``import redis`` alone is about 130 ms; AES-GCM's first use a few more).
        redis_link.import_the_extra()
        if url is not None:
            redis_link.check_url(url)
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
        self.prefix = prefix
        self.timeout = float(timeout)
        self.lock_timeout = float(lock_timeout)
        self.lock_ttl = float(lock_ttl)
        self.retry_after = float(retry_after)
        self.poll_interval = _DEFAULT_POLL_S
        self._link = redis_link.RedisLink(
            url=url, client=client, timeout=self.timeout, retry_after=self.retry_after
        )
        self._keys: dict[str, EntryKeys] = {}

    def waiting_at_most(self, seconds: float) -> RedisTokenCache:
        """This store with ``lock_timeout`` at most ``seconds`` (for ``--timeout``)."""
        if seconds >= self.lock_timeout:
            return self
        narrowed = object.__new__(RedisTokenCache)
        narrowed.__dict__.update(self.__dict__)  # the same connections and scripts
        narrowed.lock_timeout = max(seconds, 0.001)
        return narrowed

    def __repr__(self) -> str:
        """Show where Redis is, never a password."""
        if self._link.url is None:
            return f"RedisTokenCache(client={type(self._link.given_client).__name__})"
        return f"RedisTokenCache({self._link.where()!r})"

    def describe(self) -> str:
        """Say where the tokens are kept (for ``clarify-auth cache``)."""
        return f"redis at {self._link.where()} (prefix {self.prefix!r})"

    def check(self, key: StoreKey) -> tuple[str | None, StoredToken | None]:
        """Ask Redis now, whatever failed lately: (what is wrong or None, the stored token).

        For ``clarify-auth cache``; never raises for Redis's own failures.
        """
        import redis  # noqa: PLC0415

        keys = self._entry_keys(key)
        try:
            self._link.client().ping()
            reply = self._link.script("load")([keys.entry], [_MAX_ENTRY_BYTES])
        except (redis.RedisError, OSError) as exc:
            return self._link.reason(exc), None
        return None, self._opened(keys, reply)

    # -- the TokenStore protocol -------------------------------------------------------

    def load(self, key: StoreKey) -> StoredToken | None:
        """The fleet's token for ``key``: one round trip, the TTL read by Redis itself."""
        keys = self._entry_keys(key)
        reply = self._call(
            "read", lambda: self._link.script("load")([keys.entry], [_MAX_ENTRY_BYTES])
        )
        return self._opened(keys, reply)

    def save(self, key: StoreKey, stored: StoredToken) -> None:
        """Write the sealed token, expiring with it (``SET ... PX``)."""
        if stored.expires_in <= 0:
            return
        keys = self._entry_keys(key)
        value, ttl_ms = keys.seal(stored)
        self._call("write", lambda: self._link.client().set(keys.entry, value, px=ttl_ms))

    def discard(self, key: StoreKey, access_token: str) -> None:
        """Remove the stored token only if it is still ``access_token`` (compare and delete)."""
        keys = self._entry_keys(key)
        marker = keys.marker(access_token)
        self._call("forget", lambda: self._link.script("discard")([keys.entry], [marker]))

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
        attempt = self._link.script("lock")
        held, first = False, None
        while True:
            status, seen = self._call(
                "lock", lambda: attempt([keys.lock, keys.entry], [owner, ttl_ms, MARKER_CHARS])
            )
            if status == 1:
                held = True
                break
            if status == -1:  # the script removed it and took the lock
                self._warn_entry(keys.lock, f"it was a Redis {text_of(seen)}, not a lock")
                held = True
                break
            if first is None:
                first = seen
            elif seen and seen != first:
                break  # the holder's token is there (an entry gone is no news: keep trying)
            left = give_up - time.monotonic()
            if left <= 0:
                warn_limited(
                    (keys.lock, "waited"),
                    _ENTRY_WARNING_INTERVAL_S,
                    "token cache %s: waited %.0f s for the machine holding %s to fetch a "
                    "token; fetching without it (is the token endpoint slow?)",
                    self.describe(),
                    self.lock_timeout,
                    keys.lock,
                )
                break
            time.sleep(min(self.poll_interval * random.uniform(0.5, 1.5), left))  # noqa: S311
        try:
            yield held
        finally:
            if held:
                self._call("unlock", lambda: self._link.script("release")([keys.lock], [owner]))

    # -- Redis, guarded --------------------------------------------------------------------

    def _call(self, what: str, command: Callable[[], Any]) -> Any:
        return self._link.call(what, command, store=self.describe())

    def _redis(self) -> Any:
        """The redis-py client in use (for tests and the ``check`` of the command line)."""
        return self._link.client()

    def _entry_keys(self, key: StoreKey) -> EntryKeys:
        found = self._keys.get(key.digest)
        if found is None:
            found = self._keys[key.digest] = entry_keys(key, self.prefix)
        return found

    def _opened(self, keys: EntryKeys, reply: Any) -> StoredToken | None:
        found = opened_reply(keys, reply, now_wall=time.time())
        if isinstance(found, str):
            self._warn_entry(keys.entry, found)
            return None
        return found

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
        if self._link.given_client is not None:
            raise TypeError(
                "a RedisTokenCache built from a client cannot be pickled (its connection "
                "setup is yours); build it from a URL, or set CLARIFY_TOKEN_CACHE on the workers"
            )
        settings = ("prefix", "timeout", "lock_timeout", "lock_ttl", "retry_after", "poll_interval")
        return {"url": self._link.url, **{name: getattr(self, name) for name in settings}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore the settings; connect on first use."""
        url = state.pop("url")
        self.__dict__.update(state)
        self._link = redis_link.RedisLink(
            url=url, client=None, timeout=self.timeout, retry_after=self.retry_after
        )
        self._keys = {}
