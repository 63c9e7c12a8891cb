"""Credentials go only to the API's origin: other hosts, 401s from them, redirects, proxies."""

from __future__ import annotations

import pytest
import requests
import responses

from _loopback import LoopbackServer, Reply
from clarify_auth import (
    Authenticator,
    BasicAuth,
    ClarifyAuthError,
    ClarifySession,
    Credentials,
    InsecureTransportError,
    TokenError,
)
from conftest import BASIC_PASSWORD, basic_dict, make_oauth, oauth_dict, token_body


@pytest.fixture
def api_and_other():
    """The API on one loopback port, a foreign host on another (a different origin)."""
    api = LoopbackServer().start()
    other = LoopbackServer().start()
    issued = []

    def token(seen):
        issued.append(1)
        return Reply(json=token_body(len(issued)))

    api.routes["POST /v1/oauth/token"] = token
    api.routes["GET /v1/items"] = lambda seen: Reply(json={"ok": True})
    for path in ("/items", "/harvest"):
        other.routes[f"GET {path}"] = lambda seen: Reply(401, {"error": "unauthorized"})
    yield api, other
    api.stop()
    other.stop()


def creds_for(api, kind="oauth"):
    make = oauth_dict if kind == "oauth" else basic_dict
    return Credentials.from_dict(make(apiUrl=api.url + "/v1/"))


@pytest.mark.parametrize("kind", ["oauth", "basic"])
def test_absolute_url_to_another_origin_gets_no_credentials(api_and_other, kind):
    """An absolute URL to another host:port goes out with no Authorization, Bearer or Basic."""
    api, other = api_and_other
    session = ClarifySession(creds_for(api, kind))

    session.get("items")
    session.get(other.url + "/items")

    assert "Authorization" in api.requests_to("GET", "/v1/items")[0].headers
    assert "Authorization" not in other.seen[0].headers


def test_network_path_reference_to_another_host_gets_no_credentials(api_and_other):
    """'//other-host/items' resolves (RFC 3986) to another host, which gets no credentials."""
    api, other = api_and_other
    session = ClarifySession(creds_for(api))

    session.get(f"//localhost:{other.port}/items")

    assert len(other.seen) == 1
    assert "Authorization" not in other.seen[0].headers


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:{api}/v1/items",  # another host name for the same address
        "https://127.0.0.1:{api}/v1/items",  # another scheme
        "http://127.0.0.1:{other}/v1/items",  # another port
        "http://127.0.0.1:{api}@127.0.0.1:{other}/v1/items",  # user info that looks like us
    ],
    ids=["host", "scheme", "port", "userinfo"],
)
def test_every_part_of_the_origin_counts(url, api_and_other, oauth_creds):
    """Scheme, host and port must all match; a look-alike prefix does not."""
    api, other = api_and_other
    auth = Authenticator.from_credentials(creds_for(api))
    request = requests.Request("GET", url.format(api=api.port, other=other.port)).prepare()
    request.headers.pop("Authorization", None)  # requests' own, from user info in the URL

    auth(request)

    assert "Authorization" not in request.headers
    assert request.hooks["response"] == []


def test_same_origin_spelled_differently_is_signed(api_and_other):
    """Case and an explicit default port do not change the origin."""
    api, _ = api_and_other
    auth = Authenticator.from_credentials(creds_for(api, "basic"))
    request = requests.Request("GET", f"HTTP://127.0.0.1:{api.port}/v1/items").prepare()

    auth(request)

    assert request.headers["Authorization"].startswith("Basic ")
    assert Authenticator.from_credentials(
        Credentials.from_dict(basic_dict(apiUrl="https://api.example.com/v1/"))
    ).signs("https://API.example.com:443/other/path")


@pytest.mark.parametrize("kind", ["oauth", "basic"])
def test_a_plain_requests_session_with_from_credentials_is_restricted(api_and_other, kind):
    """from_credentials authenticators hold the restriction on any requests.Session."""
    api, other = api_and_other
    plain = requests.Session()
    plain.auth = Authenticator.from_credentials(creds_for(api, kind))

    plain.get(api.url + "/v1/items", timeout=5)
    plain.get(other.url + "/items", timeout=5)

    assert "Authorization" in api.requests_to("GET", "/v1/items")[0].headers
    assert "Authorization" not in other.seen[0].headers


