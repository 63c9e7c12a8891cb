"""The token lifecycle on its own: repr, the process store's bounds, fetch_new, adopt."""

from __future__ import annotations

import time

import pytest
import responses
from pydantic import SecretStr

from clarify_auth import BasicAuth, ConfigurationError, FileTokenCache
from clarify_auth.tokens.lifecycle import TokenLifecycle, lifecycle_key, shared_lifecycle
from clarify_auth.tokens.process_store import _STORE, _STORE_SIZE
from clarify_auth.tokens.token import AccessToken, CachedToken
from conftest import TOKEN_URL, make_oauth, token_body


def test_repr_says_whether_a_token_is_held_never_which(clock):
    """A lifecycle's repr names the token URL and whether it holds a token."""
    lifecycle = TokenLifecycle(clock=clock, token_url=TOKEN_URL)
    assert repr(lifecycle) == f"TokenLifecycle(token_url={TOKEN_URL!r}, holding no token)"

    lifecycle.entry = CachedToken.issued(AccessToken(access_token="test-token-9"), requested_at=0)

    assert "holding a token" in repr(lifecycle)
    assert "test-token-9" not in repr(lifecycle)


def test_the_process_store_is_bounded(clock):
    """Distinct clients beyond the store's size push out the least recently used."""
    keys = [
        lifecycle_key("u", "c", "a", SecretStr(f"test-secret-{n}"), clock=None)
        for n in range(_STORE_SIZE + 5)
    ]
    first = shared_lifecycle(keys[0], lambda: TokenLifecycle(clock=clock))
    for key in keys[1:]:
        shared_lifecycle(key, lambda: TokenLifecycle(clock=clock))

    assert len(_STORE) == _STORE_SIZE
    assert keys[0] not in _STORE
    assert shared_lifecycle(keys[0], lambda: TokenLifecycle(clock=clock)) is not first


def test_a_recently_used_client_stays_in_the_store(clock):
    """Looking a client up makes it the most recently used."""
    keys = [
        lifecycle_key("u", "c", "a", SecretStr(f"test-secret-{n}"), clock=None)
        for n in range(_STORE_SIZE)
    ]
    first = shared_lifecycle(keys[0], lambda: TokenLifecycle(clock=clock))
    for key in keys[1:]:
        shared_lifecycle(key, lambda: TokenLifecycle(clock=clock))

    assert shared_lifecycle(keys[0], lambda: TokenLifecycle(clock=clock)) is first
    shared_lifecycle(("another",), lambda: TokenLifecycle(clock=clock))
    assert keys[0] in _STORE
    assert keys[1] not in _STORE


@responses.activate
def test_fetch_token_fetches_even_with_a_valid_token_and_shares_it(clock, tmp_path):
    """fetch_token() always asks the endpoint, keeps the new token and writes the file cache."""
    responses.post(TOKEN_URL, json=token_body(1))
    responses.post(TOKEN_URL, json=token_body(2))
    cache = FileTokenCache(tmp_path / "tokens")
    auth = make_oauth(clock, token_cache=cache)
    auth.authorization()

    fresh = auth.fetch_token()

    assert fresh.access_token.get_secret_value() == "test-token-2"
    assert auth.authorization() == "Bearer test-token-2"
    assert make_oauth(clock, token_cache=cache, shared=False).authorization() == (
        "Bearer test-token-2"
    )
    assert len(responses.calls) == 2


def test_adopt_keeps_the_better_token(clock):
    """A carried token replaces the held one only when it lives longer."""
    lifecycle = TokenLifecycle(clock=clock)
    short = CachedToken.issued(
        AccessToken(access_token="short", expires_in=100), requested_at=clock()
    )
    long = CachedToken.issued(
        AccessToken(access_token="long", expires_in=1000), requested_at=clock()
    )
    lifecycle.entry = long
    carried = (short.token, 50.0, 90.0, time.time())

    lifecycle.adopt(carried)

    assert lifecycle.entry is long
    lifecycle.entry = short
    lifecycle.adopt((long.token, 700.0, 900.0, time.time()))
    assert lifecycle.entry.header == "Bearer long"


