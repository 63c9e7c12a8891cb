"""clarify_auth.httpx with httpx.Client: the sync flow, the clients, origins and secrets."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

import clarify_auth
from _loopback import LoopbackServer, Reply
from clarify_auth import (
    Authenticator,
    ClarifySession,
    ConfigurationError,
    FileTokenCache,
    InsecureTransportError,
    OAuthClientCredentials,
    RPCError,
    RPCResponseError,
)
from clarify_auth.httpx import AsyncClient, ClarifyAuth, Client
from clarify_auth.testing import FakeClarify, forget_shared_tokens
from conftest import basic_dict, run_bare_python

ROOT = Path(__file__).resolve().parents[3]
SRC = str(ROOT / "src")


@pytest.fixture
def other():
    """A server on another origin (another port of 127.0.0.1)."""
    srv = LoopbackServer().start()
    srv.routes["GET /items"] = lambda seen: Reply(json={"theirs": True})
    srv.routes["GET /harvest"] = lambda seen: Reply(401, {"error": "unauthorized"})
    yield srv
    srv.stop()


def authorizations(fake: FakeClarify) -> list[str]:
    return [r.headers.get("Authorization", "") for r in fake.requests if r.path == "/v1/rpc"]


def mock_api(status: int = 200, **response: object) -> httpx.MockTransport:
    """A transport that answers the API with ``response`` and token requests with a token.

    A client's ``transport=`` carries its token requests too.
    """
    token = {"access_token": "mock-token", "token_type": "Bearer", "expires_in": 3600}

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth/token"):
            return httpx.Response(200, json=token)
        return httpx.Response(status, **response)  # type: ignore[arg-type]

    return httpx.MockTransport(answer)


# -- the client ----------------------------------------------------------------------------


def test_client_rpc_returns_the_result(fake):
    """Client.rpc sends one signed JSON-RPC 2.0 request and returns its result."""
    fake.on("clarify.selectItems", result={"data": [1, 2]})

    with Client(fake.credentials()) as client:
        result = client.rpc("clarify.selectItems", {"query": {"limit": 10}})

    (call,) = [r for r in fake.requests if r.path == "/v1/rpc"]
    assert result == {"data": [1, 2]}
    assert call.json == {
        "jsonrpc": "2.0",
        "method": "clarify.selectItems",
        "id": 1,
        "params": {"query": {"limit": 10}},
    }
    assert call.headers["Authorization"].startswith("Bearer fake-token-1-")
    assert call.headers["X-API-Version"] == "1.1"
    assert call.headers["User-Agent"].startswith("clarify-auth/")
    assert fake.token_requests == 1


def test_base_url_is_the_api_url_and_paths_resolve_against_it(fake):
    """base_url is apiUrl, so client.post("rpc") reaches {apiUrl}rpc; integration is exposed."""
    with Client(fake.credentials()) as client:
        response = client.post("rpc", json={"jsonrpc": "2.0", "id": 7, "method": "x"})

    assert str(client.base_url) == fake.api_url
    assert client.api_url == fake.api_url
    assert client.integration == "test-integration"
    assert client.credentials == fake.credentials()
    assert client.api_version == "1.1"
    assert client.auth.authenticator is client.authenticator  # type: ignore[union-attr]
    assert response.request.url == fake.rpc_url
    assert response.json()["error"]["code"] == -32601


@pytest.mark.parametrize(
    ("api_version", "sent"), [("1.1beta1", "1.1beta1"), ("2.0", "2.0"), (None, None)]
)
def test_api_version_header(fake, api_version, sent):
    """X-API-Version carries api_version; None sends no such header."""
    with Client(fake.credentials(), api_version=api_version) as client:
        client.rpc("clarify.selectItems")

    assert fake.requests[-1].headers.get("X-API-Version") == sent


@pytest.mark.parametrize("bad", ["1", "v1.1", "1.1-beta", "1.1beta", "", 1.1], ids=repr)
def test_an_invalid_api_version_is_refused_at_construction(fake, bad):
    """An api_version that is not MAJOR.MINOR[alphaN|betaN|rcN] is a ValueError at once."""
    with pytest.raises(ConfigurationError, match="api_version"):
        Client(fake.credentials(), api_version=bad)
    with pytest.raises(ValueError, match="api_version"):
        AsyncClient(fake.credentials(), api_version=bad)


def test_user_headers_join_ours(fake):
    """headers= are added to the client's; the user may name their own User-Agent."""
    with Client(fake.credentials(), headers={"User-Agent": "my-job/1", "X-Trace": "t1"}) as c:
        c.rpc("clarify.selectItems")

    seen = fake.requests[-1].headers
    assert seen["User-Agent"] == "my-job/1"
    assert seen["X-Trace"] == "t1"
    assert seen["X-API-Version"] == "1.1"