def test_a_session_restricts_a_users_own_unrestricted_authenticator(api_and_other):
    """A session given an authenticator built without api_url still signs only its API."""
    api, other = api_and_other
    mine = BasicAuth("test-integration", BASIC_PASSWORD)  # signs any origin on its own
    session = ClarifySession(creds_for(api, "basic"), authenticator=mine)

    session.get("items")
    session.get(other.url + "/items")

    assert "Authorization" in api.requests_to("GET", "/v1/items")[0].headers
    assert "Authorization" not in other.seen[0].headers


def test_no_netrc_credentials_for_other_origins(api_and_other, tmp_path, monkeypatch):
    """A request to another origin gets no ~/.netrc credentials either."""
    api, other = api_and_other
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine localhost login test-user password test-secret-netrc\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    session = ClarifySession(creds_for(api))

    session.get(f"http://localhost:{other.port}/items")

    assert "Authorization" not in other.seen[0].headers


def test_an_explicit_auth_for_another_origin_is_respected(api_and_other):
    """A request that names its own auth for another host gets exactly that."""
    api, other = api_and_other
    session = ClarifySession(creds_for(api))

    session.get(other.url + "/items", auth=("someone", "test-secret-theirs"))

    assert other.seen[0].headers["Authorization"].startswith("Basic ")


def test_a_foreign_401_costs_nothing(api_and_other):
    """Ten GETs to a host answering 401: no token dropped, fetched or retried; it sees none."""
    api, other = api_and_other
    session = ClarifySession(creds_for(api))
    session.get("items")

    statuses = [session.get(other.url + "/harvest").status_code for _ in range(10)]

    assert statuses == [401] * 10
    assert api.count("POST", "/v1/oauth/token") == 1
    assert len(other.seen) == 10
    assert not any("Authorization" in seen.headers for seen in other.seen)
    session.get("items")
    assert api.count("POST", "/v1/oauth/token") == 1


def test_same_origin_redirect_keeps_our_header_over_netrc(api_and_other, tmp_path, monkeypatch):
    """With a ~/.netrc entry for the API host, a same-origin redirect still carries our Bearer."""
    api, _ = api_and_other
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login test-user password test-secret-netrc\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    api.routes["GET /v1/old"] = lambda seen: Reply(302, {}, headers={"Location": "/v1/new"})
    api.routes["GET /v1/new"] = lambda seen: Reply(json={"new": True})

    response = ClarifySession(creds_for(api)).get("old")

    assert response.json() == {"new": True}
    assert api.requests_to("GET", "/v1/new")[0].headers["Authorization"] == "Bearer test-token-1"


def test_cross_origin_redirect_strips_our_header(api_and_other):
    """A redirect to another origin arrives there without Authorization."""
    api, other = api_and_other
    other.routes["GET /landing"] = lambda seen: Reply(json={"landed": True})
    target = f"http://localhost:{other.port}/landing"
    api.routes["GET /v1/go"] = lambda seen: Reply(302, {}, headers={"Location": target})

    response = ClarifySession(creds_for(api)).get("go")

    assert response.json() == {"landed": True}
    assert "Authorization" not in other.requests_to("GET", "/landing")[0].headers


# -- plain http through a proxy ---------------------------------------------------------------

REMOTE_PROXY = "http://proxy.invalid:3128"  # never reached: responses answers every send


