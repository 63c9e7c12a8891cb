"""FakeClarify: Clarify's token and RPC checks, expiry on its own clock, faults, counters."""

from __future__ import annotations

import base64
import json
import threading

import pytest
import requests

import clarify_auth
from clarify_auth import ClarifySession, OAuthClientCredentials, RPCError, TokenError
from clarify_auth.testing import FakeClarify


def post_token(fake, **form):
    data = {
        "grant_type": "client_credentials",
        "client_id": fake.client_id,
        "client_secret": fake.client_secret,
        "audience": fake.api_url,
    }
    data.update(form)
    return requests.post(
        fake.token_url, data={k: v for k, v in data.items() if v is not None}, timeout=5
    )


def post_rpc(fake, authorization=None, body=None, **headers):
    if authorization:
        headers["Authorization"] = authorization
    payload = (
        body
        if body is not None
        else json.dumps({"jsonrpc": "2.0", "id": 7, "method": "clarify.selectItems", "params": {}})
    )
    return requests.post(fake.rpc_url, data=payload, headers=headers, timeout=5)


def bearer(fake):
    return "Bearer " + post_token(fake).json()["access_token"]


# -- token endpoint -------------------------------------------------------------------


def test_issues_rfc6749_tokens(fake):
    """A correct form gets access_token, scope, expires_in and token_type Bearer."""
    response = post_token(fake)

    body = response.json()
    assert response.status_code == 200
    assert set(body) == {"access_token", "scope", "expires_in", "token_type"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert isinstance(body["expires_in"], int)  # as Clarify sends it
    assert body["scope"] == "clarify"
    assert fake.is_valid_token(body["access_token"])
    assert (fake.token_requests, fake.tokens_issued) == (1, 1)


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"grant_type": None}, 400, "unsupported_grant_type"),
        ({"client_id": "someone-else"}, 401, "access_denied"),
        ({"client_secret": "test-secret-wrong"}, 401, "access_denied"),
        ({"client_secret": None}, 401, "access_denied"),
        ({"audience": "https://api.clarify.io/v1/"}, 403, "access_denied"),
    ],
    ids=["grant-password", "no-grant", "wrong-id", "wrong-secret", "no-secret", "wrong-audience"],
)
def test_rejects_bad_token_requests_like_clarify(fake, form, status, error):
    """Wrong grant, client, secret or audience get Clarify's RFC 6749 errors."""
    response = post_token(fake, **form)

    assert response.status_code == status
    assert response.json()["error"] == error
    assert fake.tokens_issued == 0


def test_token_request_must_be_a_form(fake):
    """A JSON body is not what Clarify accepts."""
    response = requests.post(fake.token_url, json={"grant_type": "client_credentials"}, timeout=5)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_tokens_expire_on_the_fakes_clock(fake):
    """advance_clock makes issued tokens expire without waiting."""
    header = bearer(fake)
    assert post_rpc(fake, header).status_code == 200

    fake.advance_clock(3600)

    assert post_rpc(fake, header).status_code == 401


def test_token_lifetime_and_injected_clock():
    """token_lifetime sets expires_in; an injected clock drives expiry."""
    now = [100.0]
    with FakeClarify(token_lifetime=120, clock=lambda: now[0]) as fake:
        token = post_token(fake).json()
        now[0] += 119
        valid_before = fake.is_valid_token(token["access_token"])
        now[0] += 1

        assert token["expires_in"] == 120
        assert valid_before is True
        assert fake.is_valid_token(token["access_token"]) is False
        assert fake.now() == 220.0


# -- RPC endpoint ----------------------------------------------------------------------------


def test_rpc_accepts_a_valid_bearer_token_and_records_headers(fake):
    """A valid token gets a JSON-RPC answer; Authorization and X-API-Version are recorded."""
    header = bearer(fake)

    response = post_rpc(fake, header, **{"X-API-Version": "1.1"})

    assert response.json() == {
        "jsonrpc": "2.0",
        "id": 7,
        "result": {
            "meta": {"total": 0, "format": {"dataAsArray": True, "groupIncludedByType": True}},
            "data": [],
        },
    }
    recorded = fake.requests[-1]
    assert recorded.path == "/v1/rpc"
    assert recorded.status == 200
    assert recorded.headers["Authorization"] == header
    assert recorded.headers["X-API-Version"] == "1.1"
    assert recorded.json["method"] == "clarify.selectItems"
    assert fake.requests[0].form["grant_type"] == "client_credentials"
    assert fake.rpc_calls == 1


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer fake-token-1-0000",
        "Bearer ",
        "Token abc",
        "Basic " + base64.b64encode(b"test-integration:wrong").decode(),
    ],
    ids=["none", "unknown-token", "empty-token", "other-scheme", "wrong-basic"],
)
def test_rpc_refuses_bad_credentials_with_401(fake, authorization):
    """Missing, unknown or wrong credentials get 401 with WWW-Authenticate."""
    response = post_rpc(fake, authorization)

    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers


