"""Pickle, fork and process pools: each copy of an authenticator or session works on its own."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

import clarify_auth
from clarify_auth import BasicAuth, ClarifySession, OAuthClientCredentials, TokenError
from conftest import SECRET, FakeClock

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="fork is POSIX")


def test_pickled_oauth_authenticator_works_on_its_own(server):
    """An unpickled private authenticator has its own lock and connections, and the token."""
    auth = OAuthClientCredentials.from_credentials(server.credentials(), shared=False)
    header = auth.authorization()

    copy = pickle.loads(pickle.dumps(auth))

    assert copy._lifecycle._lock is not auth._lifecycle._lock
    assert copy.authorization() == header
    assert server.issued == 1
    copy.invalidate()
    assert copy.authorization() == "Bearer test-token-2"
    assert auth.authorization() == header


def test_pickled_cold_authenticator_fetches_its_own_token(server):
    """A private copy pickled before any token was fetched fetches one itself."""
    auth = OAuthClientCredentials.from_credentials(server.credentials(), shared=False)

    copy = pickle.loads(pickle.dumps(auth))

    assert copy.authorization() == "Bearer test-token-1"
    assert auth._lifecycle.entry is None


class OtherMachineClock(FakeClock):
    """A clock that, once unpickled, reads from another origin, as on another machine."""

    def __reduce__(self):
        return (FakeClock, (50.0,))


def test_pickled_token_lifetime_is_rebased_on_the_new_clock():
    """The carried token keeps its remaining life, measured again on the receiver's clock."""
    from clarify_auth.tokens.token import AccessToken, CachedToken

    clock = OtherMachineClock()
    auth = OAuthClientCredentials(
        "test-client", SECRET, token_url="https://x.example/t", audience="a", clock=clock
    )
    token = AccessToken(access_token="test-token-1", expires_in=3600)
    auth._lifecycle.entry = CachedToken.issued(token, requested_at=clock())
    clock.advance(600)

    copy = pickle.loads(pickle.dumps(auth))

    now = copy._endpoint.clock()
    assert now == 50.0
    assert copy._lifecycle.entry.expires_at - now == pytest.approx(3570 - 600, abs=1)
    assert copy._lifecycle.entry.refresh_at - now == pytest.approx(3300 - 600, abs=1)


def test_token_pickled_long_ago_is_dropped(clock, monkeypatch):
    """A pickle older than the token's remaining life carries no token."""
    from clarify_auth.tokens.token import AccessToken, CachedToken

    auth = OAuthClientCredentials(
        "test-client", SECRET, token_url="https://x.example/t", audience="a", clock=clock
    )
    auth._lifecycle.entry = CachedToken.issued(
        AccessToken(access_token="test-token-1", expires_in=60), requested_at=clock()
    )
    data = pickle.dumps(auth)
    later = time.time() + 3600
    monkeypatch.setattr(time, "time", lambda: later)

    copy = pickle.loads(data)

    assert copy._lifecycle.entry is None


def test_pickled_session_works_on_its_own(server):
    """An unpickled session keeps credentials, version and timeout, and calls the API."""
    session = ClarifySession(server.credentials(), api_version="1.1beta1", timeout=9)
    session.rpc("warm")

    copy = pickle.loads(pickle.dumps(session))

    assert copy.integration == session.integration
    assert copy.api_version == "1.1beta1"
    assert copy.timeout == 9.0
    assert copy.rpc("again") == {"ok": True}
    assert server.requests_to("POST", "/v1/rpc")[-1].headers["X-API-Version"] == "1.1beta1"
    assert server.issued == 1


def test_basic_auth_and_errors_pickle(basic_creds):
    """BasicAuth and the SDK's exceptions survive pickle with their attributes."""
    auth = pickle.loads(pickle.dumps(BasicAuth.from_credentials(basic_creds)))
    token_error = pickle.loads(
        pickle.dumps(TokenError("m", status_code=401, error="e", error_description="d"))
    )
    rpc_error = pickle.loads(pickle.dumps(clarify_auth.RPCError(-1, "msg", {"x": 1})))
    response_error = pickle.loads(pickle.dumps(clarify_auth.RPCResponseError("bad", [1])))

    assert auth == BasicAuth.from_credentials(basic_creds)
    assert (token_error.status_code, token_error.error, token_error.error_description) == (
        401,
        "e",
        "d",
    )
    assert (rpc_error.code, rpc_error.message, rpc_error.data) == (-1, "msg", {"x": 1})
    assert (response_error.code, response_error.message, response_error.data) == (None, "bad", [1])


def _call_rpc(session: ClarifySession) -> object:
    return session.rpc("clarify.selectItems")


def test_session_in_a_process_pool(server):
    """A session shipped to 4 worker processes works in each of them."""
    session = ClarifySession(server.credentials())
    session.rpc("warm")
    context = multiprocessing.get_context("spawn")

    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        results = list(pool.map(_call_rpc, [session] * 4, timeout=60))

    assert results == [{"ok": True}] * 4


def _wait_for_child(pid: int, timeout: float) -> int:
    """Wait for a child at most `timeout` seconds; kill it and fail if it hangs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"child {pid} hung for {timeout} s after fork")


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_fork_while_another_thread_refreshes_does_not_deadlock(server):
    """A child forked while a parent thread holds the lock and waits on the token endpoint gets its own token."""
    server.token_delay = 1.0
    auth = OAuthClientCredentials.from_credentials(server.credentials())
    parent = threading.Thread(target=auth.authorization)
    parent.start()
    # Fork only once the server has numbered the parent's token (it then holds
    # the answer for 1 s): waiting for the flight alone let the child's request
    # overtake the parent's now and then, and take test-token-1.
    deadline = time.monotonic() + 10
    while server.issued == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert server.issued == 1
    server.token_delay = 0.0  # for the child's request; the parent's answer keeps its delay
    with auth._lifecycle._lock:  # make sure the fork happens while the lock is held, too
        assert auth._lifecycle._flight is not None
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child, reported by exit code
            code = 1
            try:
                ok = auth.authorization() == "Bearer test-token-2"
                code = 0 if ok and auth._lifecycle._flight is None else 2
            finally:
                os._exit(code)
    exit_code = _wait_for_child(pid, timeout=15)
    parent.join(10)

    assert exit_code == 0
    assert auth.authorization() == "Bearer test-token-1"


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_forked_child_session_uses_its_own_connections(server):
    """After fork, the child's session opens its own connections instead of sharing the parent's sockets."""
    session = ClarifySession(server.credentials())
    session.rpc("warm")
    for adapter in session.adapters.values():
        adapter.poolmanager.parents_pool = True
    read, write = os.pipe()

    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            os.close(read)
            inherited = [hasattr(a.poolmanager, "parents_pool") for a in session.adapters.values()]
            ok = session.rpc("child") == {"ok": True}
            code = 0 if ok and not any(inherited) else 2
        finally:
            os._exit(code)
    os.close(write)
    os.close(read)

    assert _wait_for_child(pid, timeout=15) == 0
    assert session.rpc("parent") == {"ok": True}