@pytest.fixture
def no_network():
    """Every send is answered by responses, so a regression cannot reach a real proxy."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def loopback_creds(kind="oauth"):
    make = oauth_dict if kind == "oauth" else basic_dict
    return Credentials.from_dict(make(apiUrl="http://127.0.0.1:9/v1/"))


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_plain_http_through_a_remote_proxy_from_the_environment_is_refused(
    no_network, monkeypatch, variable
):
    """Loopback plain http with a non-loopback proxy in the environment: refused, nothing sent."""
    monkeypatch.setenv(variable, REMOTE_PROXY)
    session = ClarifySession(loopback_creds("basic"))

    with pytest.raises(InsecureTransportError, match="proxy"):
        session.get("items")

    assert len(no_network.calls) == 0


def test_the_client_secret_never_goes_to_a_remote_proxy(no_network, monkeypatch):
    """A loopback token URL with a remote HTTP_PROXY: the token request is refused unsent."""
    monkeypatch.setenv("HTTP_PROXY", REMOTE_PROXY)
    session = ClarifySession(loopback_creds("oauth"))

    with pytest.raises(InsecureTransportError, match="client secret"):
        session.authenticator.authorization()

    assert len(no_network.calls) == 0


def test_a_remote_proxy_set_on_the_session_is_refused(no_network):
    """session.proxies counts as much as the environment."""
    session = ClarifySession(loopback_creds("basic"))
    session.proxies = {"http": REMOTE_PROXY}

    with pytest.raises(InsecureTransportError):
        session.get("items")

    assert len(no_network.calls) == 0


def test_a_token_request_through_a_remote_proxy_on_the_session_is_refused(no_network):
    """The session's proxies reach its token requests, and are checked there too."""
    session = ClarifySession(loopback_creds("oauth"))
    session.proxies = {"http": REMOTE_PROXY}

    with pytest.raises((InsecureTransportError, TokenError)):
        session.get("items")

    assert len(no_network.calls) == 0


@pytest.mark.parametrize(
    "settings",
    [
        {"HTTP_PROXY": REMOTE_PROXY, "NO_PROXY": "127.0.0.1"},
        {"HTTP_PROXY": "http://127.0.0.1:3128"},
        {"HTTPS_PROXY": REMOTE_PROXY},
    ],
    ids=["no-proxy-covers-it", "loopback-proxy", "https-proxy-only"],
)
def test_plain_http_that_stays_on_the_machine_is_allowed(no_network, monkeypatch, settings):
    """no_proxy, a loopback proxy, or a proxy for https only: the bytes stay here."""
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    no_network.get("http://127.0.0.1:9/v1/items", json={"ok": True})

    response = ClarifySession(loopback_creds("basic")).get("items")

    assert response.json() == {"ok": True}


def test_https_through_a_remote_proxy_is_fine(no_network, monkeypatch):
    """https is tunnelled end to end: a remote proxy is no reason to refuse."""
    monkeypatch.setenv("HTTPS_PROXY", REMOTE_PROXY)
    creds = Credentials.from_dict(basic_dict())
    no_network.get(creds.api_url + "items", json={"ok": True})

    assert ClarifySession(creds).get("items").json() == {"ok": True}


def test_a_bare_send_is_checked_against_the_environment_too(no_network, monkeypatch):
    """session.send(prepared) without proxies= resolves them as requests would, then checks."""
    monkeypatch.setenv("HTTP_PROXY", REMOTE_PROXY)
    session = ClarifySession(loopback_creds("basic"))
    prepared = session.prepare_request(requests.Request("GET", "http://127.0.0.1:9/v1/items"))

    with pytest.raises(InsecureTransportError, match="proxy"):
        session.send(prepared)

    assert len(no_network.calls) == 0


def test_a_proxy_set_in_the_environment_between_requests_counts(no_network, monkeypatch):
    """No proxy for the first request, HTTP_PROXY set before the second: the second is refused."""
    no_network.get("http://127.0.0.1:9/v1/items", json={"ok": True})
    session = ClarifySession(loopback_creds("basic"))
    first = session.get("items")
    monkeypatch.setenv("HTTP_PROXY", REMOTE_PROXY)

    with pytest.raises(InsecureTransportError, match="proxy"):
        session.get("items")

    assert first.json() == {"ok": True}
    assert len(no_network.calls) == 1