def test_default_and_explicit_timeouts(fake):
    """By default 5 s to connect and 60 s for the rest; numbers and (connect, read) pairs map."""
    creds = fake.credentials()

    with (
        Client(creds) as default,
        Client(creds, timeout=(2, 9)) as pair,
        Client(creds, timeout=3) as one,
    ):
        pass

    assert default.timeout == httpx.Timeout(60.0, connect=5.0)
    assert pair.timeout == httpx.Timeout(9.0, connect=2.0)
    assert one.timeout == httpx.Timeout(3.0)
    with Client(creds, timeout=None) as none, Client(creds, timeout=httpx.Timeout(1.0)) as own:
        assert none.timeout == httpx.Timeout(None)
        assert own.timeout == httpx.Timeout(1.0)
    with pytest.raises(ConfigurationError, match="Client: timeout"):
        Client(creds, timeout=-1)


@pytest.mark.parametrize("option", ["base_url", "auth"])
def test_base_url_and_auth_come_from_the_credentials(fake, option):
    """base_url= or auth= would fight the credentials: a TypeError naming the option."""
    with pytest.raises(TypeError, match=option):
        Client(fake.credentials(), **{option: "x"})


def test_authenticator_options_are_checked(fake):
    """authenticator= must be an Authenticator, and not come with token_cache=."""
    auth = Authenticator.from_credentials(fake.credentials())

    with pytest.raises(TypeError, match="Authenticator"):
        Client(fake.credentials(), authenticator=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not both"):
        Client(fake.credentials(), authenticator=auth, token_cache=False)
    with pytest.raises(TypeError, match="Authenticator"):
        ClarifyAuth(object())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="api_url"):
        ClarifyAuth(auth, api_url="ftp://x/")


def test_credentials_from_a_path_and_from_discovery(fake, tmp_path, monkeypatch):
    """credentials= takes a path; with none, ./clarify-credentials.json is found."""
    path = fake.write_credentials(tmp_path / "clarify-credentials.json")
    monkeypatch.chdir(tmp_path)

    with Client(str(path)) as by_path, Client() as discovered:
        results = [by_path.rpc("clarify.selectItems"), discovered.rpc("clarify.selectItems")]

    assert results[0] == results[1]
    assert fake.token_requests == 1


def test_non_2xx_raises_http_status_error(fake):
    """rpc() raises httpx.HTTPStatusError for a non-2xx answer."""
    client = Client(fake.credentials(), transport=mock_api(503, text="busy"))

    with client, pytest.raises(httpx.HTTPStatusError) as caught:
        client.rpc("clarify.selectItems")

    assert caught.value.response.status_code == 503


def test_rpc_error_raises_rpc_error(fake):
    """A JSON-RPC error member raises RPCError with its code, message and data."""
    fake.on("clarify.insert", error={"code": -32009, "message": "Bad input", "data": {"k": 1}})

    with Client(fake.credentials()) as client, pytest.raises(RPCError) as caught:
        client.rpc("clarify.insert", {"data": {}})

    assert (caught.value.code, caught.value.message, caught.value.data) == (
        -32009,
        "Bad input",
        {"k": 1},
    )


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("<html>proxy</html>", "is not JSON"),
        ("[1, 2]", "not a JSON-RPC response object"),
        ('{"jsonrpc": "2.0", "id": 1}', "neither result nor error"),
        ('{"jsonrpc": "2.0", "id": 1, "error": "oops"}', "not an object"),
    ],
    ids=["html", "list", "empty", "error-string"],
)
def test_answers_that_are_not_json_rpc_raise_rpc_response_error(fake, body, match):
    """A 2xx answer that is not a JSON-RPC response raises RPCResponseError, an RPCError."""
    client = Client(fake.credentials(), transport=mock_api(text=body))

    with client, pytest.raises(RPCResponseError, match=match):
        client.rpc("clarify.selectItems")


