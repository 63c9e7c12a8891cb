"""The libraries under test, each set up as its documentation suggests, with its defaults.

Every contender exposes the same three operations: warm() fetches a first token,
attach(r) signs a prepared request (the hot path), call() makes one JSON-RPC
call and returns the HTTP status.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import requests
from requests.auth import AuthBase

RPC_BODY = {"jsonrpc": "2.0", "id": 1, "method": "clarify.selectItems", "params": {}}
HEADERS = {"X-API-Version": "1.1"}


class Contender:
    name = "?"
    renews = True  # renews client-credentials tokens by itself

    def __init__(self, credentials: dict[str, Any]) -> None:
        self.api_url = credentials["apiUrl"]
        self.rpc_url = self.api_url + "rpc"
        self.token_url = self.api_url + "oauth/token"
        self.client_id = credentials["credentials"]["clientId"]
        self.client_secret = credentials["credentials"]["clientSecret"]
        folder = Path(tempfile.mkdtemp(prefix="clarify-bench-"))
        self.credentials_path = folder / "clarify-credentials.json"
        self.credentials_path.write_text(json.dumps(credentials))

    def warm(self) -> None:
        self.call()

    def attach(self, r: requests.PreparedRequest) -> None:
        raise NotImplementedError

    def call(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        pass


class ClarifyAuth(Contender):
    name = "clarify-auth"

    def __init__(self, credentials: dict[str, Any]) -> None:
        super().__init__(credentials)
        import clarify_auth

        self.session = clarify_auth.ClarifySession(self.credentials_path)
        self.auth = self.session.authenticator

    def attach(self, r: requests.PreparedRequest) -> None:
        self.auth(r)

    def call(self) -> int:
        return self.session.post("rpc", json=RPC_BODY).status_code

    def close(self) -> None:
        self.session.close()


class PyClarify(Contender):
    """The official SDK: its Client calls Authenticator.get_token() before every request."""

    name = "pyclarify"

    def __init__(self, credentials: dict[str, Any]) -> None:
        super().__init__(credentials)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pyclarify.jsonrpc.oauth2 import Authenticator

        self.authn = Authenticator(str(self.credentials_path))
        self.http = requests.Session()

    def attach(self, r: requests.PreparedRequest) -> None:
        r.headers["Authorization"] = f"Bearer {self.authn.get_token()}"

    def call(self) -> int:
        headers = {**HEADERS, "Authorization": f"Bearer {self.authn.get_token()}"}
        return self.http.post(self.rpc_url, json=RPC_BODY, headers=headers).status_code

    def close(self) -> None:
        self.http.close()


class RequestsOAuth2Client(Contender):
    name = "requests-oauth2client"

    def __init__(self, credentials: dict[str, Any]) -> None:
        super().__init__(credentials)
        from requests_oauth2client import (
            ClientSecretPost,
            OAuth2Client,
            OAuth2ClientCredentialsAuth,
        )

        client = OAuth2Client(
            token_endpoint=self.token_url,
            auth=ClientSecretPost(self.client_id, self.client_secret),
            testing=True,  # its documented switch for a plain-http test server
        )
        self.auth = OAuth2ClientCredentialsAuth(client, audience=self.api_url)
        self.http = requests.Session()
        self.http.auth = self.auth

    def attach(self, r: requests.PreparedRequest) -> None:
        self.auth(r)

    def call(self) -> int:
        return self.http.post(self.rpc_url, json=RPC_BODY, headers=HEADERS).status_code

    def close(self) -> None:
        self.http.close()


class Authlib(Contender):
    """authlib's OAuth2Session, which re-fetches client-credentials tokens on expiry.

    Its automatic re-fetch sends no audience, which Clarify requires, and 1.9
    has no hook for the token request; so a small subclass adds it, as a user of
    authlib with Clarify would have to.
    """

    name = "authlib"

    def __init__(self, credentials: dict[str, Any]) -> None:
        super().__init__(credentials)
        os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"  # the fake is plain http on loopback
        from authlib.integrations.requests_client import OAuth2Session

        audience = self.api_url

        class ClarifyOAuth2Session(OAuth2Session):  # type: ignore[misc]
            def fetch_token(self, url: str | None = None, **kwargs: Any) -> Any:
                kwargs.setdefault("audience", audience)
                return super().fetch_token(url, **kwargs)

        self.session = ClarifyOAuth2Session(
            self.client_id,
            self.client_secret,
            token_endpoint=self.token_url,
            grant_type="client_credentials",
            token_endpoint_auth_method="client_secret_post",
        )

    def attach(self, r: requests.PreparedRequest) -> None:
        self.session.token_auth(r)

    def call(self) -> int:
        if self.session.token is None:
            self.session.fetch_token()
        return self.session.post(self.rpc_url, json=RPC_BODY, headers=HEADERS).status_code

    def close(self) -> None:
        self.session.close()


class RequestsOAuthlib(Contender):
    """requests-oauthlib's OAuth2Session with a BackendApplicationClient.

    It does not renew client-credentials tokens (auto-refresh needs a refresh
    token), so it takes part in the hot path and the cold start only.
    """

    name = "requests-oauthlib"
    renews = False

    def __init__(self, credentials: dict[str, Any]) -> None:
        super().__init__(credentials)
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"  # the fake is plain http on loopback
        from oauthlib.oauth2 import BackendApplicationClient
        from requests_oauthlib import OAuth2Session

        self.session = OAuth2Session(client=BackendApplicationClient(client_id=self.client_id))

    def attach(self, r: requests.PreparedRequest) -> None:
        _, r.headers, _ = self.session._client.add_token(
            r.url, http_method=r.method, body=r.body, headers=r.headers
        )

    def call(self) -> int:
        if not self.session.token:
            self.session.fetch_token(
                token_url=self.token_url,
                client_id=self.client_id,
                client_secret=self.client_secret,
                include_client_id=True,
                audience=self.api_url,
            )
        return self.session.post(self.rpc_url, json=RPC_BODY, headers=HEADERS).status_code

    def close(self) -> None:
        self.session.close()


class StaticHeader(AuthBase):
    """The least any auth handler can do: set one header it already has."""

    def __init__(self, value: str) -> None:
        self.value = value

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = self.value
        return r


CONTENDERS: list[type[Contender]] = [
    ClarifyAuth,
    PyClarify,
    RequestsOAuth2Client,
    Authlib,
    RequestsOAuthlib,
]
