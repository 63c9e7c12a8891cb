"""Authenticators: Basic headers, OAuth construction checks, caching, expiry and refresh."""

from __future__ import annotations

import base64
import logging

import pytest
import requests
import responses
from pydantic import SecretStr

import clarify_auth
from clarify_auth import (
    Authenticator,
    BasicAuth,
    ClarifyAuthError,
    CredentialsError,
    InsecureTransportError,
    OAuthClientCredentials,
    TokenError,
)
from conftest import API_URL, BASIC_PASSWORD, SECRET, TOKEN_URL, make_oauth, token_body

# -- Basic -------------------------------------------------------------------------


def test_basic_header_is_base64_of_utf8_pair():
    """authorization() is 'Basic ' + base64(user:password) over UTF-8."""
    auth = BasicAuth("test-integration", "test-secret-pässwörd")

    expected = base64.b64encode("test-integration:test-secret-pässwörd".encode()).decode()
    assert auth.authorization() == "Basic " + expected


def test_basic_from_credentials(basic_creds):
    """BasicAuth.from_credentials uses clientId and clientSecret."""
    auth = BasicAuth.from_credentials(basic_creds)

    assert auth.username == "test-integration"
    assert (
        auth.authorization()
        == "Basic " + base64.b64encode(f"test-integration:{BASIC_PASSWORD}".encode()).decode()
    )


def test_basic_accepts_secretstr_and_is_a_requests_auth():
    """BasicAuth takes a SecretStr and works as requests' auth= handler."""
    auth = BasicAuth("u", SecretStr("test-secret-p"))
    request = requests.Request("GET", "https://api.clarify.io/v1/rpc", auth=auth).prepare()

    assert request.headers["Authorization"] == auth.authorization()
    assert isinstance(auth, requests.auth.AuthBase)


def test_basic_repr_and_invalidate():
    """Repr shows the user name only; invalidate() is a harmless no-op."""
    auth = BasicAuth("test-integration", BASIC_PASSWORD)

    auth.invalidate()

    encoded = base64.b64encode(f"test-integration:{BASIC_PASSWORD}".encode()).decode()
    assert repr(auth) == "BasicAuth(username='test-integration')"
    assert BASIC_PASSWORD not in str(auth)
    assert encoded not in repr(auth) + str(auth)
    assert auth.authorization().endswith(encoded)


def test_basic_equality():
    """Two BasicAuth with the same pair are equal and hash alike."""
    assert BasicAuth("u", "test-secret-a") == BasicAuth("u", "test-secret-a")
    assert BasicAuth("u", "test-secret-a") != BasicAuth("u", "test-secret-b")
    assert BasicAuth("u", "test-secret-a") != "u"
    assert hash(BasicAuth("u", "test-secret-a")) == hash(BasicAuth("u", "test-secret-b"))


@pytest.mark.parametrize(
    ("username", "password", "match"),
    [
        ("", "test-secret-p", "username"),
        (None, "test-secret-p", "username"),
        ("u", "", "password"),
        ("u", 5, "password"),
        ("u", SecretStr(""), "password"),
    ],
    ids=["empty-user", "none-user", "empty-password", "int-password", "empty-secretstr"],
)
def test_basic_rejects_bad_values(username, password, match):
    """Empty or non-string user names and passwords are CredentialsErrors."""
    with pytest.raises(CredentialsError, match=match):
        BasicAuth(username, password)


def test_basic_from_oauth_credentials_explains(oauth_creds):
    """BasicAuth.from_credentials of client-credentials says what to use instead."""
    with pytest.raises(CredentialsError, match=r"credentials\.type"):
        BasicAuth.from_credentials(oauth_creds)


def test_basic_from_credentials_takes_no_options(basic_creds):
    """BasicAuth has no options to pass."""
    with pytest.raises(TypeError, match="timeout"):
        BasicAuth.from_credentials(basic_creds, timeout=3)


# -- from_credentials ------------------------------------------------------------------


def test_authenticator_from_credentials_dispatches(oauth_creds, basic_creds):
    """Authenticator.from_credentials picks the class from credentials.type."""
    oauth = Authenticator.from_credentials(oauth_creds, timeout=3)
    basic = Authenticator.from_credentials(basic_creds)

    assert isinstance(oauth, OAuthClientCredentials)
    assert oauth.token_url == TOKEN_URL
    assert oauth.audience == API_URL
    assert oauth.client_id == "test-client"
    assert oauth.timeout == 3.0
    assert isinstance(basic, BasicAuth)


