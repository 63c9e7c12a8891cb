"""Token requests on the wire: the exact form, retries, Retry-After, and error mapping."""

from __future__ import annotations

import email.utils
import time
from urllib.parse import parse_qs

import pytest
import requests
import responses
from hypothesis import given
from hypothesis import strategies as st

from clarify_auth import AccessToken, TokenError
from clarify_auth.transports.requests.token_requests import parse_retry_after
from conftest import API_URL, SECRET, TOKEN_URL, FakeClock, make_oauth, token_body


@responses.activate
def test_token_request_is_exactly_what_clarify_expects(clock):
    """POST, form-encoded, with grant_type, client_id, client_secret and audience, no redirects."""
    responses.post(TOKEN_URL, json=token_body(scope="a,b"))
    auth = make_oauth(clock)

    token = auth.token()

    assert len(responses.calls) == 1
    sent = responses.calls[0].request
    assert sent.method == "POST"
    assert sent.url == TOKEN_URL
    assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert sent.headers["Accept"] == "application/json"
    assert "Authorization" not in sent.headers
    assert parse_qs(sent.body) == {
        "grant_type": ["client_credentials"],
        "client_id": ["test-client"],
        "client_secret": [SECRET],
        "audience": [API_URL],
    }
    assert sent.req_kwargs["timeout"] == (5.0, 15.0)
    assert token.access_token.get_secret_value() == "test-token-1"
    assert token.token_type == "Bearer"
    assert token.scope == "a,b"
    assert token.scopes == ("a", "b")
    assert token.expires_in == 3600.0


@responses.activate
def test_custom_timeout_is_sent(clock):
    """The timeout option is what each token request uses."""
    responses.post(TOKEN_URL, json=token_body())
    auth = make_oauth(clock, timeout=2.5)

    auth.token()

    assert responses.calls[0].request.req_kwargs["timeout"] == 2.5


@responses.activate
def test_timeout_is_capped_by_the_remaining_deadline(clock):
    """No attempt may outlive the whole fetch's deadline."""
    responses.post(TOKEN_URL, json=token_body())
    auth = make_oauth(clock, timeout=(5.0, 15.0), deadline=3.0)

    auth.token()

    assert responses.calls[0].request.req_kwargs["timeout"] == (3.0, 3.0)


@pytest.mark.parametrize(
    ("body", "error", "description"),
    [
        (
            {"error": "access_denied", "error_description": "Unauthorized"},
            "access_denied",
            "Unauthorized",
        ),
        ({"error": "invalid_client"}, "invalid_client", None),
        ({"error": "invalid_request", "error_description": 5}, "invalid_request", None),
    ],
    ids=["access-denied", "no-description", "description-not-string"],
)
@pytest.mark.parametrize("status", [400, 401, 403])
@responses.activate
def test_rejected_client_fails_at_once(clock, status, body, error, description):
    """A 4xx with an RFC 6749 body raises TokenError with its fields, after one request."""
    responses.post(TOKEN_URL, status=status, json=body)
    auth = make_oauth(clock)

    with pytest.raises(TokenError) as info:
        auth.token()

    assert len(responses.calls) == 1
    assert clock.sleeps == []
    assert info.value.status_code == status
    assert info.value.error == error
    assert info.value.error_description == description
    assert info.value.retryable is False
    assert error in str(info.value)
    assert TOKEN_URL in str(info.value)


@responses.activate
def test_echoed_secret_is_scrubbed_from_error_description(clock):
    """A server that echoes the secret back does not get it into the message."""
    responses.post(
        TOKEN_URL,
        status=401,
        json={"error": "invalid_client", "error_description": f"bad secret {SECRET}"},
    )
    auth = make_oauth(clock)

    with pytest.raises(TokenError) as info:
        auth.token()

    assert SECRET not in str(info.value)
    assert SECRET not in (info.value.error_description or "")


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 408])
@responses.activate
def test_transient_statuses_are_retried_then_succeed(clock, status):
    """429, 5xx and 408 are retried with backoff; the next success is used."""
    responses.post(TOKEN_URL, status=status, json={"error": "temporarily_unavailable"})
    responses.post(TOKEN_URL, json=token_body())
    auth = make_oauth(clock)

    token = auth.token()

    assert token.access_token.get_secret_value() == "test-token-1"
    assert len(responses.calls) == 2
    assert len(clock.sleeps) == 1
    assert 0.25 <= clock.sleeps[0] <= 0.5


@responses.activate
def test_transient_failures_exhaust_attempts_with_growing_backoff(clock):
    """Four attempts by default, sleeping 0.25-0.5, 0.5-1, 1-2 s between them; then TokenError."""
    responses.post(TOKEN_URL, status=503, body="<html>Service Unavailable</html>")
    auth = make_oauth(clock)

    with pytest.raises(TokenError) as info:
        auth.token()

    assert len(responses.calls) == 4
    assert 0.25 <= clock.sleeps[0] <= 0.5
    assert 0.5 <= clock.sleeps[1] <= 1.0
    assert 1.0 <= clock.sleeps[2] <= 2.0
    assert info.value.status_code == 503
    assert info.value.error is None
    assert info.value.error_description is None
    assert info.value.retryable is True
    assert "after 4 attempts" in str(info.value)


