"""Many threads at once, over real sockets: one token request, shared results and errors."""

from __future__ import annotations

import logging
import threading
from collections import Counter

import pytest

from _loopback import Reply
from clarify_auth import (
    ClarifySession,
    FileTokenCache,
    OAuthClientCredentials,
    TokenError,
)

THREADS = 32


def run_together(count, target):
    """Release `count` threads at one barrier; return what each returned or raised."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def worker(i):
        barrier.wait(timeout=10)
        try:
            results[i] = target()
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    return results


def test_cold_start_storm_sends_one_token_request(server):
    """32 threads that need a token together cause exactly one token request and share it."""
    server.token_delay = 0.3
    auth = OAuthClientCredentials.from_credentials(server.credentials())

    results = run_together(THREADS, auth.authorization)

    assert server.count("POST", "/v1/oauth/token") == 1
    assert results == ["Bearer test-token-1"] * THREADS


def test_cold_start_storm_through_a_session(server):
    """32 threads calling rpc on one cold session: one token request, 32 successful calls."""
    server.token_delay = 0.3

    with ClarifySession(server.credentials()) as session:
        results = run_together(THREADS, lambda: session.rpc("clarify.selectItems"))

    assert server.count("POST", "/v1/oauth/token") == 1
    assert results == [{"ok": True}] * THREADS
    assert server.count("POST", "/v1/rpc") == THREADS


def test_threads_share_one_error(server):
    """When the endpoint rejects the client, every waiting thread gets that TokenError, from one request."""
    server.token_replies.append(
        Reply(401, {"error": "access_denied", "error_description": "Unauthorized"}, delay=0.3)
    )
    auth = OAuthClientCredentials.from_credentials(server.credentials())

    results = run_together(16, auth.authorization)

    assert server.count("POST", "/v1/oauth/token") == 1
    assert all(isinstance(r, TokenError) for r in results)
    assert {(r.status_code, r.error) for r in results} == {(401, "access_denied")}


def test_concurrent_401s_for_one_token_cause_one_refresh(server):
    """When a token is revoked under 16 busy threads, exactly one new token is fetched."""
    session = ClarifySession(server.credentials())
    session.rpc("warm.up")
    server.valid_tokens.clear()  # revoke test-token-1
    server.token_delay = 0.2

    results = run_together(16, lambda: session.rpc("clarify.selectItems"))

    assert results == [{"ok": True}] * 16
    assert server.issued == 2
    session.close()


def test_sixty_four_threads_reuse_pooled_connections(server, caplog):
    """A 64-thread pipeline does not overflow the session's connection pool."""
    caplog.set_level(logging.WARNING, logger="urllib3")
    session = ClarifySession(server.credentials())

    results = run_together(64, lambda: session.rpc("clarify.selectItems"))

    assert Counter(map(str, results)) == Counter({str({"ok": True}): 64})
    assert "Connection pool is full" not in caplog.text
    session.close()


@pytest.mark.parametrize("in_background", [True, False], ids=["background", "inline"])
def test_early_refresh_under_load_fetches_once(server, clock, in_background):
    """Inside the early-refresh window, 32 threads start one refresh and all keep working."""
    auth = OAuthClientCredentials.from_credentials(
        server.credentials(), clock=clock, sleep=clock.sleep, refresh_in_background=in_background
    )
    auth.authorization()
    server.token_delay = 0.2
    clock.advance(3400)

    results = run_together(THREADS, auth.authorization)
    if auth._lifecycle._flight is not None:
        auth._lifecycle._flight.result(10)

    assert server.issued == 2
    assert set(results) <= {"Bearer test-token-1", "Bearer test-token-2"}
    assert auth.authorization() == "Bearer test-token-2"


# -- attacks an adversarial review found, beside the behaviour they attack --


def test_threads_waiting_on_a_cache_locked_fetch_share_its_result(fake, tmp_path):
    """Threads waiting while the leader waits for the cache lock share its token, not a timeout."""
    import filelock

    folder = tmp_path / "tokens"
    folder.mkdir(mode=0o700)
    auth = OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=FileTokenCache(folder, lock_timeout=2.5), deadline=0.2
    )
    held, release = threading.Event(), threading.Event()

    def hang_holding_the_lock():  # stands in for another process that hangs
        with filelock.FileLock(folder / f"{auth._lifecycle.store_key.digest[:40]}.lock"):
            held.set()
            release.wait(10)

    threading.Thread(target=hang_holding_the_lock, daemon=True).start()
    assert held.wait(5)
    outcomes: list[str] = []

    def call():
        try:
            auth.token()
            outcomes.append("token")
        except TokenError:
            outcomes.append("TokenError")

    callers = [threading.Thread(target=call) for _ in range(3)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(10)
    release.set()

    assert len(set(outcomes)) == 1, outcomes  # everyone shares one result or one error
