"""The checks an OAuth authenticator makes of its settings, and the parts built from them.

Nothing is sent: a bad setting raises naming the setting, and good ones become
the :class:`TokenEndpoint` (how token requests go) and the
:class:`ClientTokens` (the client's token in this process).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Literal

import requests

from clarify_auth._config import checked_timeout, is_positive_number
from clarify_auth._errors import ConfigurationError, CredentialsError
from clarify_auth._urls import check_transport, normalise_base_url
from clarify_auth.tokens.client_tokens import ClientTokens
from clarify_auth.tokens.clock import suspend_aware_clock
from clarify_auth.tokens.stores.environment import token_cache_from_environment
from clarify_auth.tokens.stores.protocol import StoreKey, TokenStore
from clarify_auth.transports.requests.authenticators import _secret
from clarify_auth.transports.requests.token_requests import TokenEndpoint

if TYPE_CHECKING:
    from collections.abc import Callable

    from pydantic import SecretStr

    from clarify_auth._config import TimeoutSpec

__all__ = ["checked_parts", "checked_settings"]


def checked_parts(
    client_id: str,
    client_secret: str | SecretStr,
    *,
    token_url: str,
    audience: str,
    timeout: TimeoutSpec,
    attempts: int,
    deadline: float,
    clock: Callable[[], float] | None,
    sleep: Callable[[float], None] | None,
    token_cache: TokenStore | Literal[False] | None,
    shared: bool,
    background: bool,
    session: requests.Session | None,
) -> tuple[TokenEndpoint, ClientTokens]:
    """The token endpoint and the client's tokens, from checked settings.

    Raises:
        CredentialsError: The client ID or secret is unusable.
        ConfigurationError: Any other setting is.
    """
    secret, token_url, store = checked_settings(
        client_id, client_secret, token_url, audience, attempts, deadline, session, token_cache
    )
    endpoint = TokenEndpoint(
        token_url=token_url,
        client_id=client_id,
        client_secret=secret,
        audience=audience,
        timeout=checked_timeout(timeout, what="OAuthClientCredentials: timeout"),
        attempts=attempts,
        deadline=float(deadline),
        clock=clock or suspend_aware_clock(),
        sleep=sleep or time.sleep,
    )
    tokens = ClientTokens(
        StoreKey(token_url, client_id, audience, secret),
        clock=clock,
        store=store or None,
        shared=bool(shared),
        deadline=float(deadline),
        background=background,
    )
    return endpoint, tokens


def checked_settings(
    client_id: object,
    client_secret: str | SecretStr,
    token_url: object,
    audience: object,
    attempts: object,
    deadline: object,
    session: object,
    token_cache: TokenStore | Literal[False] | None,
) -> tuple[SecretStr, str, TokenStore | Literal[False] | None]:
    """The secret, the token URL and the store, checked; raise naming what is wrong.

    Raises:
        CredentialsError: The client ID or secret is unusable.
        ConfigurationError: Any other setting is.
    """
    if not isinstance(client_id, str) or not client_id.strip():
        raise CredentialsError("OAuthClientCredentials: client_id must be a non-empty string")
    secret = _secret(client_secret, "client_secret")
    if not secret.get_secret_value():
        raise CredentialsError("OAuthClientCredentials: client_secret must not be empty")
    token_url = _checked_url(token_url, "token_url").rstrip("/")
    check_transport(token_url, what="the client secret")
    if not isinstance(audience, str) or not audience:
        raise ConfigurationError("OAuthClientCredentials: audience must be a non-empty string")
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ConfigurationError("OAuthClientCredentials: attempts must be an int >= 1")
    if not is_positive_number(deadline):
        raise ConfigurationError("OAuthClientCredentials: deadline must be a positive number")
    if session is not None and not isinstance(session, requests.Session):
        raise ConfigurationError(
            "OAuthClientCredentials: session must be a requests.Session, "
            f"got {type(session).__name__}"
        )
    if token_cache is None:
        token_cache = token_cache_from_environment()
    elif token_cache is not False and not isinstance(token_cache, TokenStore):
        raise ConfigurationError(
            "OAuthClientCredentials: token_cache must be a clarify_auth.TokenStore "
            "(FileTokenCache, RedisTokenCache or your own), None or False; "
            f"got {type(token_cache).__name__}"
        )
    return secret, token_url, token_cache


def _checked_url(url: object, name: str) -> str:
    if not isinstance(url, str):
        raise ConfigurationError(f"{name} must be a string, got {type(url).__name__}")
    try:
        return normalise_base_url(url)
    except ValueError as exc:
        raise ConfigurationError(f"{name}: {exc}") from None