@responses.activate
def test_backoff_is_capped(clock):
    """However many attempts, no single wait exceeds 8 s."""
    responses.post(TOKEN_URL, status=500, json={})
    auth = make_oauth(clock, attempts=10, deadline=1000)

    with pytest.raises(TokenError):
        auth.token()

    assert len(responses.calls) == 10
    assert max(clock.sleeps) <= 8.0
    assert min(clock.sleeps[4:]) >= 4.0


@responses.activate
def test_attempts_option(clock):
    """attempts=1 means no retry."""
    responses.post(TOKEN_URL, status=503, json={})
    auth = make_oauth(clock, attempts=1)

    with pytest.raises(TokenError) as info:
        auth.token()

    assert len(responses.calls) == 1
    assert "after" not in str(info.value)


@pytest.mark.parametrize(
    "header",
    ["7", "7.0", "http-date"],
    ids=["seconds", "float-seconds", "http-date"],
)
@responses.activate
def test_retry_after_is_honoured(clock, header):
    """Retry-After in seconds or as an HTTP-date sets the wait (when longer than the backoff)."""
    if header == "http-date":
        header = email.utils.formatdate(time.time() + 7, usegmt=True)
    responses.post(
        TOKEN_URL, status=429, json={"error": "rate_limited"}, headers={"Retry-After": header}
    )
    responses.post(TOKEN_URL, json=token_body())
    auth = make_oauth(clock)

    auth.token()

    assert len(clock.sleeps) == 1
    assert 5.5 <= clock.sleeps[0] <= 7.0


@responses.activate
def test_retry_after_beyond_the_deadline_gives_up_at_once(clock):
    """A Retry-After longer than the time left raises at once instead of sleeping in vain."""
    responses.post(
        TOKEN_URL, status=429, json={"error": "slow_down"}, headers={"Retry-After": "3600"}
    )
    auth = make_oauth(clock)

    with pytest.raises(TokenError) as info:
        auth.token()

    assert clock.sleeps == []
    assert len(responses.calls) == 1
    assert info.value.status_code == 429
    assert info.value.error == "slow_down"
    assert "giving up" in str(info.value)


@responses.activate
def test_whole_fetch_gives_up_within_the_deadline(clock):
    """Slow failures stop once the deadline (60 s by default) would be passed."""

    def slow_failure(request):
        # A slow server: each answer takes 25 s, or as long as the capped timeout allows.
        clock.advance(min(25.0, request.req_kwargs["timeout"][1]))
        return (503, {}, "{}")

    responses.add_callback(responses.POST, TOKEN_URL, callback=slow_failure)
    auth = make_oauth(clock, attempts=100)
    start = clock()

    with pytest.raises(TokenError, match="giving up"):
        auth.token()

    assert clock() - start <= 60
    assert len(responses.calls) == 4  # 25 s, 25 s, then two attempts cut short by the deadline


@pytest.mark.parametrize(
    "exc",
    [
        requests.ConnectionError("refused"),
        requests.ConnectTimeout("slow"),
        requests.ReadTimeout("slow"),
        requests.exceptions.ChunkedEncodingError("cut"),
    ],
    ids=["connection", "connect-timeout", "read-timeout", "chunked"],
)
@responses.activate
def test_network_failures_are_retried(clock, exc):
    """Dropped connections and timeouts are retried, then reported with status_code None."""
    responses.post(TOKEN_URL, body=exc)
    auth = make_oauth(clock, attempts=3)

    with pytest.raises(TokenError) as info:
        auth.token()

    assert len(responses.calls) == 3
    assert info.value.status_code is None
    assert info.value.error is None
    assert info.value.retryable is True


@responses.activate
def test_tls_errors_are_not_retried(clock):
    """A certificate problem will not heal by retrying."""
    responses.post(TOKEN_URL, body=requests.exceptions.SSLError("bad cert"))
    auth = make_oauth(clock)

    with pytest.raises(TokenError, match="TLS error") as info:
        auth.token()

    assert len(responses.calls) == 1
    assert info.value.status_code is None


@responses.activate
def test_other_request_errors_are_wrapped(clock):
    """Any other requests failure becomes a TokenError with its cause kept."""
    responses.post(TOKEN_URL, body=requests.exceptions.InvalidHeader("bad"))
    auth = make_oauth(clock)

    with pytest.raises(TokenError, match="InvalidHeader"):
        auth.token()


@pytest.mark.parametrize("status", [200, 403, 404, 502])
@responses.activate
def test_html_pages_are_retried(clock, status):
    """A non-JSON body (a proxy's HTML page) is transient, whatever the status."""
    responses.post(
        TOKEN_URL, status=status, body="<html>proxy says no</html>", content_type="text/html"
    )
    responses.post(TOKEN_URL, json=token_body())
    auth = make_oauth(clock)

    assert auth.token().access_token.get_secret_value() == "test-token-1"
    assert len(responses.calls) == 2