def test_authenticator_from_credentials_rejects_other_types():
    """A dict is not Credentials."""
    with pytest.raises(TypeError, match="Credentials"):
        Authenticator.from_credentials({"integration": "x"})  # type: ignore[arg-type]


def test_oauth_from_basic_credentials_explains(basic_creds):
    """OAuthClientCredentials.from_credentials of basic-auth says what to use instead."""
    with pytest.raises(CredentialsError, match=r"credentials\.type"):
        OAuthClientCredentials.from_credentials(basic_creds)


def test_authenticator_is_abstract():
    """Authenticator itself cannot be instantiated."""
    with pytest.raises(TypeError):
        Authenticator()  # type: ignore[abstract]


# -- OAuth construction --------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://api.clarify.io/v1/oauth/token",
        "http://10.0.0.1/oauth/token",
        "http://127.example.com/t",
        "http://localhost.evil.com/t",
    ],
    ids=["public-host", "private-ip", "lookalike", "localhost-prefix"],
)
def test_plain_http_token_url_is_refused(url):
    """A plain-http token URL to a host that is not loopback is refused at construction."""
    with pytest.raises(InsecureTransportError) as info:
        make_oauth(token_url=url)

    assert isinstance(info.value, ClarifyAuthError)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8080/v1/oauth/token",
        "http://LOCALHOST/t",
        "http://127.0.0.1/t",
        "http://127.1.2.3:9/t",
        "http://[::1]:8080/t",
        "https://api.clarify.io/v1/oauth/token",
    ],
    ids=["localhost", "localhost-upper", "127.0.0.1", "127/8", "ipv6-loopback", "https"],
)
def test_loopback_and_https_token_urls_are_accepted(url):
    """Https anywhere and http to loopback are fine."""
    assert make_oauth(token_url=url).token_url == url


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"token_url": "not a url"}, clarify_auth.ConfigurationError, "token_url"),
        ({"token_url": 5}, clarify_auth.ConfigurationError, "token_url"),
        ({"audience": ""}, clarify_auth.ConfigurationError, "audience"),
        ({"timeout": 0}, clarify_auth.ConfigurationError, "timeout"),
        ({"timeout": None}, clarify_auth.ConfigurationError, "timeout"),
        ({"timeout": (1, -1)}, clarify_auth.ConfigurationError, "timeout"),
        ({"timeout": (1, 2, 3)}, clarify_auth.ConfigurationError, "timeout"),
        ({"timeout": True}, clarify_auth.ConfigurationError, "timeout"),
        ({"attempts": 0}, clarify_auth.ConfigurationError, "attempts"),
        ({"attempts": 2.5}, clarify_auth.ConfigurationError, "attempts"),
        ({"deadline": -1}, clarify_auth.ConfigurationError, "deadline"),
    ],
    ids=lambda v: str(v) if not isinstance(v, dict) else "-".join(f"{k}={v[k]}" for k in v),
)
def test_bad_options_are_refused(options, error, match):
    """Invalid options raise a ConfigurationError (a ValueError) naming the option."""
    with pytest.raises(error, match=match) as info:
        make_oauth(**options)

    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("client_id", "secret"),
    [("", SECRET), ("  ", SECRET), (None, SECRET), ("c", ""), ("c", None), ("c", SecretStr(""))],
    ids=["empty-id", "blank-id", "none-id", "empty-secret", "none-secret", "empty-secretstr"],
)
def test_empty_client_id_or_secret_is_refused(client_id, secret):
    """client_id and client_secret must be non-empty strings."""
    with pytest.raises(CredentialsError):
        OAuthClientCredentials(client_id, secret, token_url=TOKEN_URL, audience=API_URL)


def test_oauth_repr_hides_secret():
    """Repr names client and token URL, never the secret."""
    auth = make_oauth()

    assert repr(auth) == (
        "OAuthClientCredentials(client_id='test-client', token_url='https://api.clarify.io/v1/oauth/token')"
    )
    assert SECRET not in str(auth)


# -- caching and expiry ------------------------------------------------------------------