def test_adopt_drops_a_token_that_expired_on_the_way(clock):
    """A token whose remaining life ran out while it travelled is not taken."""
    lifecycle = TokenLifecycle(clock=clock)

    lifecycle.adopt((AccessToken(access_token="old"), 5.0, 10.0, time.time() - 60))

    assert lifecycle.entry is None
    assert lifecycle.export() is None


@pytest.mark.parametrize(
    ("api_url", "match"),
    [(42, "must be a string"), ("ftp://x/", "api_url"), ("https://x/v1/?", "api_url")],
    ids=["not-a-string", "not-http", "query"],
)
def test_a_bad_api_url_is_a_configuration_error(api_url, match):
    """api_url= is checked like any URL option."""
    with pytest.raises(ConfigurationError, match=match):
        BasicAuth("u", "test-secret-p", api_url=api_url)


def test_api_url_is_shown_normalised():
    """api_url reads back normalised; None means any origin."""
    assert BasicAuth("u", "test-secret-p", api_url="https://x.example/v1").api_url == (
        "https://x.example/v1/"
    )
    assert BasicAuth("u", "test-secret-p").api_url is None
    assert make_oauth(api_url="https://x.example/v1/").api_url == "https://x.example/v1/"


def test_a_colon_in_a_basic_user_name_is_refused():
    """RFC 7617: a ':' in the user name would make the server read another user."""
    from clarify_auth import CredentialsError

    with pytest.raises(CredentialsError, match="':'"):
        BasicAuth("a:b", "test-secret-p")


def test_basic_equality_includes_the_origin():
    """Two Basic authenticators for different APIs are not the same handler."""
    assert BasicAuth("u", "test-secret-p", api_url="https://a.example/") != BasicAuth(
        "u", "test-secret-p", api_url="https://b.example/"
    )


@responses.activate
def test_cached_authorization_never_fetches(clock):
    """cached_authorization() answers None until a token is held, and never does I/O."""
    responses.post(TOKEN_URL, json=token_body(1, expires_in=100))
    auth = make_oauth(clock)

    assert auth.cached_authorization() is None
    assert len(responses.calls) == 0
    header = auth.authorization()
    assert auth.cached_authorization() == header
    clock.advance(80)  # inside the refresh-ahead window: a transport should ask authorization()
    assert auth.cached_authorization() is None
    assert BasicAuth("u", "test-secret-p").cached_authorization().startswith("Basic ")


@responses.activate
def test_refused_drops_only_the_current_token(clock):
    """refused(header) is compare-and-invalidate; Basic and foreign headers are not retried."""
    responses.post(TOKEN_URL, json=token_body(1))
    responses.post(TOKEN_URL, json=token_body(2))
    auth = make_oauth(clock)
    first = auth.authorization()

    assert auth.refused(first) is True
    second = auth.authorization()
    assert auth.refused(first) is True  # a late 401 for the old token drops nothing more
    assert auth.authorization() == second == "Bearer test-token-2"
    assert auth.refused("Basic x") is False
    assert BasicAuth("u", "test-secret-p").refused("Basic x") is False


@responses.activate
def test_an_old_pickle_cannot_bring_back_a_dropped_token(clock):
    """A copy pickled before invalidate() and unpickled after it does not revive the token."""
    import pickle

    responses.post(TOKEN_URL, json=token_body(1))
    responses.post(TOKEN_URL, json=token_body(2))
    auth = make_oauth()
    auth.authorization()
    stale = pickle.dumps(auth)
    auth.invalidate()

    copy = pickle.loads(stale)

    assert copy.authorization() == "Bearer test-token-2"
    assert auth.authorization() == "Bearer test-token-2"
