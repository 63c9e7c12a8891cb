"""No secret in repr, str, exception messages, tracebacks, log records (DEBUG, urllib3 too) or warnings."""

from __future__ import annotations

import base64
import json
import logging
import pickle
import traceback
import warnings

import pytest
import requests
import responses

import clarify_auth
from _loopback import Reply
from clarify_auth import (
    BasicAuth,
    ClarifySession,
    Credentials,
    OAuthClientCredentials,
    TokenError,
)
from conftest import BASIC_PASSWORD, SECRET, basic_dict, make_oauth, oauth_dict, token_body

BASIC_HEADER = base64.b64encode(f"test-integration:{BASIC_PASSWORD}".encode()).decode()


def secrets_in(text: str, tokens: list[str]) -> list[str]:
    candidates = [SECRET, BASIC_PASSWORD, BASIC_HEADER, *tokens]
    return [s for s in candidates if s and s in text]


def describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)


def test_oauth_life_cycle_leaks_nothing(server, caplog):
    """Fetch, reuse, revoke, retry on 401, fail, and error: nothing secret in logs, errors or warnings."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    texts: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        session = ClarifySession(server.credentials())
        texts += [repr(session), str(session), repr(session.auth), str(session.auth)]
        session.rpc("a")
        texts += [repr(session.authenticator.token()), str(session.authenticator.token())]
        server.valid_tokens.clear()
        session.rpc("b")
        server.token_replies += [
            Reply(503, body=b"<html>down</html>"),
            Reply(
                401, {"error": "invalid_client", "error_description": f"secret {SECRET} is wrong"}
            ),
        ]
        session.authenticator.invalidate()
        with pytest.raises(TokenError) as info:
            session.rpc("c")
        texts.append(describe(info.value))
        texts.append(repr(pickle.loads(pickle.dumps(session))))

    tokens = [f"test-token-{n}" for n in range(1, server.issued + 1)]
    texts.append(caplog.text)
    texts += [r.getMessage() for r in caplog.records]
    texts += [str(w.message) for w in caught]
    assert "fetched an access token" in caplog.text
    assert "got 401" in caplog.text
    assert "retrying in" in caplog.text
    assert "oauth/token" in caplog.text  # urllib3's DEBUG lines were captured
    assert secrets_in("\n".join(texts), tokens) == []


def test_basic_life_cycle_leaks_nothing(server, caplog):
    """Basic credentials: the password and its base64 form never show."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    server.routes["POST /v1/rpc"] = lambda seen: Reply(401, {"error": "nope"})
    creds = Credentials.from_dict(basic_dict(apiUrl=server.api_url))
    session = ClarifySession(creds)

    with pytest.raises(requests.HTTPError) as info:
        session.rpc("a")

    text = "\n".join(
        [caplog.text, describe(info.value), repr(session), repr(session.auth), repr(creds)]
    )
    assert (
        server.requests_to("POST", "/v1/rpc")[0].headers["Authorization"] == "Basic " + BASIC_HEADER
    )
    assert secrets_in(text, []) == []


@pytest.mark.parametrize(
    "data",
    [
        oauth_dict(integration=SECRET.encode().hex() and 5),
        {
            "integration": "x",
            "credentials": {"type": SECRET, "clientId": "c", "clientSecret": SECRET},
        },
        {
            "integration": "x",
            "credentials": {"type": "basic-auth", "clientId": "", "clientSecret": SECRET},
        },
        {"integration": "x", "credentials": SECRET},
        {
            "apiUrl": f"https://user:{SECRET}@api.example.com/",
            **{k: v for k, v in oauth_dict().items() if k != "apiUrl"},
        },
        {"apiUrl": SECRET, **{k: v for k, v in oauth_dict().items() if k != "apiUrl"}},
    ],
    ids=[
        "bad-integration",
        "secret-as-type",
        "empty-id",
        "credentials-is-secret",
        "url-userinfo",
        "url-is-secret",
    ],
)
def test_credentials_errors_leak_nothing(data, tmp_path):
    """Whatever is wrong with a file, its error (and pydantic's own) never quotes a secret."""
    path = tmp_path / "c.json"
    path.write_text(json.dumps(data))

    with pytest.raises(clarify_auth.CredentialsError) as ours:
        Credentials.from_file(path)
    with pytest.raises(Exception) as pydantics:
        Credentials.model_validate(data)

    assert secrets_in(describe(ours.value) + describe(pydantics.value), []) == []


def test_model_dump_and_json_mask_secrets(oauth_creds, basic_creds):
    """Serialising credentials or tokens masks the secret."""
    token = clarify_auth.AccessToken(access_token="test-token-1", expires_in=60)

    text = (
        oauth_creds.model_dump_json()
        + str(basic_creds.model_dump())
        + token.model_dump_json()
        + repr(token)
    )

    assert secrets_in(text, ["test-token-1"]) == []


def test_authenticator_reprs_hide_secrets():
    """No authenticator shows its secret or cached header."""
    oauth = OAuthClientCredentials(
        "test-client", SECRET, token_url="https://x.example/t", audience="a"
    )
    basic = BasicAuth("test-integration", BASIC_PASSWORD)

    assert secrets_in(repr(oauth) + str(oauth) + repr(basic) + str(basic), []) == []


def test_token_errors_from_network_failures_keep_their_cause_without_secrets(server):
    """A dropped connection's TokenError chains the requests error; neither mentions the secret."""
    server.token_replies += [Reply(drop=True), Reply(drop=True)]
    auth = OAuthClientCredentials.from_credentials(server.credentials(), attempts=2)

    with pytest.raises(TokenError) as info:
        auth.token()

    assert isinstance(info.value.__cause__, requests.ConnectionError)
    assert info.value.status_code is None
    assert secrets_in(describe(info.value), []) == []


# -- attacks an adversarial review found, beside the behaviour they attack --


def test_secret_echoed_as_token_type_is_masked():
    """A token endpoint that echoes the secret as token_type does not get it into the TokenError."""
    auth = make_oauth(token_cache=False, attempts=1)
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, "https://api.clarify.io/v1/oauth/token",
                 json=token_body(token_type=SECRET))  # fmt: skip
        with pytest.raises(TokenError) as caught:
            auth.token()

    assert SECRET[:12] not in str(caught.value)