def test_rpc_accepts_the_basic_pair(fake):
    """The integration ID and Basic password are accepted as Basic Auth."""
    pair = f"{fake.integration}:{fake.basic_password}".encode()

    assert post_rpc(fake, "Basic " + base64.b64encode(pair).decode()).status_code == 200


def test_revoked_tokens_are_refused(fake):
    """revoke_tokens() invalidates every token issued so far."""
    header = bearer(fake)

    fake.revoke_tokens()

    assert post_rpc(fake, header).status_code == 401


def test_reject_rpc_calls_forces_401s(fake):
    """reject_rpc_calls(n) refuses the next n calls, then accepts again."""
    header = bearer(fake)
    fake.reject_rpc_calls(2)

    statuses = [post_rpc(fake, header).status_code for _ in range(3)]

    assert statuses == [401, 401, 200]


def test_registered_results_errors_and_handlers(fake):
    """on() sets a result, a JSON-RPC error, or a handler of the params per method."""
    fake.on("a.result", result={"x": 1})
    fake.on("a.error", error={"code": -32000, "message": "nope", "data": [1]})
    fake.on("a.handler", handler=lambda params: params["n"] * 2)
    fake.on("a.failing", handler=lambda params: 1 / 0)
    fake.on("a.none")

    with ClarifySession(fake.credentials()) as session:
        assert session.rpc("a.result") == {"x": 1}
        assert session.rpc("a.handler", {"n": 21}) == 42
        assert session.rpc("a.none") is None
        with pytest.raises(RPCError) as info:
            session.rpc("a.error")
        with pytest.raises(RPCError, match="Internal error: ZeroDivisionError"):
            session.rpc("a.failing")
        with pytest.raises(RPCError) as unknown:
            session.rpc("no.such.method")

    assert (info.value.code, info.value.message, info.value.data) == (-32000, "nope", [1])
    assert unknown.value.code == -32601


def test_on_takes_one_kind_of_answer(fake):
    """A result and a handler together are ambiguous."""
    with pytest.raises(ValueError, match="one of"):
        fake.on("m", result=1, handler=lambda p: 2)


@pytest.mark.parametrize(
    ("body", "code"),
    [("{not json", -32700), ("[1, 2]", -32600), ('{"id": 1}', -32600)],
    ids=["not-json", "array", "no-method"],
)
def test_malformed_rpc_requests_get_json_rpc_errors(fake, body, code):
    """Parse errors and invalid requests are answered as JSON-RPC says."""
    response = post_rpc(fake, bearer(fake), body=body)

    assert response.json()["error"]["code"] == code


def test_unknown_paths_are_404(fake):
    """Only the token and RPC endpoints exist."""
    assert requests.get(fake.url + "/v1/rpc", timeout=5).status_code == 404
    assert requests.post(fake.url + "/v2/rpc", timeout=5).status_code == 404


