"""The load script's reply read on its own: a token, nothing, or why what is there is unusable."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

pytest.importorskip("cryptography")

from clarify_auth.tokens.stores.protocol import StoredToken, StoreKey
from clarify_auth.tokens.stores.redis_entries import entry_keys, opened_reply
from clarify_auth.tokens.token import AccessToken

KEY = StoreKey(
    "https://h/v1/oauth/token", "test-client", "https://h/v1/", SecretStr("test-secret-r")
)


def sealed(keys):
    token = StoredToken(AccessToken(access_token="test-token-r", expires_in=600), 450.0, 600.0)
    value, ttl_ms = keys.seal(token)
    return value, ttl_ms


def test_an_entry_opens_with_the_ttl_redis_read():
    """[1, value, pttl] opens to the token, its lifetime taken from Redis's TTL."""
    keys = entry_keys(KEY, "clarify-auth")
    value, ttl_ms = sealed(keys)

    found = opened_reply(keys, [1, value, ttl_ms - 100_000], now_wall=1e9)

    assert isinstance(found, StoredToken)
    assert found.token.access_token.get_secret_value() == "test-token-r"
    assert found.expires_in == pytest.approx((ttl_ms - 100_000) / 1000, abs=1)


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ([0], None),
        ([-1, b"hash"], "it is a Redis hash, not an entry"),
        ([-2, "99999"], "it holds 99999 bytes, more than an entry"),
        ([1, "v1.x.y", -1], "it never expires, and every entry written here does"),
    ],
    ids=["no key", "another type", "too large", "no expiry"],
)
def test_what_is_not_an_entry_is_named(reply, reason):
    """No key is None; another type, a huge value or a key without expiry say why."""
    assert opened_reply(entry_keys(KEY, "clarify-auth"), reply, now_wall=1e9) == reason


def test_an_entry_of_another_key_is_refused_with_its_reason():
    """An entry sealed under another key's name does not open here: a reason, never a token."""
    other = entry_keys(StoreKey(KEY.token_url, "other-client", KEY.audience, KEY.secret), "p")
    value, ttl_ms = sealed(other)

    found = opened_reply(entry_keys(KEY, "p"), [1, value, ttl_ms], now_wall=1e9)

    assert isinstance(found, str)
    assert "test-token-r" not in found