def test_close_closes_the_authenticator_it_made_only(fake):
    """Closing a client closes its own authenticator's token connections, not a given one."""
    given = Authenticator.from_credentials(fake.credentials())
    with Client(fake.credentials(), authenticator=given) as borrowing:
        borrowing.rpc("clarify.selectItems")
    given.authorization()
    given.invalidate()
    given.authorization()

    owning = Client(fake.credentials())
    owning.rpc("clarify.selectItems")
    owning.authenticator.invalidate()
    owning.rpc("clarify.selectItems")
    owning.close()

    assert given._token_http.is_open  # type: ignore[attr-defined]
    assert not owning.authenticator._token_http.is_open  # type: ignore[attr-defined]
    given.close()  # type: ignore[attr-defined]


# -- sharing the token -------------------------------------------------------------------------


def test_one_token_for_a_requests_session_and_both_httpx_clients(fake, tmp_path):
    """A ClarifySession, a Client and an AsyncClient from one file share one token request."""
    import asyncio

    path = fake.write_credentials(tmp_path / "clarify-credentials.json")

    async def call_async() -> object:
        async with AsyncClient(path) as client:
            return await client.rpc("clarify.selectItems")

    with ClarifySession(path) as session:
        session.rpc("clarify.selectItems")
    with Client(path) as client:
        client.rpc("clarify.selectItems")
    asyncio.run(call_async())

    assert fake.token_requests == 1
    assert fake.rpc_calls == 3
    assert len(set(authorizations(fake))) == 1


def test_the_file_cache_from_the_environment(fake, tmp_path, monkeypatch):
    """With CLARIFY_TOKEN_CACHE, a client in a fresh process store reuses the cached token."""
    monkeypatch.setenv("CLARIFY_TOKEN_CACHE", str(tmp_path / "tokens"))
    with Client(fake.credentials()) as client:
        client.rpc("clarify.selectItems")
    forget_shared_tokens()  # as if this were another process

    with Client(fake.credentials()) as client:
        client.rpc("clarify.selectItems")

    assert fake.token_requests == 1
    assert isinstance(client.authenticator, OAuthClientCredentials)
    assert client.authenticator.token_cache is not None


def test_an_explicit_file_cache_and_none(fake, tmp_path):
    """token_cache= takes a FileTokenCache, or False for none at all."""
    cache = FileTokenCache(tmp_path / "tokens")
    with Client(fake.credentials(), token_cache=cache) as client:
        client.rpc("clarify.selectItems")
    forget_shared_tokens()

    with Client(fake.credentials(), token_cache=cache) as cached:
        cached.rpc("clarify.selectItems")
    forget_shared_tokens()
    with Client(fake.credentials(), token_cache=False) as uncached:
        uncached.rpc("clarify.selectItems")

    assert fake.token_requests == 2


def test_32_threads_on_one_client_cold_cost_one_token_request(fake):
    """Thirty-two threads calling through one Client with no token yet share one fetch."""
    fake.token_latency = 0.2
    barrier = threading.Barrier(32)
    errors: list[BaseException] = []

    def call(client: Client) -> None:
        barrier.wait()
        try:
            client.rpc("clarify.selectItems")
        except BaseException as exc:
            errors.append(exc)

    with Client(fake.credentials()) as client:
        threads = [threading.Thread(target=call, args=(client,)) for _ in range(32)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)

    assert errors == []
    assert fake.token_requests == 1
    assert fake.rpc_calls == 32


# -- 401 --------------------------------------------------------------------------------------------


def test_a_revoked_token_is_replaced_and_the_request_retried_once(fake):
    """After a 401 the token is dropped, a new one fetched and the call succeeds."""
    with Client(fake.credentials()) as client:
        client.rpc("clarify.selectItems")
        fake.revoke_tokens()

        result = client.rpc("clarify.selectItems")

    assert result["data"] == []
    assert fake.token_requests == 2
    assert fake.rpc_calls == 3
    first, refused, retried = authorizations(fake)
    assert first == refused != retried