def test_chunked_bodies_are_read(fake):
    """A streamed (chunked) JSON-RPC body is understood."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "clarify.selectItems"}).encode()

    response = requests.post(
        fake.rpc_url,
        data=iter([body[:10], body[10:]]),
        headers={"Authorization": bearer(fake)},
        timeout=5,
    )

    assert response.json()["id"] == 1


# -- faults -----------------------------------------------------------------------------------


def test_failed_token_requests_then_recovery(fake):
    """fail_token_requests(n) answers n requests with the status, body and Retry-After given."""
    fake.fail_token_requests(2, status=429, retry_after=3)
    fake.fail_token_requests(1, status=502, body="<html>bad gateway</html>")

    answers = [post_token(fake) for _ in range(4)]

    assert [a.status_code for a in answers] == [429, 429, 502, 200]
    assert answers[0].headers["Retry-After"] == "3"
    assert answers[0].json() == {"error": "access_denied"}
    assert answers[2].headers["Content-Type"].startswith("text/html")
    assert fake.token_requests == 4
    assert fake.tokens_issued == 1


def test_default_fault_bodies_fit_the_status(fake):
    """A 5xx fault carries temporarily_unavailable; a custom JSON body is sent as given."""
    fake.fail_token_requests(status=503)
    fake.fail_token_requests(
        status=401, body={"error": "invalid_client", "error_description": "revoked"}
    )

    assert post_token(fake).json() == {"error": "temporarily_unavailable"}
    assert post_token(fake).json()["error_description"] == "revoked"


def test_dropped_token_requests(fake):
    """drop_token_requests closes the connection without an answer."""
    fake.drop_token_requests(1)

    with pytest.raises(requests.ConnectionError):
        post_token(fake)
    assert post_token(fake).status_code == 200


def test_sdk_survives_the_fakes_faults(fake):
    """The SDK rides out a drop and a 503 and reports a rejection precisely."""
    fake.drop_token_requests(1)
    fake.fail_token_requests(1, status=503)
    auth = OAuthClientCredentials.from_credentials(fake.credentials(), sleep=lambda s: None)

    assert auth.authorization().startswith("Bearer fake-token-1-")

    fake.fail_token_requests(
        1, status=401, body={"error": "access_denied", "error_description": "Unauthorized"}
    )
    auth.invalidate()
    with pytest.raises(TokenError) as info:
        auth.token()
    assert (info.value.status_code, info.value.error) == (401, "access_denied")


def test_latency_is_added(fake):
    """token_latency and rpc_latency delay the answers."""
    import time

    fake.token_latency = 0.2
    fake.rpc_latency = 0.1
    start = time.monotonic()

    post_rpc(fake, bearer(fake))

    assert time.monotonic() - start >= 0.3


# -- credentials and life cycle -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["client-credentials", "basic-auth"])
def test_credentials_of_either_type_work(fake, tmp_path, kind):
    """credentials() and write_credentials() give working credentials of either type."""
    path = fake.write_credentials(tmp_path / "c.json", type=kind)

    creds = clarify_auth.Credentials.from_file(path)
    with ClarifySession(creds) as session:
        result = session.rpc("clarify.selectItems")

    assert creds == fake.credentials(kind)
    assert creds.credentials.type == kind
    assert result["data"] == []
    assert path.stat().st_mode & 0o777 == 0o600


def test_repr_hides_secrets(fake):
    """repr names the address only."""
    assert fake.client_secret not in repr(fake)
    assert fake.api_url in repr(fake)


def test_start_is_idempotent_and_stop_closes():
    """start() twice is harmless; after stop() the port refuses connections."""
    fake = FakeClarify()
    fake.start()
    fake.start()
    url = fake.token_url

    fake.stop()

    with pytest.raises(requests.ConnectionError):
        requests.post(url, timeout=2)


def test_stop_without_start():
    """A fake that never started can still be stopped."""
    FakeClarify().stop()


def test_safe_under_many_threads(fake):
    """Sixty-four threads calling through one session are all served and counted."""
    session = ClarifySession(fake.credentials())
    barrier = threading.Barrier(64)
    results = []

    def call():
        barrier.wait(timeout=10)
        results.append(session.rpc("clarify.selectItems")["data"])

    threads = [threading.Thread(target=call) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert results == [[]] * 64
    assert fake.rpc_calls == 64
    assert fake.token_requests == 1
    assert len(fake.requests) == 65
    session.close()


def test_clear_faults_ends_an_outage(fake):
    """clear_faults() drops pending failures, drops and forced 401s."""
    fake.fail_token_requests(100, status=503)
    fake.drop_token_requests(5)
    fake.reject_rpc_calls(5)
    assert post_token(fake).status_code == 503

    fake.clear_faults()

    header = bearer(fake)
    assert post_rpc(fake, header).status_code == 200


def test_fractional_lifetimes_are_sent_as_numbers():
    """A lifetime that is not whole seconds is sent as it is."""
    with FakeClarify(token_lifetime=1.5) as fake:
        assert post_token(fake).json()["expires_in"] == 1.5


def test_answers_are_not_held_back_by_nagle(fake):
    """A hundred sequential calls on one connection take milliseconds, not 40 ms each."""
    import time

    session = ClarifySession(fake.credentials())
    session.rpc("clarify.selectItems")
    start = time.monotonic()

    for _ in range(100):
        session.rpc("clarify.selectItems")

    assert time.monotonic() - start < 3.0  # 100 x 40 ms of delayed ACKs would be 4 s
    session.close()