@responses.activate
def test_token_is_cached_until_the_refresh_point(clock):
    """One token request serves every call until the early-refresh point."""
    responses.post(TOKEN_URL, json=token_body(1, expires_in=3600))
    responses.post(TOKEN_URL, json=token_body(2, expires_in=3600))
    auth = make_oauth(clock)

    first = auth.authorization()
    clock.advance(3600 - 300 - 0.001)  # just before "5 minutes before expiry"
    again = auth.authorization()

    assert first == again == "Bearer test-token-1"
    assert len(responses.calls) == 1


@responses.activate
def test_token_is_never_used_after_expiry(clock):
    """Once the token is past its expiry (less the margin), callers wait for a new one."""
    responses.post(TOKEN_URL, json=token_body(1, expires_in=120))
    responses.post(TOKEN_URL, json=token_body(2, expires_in=120))
    auth = make_oauth(clock)
    auth.token()

    clock.advance(120 - 6)  # 2-minute token: margin 5 % = 6 s

    assert auth.authorization() == "Bearer test-token-2"
    assert len(responses.calls) == 2


@pytest.mark.parametrize(
    ("lifetime", "refresh_after", "expire_after"),
    [(86_400, 86_400 - 300, 86_400 - 30), (120, 90, 114), (2, 1.5, 1.9), (3600, 3300, 3570)],
    ids=["24h", "2min", "2s", "1h"],
)
def test_refresh_and_expiry_points_suit_long_and_short_tokens(
    clock, lifetime, refresh_after, expire_after
):
    """Refresh starts a quarter of the lifetime (at most 5 min) early; use stops 5 % (at most 30 s) early."""
    from clarify_auth.tokens.token import AccessToken, CachedToken

    token = AccessToken(access_token="test-token-1", expires_in=lifetime)

    entry = CachedToken.issued(token, requested_at=100.0)

    assert entry.refresh_at == pytest.approx(100.0 + refresh_after)
    assert entry.expires_at == pytest.approx(100.0 + expire_after)
    assert "test-token-1" not in repr(entry)


@responses.activate
def test_a_two_minute_token_is_not_refreshed_on_every_call(clock):
    """A short token is reused for most of its life, not refetched per call."""
    responses.post(TOKEN_URL, json=token_body(1, expires_in=120))
    auth = make_oauth(clock)

    for _ in range(80):
        auth.authorization()
        clock.advance(1)

    assert len(responses.calls) == 1


@responses.activate
def test_lifetime_counts_from_when_the_request_left(clock):
    """Time spent waiting for the token endpoint shortens the token's life, never lengthens it."""

    def slow(request):
        clock.advance(50)
        return (200, {}, '{"access_token": "test-token-1", "expires_in": 120}')

    responses.add_callback(responses.POST, TOKEN_URL, callback=slow)
    auth = make_oauth(clock)

    auth.token()

    assert auth._lifecycle.entry.expires_at == pytest.approx(1000 + 114)


@responses.activate
def test_absurd_lifetime_is_capped_at_a_day(clock, caplog):
    """A token said to live for centuries is still refreshed within a day."""
    caplog.set_level(logging.INFO, logger="clarify_auth")
    responses.post(TOKEN_URL, json=token_body(1, expires_in=1e12))
    responses.post(TOKEN_URL, json=token_body(2, expires_in=1e12))
    auth = make_oauth(clock, refresh_in_background=False)
    auth.token()

    clock.advance(86_400)

    assert auth.authorization() == "Bearer test-token-2"
    assert "will be refreshed after 86400 s" in caplog.text


@responses.activate
def test_missing_expires_in_assumes_a_short_life(clock, caplog):
    """Without expires_in the token is assumed to live 5 minutes, with a warning."""
    responses.post(TOKEN_URL, json={"access_token": "test-token-1", "token_type": "Bearer"})
    responses.post(TOKEN_URL, json=token_body(2))
    auth = make_oauth(clock)

    token = auth.token()
    clock.advance(300)

    assert token.expires_in == 300.0
    assert auth.authorization() == "Bearer test-token-2"
    assert "gave no expires_in" in caplog.text


@responses.activate
def test_invalidate_forces_a_new_token(clock):
    """invalidate() drops the cached token."""
    responses.post(TOKEN_URL, json=token_body(1))
    responses.post(TOKEN_URL, json=token_body(2))
    auth = make_oauth(clock)
    auth.token()

    auth.invalidate()

    assert auth.authorization() == "Bearer test-token-2"


