"""ClarifySession: headers, URLs, timeouts, 401 retry, redirects, transport checks and rpc."""

from __future__ import annotations

import json

import pytest
import requests
import responses

import clarify_auth
from _hostile import basic_file, rpc_in_a_child
from _loopback import LoopbackServer, Reply
from clarify_auth import (
    BasicAuth,
    ClarifySession,
    Credentials,
    InsecureTransportError,
    RPCError,
    RPCResponseError,
)
from clarify_auth.httpx import Client
from conftest import API_URL, SECRET, TOKEN_URL, basic_dict, oauth_dict, token_body

RPC_URL = API_URL + "rpc"


def rpc_result(result, request_id=1):
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(TOKEN_URL, json=token_body(1))
        yield mock


# -- headers ----------------------------------------------------------------------------


def test_every_request_carries_authorization_and_api_version(mocked, oauth_creds):
    """Authorization and X-API-Version 1.1 are on every API request."""
    mocked.get(API_URL + "items", json={})

    with ClarifySession(oauth_creds) as session:
        session.get("items")
        session.get("items")

    api_calls = [c for c in mocked.calls if c.request.url.startswith(API_URL + "items")]
    assert len(api_calls) == 2
    for call in api_calls:
        assert call.request.headers["Authorization"] == "Bearer test-token-1"
        assert call.request.headers["X-API-Version"] == "1.1"
        assert call.request.headers["User-Agent"].startswith("clarify-auth/")


def test_credentials_never_sit_in_session_headers(oauth_creds):
    """Authorization travels through session.auth, never session.headers."""
    session = ClarifySession(oauth_creds)

    assert "Authorization" not in session.headers
    assert isinstance(session.auth, clarify_auth.OAuthClientCredentials)
    assert session.authenticator is session.auth


def test_basic_credentials_send_basic_header(basic_creds):
    """basic-auth credentials make the session send a Basic header."""
    with responses.RequestsMock() as mock:
        mock.post(RPC_URL, json=rpc_result([]))
        ClarifySession(basic_creds).post("rpc", json={})

        assert (
            mock.calls[0].request.headers["Authorization"]
            == BasicAuth.from_credentials(basic_creds).authorization()
        )


@pytest.mark.parametrize("version", ["1.1", "1.1beta1", "2.0alpha3", "1.2rc1", "10.20"])
def test_valid_api_versions_are_sent(mocked, oauth_creds, version):
    """MAJOR.MINOR with an optional alphaN, betaN or rcN is sent as given."""
    mocked.get(API_URL + "x", json={})

    ClarifySession(oauth_creds, api_version=version).get("x")

    assert mocked.calls[-1].request.headers["X-API-Version"] == version


def test_api_version_none_sends_no_header(mocked, oauth_creds):
    """api_version=None omits X-API-Version."""
    mocked.get(API_URL + "x", json={})

    ClarifySession(oauth_creds, api_version=None).get("x")

    assert "X-API-Version" not in mocked.calls[-1].request.headers


@pytest.mark.parametrize(
    "version",
    ["", "1", "v1.1", "1.1.1", "1.1beta", "1.1-beta1", "1.1 ", "1.1gamma1", "latest", 1.1, b"1.1"],
    ids=repr,
)
def test_invalid_api_versions_are_refused(oauth_creds, version):
    """An invalid version is a ValueError at construction."""
    with pytest.raises(ValueError, match="api_version"):
        ClarifySession(oauth_creds, api_version=version)


# -- construction ----------------------------------------------------------------------------