def test_a_second_401_is_returned_not_retried_again(fake):
    """Only one retry: a second 401 comes back as httpx.HTTPStatusError."""
    with Client(fake.credentials()) as client:
        fake.reject_rpc_calls(2)

        with pytest.raises(httpx.HTTPStatusError) as caught:
            client.rpc("clarify.selectItems")

    assert caught.value.response.status_code == 401
    assert fake.rpc_calls == 2
    assert fake.token_requests == 2
    assert len(caught.value.response.history) == 1


def test_a_streamed_body_gets_the_401_and_the_next_request_a_new_token(fake):
    """A body from an iterator cannot be resent: 401 returned, token dropped, next call fine."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "clarify.selectItems"}).encode()
    with Client(fake.credentials()) as client:
        client.rpc("clarify.selectItems")
        fake.revoke_tokens()

        streamed = client.post("rpc", content=iter([body[:10], body[10:]]))
        after = client.rpc("clarify.selectItems")

    assert streamed.status_code == 401
    assert after["data"] == []
    assert fake.token_requests == 2
    assert fake.rpc_calls == 3


def test_a_multipart_upload_is_not_resent(fake, tmp_path):
    """A file upload gets its 401 back rather than a second, possibly partial, send."""
    upload = tmp_path / "data.csv"
    upload.write_text("a,b\n1,2\n")
    with Client(fake.credentials()) as client:
        client.rpc("clarify.selectItems")
        fake.revoke_tokens()

        with upload.open("rb") as handle:
            response = client.post("rpc", files={"file": handle})

    assert response.status_code == 401
    assert fake.rpc_calls == 2
    assert fake.token_requests == 1


def test_basic_auth_works_and_a_401_is_not_retried(fake):
    """Basic credentials sign every call; a 401 is returned as is, with no token request."""
    with Client(fake.credentials("basic-auth")) as client:
        result = client.rpc("clarify.selectItems")
        fake.reject_rpc_calls(1)

        with pytest.raises(httpx.HTTPStatusError):
            client.rpc("clarify.selectItems")

    assert result["data"] == []
    assert fake.token_requests == 0
    assert fake.rpc_calls == 2
    assert authorizations(fake)[0].startswith("Basic ")


# -- origins -----------------------------------------------------------------------------------


def test_another_origin_gets_no_credentials(fake, other):
    """A request to another port of the same host goes out without Authorization."""
    with Client(fake.credentials()) as client:
        client.rpc("clarify.selectItems")

        response = client.get(other.url + "/items")

    assert response.json() == {"theirs": True}
    assert "Authorization" not in other.seen[0].headers


@pytest.mark.parametrize(
    ("template", "signed"),
    [
        ("http://localhost:{port}/v1/rpc", False),  # another host name for the same address
        ("HTTP://127.0.0.1:{port}/v1/rpc", True),  # the same origin spelled differently
        ("http://someone@127.0.0.1:{port}/v1/rpc", True),  # user info is not the origin
    ],
    ids=["localhost", "upper-case-scheme", "user-info"],
)
def test_the_origin_is_scheme_host_and_port(fake, template, signed):
    """Only a request to the API's scheme, host and port carries Authorization."""
    with Client(fake.credentials()) as client:
        client.rpc("clarify.selectItems")  # the origin is trusted from here on

        client.post(template.format(port=fake.port), json={"jsonrpc": "2.0", "method": "x"})

    assert fake.requests[-1].headers.get("Authorization", "").startswith("Bearer ") is signed
    assert signed or "Authorization" not in fake.requests[-1].headers
    assert fake.token_requests == 1


def test_a_plain_httpx_client_with_clarify_auth_signs_the_api_only(fake, other):
    """ClarifyAuth on a user's own httpx.Client signs the API's origin and nothing else."""
    auth = ClarifyAuth(Authenticator.from_credentials(fake.credentials()))

    with httpx.Client(auth=auth) as client:
        api = client.post(fake.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "x"})
        theirs = client.get(other.url + "/items")

    assert api.status_code == 200
    assert theirs.status_code == 200
    assert "Authorization" not in other.seen[0].headers


def test_the_client_restricts_an_unrestricted_authenticator(fake, other):
    """An authenticator built without api_url still signs only the API through a Client."""
    unrestricted = OAuthClientCredentials(
        fake.client_id, fake.client_secret, token_url=fake.token_url, audience=fake.api_url
    )

    with Client(fake.credentials(), authenticator=unrestricted) as client:
        client.rpc("clarify.selectItems")
        client.get(other.url + "/items")

    assert "Authorization" not in other.seen[0].headers
    assert authorizations(fake)[0].startswith("Bearer ")