@responses.activate
def test_failed_fetch_is_not_cached(clock):
    """After a TokenError the next call tries again."""
    responses.post(TOKEN_URL, status=401, json={"error": "invalid_client"})
    responses.post(TOKEN_URL, json=token_body(1))
    auth = make_oauth(clock)

    with pytest.raises(TokenError):
        auth.token()

    assert auth.authorization() == "Bearer test-token-1"


# -- refresh ahead of expiry ---------------------------------------------------------------


@responses.activate
def test_inline_early_refresh_replaces_the_token(clock):
    """Inside the early-refresh window one caller fetches the next token on its own thread."""
    responses.post(TOKEN_URL, json=token_body(1, expires_in=3600))
    responses.post(TOKEN_URL, json=token_body(2, expires_in=3600))
    auth = make_oauth(clock, refresh_in_background=False)
    auth.token()

    clock.advance(3400)

    assert auth.authorization() == "Bearer test-token-2"
    assert len(responses.calls) == 2


@responses.activate
def test_early_refresh_failure_keeps_the_valid_token(clock, caplog):
    """When a refresh ahead of expiry fails, callers keep the still-valid token, with a warning."""
    responses.post(TOKEN_URL, json=token_body(1, expires_in=3600))
    responses.post(TOKEN_URL, status=503, json={})
    auth = make_oauth(clock, refresh_in_background=False, attempts=1)
    auth.token()
    clock.advance(3400)

    header = auth.authorization()

    assert header == "Bearer test-token-1"
    assert "still using the current token" in caplog.text
    assert SECRET not in caplog.text


@responses.activate
def test_early_refresh_failure_backs_off_before_trying_again(clock):
    """After a failed early refresh, the next attempt waits 10 s: no hammering."""
    responses.post(TOKEN_URL, json=token_body(1, expires_in=3600))
    responses.post(TOKEN_URL, status=503, json={})
    auth = make_oauth(clock, refresh_in_background=False, attempts=1)
    auth.token()
    clock.advance(3400)
    auth.authorization()

    for _ in range(9):
        clock.advance(1)
        auth.authorization()
    calls_during_backoff = len(responses.calls)
    responses.replace(responses.POST, TOKEN_URL, json=token_body(2, expires_in=3600))
    clock.advance(1.5)
    header = auth.authorization()

    assert calls_during_backoff == 2
    assert header == "Bearer test-token-2"


@responses.activate
def test_failure_after_expiry_raises(clock):
    """Once the token has expired, a failing refresh is the caller's TokenError."""
    responses.post(TOKEN_URL, json=token_body(1, expires_in=3600))
    responses.post(TOKEN_URL, status=401, json={"error": "invalid_client"})
    auth = make_oauth(clock, refresh_in_background=False)
    auth.token()
    clock.advance(3600)

    with pytest.raises(TokenError) as info:
        auth.authorization()

    assert info.value.error == "invalid_client"


def test_background_refresh_serves_the_old_token_meanwhile(server, clock):
    """In the early window the caller gets the current token at once; a thread fetches the next."""
    server.expires_in = 3600
    auth = OAuthClientCredentials.from_credentials(
        server.credentials(), clock=clock, sleep=clock.sleep
    )
    assert auth.authorization() == "Bearer test-token-1"
    server.token_delay = 0.2
    clock.advance(3400)

    during = auth.authorization()
    flight = auth._lifecycle._flight
    assert flight is not None
    flight.result(10)
    after = auth.authorization()

    assert during == "Bearer test-token-1"
    assert after == "Bearer test-token-2"
    assert server.issued == 2


def test_background_refresh_failure_is_logged_not_raised(server, clock, caplog):
    """A failed background refresh leaves the valid token in place and logs why."""
    from _loopback import Reply

    auth = OAuthClientCredentials.from_credentials(
        server.credentials(), clock=clock, sleep=clock.sleep, attempts=1
    )
    auth.authorization()
    server.token_replies.append(Reply(503, {"error": "temporarily_unavailable"}))
    clock.advance(3400)

    header = auth.authorization()
    flight = auth._lifecycle._flight
    with pytest.raises(TokenError):
        flight.result(10)

    assert header == "Bearer test-token-1"
    assert auth.authorization() == "Bearer test-token-1"
    assert "still using the current token" in caplog.text


def test_waiters_give_up_after_the_deadline(clock):
    """A waiter on a token request that never ends gives up with a TokenError (bounded wait)."""
    from clarify_auth.tokens.flight import Flight

    flight = Flight()

    with pytest.raises(TokenError, match="waiting"):
        flight.result(0.01)


