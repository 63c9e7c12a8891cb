"""Token requests go the way the user's requests go: proxies, CA bundles, client certificates."""

from __future__ import annotations

import ssl

import pytest
import requests

from _loopback import LoopbackServer, Reply
from _network import ForwardProxy, PrivateCA
from clarify_auth import (
    ClarifySession,
    ConfigurationError,
    Credentials,
    OAuthClientCredentials,
    TokenError,
)
from clarify_auth.testing import FakeClarify

PROXY_VARIABLES = (
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
    "http_proxy", "https_proxy", "all_proxy", "no_proxy",
    "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
)  # fmt: skip


@pytest.fixture(autouse=True)
def no_proxy_settings(monkeypatch):
    """The machine's own proxy and CA settings stay out of these tests."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def proxy():
    with ForwardProxy() as running:
        yield running


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return PrivateCA(tmp_path_factory.mktemp("pki"))


def tls_fake(ca: PrivateCA, *, client_certs: bool = False) -> FakeClarify:
    """A FakeClarify serving https with a certificate from the private CA."""
    cert, key = ca.issue("server", server=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    if client_certs:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(ca.path)
    fake = FakeClarify()
    fake._server.socket = context.wrap_socket(fake._server.socket, server_side=True)
    fake.url = fake.url.replace("http://", "https://")
    fake.api_url = fake.api_url.replace("http://", "https://")  # the audience it expects
    return fake


def https_creds(fake: FakeClarify) -> Credentials:
    return Credentials.from_dict(fake.credentials_dict())


# -- a ClarifySession's settings ------------------------------------------------------------------


def test_session_proxies_carry_token_requests(fake, proxy):
    """session.proxies sends the token request through the proxy, like the API call."""
    session = ClarifySession(fake.credentials())
    session.proxies = {"http": proxy.url}

    session.rpc("clarify.selectItems")

    assert proxy.count("POST", "/v1/oauth/token") == 1
    assert proxy.count("POST", "/v1/rpc") == 1
    assert fake.token_requests == 1


def test_settings_are_read_at_each_token_request(fake, proxy):
    """Settings changed after the first token request apply to the next one."""
    session = ClarifySession(fake.credentials())
    session.rpc("clarify.selectItems")
    assert proxy.count("POST", "/v1/oauth/token") == 0

    session.proxies = {"http": proxy.url}
    session.authenticator.invalidate()
    session.rpc("clarify.selectItems")

    assert proxy.count("POST", "/v1/oauth/token") == 1
    assert fake.token_requests == 2


@pytest.mark.parametrize("trust_env", [True, False])
def test_trust_env_decides_whether_the_environment_proxy_is_used(
    fake, proxy, monkeypatch, trust_env
):
    """HTTP_PROXY from the environment carries token requests only when the session trusts it."""
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    session = ClarifySession(fake.credentials())
    session.trust_env = trust_env

    session.authenticator.authorization()

    assert proxy.count("POST", "/v1/oauth/token") == (1 if trust_env else 0)
    assert fake.token_requests == 1


def test_a_private_ca_bundle_on_the_session_verifies_the_token_endpoint(ca):
    """session.verify = the corporate CA: the token request over TLS succeeds."""
    with tls_fake(ca) as fake:
        session = ClarifySession(https_creds(fake))
        session.verify = str(ca.path)

        session.rpc("clarify.selectItems")
        assert fake.token_requests == 1
        assert fake.rpc_calls == 1


def test_without_the_ca_bundle_the_token_request_fails_verification(ca):
    """The system store does not know the private CA: a TLS TokenError, nothing trusted blindly."""
    with tls_fake(ca) as fake:
        session = ClarifySession(https_creds(fake), attempts=1)

        with pytest.raises(TokenError, match="TLS"):
            session.authenticator.authorization()

        assert fake.token_requests == 0


def test_a_client_certificate_on_the_session_reaches_the_token_endpoint(ca):
    """session.cert: the token endpoint that demands a client certificate gets it."""
    cert, key = ca.issue("client", server=False)
    with tls_fake(ca, client_certs=True) as fake:
        session = ClarifySession(https_creds(fake))
        session.verify = str(ca.path)
        session.cert = (str(cert), str(key))

        session.rpc("clarify.selectItems")

        assert fake.token_requests == 1


def test_without_the_client_certificate_the_token_request_fails(ca):
    """No client certificate, no token: the handshake is refused."""
    with tls_fake(ca, client_certs=True) as fake:
        session = ClarifySession(https_creds(fake), attempts=1)
        session.verify = str(ca.path)

        with pytest.raises(TokenError):
            session.authenticator.authorization()


def test_https_token_requests_tunnel_through_the_proxy_with_the_private_ca(ca, proxy):
    """A corporate network: https through a CONNECT proxy, verified with the company's CA."""
    with tls_fake(ca) as fake:
        session = ClarifySession(https_creds(fake))
        session.proxies = {"https": proxy.url}
        session.verify = str(ca.path)

        session.rpc("clarify.selectItems")

        assert proxy.count("CONNECT", f":{fake.port}") >= 1
        assert fake.token_requests == 1