def test_a_foreign_401_costs_no_token_request(fake, other):
    """Ten 401s from another origin: no token dropped, fetched or retried."""
    with Client(fake.credentials()) as client:
        client.rpc("clarify.selectItems")

        statuses = [client.get(other.url + "/harvest").status_code for _ in range(10)]
        client.rpc("clarify.selectItems")

    assert statuses == [401] * 10
    assert len(other.seen) == 10
    assert fake.token_requests == 1


def test_a_cross_origin_redirect_arrives_without_credentials(server, other):
    """A redirect from the API to another origin carries no Authorization; its 401 costs nothing."""
    server.routes["GET /v1/go"] = lambda seen: Reply(
        302, {}, headers={"Location": other.url + "/harvest"}
    )
    server.routes["GET /v1/same"] = lambda seen: Reply(302, {}, headers={"Location": "/v1/here"})
    server.routes["GET /v1/here"] = lambda seen: Reply(json={"here": True})

    with Client(server.credentials(), follow_redirects=True) as client:
        away = client.get("go")
        same = client.get("same")

    assert away.status_code == 401
    assert "Authorization" not in other.seen[0].headers
    assert same.json() == {"here": True}
    (landed,) = server.requests_to("GET", "/v1/here")
    assert landed.headers["Authorization"] == "Bearer test-token-1"
    assert server.count("POST", "/v1/oauth/token") == 1


def test_plain_http_to_a_remote_api_is_refused_before_sending():
    """Basic credentials for http://<remote>: InsecureTransportError, and nothing is sent."""
    sent: list[httpx.Request] = []
    creds = clarify_auth.Credentials.from_dict(basic_dict(apiUrl="http://api.example.invalid/v1/"))
    transport = httpx.MockTransport(lambda request: sent.append(request) or httpx.Response(200))

    with Client(creds, transport=transport) as client, pytest.raises(InsecureTransportError):
        client.rpc("clarify.selectItems")

    assert sent == []


def test_oauth_credentials_for_a_remote_plain_http_api_are_refused_at_once():
    """client-credentials for http://<remote>: refused when the client is built."""
    creds = clarify_auth.Credentials.from_dict(
        {**basic_dict(apiUrl="http://api.example.invalid/v1/"), "credentials": {
            "type": "client-credentials", "clientId": "c", "clientSecret": "test-secret-x"}}
    )  # fmt: skip

    with pytest.raises(InsecureTransportError):
        Client(creds)


@pytest.mark.parametrize(
    ("options", "env"),
    [
        ({"proxy": "http://proxy.invalid:3128"}, {}),
        ({}, {"HTTP_PROXY": "http://proxy.invalid:3128"}),
        ({}, {"ALL_PROXY": "http://proxy.invalid:3128"}),
    ],
    ids=["proxy-option", "HTTP_PROXY", "ALL_PROXY"],
)
def test_plain_http_through_a_remote_proxy_is_refused(fake, monkeypatch, options, env):
    """A loopback http API that a remote proxy would carry is refused when the client is built."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(InsecureTransportError, match=r"proxy\.invalid"):
        Client(fake.credentials(), **options)
    with pytest.raises(InsecureTransportError, match=r"proxy\.invalid"):
        AsyncClient(fake.credentials(), **options)


def test_a_loopback_proxy_or_trust_env_false_is_fine(fake, monkeypatch):
    """A proxy on this machine, or ignoring the environment's, lets a loopback http API be."""
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")

    with Client(fake.credentials(), trust_env=False) as client:
        client.rpc("clarify.selectItems")
    with Client(fake.credentials(), proxy="http://127.0.0.1:3128", trust_env=False):
        pass

    assert fake.rpc_calls == 1


