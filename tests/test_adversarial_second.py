"""Breaks a second adversarial review found: httpx, the command line, credentials, rpc answers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import clarify_auth
from _loopback import LoopbackServer, Reply
from clarify_auth import BasicAuth, Credentials, CredentialsError, OAuthClientCredentials
from clarify_auth.httpx import Client

SRC = str(Path(__file__).resolve().parent.parent / "src")


def _basic(api_url: str = "https://api.clarify.io/v1/", secret: str = "test-secret-r2") -> dict:  # noqa: S107
    return {
        "apiUrl": api_url,
        "integration": "test-integration",
        "credentials": {
            "type": "basic-auth",
            "clientId": "test-integration",
            "clientSecret": secret,
        },
    }


@pytest.fixture
def loopback():
    server = LoopbackServer().start()
    yield server
    server.stop()


# -- 1. a lone surrogate in clientSecret ------------------------------------------------


@pytest.mark.parametrize("kind", ["basic-auth", "client-credentials"])
def test_a_client_secret_that_is_not_unicode_text_is_a_credentials_error(kind):
    r"""A clientSecret with a lone surrogate (valid JSON "\ud800") is a CredentialsError at load."""
    text = json.dumps(_basic()).replace("test-secret-r2", "test-secret-r2\\ud800")
    text = text.replace("basic-auth", kind)

    with pytest.raises(CredentialsError, match=r"credentials\.clientSecret: must be valid Unicode"):
        Credentials.from_json(text)


@pytest.mark.parametrize("build", ["basic", "oauth"])
def test_a_non_unicode_secret_given_directly_is_a_credentials_error(build):
    """BasicAuth and OAuthClientCredentials refuse a secret that is not text, naming no value."""
    secret = "test-secret-r2\ud800"

    def make():
        if build == "basic":
            return BasicAuth("u", secret)
        return OAuthClientCredentials(
            "c", secret, token_url="https://x.example/t", audience="https://x.example/"
        )

    with pytest.raises(CredentialsError, match="valid Unicode"):
        make()


def test_cli_header_with_a_non_unicode_secret_exits_2(tmp_path):
    """`clarify-auth header` on a file whose clientSecret holds a lone surrogate exits 2 (unusable file), not 1."""
    path = tmp_path / "clarify-credentials.json"
    path.write_text(json.dumps(_basic()).replace("test-secret-r2", "test-secret-r2\\ud800"))
    done = subprocess.run(
        [sys.executable, "-m", "clarify_auth", "header", "--no-cache", "--credentials", str(path)],
        env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "test-secret-r2" not in done.stderr + done.stdout


# -- 2. apiUrl with whitespace or control characters ------------------------------------


@pytest.mark.parametrize(
    "api_url",
    [
        "https://api.clarify.io/v1/\r\nX-Injected: 1",
        "https://api.clar\tify.io/v1/",
        "https://api clarify.io/v1/",
        "https://api.clarify.io\x00.example/v1/",
    ],
)
def test_an_api_url_with_whitespace_or_control_characters_is_refused(api_url):
    """An apiUrl with CR/LF, tab, space or NUL is not an absolute http(s) URL: CredentialsError at load."""
    with pytest.raises(CredentialsError, match="apiUrl"):
        Credentials.from_dict(_basic(api_url))


# -- 3. the same field under both of its names ------------------------------------------


def test_api_url_given_under_both_names_is_ambiguous():
    """A file with both apiUrl and api_url (different hosts) is as ambiguous as a duplicate key: CredentialsError."""
    data = _basic()
    data["api_url"] = "https://evil.example/v1/"
    with pytest.raises(CredentialsError):
        Credentials.from_dict(data)


# -- 4. api_version with non-ASCII digits --------------------------------------------------


@pytest.mark.parametrize("build", ["session", "httpx"])
def test_an_api_version_with_non_ascii_digits_is_refused_at_construction(build):
    """Arabic-Indic digits are not MAJOR.MINOR: ValueError at construction, not garbage on send."""
    creds = Credentials.from_dict(_basic())
    make = clarify_auth.ClarifySession if build == "session" else Client
    with pytest.raises(ValueError, match="api_version"):
        make(creds, api_version="\u0661.\u0661")


# -- 5. rpc() on a hostile answer ------------------------------------------------------------

_RUN_IN_A_CHILD = r"""
import asyncio, sys
import clarify_auth
from clarify_auth import Credentials
from clarify_auth.httpx import AsyncClient, Client
api_url, case = sys.argv[1], sys.argv[2]
creds = Credentials.from_dict({"apiUrl": api_url, "integration": "test-integration",
    "credentials": {"type": "basic-auth", "clientId": "test-integration",
                    "clientSecret": "test-secret-r2"}})
if case in ("session", "httpx"):
    make = clarify_auth.ClarifySession if case == "session" else Client
    with make(creds) as client:
        try:
            client.rpc("clarify.selectItems")
        except clarify_auth.RPCError:
            print("RPCError")
        except BaseException as exc:
            print(type(exc).__name__)
else:
    client = AsyncClient(creds)
    for _ in range(2):  # bounded: two loops
        loop = asyncio.new_event_loop()
        try:
            print(loop.run_until_complete(client.rpc("clarify.selectItems")))
        except BaseException as exc:
            print(type(exc).__name__)
        finally:
            # What asyncio's documentation asks of a loop closed by hand (and what
            # asyncio.run, anyio.run and trio.run do): finalise async generators.
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
"""


def _child(api_url: str, case: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", _RUN_IN_A_CHILD, api_url, case],
        env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin", "NO_PROXY": "*"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()


@pytest.mark.parametrize("build", ["session", "httpx"])
def test_rpc_on_a_deeply_nested_answer_raises_an_rpc_error(loopback, build):
    """A 200 whose JSON nests 100k deep raises RPCError (RPCResponseError), not RecursionError."""
    body = b"[" * 100_000 + b"]" * 100_000
    loopback.routes["POST /v1/rpc"] = lambda _: Reply(
        200, body=body, headers={"Content-Type": "application/json"}
    )
    assert _child(loopback.url + "/v1/", build) == ["RPCError"]


# -- 6. AsyncClient across hand-made event loops -------------------------------------------


def test_async_client_serves_a_second_event_loop_after_run_until_complete(loopback):
    """AsyncClient serves a second hand-made loop when the first finalised its async generators."""
    loopback.routes["POST /v1/rpc"] = lambda _: Reply(200, {"jsonrpc": "2.0", "id": 1, "result": 7})
    assert _child(loopback.url + "/v1/", "loops") == ["7", "7"]


def test_httpx_is_importable_here():
    """Guard: the findings above need the httpx extra."""
    assert httpx.__version__
