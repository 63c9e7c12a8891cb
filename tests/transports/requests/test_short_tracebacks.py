"""Errors that reach a user carry a short traceback: the user's call and the SDK's one raise."""

from __future__ import annotations

import traceback

import pytest

import clarify_auth
from clarify_auth.testing import FakeClarify, forget_shared_tokens

REJECTED = {"error": "access_denied", "error_description": "Unauthorized"}


@pytest.fixture
def fake():
    forget_shared_tokens()
    with FakeClarify() as clarify:
        yield clarify
    forget_shared_tokens()


def frames_of(error: BaseException) -> list[str]:
    """'file:function' for each frame from the catching test down to the raise."""
    return [
        f"{frame.filename.rsplit('/', 1)[-1]}:{frame.name}"
        for frame in traceback.extract_tb(error.__traceback__)
    ]


def printed_lines(error: BaseException) -> list[str]:
    return "".join(traceback.format_exception(error)).splitlines()


def test_rejected_credentials_through_a_session_show_two_sdk_frames(fake):
    """session.rpc with a rejected secret: this test, rpc, requests' post, the session's request."""
    fake.fail_token_requests(1, status=401, body=REJECTED)
    with (
        clarify_auth.ClarifySession(fake.credentials()) as session,
        pytest.raises(clarify_auth.TokenError) as raised,
    ):
        session.rpc("clarify.selectItems")

    frames = frames_of(raised.value)
    assert frames == [
        "test_short_tracebacks.py:test_rejected_credentials_through_a_session_show_two_sdk_frames",
        "session.py:rpc",
        "sessions.py:post",
        "session.py:request",
    ]
    assert len(printed_lines(raised.value)) < 15  # it was 22 frames, over 40 lines


def test_an_unreachable_endpoint_shows_the_cause_without_its_machinery(fake):
    """A token endpoint that drops every connection: the TokenError and its cause, both short."""
    fake.drop_token_requests(10)
    auth = clarify_auth.OAuthClientCredentials.from_credentials(
        fake.credentials(), attempts=2, sleep=lambda _: None
    )

    with pytest.raises(clarify_auth.TokenError) as raised:
        auth.authorization()

    assert frames_of(raised.value)[1:] == ["oauth.py:authorization"]
    cause = raised.value.__cause__
    assert cause is not None
    assert traceback.extract_tb(cause.__traceback__) == []
    assert "connection failed" in str(raised.value)
    printed = printed_lines(raised.value)
    assert printed[0].startswith("requests.exceptions.ConnectionError: ")
    frames = [line for line in printed if line.lstrip().startswith("File ")]
    assert len(frames) == 2  # this test's call and the SDK's one raise, nothing between
    assert "The above exception was the direct cause" in "\n".join(printed)


def test_threads_sharing_one_failed_fetch_each_get_a_short_traceback(fake):
    """Eight threads share one rejected fetch; none of them sees the others' frames."""
    import threading

    fake.fail_token_requests(1, status=401, body=REJECTED)
    fake.token_latency = 0.2
    auth = clarify_auth.OAuthClientCredentials.from_credentials(fake.credentials())
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def call() -> None:
        start.wait(10)
        try:
            auth.token()
        except clarify_auth.TokenError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert len(errors) == 8
    assert fake.token_requests == 1
    assert len(frames_of(errors[-1])) <= 2
