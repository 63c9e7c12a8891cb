"""Type-checked by mypy --strict in CI: the options sessions and authenticators pass on."""

from __future__ import annotations

import clarify_auth


def rightly_spelt(creds: clarify_auth.Credentials, cache: clarify_auth.TokenStore) -> None:
    """Every option, spelt and typed right, passes mypy --strict."""
    options: clarify_auth.OAuthOptions = {"attempts": 6, "deadline": 30.0, "timeout": (3.0, 10.0)}
    auth = clarify_auth.OAuthClientCredentials.from_credentials(creds, **options)
    again = clarify_auth.OAuthClientCredentials.from_credentials(
        creds, attempts=6, deadline=30, token_cache=cache, shared=False, timeout=5.0
    )
    any_kind = clarify_auth.Authenticator.from_credentials(creds, token_cache=False)
    with clarify_auth.ClarifySession(
        creds, timeout=(3, 30), attempts=6, deadline=30, token_cache=cache, shared=True
    ) as session:
        token: clarify_auth.AccessToken = session.authenticator.token()
        fetches: int = session.authenticator.counters.fetches
    header: str = auth.authorization() + again.authorization() + any_kind.authorization()
    print(token.expires_at, fetches, header)
