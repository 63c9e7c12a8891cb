"""The sans-IO token exchange: requests built and answers read without any server."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest
from pydantic import SecretStr

from clarify_auth import AccessToken, TokenError
from clarify_auth.tokens.exchange import MAX_BODY_BYTES, Failure, FetchPlan, TokenExchange

SECRET = "test-secret-a+b/c d"
URL = "https://api.clarify.io/v1/oauth/token"


@pytest.fixture
def exchange():
    return TokenExchange(
        token_url=URL,
        client_id="test-client",
        client_secret=SecretStr(SECRET),
        audience="https://api.clarify.io/v1/",
        user_agent="clarify-auth/test",
    )


def answer(exchange, status, body, headers=None):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return exchange.answer(status, headers or {}, raw, sent_at_wall=1_700_000_000.0)


def test_the_request_is_the_form_clarify_asks_for(exchange):
    """POST, form-encoded, the four fields, JSON wanted, no compression; the repr hides the form."""
    request = exchange.request()

    assert (request.method, request.url) == ("POST", URL)
    assert dict(request.headers) == {
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
        "Accept-Encoding": "identity",
        "User-Agent": "clarify-auth/test",
    }
    assert parse_qs(request.body.decode()) == {
        "grant_type": ["client_credentials"],
        "client_id": ["test-client"],
        "client_secret": [SECRET],
        "audience": ["https://api.clarify.io/v1/"],
    }
    assert SECRET not in repr(request)


def test_a_token_answer_is_a_token_counted_from_when_the_request_left(exchange):
    """200 with a token: an AccessToken whose expires_at counts from sent_at_wall."""
    token = answer(exchange, 200, {"access_token": "test-token-x", "expires_in": 60})

    assert isinstance(token, AccessToken)
    assert token.expires_at.timestamp() == pytest.approx(1_700_000_060.0)


@pytest.mark.parametrize(
    ("status", "body", "headers", "retryable", "retry_after", "message"),
    [
        (200, b"<html>portal</html>", None, True, None, "body that is not JSON"),
        (200, {"expires_in": 60}, None, False, None, "invalid access_token"),
        (200, {"access_token": "x\r\ny"}, None, False, None, "invalid access_token"),
        (302, b"", None, False, None, "do not follow redirects"),
        (400, {"error": "invalid_client"}, None, False, None, "400: invalid_client"),
        (401, {"error": "access_denied", "error_description": "Unauthorized"}, None, False, None, "(Unauthorized)"),
        (429, {}, {"Retry-After": "7"}, True, 7.0, "answered 429"),
        (503, b"<html>busy</html>", {"Retry-After": "3"}, True, 3.0, "not JSON"),
        (500, {}, None, True, None, "answered 500"),
        (404, {}, None, False, None, "answered 404"),
        (200, b"[" * 100_000, None, True, None, "not JSON"),
    ],
    ids=["portal", "no-token", "crlf-token", "redirect", "rfc6749", "described", "429",
         "html-503", "500", "404", "deep-json"],
)  # fmt: skip
def test_every_kind_of_failed_answer(
    exchange, status, body, headers, retryable, retry_after, message
):
    """Each answer that is no token is a Failure: retryable or final, with Retry-After read."""
    failure = answer(exchange, status, body, headers)

    assert isinstance(failure, Failure)
    assert failure.retryable is retryable
    assert failure.retry_after == retry_after
    assert message in failure.message
    assert failure.status_code == status


@pytest.mark.parametrize(
    "echo",
    [SECRET, "test-secret-a%2Bb%2Fc%20d", "test-secret-a%2Bb%2Fc+d"],
    ids=["raw", "quote", "quote-plus"],
)
def test_a_secret_echoed_in_any_form_is_masked(exchange, echo):
    """The secret as sent or as form-encoded, echoed in error or description, is masked."""
    failure = answer(exchange, 400, {"error": f"bad {echo}", "error_description": f"got {echo}"})

    assert SECRET not in failure.message + failure.error + failure.error_description
    assert echo not in failure.message
    assert "**********" in failure.error_description


def test_a_secret_echoed_in_the_scope_is_masked(exchange):
    """A success whose scope echoes the secret keeps the token, masks the scope."""
    token = answer(exchange, 200, {"access_token": "test-token-x", "scope": f"a,{SECRET}"})

    assert token.scope == "a,**********"


def test_transport_failures_name_what_happened(exchange):
    """Too large, timed out, unreachable, TLS, other: the messages and retryability."""
    cause = OSError("boom")

    assert f"over {MAX_BODY_BYTES // 1024} KiB" in exchange.too_large(200).message
    assert exchange.timed_out(1.5).retryable
    assert "within 1.5 s" in exchange.timed_out(1.5).message
    assert exchange.unreachable(cause, timed_out=True).message.endswith("timed out (OSError)")
    assert exchange.unreachable(cause, timed_out=False).retryable
    assert not exchange.tls_failed(cause).retryable
    assert exchange.failed(cause).to_error(attempts=1).__cause__ is cause


def test_the_plan_retries_transient_failures_with_backoff_then_gives_up(exchange):
    """Retryable failures wait a backoff (at least Retry-After) until the attempts run out."""
    seen = []
    plan = FetchPlan(exchange, attempts=3, deadline=60, attempt_timeout=20, now=0.0,
                     observer=lambda attempt, of: seen.append((attempt, of)))  # fmt: skip

    assert plan.begin(now=0.0) == 20
    first = plan.retry_delay(Failure("x", retryable=True), now=1.0)
    plan.begin(now=2.0)
    second = plan.retry_delay(Failure("x", retryable=True, retry_after=9.0), now=3.0)
    plan.begin(now=12.0)
    with pytest.raises(TokenError, match=r"x \(after 3 attempts\)"):
        plan.retry_delay(Failure("x", retryable=True), now=13.0)

    assert 0.25 <= first <= 0.5
    assert second == 9.0
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_the_plan_gives_up_at_once_on_a_final_failure_or_past_the_deadline(exchange):
    """A rejected client raises at once; a wait past the deadline raises instead of sleeping."""
    plan = FetchPlan(exchange, attempts=5, deadline=10, attempt_timeout=20, now=0.0)
    plan.begin(now=0.0)
    with pytest.raises(TokenError) as final:
        plan.retry_delay(Failure("rejected", status_code=401), now=1.0)
    late = FetchPlan(exchange, attempts=5, deadline=10, attempt_timeout=20, now=0.0)

    assert late.begin(now=0.0) == 10  # an attempt never outlives the deadline
    with pytest.raises(TokenError, match="would start after the 10 s allowed"):
        late.retry_delay(Failure("busy", retryable=True, retry_after=30), now=1.0)
    assert final.value.status_code == 401
