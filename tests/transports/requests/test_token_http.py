"""TokenHTTP on its own: the given session, the private one, the settings it follows."""

from __future__ import annotations

import os
import pickle
import signal
import time

import pytest
import requests

from clarify_auth.transports.requests.token_http import TokenHTTP


def test_a_given_session_is_used_as_it_is_and_follows_nobody():
    """A session given for token requests is the one used, whatever session it is told to follow."""
    given = requests.Session()
    given.verify = "/given/ca.pem"
    followed = requests.Session()
    followed.verify = "/followed/ca.pem"
    token_http = TokenHTTP(given)

    token_http.follow(followed)

    assert token_http.session() is given
    assert given.verify == "/given/ca.pem"
    assert token_http.is_open


def test_the_private_session_copies_the_followed_settings_at_each_request():
    """Proxies, verify, cert and trust_env are read from the followed session at every request."""
    followed = requests.Session()
    token_http = TokenHTTP(None)
    token_http.follow(followed)
    assert not token_http.is_open

    followed.proxies = {"https": "http://127.0.0.1:3128"}
    followed.verify, followed.cert, followed.trust_env = "/ca.pem", "/client.pem", False
    first = token_http.session()
    followed.verify = "/other-ca.pem"
    second = token_http.session()

    assert first is second
    assert token_http.is_open
    assert (second.proxies, second.verify, second.cert, second.trust_env) == (
        {"https": "http://127.0.0.1:3128"}, "/other-ca.pem", "/client.pem", False,
    )  # fmt: skip
    assert second.auth is not None  # never the followed session's auth, never ~/.netrc


def test_close_drops_the_private_session_and_a_new_one_opens_on_demand():
    """After close() the next token request opens a new private session."""
    token_http = TokenHTTP(None)
    first = token_http.session()

    token_http.close()
    token_http.close()

    assert not token_http.is_open
    assert token_http.session() is not first


def test_a_pickle_carries_the_given_session_only():
    """Unpickled, it keeps a given session; a private one and the followed one stay behind."""
    followed = requests.Session()
    followed.verify = "/ca.pem"
    private = TokenHTTP(None)
    private.follow(followed)
    private.session()

    copy = pickle.loads(pickle.dumps(private))

    assert not copy.is_open
    assert copy.session().verify is True
    assert isinstance(
        pickle.loads(pickle.dumps(TokenHTTP(requests.Session()))).given, requests.Session
    )


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_opens_its_own_private_session():
    """The child of a fork never uses the parent's private session (its sockets are the parent's)."""
    token_http = TokenHTTP(None)
    parent = token_http.session()

    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, reported by its exit code
        ok = not token_http.is_open and token_http.session() is not parent
        os._exit(0 if ok else 2)
    deadline = time.monotonic() + 15
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    if done[0] == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung")

    assert os.waitstatus_to_exitcode(done[1]) == 0
    assert token_http.session() is parent