def test_an_https_api_needs_no_proxy_check(oauth_creds, monkeypatch):
    """https is tunnelled end to end: a remote proxy is fine for it."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")

    with Client(oauth_creds) as client:
        assert str(client.base_url) == "https://api.clarify.io/v1/"


# -- secrets and imports ------------------------------------------------------------------------


def test_no_secret_or_token_in_reprs_or_logs(fake, all_logs):
    """Client secret, Basic pair and tokens appear in no repr and no log record, httpx's included."""
    all_logs.set_level(logging.DEBUG, logger="httpx")
    all_logs.set_level(logging.DEBUG, logger="httpcore")
    with Client(fake.credentials()) as client:
        client.rpc("clarify.selectItems")
        fake.revoke_tokens()
        response = client.post("rpc", json={"jsonrpc": "2.0", "id": 1, "method": "x"})
    with Client(fake.credentials("basic-auth")) as basic:
        basic.rpc("clarify.selectItems")
    shown = " ".join(
        [
            all_logs.text,
            repr(client),
            repr(client.auth),
            repr(basic),
            repr(basic.auth),
            repr(response.request),
            repr(response.request.headers),
        ]
    )

    secrets = [fake.client_secret, fake.basic_password, *authorizations(fake)]
    secrets += [header.split(" ", 1)[1] for header in authorizations(fake)]
    assert "got 401; fetching a new token" in all_logs.text
    assert not [secret for secret in secrets if secret in shown]


def test_import_clarify_auth_does_not_import_httpx():
    """import clarify_auth (and using ClarifySession) never imports httpx or anyio."""
    code = (
        "import sys, clarify_auth; clarify_auth.ClarifySession; clarify_auth.Authenticator; "
        "print(sorted(m for m in ('httpx', 'anyio', 'clarify_auth.httpx') if m in sys.modules))"
    )

    result = run_bare_python(code)

    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("missing", ["httpx", "anyio"])
def test_without_the_extra_the_import_error_names_it(missing):
    """Importing clarify_auth.httpx without httpx or anyio says which extra to install."""
    code = f"import sys; sys.modules[{missing!r}] = None; import clarify_auth.httpx"

    result = run_bare_python(code, check=False)

    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        "ImportError: clarify_auth.httpx needs the 'httpx' extra: pip install 'clarify-auth[httpx]'"
    )
    assert result.stderr.count("Traceback") == 1
    assert "During handling" not in result.stderr


def test_public_names():
    """clarify_auth.httpx exports a sorted __all__ of exactly its public names."""
    import clarify_auth.httpx as module

    public = {
        name
        for name in vars(module)
        if name[0] not in "_@" and name != "annotations"  # "@py_builtins": pytest's rewriting
    }

    assert module.__all__ == sorted(module.__all__)
    assert set(module.__all__) == public
    assert issubclass(Client, httpx.Client)
    assert issubclass(AsyncClient, httpx.AsyncClient)
    assert issubclass(ClarifyAuth, httpx.Auth)


# -- examples ------------------------------------------------------------------------------------


def run_example(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
        check=False,
    )


@pytest.mark.parametrize(
    ("name", "args", "expected"),
    [
        ("httpx_client.py", [], "clarify.selectItems answered 0 items"),
        ("httpx_async.py", [], "20 concurrent calls on asyncio: 0 items"),
        ("httpx_async.py", ["--trio"], "20 concurrent calls on trio: 0 items"),
    ],
    ids=["client", "async", "async-trio"],
)
def test_examples_run_with_one_token_request(fake, tmp_path, name, args, expected):
    """The httpx examples run against a credentials file and fetch one token each."""
    path = fake.write_credentials(tmp_path / "clarify-credentials.json")
    fake.token_latency = 0.1  # the async example's calls all start before the token exists

    result = run_example(name, str(path), *args)

    assert result.returncode == 0, result.stderr[-2000:]
    assert expected in result.stdout
    assert "token requests: 1" in result.stdout
    assert fake.token_requests == 1


@pytest.mark.parametrize("name", ["httpx_client.py", "httpx_async.py"])
def test_examples_report_rejected_credentials_in_one_line(fake, tmp_path, name):
    """With credentials the token endpoint refuses, an example exits 1 and shows no secret."""
    path = fake.write_credentials(tmp_path / "clarify-credentials.json")
    fake.fail_token_requests(50, status=401)

    result = run_example(name, str(path))

    assert result.returncode == 1
    assert "access_denied" in result.stderr
    assert "Traceback" not in result.stderr
    assert fake.client_secret not in result.stderr + result.stdout