# -- OAuthClientCredentials(session=...) ------------------------------------------------------


def test_token_requests_go_through_the_given_session(fake, proxy):
    """session= carries token requests: its proxies are used."""
    carrier = requests.Session()
    carrier.proxies = {"http": proxy.url}

    auth = OAuthClientCredentials.from_credentials(fake.credentials(), session=carrier)
    auth.authorization()

    assert proxy.count("POST", "/v1/oauth/token") == 1


def test_the_given_sessions_auth_is_never_used_for_token_requests(fake):
    """The carrier's own auth (or netrc) never touches the token request."""

    def stamp(request):
        request.headers["Authorization"] = "Basic test-secret-carrier"
        return request

    carrier = requests.Session()
    carrier.auth = stamp

    OAuthClientCredentials.from_credentials(fake.credentials(), session=carrier).authorization()

    sent = next(r for r in fake.requests if r.path.endswith("/oauth/token"))
    assert "Authorization" not in sent.headers


def test_the_given_session_never_follows_a_redirect_with_the_secret():
    """A token endpoint answering 307 is not followed, whatever the carrier's settings."""
    origin, elsewhere = LoopbackServer().start(), LoopbackServer().start()
    try:
        target = elsewhere.url + "/steal"
        origin.routes["POST /v1/oauth/token"] = lambda seen: Reply(
            307, {}, headers={"Location": target}
        )
        carrier = requests.Session()
        carrier.max_redirects = 5
        auth = OAuthClientCredentials(
            "test-client",
            "test-secret-redirect",
            token_url=origin.url + "/v1/oauth/token",
            audience=origin.url + "/v1/",
            session=carrier,
        )

        with pytest.raises(TokenError, match="redirect"):
            auth.authorization()

        assert elsewhere.seen == []
    finally:
        origin.stop()
        elsewhere.stop()


def test_a_session_that_is_not_a_requests_session_is_refused(oauth_creds):
    """session= takes a requests.Session and says so otherwise."""
    with pytest.raises(ConfigurationError, match=r"requests\.Session"):
        OAuthClientCredentials.from_credentials(oauth_creds, session=object())


def test_a_given_session_wins_over_the_clarify_sessions_settings(fake, proxy):
    """An authenticator with its own session= keeps it inside a ClarifySession."""
    carrier = requests.Session()
    carrier.proxies = {"http": proxy.url}
    auth = OAuthClientCredentials.from_credentials(fake.credentials(), session=carrier)
    session = ClarifySession(fake.credentials(), authenticator=auth)
    session.proxies = {}

    session.rpc("clarify.selectItems")

    assert proxy.count("POST", "/v1/oauth/token") == 1