def test_interrupted_fetch_gives_waiters_a_token_error(clock, monkeypatch):
    """A KeyboardInterrupt in the fetching thread stays there; waiters get a TokenError."""
    auth = make_oauth(clock)
    flight_seen = []

    def interrupted_fetch(http):
        flight_seen.append(auth._lifecycle._flight)
        raise KeyboardInterrupt

    monkeypatch.setattr(auth._endpoint, "fetch", interrupted_fetch)

    with pytest.raises(KeyboardInterrupt):
        auth.authorization()

    with pytest.raises(TokenError, match="interrupted") as info:
        flight_seen[0].result(1)
    assert info.value.retryable is True
    assert auth._lifecycle._flight is None


@responses.activate
def test_scopes_of_a_token_without_scope(clock):
    """A token without scope has no scopes; scopes split on commas and spaces."""
    responses.post(TOKEN_URL, json=token_body(1))

    token = make_oauth(clock).token()

    assert token.scope is None
    assert token.scopes == ()
    assert clarify_auth.AccessToken(access_token="t", scope="a, b c").scopes == ("a", "b", "c")


def test_fast_path_sets_the_header_as_requests_would(oauth_creds):
    """The hot path's direct header write equals CaseInsensitiveDict's own, on any request."""
    from clarify_auth.tokens.token import AccessToken, CachedToken

    auth = OAuthClientCredentials.from_credentials(oauth_creds)
    auth._lifecycle.entry = CachedToken.at(
        AccessToken(access_token="test-token-1"), refresh_at=float("inf"), expires_at=float("inf")
    )
    fast = requests.Request("GET", API_URL + "x", headers={"authorization": "old"}).prepare()
    normal = requests.Request(
        "GET", API_URL + "x", headers={"Authorization": "Bearer test-token-1"}
    ).prepare()

    auth(fast)
    auth(fast)  # a second pass adds no second hook

    assert dict(fast.headers) == dict(normal.headers)
    assert fast.headers["AUTHORIZATION"] == "Bearer test-token-1"
    assert list(fast.headers.keys()).count("Authorization") == 1
    assert fast.hooks["response"] == [auth._hook]


def test_fast_path_with_a_replaced_header_mapping(oauth_creds):
    """A request whose headers are not requests' own mapping is set through the public route."""
    from clarify_auth.tokens.token import AccessToken, CachedToken

    auth = OAuthClientCredentials.from_credentials(oauth_creds)
    auth._lifecycle.entry = CachedToken.at(
        AccessToken(access_token="test-token-1"), refresh_at=float("inf"), expires_at=float("inf")
    )
    request = requests.Request("GET", API_URL + "x").prepare()
    request.headers = {}  # type: ignore[assignment]

    auth(request)

    assert request.headers == {"Authorization": "Bearer test-token-1"}


def test_each_new_origin_is_checked(oauth_creds):
    """The remembered origin never lets a different host through unchecked."""
    from clarify_auth.tokens.token import AccessToken, CachedToken

    auth = BasicAuth("u", "test-secret-p")
    auth(requests.Request("GET", "http://127.0.0.1:8080/x").prepare())

    with pytest.raises(InsecureTransportError):
        auth(requests.Request("GET", "http://127.0.0.1.evil.example:8080/x").prepare())
    with pytest.raises(InsecureTransportError):
        auth(requests.Request("GET", "http://example.com/x").prepare())
    oauth = make_oauth()  # not restricted to one origin
    oauth._lifecycle.entry = CachedToken.at(
        AccessToken(access_token="t"), refresh_at=float("inf"), expires_at=float("inf")
    )
    with pytest.raises(InsecureTransportError):
        oauth(requests.Request("GET", "http://example.com/x").prepare())


def test_basic_credentials_have_no_token_and_say_so():
    """Authenticator.token() on Basic credentials is a ConfigurationError pointing at authorization()."""
    auth = BasicAuth("test-integration", "test-secret-basic-token")

    with pytest.raises(
        clarify_auth.ConfigurationError, match=r"BasicAuth has no access token.*authorization\(\)"
    ) as raised:
        auth.token()

    assert "test-secret-basic-token" not in str(raised.value)
    assert auth.counters == clarify_auth.TokenCounters()