@responses.activate
def test_html_page_error_has_no_rfc6749_fields(clock):
    """After retries on HTML pages, error and error_description are None."""
    responses.post(TOKEN_URL, status=403, body="<html>blocked</html>")
    auth = make_oauth(clock, attempts=2)

    with pytest.raises(TokenError, match="not JSON") as info:
        auth.token()

    assert info.value.status_code == 403
    assert info.value.error is None
    assert info.value.error_description is None


@responses.activate
def test_4xx_json_without_error_member_fails_at_once(clock):
    """A 404 with a JSON body that is not RFC 6749 is the server's answer: no retry."""
    responses.post(TOKEN_URL, status=404, json={"message": "no such route"})
    auth = make_oauth(clock)

    with pytest.raises(TokenError) as info:
        auth.token()

    assert len(responses.calls) == 1
    assert info.value.status_code == 404
    assert info.value.error is None


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@responses.activate
def test_redirects_are_not_followed(clock, status):
    """A redirect would carry the secret elsewhere: it is an error, not followed."""
    responses.post(TOKEN_URL, status=status, headers={"Location": "https://evil.example/token"})
    auth = make_oauth(clock)

    with pytest.raises(TokenError, match="redirect") as info:
        auth.token()

    assert len(responses.calls) == 1
    assert info.value.status_code == status


MALFORMED = [
    ("array", [1, 2], "not an object"),
    ("no-access-token", {"token_type": "Bearer", "expires_in": 60}, "access_token"),
    ("empty-access-token", token_body() | {"access_token": ""}, "access_token"),
    ("access-token-number", token_body() | {"access_token": 5}, "access_token"),
    ("expires-negative", token_body(expires_in=-5), "expires_in"),
    ("expires-zero", token_body(expires_in=0), "expires_in"),
    ("expires-text", token_body(expires_in="soon"), "expires_in"),
    ("expires-bool", token_body(expires_in=True), "expires_in"),
    ("expires-null", token_body(expires_in=None), "expires_in"),
    ("expires-list", token_body(expires_in=[1]), "expires_in"),
    ("token-type-mac", token_body(token_type="mac"), "only Bearer"),
]


@pytest.mark.parametrize(
    ("body", "expected"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
@responses.activate
def test_malformed_success_bodies_raise_token_error(clock, body, expected):
    """A 200 whose JSON is not a usable token raises TokenError naming the field, once."""
    responses.post(TOKEN_URL, json=body)
    auth = make_oauth(clock)

    with pytest.raises(TokenError) as info:
        auth.token()

    assert expected in str(info.value)
    assert len(responses.calls) == 1
    assert "test-token-1" not in str(info.value)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
@responses.activate
def test_non_finite_expires_in_is_rejected(clock, literal):
    """NaN and infinities (which Python's JSON accepts) never become a lifetime."""
    raw = '{"access_token": "test-token-1", "token_type": "Bearer", "expires_in": ' + literal + "}"
    responses.post(TOKEN_URL, body=raw, content_type="application/json")
    auth = make_oauth(clock)

    with pytest.raises(TokenError, match="expires_in"):
        auth.token()


@pytest.mark.parametrize(("given", "expected"), [("3600", 3600.0), (59.5, 59.5), ("1e2", 100.0)])
@responses.activate
def test_numeric_strings_and_floats_are_accepted(clock, given, expected):
    """expires_in as a numeric string or a float is understood."""
    responses.post(TOKEN_URL, json=token_body(expires_in=given))
    auth = make_oauth(clock)

    assert auth.token().expires_in == expected


@responses.activate
def test_lowercase_bearer_and_missing_token_type_are_accepted(clock):
    """token_type is matched case-insensitively; a missing one means Bearer."""
    responses.post(
        TOKEN_URL, json={"access_token": "test-token-1", "token_type": "bearer", "expires_in": 60}
    )
    auth = make_oauth(clock)

    assert auth.authorization() == "Bearer test-token-1"


@given(
    st.dictionaries(
        st.sampled_from(["access_token", "token_type", "expires_in", "scope", "x"]),
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    )
)
def test_any_json_object_gives_token_or_token_error(body):
    """Whatever JSON object the endpoint returns, the result is a token or a TokenError."""
    clock = FakeClock()
    with responses.RequestsMock() as mock:
        mock.post(TOKEN_URL, json=body)
        auth = make_oauth(clock, attempts=1)
        try:
            token = auth.token()
        except TokenError:
            return
    assert isinstance(token, AccessToken)
    assert 0 < token.expires_in < float("inf")


def test_parse_retry_after():
    """Seconds, dates in the past and future, and garbage are all understood or ignored."""
    now = 1_700_000_000.0
    future = email.utils.formatdate(now + 30, usegmt=True)
    past = email.utils.formatdate(now - 30, usegmt=True)

    assert parse_retry_after(None) is None
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("inf") is None
    assert parse_retry_after(future, now=now) == pytest.approx(30.0)
    assert parse_retry_after(past, now=now) == 0.0
    assert parse_retry_after("Mon, 01 Jan 2024 00:00:00", now=now) is None  # no zone
    assert 0 <= parse_retry_after(email.utils.formatdate(time.time() + 5, usegmt=True)) <= 5
