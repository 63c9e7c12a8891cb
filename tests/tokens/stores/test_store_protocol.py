"""The TokenStore protocol: the lifecycle's one seam to where tokens are kept beyond the process."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import clarify_auth
from clarify_auth import (
    ConfigurationError,
    FileTokenCache,
    OAuthClientCredentials,
    StoredToken,
    StoreKey,
    TokenStore,
)
from clarify_auth.testing import FakeClarify

ROOT = Path(__file__).resolve().parents[3]


class DictStore:
    """The store of TokenStore's docstring, as a user would write it."""

    lock_timeout = 0.0

    def __init__(self):
        self.entries = {}
        self.calls = []

    def load(self, key):
        self.calls.append("load")
        found = self.entries.get(key.digest)
        if found is None:
            return None
        token, refresh_at, expires_at = found
        now = time.monotonic()
        if now >= expires_at:
            return None
        return StoredToken(token, refresh_at - now, expires_at - now)

    def save(self, key, stored):
        self.calls.append("save")
        now = time.monotonic()
        self.entries[key.digest] = (stored.token, now + stored.refresh_in, now + stored.expires_in)

    def discard(self, key, access_token):
        self.calls.append("discard")
        found = self.entries.get(key.digest)
        if found and found[0].access_token.get_secret_value() == access_token:
            del self.entries[key.digest]

    def lock(self, key, *, hold):
        self.calls.append("lock")
        return contextlib.nullcontext(False)


class BrokenStore(DictStore):
    """Every operation fails, with the client secret in its message (it must never be logged)."""

    def __init__(self, secret):
        super().__init__()
        self.secret = secret

    def _fail(self, *args, **kwargs):
        raise RuntimeError(f"database down (password {self.secret})")

    load = save = discard = lock = _fail


@pytest.fixture
def fake():
    with FakeClarify() as server:
        yield server


def test_every_store_of_ours_and_a_users_dict_store_is_a_token_store():
    """FileTokenCache, RedisTokenCache and the documented dict store pass isinstance(TokenStore)."""
    pytest.importorskip("redis")

    assert isinstance(FileTokenCache(), TokenStore)
    assert isinstance(clarify_auth.RedisTokenCache("redis://127.0.0.1:1/0"), TokenStore)
    assert isinstance(DictStore(), TokenStore)
    assert not isinstance(object(), TokenStore)


def test_a_users_store_shares_one_token_between_private_authenticators(fake):
    """Two authenticators with private process tokens share one token through a user's store."""
    store = DictStore()
    first = OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=store, shared=False
    )
    second = OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=store, shared=False
    )

    header = first.authorization()

    assert second.authorization() == header
    assert fake.token_requests == 1
    assert first.counters.fetches == 1
    assert second.counters.fetches == 0
    assert second.counters.store_hits == 1
    assert second.counters.store == "DictStore"
    assert store.calls == ["load", "lock", "load", "save", "load"]


def test_a_refused_token_is_discarded_from_the_store(fake):
    """After a 401 the lifecycle asks the store to discard exactly the refused token."""
    store = DictStore()
    with clarify_auth.ClarifySession(fake.credentials(), token_cache=store) as session:
        session.rpc("clarify.selectItems")
        fake.revoke_tokens()

        session.rpc("clarify.selectItems")

    assert "discard" in store.calls
    assert fake.token_requests == 2
    [(token, _, _)] = store.entries.values()
    assert fake.is_valid_token(token.access_token.get_secret_value())


def test_a_failing_users_store_never_fails_a_request(fake, caplog):
    """A store whose every call raises: requests succeed, one warning per operation, no secret."""
    caplog.set_level(logging.WARNING, logger="clarify_auth")
    secret = fake.credentials().credentials.client_secret.get_secret_value()
    store = BrokenStore(secret)
    auth = OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=store, shared=False
    )

    with clarify_auth.ClarifySession(fake.credentials(), authenticator=auth) as session:
        first = session.rpc("clarify.selectItems")
        auth.invalidate()
        second = session.rpc("clarify.selectItems")

    assert first == second
    assert first["data"] == []

    assert fake.token_requests == 2
    assert auth.counters.store_failures >= 4
    assert "database down" in caplog.text
    assert secret not in caplog.text
    assert "token store" in caplog.text


