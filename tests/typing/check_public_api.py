"""Type-checked by mypy --strict in CI: the public API reads well to a type checker."""

from __future__ import annotations

import requests

import clarify_auth


def typed_usage(creds: clarify_auth.Credentials) -> None:
    """Exercise the public names with their declared types."""
    secret: str = creds.credentials.client_secret.get_secret_value()
    url: str = creds.token_url
    auth: clarify_auth.Authenticator = clarify_auth.Authenticator.from_credentials(creds)
    header: str = auth.authorization()
    oauth = clarify_auth.OAuthClientCredentials(
        "client", secret, token_url=url, audience=creds.api_url, timeout=(3.0, 10.0)
    )
    token: clarify_auth.AccessToken = oauth.token()
    seconds: float = token.expires_in
    scope: str | None = token.scope
    basic = clarify_auth.BasicAuth("user", "password")
    with clarify_auth.ClarifySession(creds, authenticator=basic, api_version=None) as session:
        response: requests.Response = session.get("items")
        result: object = session.rpc("clarify.selectItems", {"query": {}})
        integration: str = session.integration
    try:
        clarify_auth.load_credentials()
    except clarify_auth.TokenError as exc:
        code: int | None = exc.status_code
        error: str | None = exc.error
        print(code, error)
    except clarify_auth.RPCError as exc:
        rpc_code: int | None = exc.code
        print(rpc_code, exc.message, exc.data)
    print(header, seconds, scope, response, result, integration)
