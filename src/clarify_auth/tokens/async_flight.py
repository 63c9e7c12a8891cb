"""The async counterpart of :meth:`TokenLifecycle.refresh_or_wait`, bound to no event loop.

The flight is the lifecycle's own (a ``threading.Event`` inside), so one fetch
serves threads and tasks alike. An event loop cannot wait on a
``threading.Event`` without a thread or a loop-specific wake-up, so a task that
joins a flight polls it with the caller's own ``sleep`` (``anyio.sleep``,
``asyncio.sleep``, ``trio.sleep``): no loop-bound object is made, no library
is imported here, and the polling lasts only while a fetch is in flight.

The fetch itself is awaited by the task that leads it. If that task is
cancelled, the flight is handed over: the waiters claim again and one of them
leads a new fetch, so nobody else sees the cancellation.

Store calls (a file, Redis) block; they run in order on one short-lived
thread of their own (a file lock must be released by the thread that took
it), and the task polls for each result. Only the store calls: the token
request stays on the event loop.
"""

from __future__ import annotations

import concurrent.futures
import time
from typing import TYPE_CHECKING, TypeVar

from clarify_auth._errors import TokenError
from clarify_auth.tokens.flight import LeaderGoneError
from clarify_auth.tokens.token import CachedToken

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from contextlib import AbstractContextManager

    from clarify_auth.tokens.flight import Flight
    from clarify_auth.tokens.lifecycle import TokenLifecycle
    from clarify_auth.tokens.token import AccessToken

    AsyncFetch = Callable[[], Awaitable[tuple[AccessToken, float]]]
    Sleep = Callable[[float], Awaitable[object]]

__all__ = ["refresh_or_wait_async"]

_T = TypeVar("_T")

# How often a waiting task looks at a flight (seconds): a fetch takes tens of
# milliseconds at the very least, so this adds little and costs little.
_POLL_S = 0.005


async def refresh_or_wait_async(
    lifecycle: TokenLifecycle, fetch: AsyncFetch, *, wait_s: float, sleep: Sleep
) -> CachedToken:
    """Lead a fetch or join the one in flight, awaiting instead of blocking.

    A refresh ahead of expiry is led inline by the one task that claims it;
    every other caller keeps using the still-valid token meanwhile.

    Raises:
        TokenError: No token could be obtained within ``wait_s``.
    """
    give_up_at = time.monotonic() + wait_s
    while True:
        entry, flight, leader = lifecycle.claim()
        if flight is None:
            assert entry is not None  # noqa: S101 - claim() gives one or the other
            return entry
        if leader:
            await _lead(lifecycle, flight, fetch, sleep)
            if entry is not None:
                return flight.entry or entry
        try:
            return await _wait(flight, give_up_at, sleep)
        except LeaderGoneError:
            if time.monotonic() >= give_up_at:
                raise


async def _wait(flight: Flight, give_up_at: float, sleep: Sleep) -> CachedToken:
    while not flight.done():
        remaining = give_up_at - time.monotonic()
        if remaining <= 0:
            raise TokenError("gave up waiting for another caller's token request", retryable=True)
        await sleep(min(_POLL_S, remaining))
    return flight.result(0)


async def _lead(lifecycle: TokenLifecycle, flight: Flight, fetch: AsyncFetch, sleep: Sleep) -> None:
    try:
        entry = await _obtain(lifecycle, fetch, sleep)
    except Exception as exc:  # noqa: BLE001 - shared with the waiters through the flight
        lifecycle.finish(flight, error=exc)
    except BaseException as exc:
        lifecycle.finish(flight, error=exc, hand_over=True)  # a cancelled leader
        raise
    else:
        lifecycle.finish(flight, entry)


async def _issued(lifecycle: TokenLifecycle, fetch: AsyncFetch) -> CachedToken:
    lifecycle.fetches += 1
    token, sent_at = await fetch()
    return CachedToken.issued(token, requested_at=sent_at)


async def _obtain(lifecycle: TokenLifecycle, fetch: AsyncFetch, sleep: Sleep) -> CachedToken:
    """As ``TokenLifecycle._obtain``, with the store's calls off the event loop."""
    if lifecycle.store is None:
        return await _issued(lifecycle, fetch)
    # One thread for this fetch's store calls, ended as the fetch ends.
    worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="clarify-auth-store")

    async def done(future: concurrent.futures.Future[_T]) -> _T:
        while not future.done():  # bounded: every store call is (lock_timeout, socket timeouts)
            await sleep(_POLL_S)
        return future.result()

    store_call = lifecycle._store_call  # noqa: SLF001 - the lifecycle's own helpers
    usable = lifecycle._usable_from_store  # noqa: SLF001
    taken: tuple[AbstractContextManager[bool], concurrent.futures.Future[object]] | None = None
    try:
        shared = await done(worker.submit(usable))
        if shared is not None:
            return shared
        lock = await done(
            worker.submit(
                store_call, "lock", lambda store, key: store.lock(key, hold=lifecycle.hold_s)
            )
        )
        if lock is not None:
            taken = (lock, worker.submit(store_call, "lock", lambda *_: lock.__enter__()))
            await done(taken[1])
        shared = await done(worker.submit(usable))
        if shared is not None:
            return shared
        entry = await _issued(lifecycle, fetch)
        await done(worker.submit(lifecycle._save, entry))  # noqa: SLF001
        return entry
    finally:
        if taken is not None:
            # Submitted without awaiting, so it runs even for a cancelled task,
            # after the lock was taken (the worker runs calls in order).
            worker.submit(_unlock, store_call, *taken)
        worker.shutdown(wait=False)


def _unlock(
    store_call: Callable[..., object],
    lock: AbstractContextManager[bool],
    entering: concurrent.futures.Future[object],
) -> None:
    if entering.result() is not None:
        store_call("unlock", lambda *_: lock.__exit__(None, None, None))