@pytest.mark.parametrize("bad", [object(), "redis://x", 42], ids=["object", "string", "int"])
def test_token_cache_must_be_a_store(fake, bad):
    """Anything that is not a TokenStore is refused by name at construction."""
    with pytest.raises(ConfigurationError, match=r"token_cache must be a clarify_auth\.TokenStore"):
        OAuthClientCredentials.from_credentials(fake.credentials(), token_cache=bad)


def test_counters_count_process_hits_fetches_and_store_hits(fake, tmp_path):
    """counters: one fetch, then every request a process hit; a second process's is a store hit."""
    cache = FileTokenCache(tmp_path / "tokens")
    with clarify_auth.ClarifySession(fake.credentials(), token_cache=cache) as session:
        for _ in range(5):
            session.get("rpc")
        counters = session.authenticator.counters  # type: ignore[attr-defined]

    clarify_auth.testing.forget_shared_tokens()
    other = OAuthClientCredentials.from_credentials(fake.credentials(), token_cache=cache)
    other.authorization()

    assert counters == clarify_auth.TokenCounters(
        fetches=1, process_hits=4, store_hits=0, store_failures=0, store="file"
    )
    assert other.counters.store_hits == 1
    assert other.counters.fetches == 0


def test_store_key_and_stored_token_show_no_secret():
    """StoreKey and StoredToken reprs show neither the secret nor the token."""
    from pydantic import SecretStr

    key = StoreKey("https://a/t", "c", "https://a/", SecretStr("test-secret-repr"))
    stored = StoredToken(
        clarify_auth.AccessToken(access_token="test-token-repr"), refresh_in=1.0, expires_in=2.0
    )

    assert "test-secret-repr" not in repr(key) + str(key)
    assert "test-token-repr" not in repr(stored) + str(stored)
    assert key == StoreKey("https://a/t", "c", "https://a/", SecretStr("test-secret-repr"))
    assert key != StoreKey("https://a/t", "c", "https://a/", SecretStr("test-secret-other"))


def test_the_sqlite_example_store_serves_four_processes_with_one_token(tmp_path):
    """examples/sqlite_store.py: four spawned processes, one token request, as it prints."""
    with FakeClarify() as fake:
        fake.token_latency = 0.2
        path = fake.write_credentials(tmp_path / "clarify-credentials.json")

        result = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "sqlite_store.py"), str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env={**os.environ, "CLARIFY_TOKEN_CACHE": ""},
            check=False,
        )

        assert result.returncode == 0, result.stderr[-2000:]
        assert "4 processes, 1 token request(s) between them" in result.stdout
        assert fake.token_requests == 1


class StaleStore(DictStore):
    """A store that never forgets, and can be made to hand out a token of its choosing."""

    def __init__(self):
        super().__init__()
        self.forced = None

    def load(self, key):
        self.calls.append("load")
        return self.forced if self.forced is not None else super().load(key)

    def discard(self, key, access_token):
        self.calls.append("discard")  # and keeps it: the store has not caught up


def test_a_token_refused_here_is_not_taken_back_from_a_store_that_kept_it(fake):
    """After a 401 the refused token, still in the store, is ignored: a new one is fetched."""
    store = StaleStore()
    with clarify_auth.ClarifySession(fake.credentials(), token_cache=store) as session:
        session.rpc("clarify.selectItems")
        fake.revoke_tokens()

        session.rpc("clarify.selectItems")
        counters = session.authenticator.counters  # type: ignore[attr-defined]

    assert fake.token_requests == 2
    assert counters.fetches == 2
    assert counters.store_hits == 0


def test_a_stored_token_past_its_refresh_point_does_not_replace_a_current_one(fake):
    """At the refresh point a store's token that is itself due for refresh is not taken."""
    from conftest import FakeClock

    clock = FakeClock()
    store = StaleStore()
    auth = OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=store, shared=False, clock=clock,
        refresh_in_background=False,
    )  # fmt: skip
    first = auth.authorization()
    clock.advance(3400)  # past the refresh point (5 min before) of an hour's token
    store.forced = StoredToken(
        clarify_auth.AccessToken(access_token="test-token-stale"), refresh_in=-1.0, expires_in=600.0
    )

    second = auth.authorization()

    assert second not in (first, "Bearer test-token-stale")
    assert auth.counters.fetches == 2
    assert auth.counters.store_hits == 0
