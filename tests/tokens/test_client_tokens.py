"""ClientTokens on its own: which lifecycle, the hot path, the bound on a wait, the pickle."""

from __future__ import annotations

import pickle

import pytest
from pydantic import SecretStr

from clarify_auth.tokens.client_tokens import ClientTokens, lock_timeout
from clarify_auth.tokens.stores.protocol import StoreKey
from clarify_auth.tokens.token import AccessToken, CachedToken
from conftest import FakeClock

KEY = StoreKey(
    "https://h/v1/oauth/token", "test-client", "https://h/v1/", SecretStr("test-secret-c")
)


class _Store:
    """A store that holds nothing: enough for the wait bound."""

    def __init__(self, lock_timeout: object) -> None:
        self._wait = lock_timeout

    @property
    def lock_timeout(self) -> float:
        if isinstance(self._wait, Exception):
            raise self._wait
        return self._wait  # type: ignore[return-value]

    def load(self, key):
        return None

    def save(self, key, token, lifetime):
        pass

    def discard(self, key, header):
        pass

    def lock(self, key, *, hold):
        raise NotImplementedError


def tokens(clock=None, **overrides) -> ClientTokens:
    options = {"store": None, "shared": True, "deadline": 30.0, "background": False}
    return ClientTokens(KEY, clock=clock, **(options | overrides))


def fetch_counting(calls: list[int], clock: FakeClock):
    def fetch():
        calls.append(1)
        return AccessToken(access_token=f"test-token-{len(calls)}", expires_in=3600), clock()

    return fetch


def test_clients_with_the_default_clock_share_one_lifecycle_and_private_ones_do_not():
    """Two ClientTokens of one client share a lifecycle; shared=False gets its own."""
    first, second = tokens(), tokens()

    assert first.lifecycle is second.lifecycle
    assert tokens(shared=False).lifecycle is not first.lifecycle


def test_an_injected_clock_shares_only_with_itself():
    """A lifecycle on an injected clock is never the default clock's, nor another clock's."""
    clock = FakeClock()

    assert tokens(clock).lifecycle is tokens(clock).lifecycle
    assert tokens(clock).lifecycle is not tokens().lifecycle
    assert tokens(clock).lifecycle is not tokens(FakeClock()).lifecycle
    assert tokens(clock).lifecycle.clock is clock


def test_one_fetch_then_the_hot_path_until_the_refresh_point():
    """current() fetches once, then serves the held token (counted) until its refresh point."""
    clock, calls = FakeClock(), []
    client = tokens(clock, shared=False)
    fetch = fetch_counting(calls, clock)

    assert client.cached() is None
    first = client.current(fetch)
    assert client.current(fetch) is first
    assert client.cached() is first
    assert (len(calls), client.lifecycle.process_hits) == (1, 2)

    clock.advance(first.refresh_at - clock() + 1)

    assert client.cached() is None
    assert client.current(fetch).header == "Bearer test-token-2"


def test_refused_drops_only_the_current_bearer_token():
    """A Bearer header that is current is dropped; an older one or a Basic one is not."""
    clock, calls = FakeClock(), []
    client = tokens(clock, shared=False)
    current = client.current(fetch_counting(calls, clock))

    assert client.refused("Basic dGVzdA==") is False
    assert client.refused("Bearer test-token-old") is True
    assert client.lifecycle.entry is current
    assert client.refused(current.header) is True
    assert client.lifecycle.entry is None


@pytest.mark.parametrize(
    ("wait", "bound"),
    [(None, 32.0), (5, 37.0), (0, 32.0), (-1, 32.0), (float("inf"), 32.0), ("x", 32.0)],
    ids=["no store", "5 s", "0", "negative", "forever", "not a number"],
)
def test_the_wait_is_bounded_by_the_stores_lock_and_the_deadline(wait, bound):
    """A caller waits at most the store's lock wait, plus the deadline, plus 2 s."""
    store = None if wait is None else _Store(wait)

    assert tokens(store=store, shared=False).wait_bound() == bound


def test_a_store_whose_lock_timeout_fails_counts_as_no_wait():
    """A user's store whose lock_timeout property raises waits 0 s for its lock."""
    assert lock_timeout(_Store(RuntimeError("boom"))) == 0.0


def test_a_pickle_carries_the_token_and_joins_the_process_lifecycle():
    """Unpickled, ClientTokens joins this process's lifecycle and brings its token."""
    client = tokens(shared=False)
    held = CachedToken.issued(
        AccessToken(access_token="test-token-p", expires_in=3600),
        requested_at=client.lifecycle.clock(),
    )
    client.lifecycle.entry = held

    copy = pickle.loads(pickle.dumps(client))

    assert copy.lifecycle is not client.lifecycle
    assert copy.lifecycle.entry.header == held.header
    assert (copy.key, copy.deadline, copy.shared) == (KEY, 30.0, False)
    shared = tokens()
    assert pickle.loads(pickle.dumps(shared)).lifecycle is shared.lifecycle