def test_a_redirect_is_checked_with_the_proxies_requests_rebuilt(no_network, monkeypatch):
    """A redirect to another loopback host, which NO_PROXY does not cover, is refused."""
    monkeypatch.setenv("HTTP_PROXY", REMOTE_PROXY)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    no_network.get(
        "http://127.0.0.1:9/v1/go", status=302, headers={"Location": "http://127.0.0.2:9/v1/x"}
    )
    session = ClarifySession(loopback_creds("basic"))

    with pytest.raises(InsecureTransportError, match="proxy"):
        session.get("go")

    assert len(no_network.calls) == 1


# -- attacks an adversarial review found, beside the behaviour they attack --


def test_backslash_url_to_another_origin_carries_no_credentials(basic_creds):
    """A URL that urlsplit reads as the API but requests sends to another host gets no credentials."""
    session = ClarifySession(
        basic_creds, authenticator=BasicAuth("test-integration", BASIC_PASSWORD)
    )
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, "https://evil.example/%5C@api.clarify.io/v1/rpc", body="x")
        reply = session.get("https://evil.example\\@api.clarify.io/v1/rpc")

    assert reply.request.url.startswith("https://evil.example/")
    assert "Authorization" not in reply.request.headers


def test_backslash_url_cannot_smuggle_plain_http_to_a_remote_host(basic_creds):
    """Plain http to a remote host is refused even when urlsplit reads the host as loopback."""
    session = ClarifySession(basic_creds)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, "http://evil.example/%5C@127.0.0.1/x", body="x")
        with pytest.raises(ClarifyAuthError):
            session.get("http://evil.example\\@127.0.0.1/x")
        assert len(mock.calls) == 0


def test_uppercase_http_token_url_is_refused_through_a_remote_proxy():
    """An 'HTTP://' loopback token URL must not send the secret in clear through a remote proxy."""
    transport = requests.Session()
    transport.trust_env = False
    transport.proxies = {"http": "http://proxy.example.corp:3128"}
    auth = make_oauth(
        token_url="HTTP://127.0.0.1:9/v1/oauth/token", session=transport, token_cache=False
    )
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, "http://127.0.0.1:9/v1/oauth/token", json=token_body())
        with pytest.raises(ClarifyAuthError):
            auth.token()
        assert len(mock.calls) == 0  # the client secret left, through the remote proxy


def test_idn_api_url_requests_carry_authorization():
    """Requests to an internationalised apiUrl's own origin carry Authorization."""
    creds = Credentials.from_dict(basic_dict(apiUrl="https://bücher.example/v1/"))
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, "https://xn--bcher-kva.example/v1/rpc", json={})
        reply = ClarifySession(creds).post("rpc", json={})

    assert reply.request.headers.get("Authorization", "").startswith("Basic ")


def test_http_to_https_upgrade_redirect_strips_authorization():
    """A redirect from http://localhost to https://localhost (another origin) drops Authorization."""
    creds = Credentials.from_dict(basic_dict(apiUrl="http://localhost/v1/"))
    with responses.RequestsMock() as mock:
        mock.add(
            responses.POST,
            "http://localhost/v1/rpc",
            status=307,
            headers={"Location": "https://localhost/v1/rpc"},
        )
        mock.add(responses.POST, "https://localhost/v1/rpc", json={})
        ClarifySession(creds).post("rpc", json={})
        upgraded = mock.calls[1].request

    assert upgraded.url.startswith("https://localhost/")
    assert "Authorization" not in upgraded.headers


def test_a_request_reads_the_environment_once_not_again_for_the_check(no_network, monkeypatch):
    """session.get's proxy check reuses what requests resolved; only a bare send resolves again."""
    from clarify_auth.transports.requests import session as session_module

    resolved: list[str] = []
    real = session_module.resolve_proxies

    def counting(request, proxies, trust_env=True):
        resolved.append(request.url)
        return real(request, proxies, trust_env)

    monkeypatch.setattr(session_module, "resolve_proxies", counting)
    no_network.get("http://127.0.0.1:9/v1/items", json={"ok": True})
    session = ClarifySession(loopback_creds("basic"))

    for _ in range(3):
        session.get("items")
    assert resolved == []

    session.send(session.prepare_request(requests.Request("GET", "http://127.0.0.1:9/v1/items")))
    assert resolved == ["http://127.0.0.1:9/v1/items"]