def test_session_from_a_path_and_by_discovery(write_json, monkeypatch, tmp_path):
    """A path or None (discovery) stand in for Credentials."""
    path = write_json(oauth_dict(integration="by-path"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CLARIFY_CREDENTIALS", raising=False)

    assert ClarifySession(str(path)).integration == "by-path"
    assert ClarifySession(path).integration == "by-path"
    assert ClarifySession().integration == "by-path"


def test_session_without_credentials_says_where_it_looked(monkeypatch, tmp_path):
    """Discovery that finds nothing raises CredentialsError naming where it looked."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CLARIFY_CREDENTIALS", raising=False)

    with pytest.raises(clarify_auth.CredentialsError, match=r"clarify-credentials\.json"):
        ClarifySession()


def test_session_properties_and_repr(oauth_creds):
    """integration, api_url and a repr without secrets."""
    session = ClarifySession(oauth_creds)

    assert session.integration == "test-integration"
    assert session.api_url == API_URL
    assert (
        repr(session)
        == "ClarifySession(integration='test-integration', api_url='https://api.clarify.io/v1/')"
    )
    assert SECRET not in repr(session) + str(session)


def test_explicit_authenticator_is_used(mocked, oauth_creds):
    """authenticator= replaces the one the credentials call for."""
    mocked.get(API_URL + "x", json={})
    auth = BasicAuth("someone", "test-secret-other")

    ClarifySession(oauth_creds, authenticator=auth).get("x")

    assert mocked.calls[-1].request.headers["Authorization"] == auth.authorization()


def test_auth_options_reach_the_authenticator(oauth_creds):
    """Extra keyword options configure the OAuth authenticator."""
    session = ClarifySession(oauth_creds, attempts=2, timeout=7)

    assert session.authenticator._endpoint.attempts == 2
    assert session.timeout == 7.0


def test_authenticator_and_options_together_are_refused(oauth_creds):
    """Options for an authenticator make no sense when one is passed."""
    with pytest.raises(TypeError, match="either"):
        ClarifySession(oauth_creds, authenticator=BasicAuth("u", "test-secret-p"), attempts=2)


def test_non_authenticator_is_refused(oauth_creds):
    """authenticator= must be a clarify_auth.Authenticator."""
    with pytest.raises(TypeError, match="Authenticator"):
        ClarifySession(oauth_creds, authenticator=requests.auth.HTTPBasicAuth("u", "p"))  # type: ignore[arg-type]


@pytest.mark.parametrize("timeout", [0, -1, "5", (1,), (1, 0), True], ids=repr)
def test_bad_session_timeout_is_refused(oauth_creds, timeout):
    """A session timeout must be positive seconds or a (connect, read) pair."""
    with pytest.raises(ValueError, match="timeout"):
        ClarifySession(oauth_creds, timeout=timeout)


def test_close_closes_owned_authenticator(oauth_creds, mocked):
    """Closing the session closes the token connections of the authenticator it made."""
    session = ClarifySession(oauth_creds)
    session.authenticator.token()
    assert session.authenticator._token_http.is_open

    session.close()

    assert not session.authenticator._token_http.is_open


def test_close_leaves_a_borrowed_authenticator_alone(oauth_creds, mocked):
    """An authenticator passed in may serve other sessions: closing one session keeps it open."""
    auth = clarify_auth.Authenticator.from_credentials(oauth_creds)
    auth.token()

    with ClarifySession(oauth_creds, authenticator=auth):
        pass

    assert auth._token_http.is_open
    auth.close()
    auth.close()
    assert not auth._token_http.is_open


# -- URLs and timeouts --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("rpc", API_URL + "rpc"),
        ("/v1/rpc", API_URL + "rpc"),
        ("/rpc", "https://api.clarify.io/rpc"),
        ("items/x?limit=1", API_URL + "items/x?limit=1"),
        ("https://other.example.com/path", "https://other.example.com/path"),
        (b"rpc", API_URL + "rpc"),
    ],
    ids=["relative", "absolute-path", "root-path", "with-query", "absolute", "bytes"],
)
def test_urls_resolve_against_api_url(mocked, oauth_creds, given, sent):
    """Relative URLs resolve against api_url as RFC 3986 says; absolute URLs are used as given."""
    mocked.get(sent, json={})

    ClarifySession(oauth_creds).get(given)

    assert mocked.calls[-1].request.url == sent


def test_default_timeout_applies_when_none_given(mocked, oauth_creds):
    """Requests without a timeout get the session's (5, 60) by default."""
    mocked.get(API_URL + "x", json={})

    ClarifySession(oauth_creds).get("x")

    assert mocked.calls[-1].request.req_kwargs["timeout"] == (5.0, 60.0)


def test_explicit_timeout_wins(mocked, oauth_creds):
    """An explicit timeout, keyword or positional, is kept."""
    mocked.get(API_URL + "x", json={})
    session = ClarifySession(oauth_creds, timeout=9)

    session.get("x", timeout=2)
    keyword = mocked.calls[-1].request.req_kwargs["timeout"]
    session.request("GET", "x", None, None, None, None, None, None, 3)
    positional = mocked.calls[-1].request.req_kwargs["timeout"]
    session.get("x")
    default = mocked.calls[-1].request.req_kwargs["timeout"]

    assert (keyword, positional, default) == (2, 3, 9.0)


def test_send_of_a_prepared_request_gets_the_default_timeout(mocked, oauth_creds):
    """session.send(prepared) without a timeout uses the session's."""
    mocked.get(API_URL + "x", json={})
    session = ClarifySession(oauth_creds)
    prepared = session.prepare_request(requests.Request("GET", API_URL + "x"))

    session.send(prepared)

    assert mocked.calls[-1].request.req_kwargs["timeout"] == (5.0, 60.0)
    assert mocked.calls[-1].request.headers["Authorization"] == "Bearer test-token-1"


# -- plain http -----------------------------------------------------------------------------------


def test_plain_http_to_a_remote_host_is_refused_before_sending(basic_creds):
    """An absolute http:// URL to a non-loopback host raises before any byte leaves."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get("http://api.example.com/x", json={})
        session = ClarifySession(basic_creds)

        with pytest.raises(InsecureTransportError) as info:
            session.get("http://api.example.com/x")

        assert len(mock.calls) == 0
        assert "api.example.com" in str(info.value)
        assert isinstance(info.value, clarify_auth.ClarifyAuthError)


def test_http_api_url_with_basic_auth_is_refused_on_request():
    """Basic credentials whose apiUrl is plain http to a remote host never send."""
    creds = Credentials.from_dict(basic_dict(apiUrl="http://api.example.com/v1/"))
    session = ClarifySession(creds)

    with pytest.raises(InsecureTransportError):
        session.rpc("clarify.selectItems")


def test_http_api_url_with_oauth_is_refused_at_construction():
    """OAuth credentials whose token URL is remote plain http are refused up front."""
    creds = Credentials.from_dict(oauth_dict(apiUrl="http://api.example.com/v1/"))

    with pytest.raises(InsecureTransportError):
        ClarifySession(creds)


def test_authenticator_alone_refuses_plain_http():
    """Used outside a ClarifySession, an authenticator still will not sign plain-http requests."""
    auth = BasicAuth("u", "test-secret-p")

    with pytest.raises(InsecureTransportError):
        requests.Request("GET", "http://api.example.com/x", auth=auth).prepare()


# -- 401 ------------------------------------------------------------------------------------------


def test_401_with_oauth_refreshes_and_retries_once(oauth_creds):
    """After a 401 the token is dropped, a new one fetched, and the request sent again once."""
    with responses.RequestsMock() as mock:
        mock.post(TOKEN_URL, json=token_body(1))
        mock.post(TOKEN_URL, json=token_body(2))
        mock.post(RPC_URL, status=401, json={"error": "expired"})
        mock.post(RPC_URL, json=rpc_result({"ok": 1}))

        result = ClarifySession(oauth_creds).rpc("clarify.selectItems", {"query": {}})

        rpc_calls = [c.request for c in mock.calls if c.request.url == RPC_URL]
        assert result == {"ok": 1}
        assert [r.headers["Authorization"] for r in rpc_calls] == [
            "Bearer test-token-1",
            "Bearer test-token-2",
        ]
        assert rpc_calls[0].body == rpc_calls[1].body


def test_second_401_is_returned_not_retried_again(oauth_creds):
    """The retry happens once; a second 401 reaches the caller."""
    with responses.RequestsMock() as mock:
        mock.post(TOKEN_URL, json=token_body(1))
        mock.post(TOKEN_URL, json=token_body(2))
        mock.post(RPC_URL, status=401, json={})

        response = ClarifySession(oauth_creds).post("rpc", json={})

        assert response.status_code == 401
        assert len(response.history) == 1
        assert len([c for c in mock.calls if c.request.url == RPC_URL]) == 2


def test_401_on_rpc_raises_http_error_after_the_retry(oauth_creds):
    """rpc() raises requests.HTTPError when the retry is refused too."""
    with responses.RequestsMock() as mock:
        mock.post(TOKEN_URL, json=token_body(1))
        mock.post(RPC_URL, status=401, json={})

        with pytest.raises(requests.HTTPError):
            ClarifySession(oauth_creds).rpc("clarify.selectItems")


def test_401_with_basic_is_not_retried(basic_creds):
    """Basic credentials do not change between attempts: no retry."""
    with responses.RequestsMock() as mock:
        mock.post(RPC_URL, status=401, json={})

        response = ClarifySession(basic_creds).post("rpc", json={})

        assert response.status_code == 401
        assert len(mock.calls) == 1


def test_401_with_a_streamed_body_is_not_retried(server):
    """Over a real socket: a generator body cannot be replayed, so a 401 is returned as is."""
    session = ClarifySession(server.credentials())
    session.authenticator.token()
    server.valid_tokens.clear()

    response = session.post("rpc", data=(chunk for chunk in [b'{"id": 1}']))

    assert response.status_code == 401
    assert server.count("POST", "/v1/rpc") == 1
    assert server.issued == 1


def test_401_retry_works_with_a_plain_requests_session(oauth_creds):
    """The retry lives in the authenticator, so any requests.Session gets it."""
    with responses.RequestsMock() as mock:
        mock.post(TOKEN_URL, json=token_body(1))
        mock.post(TOKEN_URL, json=token_body(2))
        mock.get(API_URL + "x", status=401)
        mock.get(API_URL + "x", json={"ok": True}, headers={"Set-Cookie": "a=b"})
        session = requests.Session()
        session.auth = clarify_auth.Authenticator.from_credentials(oauth_creds)

        response = session.get(API_URL + "x")
        session.auth(requests.Request("GET", API_URL + "x").prepare())  # hook registered once

        assert response.json() == {"ok": True}


def test_401_from_a_server_that_revoked_the_token(server):
    """Over a real socket: a revoked token is replaced and the call succeeds."""
    session = ClarifySession(server.credentials())
    session.rpc("a")
    server.valid_tokens.clear()

    assert session.rpc("b") == {"ok": True}
    assert server.issued == 2


# -- redirects (real sockets) -----------------------------------------------------------------


@pytest.fixture
def two_hosts():
    """Two loopback servers reached by different host names: 127.0.0.1 and localhost."""
    origin = LoopbackServer().start()
    other = LoopbackServer().start()
    other.routes["GET /landing"] = lambda seen: Reply(json={"landed": True})
    yield origin, other
    origin.stop()
    other.stop()


def test_authorization_is_not_sent_to_another_host_after_redirect(two_hosts):
    """A redirect to a different host arrives there without Authorization."""
    origin, other = two_hosts
    target = f"http://localhost:{other.port}/landing"
    origin.routes["GET /v1/go"] = lambda seen: Reply(302, {}, headers={"Location": target})
    creds = Credentials.from_dict(basic_dict(apiUrl=origin.url + "/v1/"))

    response = ClarifySession(creds).get("go")

    assert response.json() == {"landed": True}
    assert "Authorization" in origin.seen[0].headers
    assert "Authorization" not in other.seen[0].headers


def test_401_after_cross_host_redirect_does_not_re_add_credentials(two_hosts):
    """A 401 from the other host after a redirect never triggers a retry with a token."""
    origin, other = two_hosts
    origin.routes["POST /v1/oauth/token"] = lambda seen: Reply(json=token_body(1))
    other.routes["GET /landing"] = lambda seen: Reply(401, {"error": "who are you"})
    target = f"http://localhost:{other.port}/landing"
    origin.routes["GET /v1/go"] = lambda seen: Reply(302, {}, headers={"Location": target})
    creds = Credentials.from_dict(oauth_dict(apiUrl=origin.url + "/v1/"))

    response = ClarifySession(creds).get("go")

    assert response.status_code == 401
    assert len(other.seen) == 1
    assert "Authorization" not in other.seen[0].headers
    assert origin.count("POST", "/v1/oauth/token") == 1


def test_same_host_redirect_keeps_authorization(two_hosts):
    """A redirect within the API host keeps the credentials."""
    origin, _ = two_hosts
    origin.routes["GET /v1/old"] = lambda seen: Reply(301, {}, headers={"Location": "/v1/new"})
    origin.routes["GET /v1/new"] = lambda seen: Reply(json={"new": True})
    creds = Credentials.from_dict(basic_dict(apiUrl=origin.url + "/v1/"))

    ClarifySession(creds).get("old")

    assert "Authorization" in origin.requests_to("GET", "/v1/new")[0].headers


# -- rpc -------------------------------------------------------------------------------------------


def test_rpc_sends_one_json_rpc_request_and_returns_result(mocked, oauth_creds):
    """rpc() posts a JSON-RPC 2.0 request to {api_url}rpc and returns result."""
    mocked.post(RPC_URL, json=rpc_result({"data": [1, 2]}))

    result = ClarifySession(oauth_creds).rpc("clarify.selectItems", {"query": {"limit": 10}})

    sent = mocked.calls[-1].request
    assert result == {"data": [1, 2]}
    assert sent.url == RPC_URL
    assert sent.headers["Content-Type"] == "application/json"
    assert json.loads(sent.body) == {
        "jsonrpc": "2.0",
        "method": "clarify.selectItems",
        "params": {"query": {"limit": 10}},
        "id": 1,
    }


def test_rpc_ids_increase_and_params_default_to_empty(mocked, oauth_creds):
    """Each call gets a new id; params=None sends an empty object."""
    mocked.post(RPC_URL, json=rpc_result(None))
    session = ClarifySession(oauth_creds)

    session.rpc("a")
    session.rpc("b")

    bodies = [json.loads(c.request.body) for c in mocked.calls if c.request.url == RPC_URL]
    assert [b["id"] for b in bodies] == [1, 2]
    assert bodies[0]["params"] == {}


def test_rpc_error_member_raises_rpc_error(mocked, oauth_creds):
    """A JSON-RPC error member becomes RPCError with code, message and data."""
    error = {"code": -32602, "message": "Invalid params", "data": {"trace": "abc"}}
    mocked.post(RPC_URL, json={"jsonrpc": "2.0", "id": 1, "error": error})

    with pytest.raises(RPCError) as info:
        ClarifySession(oauth_creds).rpc("clarify.selectItems")

    assert (info.value.code, info.value.message, info.value.data) == (
        -32602,
        "Invalid params",
        {"trace": "abc"},
    )
    assert "Invalid params" in str(info.value)
    assert "-32602" in str(info.value)


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        ({"message": "no code"}, None, "no code"),
        ({"code": True, "message": 5}, None, "m failed"),
        ({"code": 7}, 7, "m failed"),
    ],
    ids=["no-code", "bad-types", "no-message"],
)
def test_rpc_error_with_odd_members(mocked, oauth_creds, error, code, message):
    """Odd error members still give an RPCError with what could be read."""
    mocked.post(RPC_URL, json={"jsonrpc": "2.0", "id": 1, "error": error})

    with pytest.raises(RPCError) as info:
        ClarifySession(oauth_creds).rpc("m")

    assert (info.value.code, info.value.message) == (code, message)


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        ({"body": "<html>oops</html>", "content_type": "text/html"}, "not JSON"),
        ({"json": [1, 2]}, "not a JSON-RPC response"),
        ({"json": {"jsonrpc": "2.0", "id": 1}}, "neither result nor error"),
        ({"json": {"jsonrpc": "2.0", "id": 1, "error": "boom"}}, "not an object"),
    ],
    ids=["html", "array", "empty", "error-string"],
)
def test_rpc_malformed_answers_raise_rpc_response_error(mocked, oauth_creds, reply, match):
    """An answer that is not JSON-RPC is an RPCResponseError (an RPCError)."""
    mocked.post(RPC_URL, **reply)

    with pytest.raises(RPCResponseError, match=match) as info:
        ClarifySession(oauth_creds).rpc("m")

    assert info.value.code is None


@pytest.mark.parametrize("status", [400, 403, 404, 500, 503])
def test_rpc_non_2xx_raises_http_error(mocked, oauth_creds, status):
    """A non-2xx HTTP status raises requests.HTTPError, unwrapped."""
    mocked.post(RPC_URL, status=status, json={"jsonrpc": "2.0", "id": 1, "result": {}})

    with pytest.raises(requests.HTTPError) as info:
        ClarifySession(oauth_creds).rpc("m")

    assert info.value.response.status_code == status


def test_connection_errors_from_api_calls_pass_through(oauth_creds, mocked):
    """Requests' own errors on the user's API calls are not wrapped."""
    mocked.post(RPC_URL, body=requests.ConnectionError("down"))

    with pytest.raises(requests.ConnectionError):
        ClarifySession(oauth_creds).rpc("m")


def test_timeout_none_means_no_default_timeout(mocked, oauth_creds):
    """timeout=None opts out of a default timeout, as in plain requests."""
    mocked.get(API_URL + "x", json={})

    ClarifySession(oauth_creds, timeout=None).get("x")

    assert mocked.calls[-1].request.req_kwargs["timeout"] is None


def test_a_401_on_a_stream_upload_drops_the_token(server):
    """A streamed body cannot be resent: the 401 is returned, but the next upload gets a new token."""
    session = ClarifySession(server.credentials())
    session.rpc("a")
    server.valid_tokens.clear()  # the token is revoked behind our back

    def body():
        yield b'{"jsonrpc": "2.0", "id": 1, "method": "x", "params": {}}'

    first = session.post("rpc", data=body())
    second = session.post("rpc", data=body())

    assert first.status_code == 401
    assert second.status_code == 200
    assert server.issued == 2


def test_a_401_on_a_file_upload_drops_the_token(server, tmp_path):
    """A file body: the same, the dead token is not used for the next upload."""
    upload = tmp_path / "upload.json"
    upload.write_text('{"jsonrpc": "2.0", "id": 1, "method": "x", "params": {}}')
    session = ClarifySession(server.credentials())
    session.rpc("a")
    server.valid_tokens.clear()

    with upload.open("rb") as file:
        first = session.post("rpc", data=file)
    with upload.open("rb") as file:
        second = session.post("rpc", data=file)

    assert (first.status_code, second.status_code) == (401, 200)
    assert server.issued == 2


# -- attacks an adversarial review found, beside the behaviour they attack --


@pytest.mark.parametrize("build", ["session", "httpx"])
def test_an_api_version_with_non_ascii_digits_is_refused_at_construction(build):
    """Arabic-Indic digits are not MAJOR.MINOR: ValueError at construction, not garbage on send."""
    creds = Credentials.from_dict(basic_file())
    make = clarify_auth.ClarifySession if build == "session" else Client
    with pytest.raises(ValueError, match="api_version"):
        make(creds, api_version="\u0661.\u0661")


@pytest.mark.parametrize("build", ["session", "httpx"])
def test_rpc_on_a_deeply_nested_answer_raises_an_rpc_error(loopback, build):
    """A 200 whose JSON nests 100k deep raises RPCError (RPCResponseError), not RecursionError."""
    body = b"[" * 100_000 + b"]" * 100_000
    loopback.routes["POST /v1/rpc"] = lambda _: Reply(
        200, body=body, headers={"Content-Type": "application/json"}
    )
    assert rpc_in_a_child(loopback.url + "/v1/", build) == ["RPCError"]
