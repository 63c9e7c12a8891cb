"""Authentication for the Clarify industrial-data API.

Load a ``clarify-credentials.json``, get a ``requests`` session that signs every
request, refreshes OAuth tokens ahead of expiry, and never leaks a secret::

    import clarify_auth

    with clarify_auth.ClarifySession() as session:  # finds clarify-credentials.json
        items = session.rpc("clarify.selectItems", {"query": {"limit": 10}})

The public names load on first use (PEP 562): ``import clarify_auth`` alone costs
next to nothing, which matters because pytest imports it through the plugin
entry point in every test session of every project that installed it.
"""

import importlib
import logging
import typing

from clarify_auth._version import __version__

if typing.TYPE_CHECKING:
    from clarify_auth._auth import Authenticator, BasicAuth
    from clarify_auth._cache import FileTokenCache
    from clarify_auth._credentials import (
        BasicAuthCredentials,
        ClientCredentials,
        Credentials,
        load_credentials,
    )
    from clarify_auth._errors import (
        ClarifyAuthError,
        ConfigurationError,
        CredentialsError,
        InsecureTransportError,
        RPCError,
        RPCResponseError,
        TokenError,
    )
    from clarify_auth._lifecycle import TokenCounters
    from clarify_auth._oauth import OAuthClientCredentials
    from clarify_auth._redis_cache import RedisTokenCache
    from clarify_auth._session import ClarifySession
    from clarify_auth._store import StoredToken, StoreKey, TokenStore
    from clarify_auth._token import AccessToken

__all__ = [
    "AccessToken",
    "Authenticator",
    "BasicAuth",
    "BasicAuthCredentials",
    "ClarifyAuthError",
    "ClarifySession",
    "ClientCredentials",
    "ConfigurationError",
    "Credentials",
    "CredentialsError",
    "FileTokenCache",
    "InsecureTransportError",
    "OAuthClientCredentials",
    "RPCError",
    "RPCResponseError",
    "RedisTokenCache",
    "StoreKey",
    "StoredToken",
    "TokenCounters",
    "TokenError",
    "TokenStore",
    "__version__",
    "load_credentials",
]

_WHERE = {
    "AccessToken": "_token",
    "Authenticator": "_auth",
    "BasicAuth": "_auth",
    "OAuthClientCredentials": "_oauth",
    "BasicAuthCredentials": "_credentials",
    "ClientCredentials": "_credentials",
    "Credentials": "_credentials",
    "load_credentials": "_credentials",
    "ClarifyAuthError": "_errors",
    "ConfigurationError": "_errors",
    "CredentialsError": "_errors",
    "InsecureTransportError": "_errors",
    "RPCError": "_errors",
    "RPCResponseError": "_errors",
    "TokenError": "_errors",
    "ClarifySession": "_session",
    "FileTokenCache": "_cache",
    "RedisTokenCache": "_redis_cache",
    "StoreKey": "_store",
    "StoredToken": "_store",
    "TokenStore": "_store",
    "TokenCounters": "_lifecycle",
}


# Public submodules, imported on first use as attributes too (``clarify_auth.httpx``
# after ``import clarify_auth``); one without its extra raises the ImportError
# that names the extra.
_SUBMODULES = frozenset({"httpx", "mqtt", "testing"})


def __getattr__(name: str) -> typing.Any:
    """Load a public name from its module on first use, then keep it here."""
    if name in _SUBMODULES:
        return importlib.import_module(f"clarify_auth.{name}")
    module = _WHERE.get(name)
    if module is None:
        msg = f"module 'clarify_auth' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(f"clarify_auth.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """List the public names, loaded or not."""
    return sorted({*globals(), *__all__})


# A library never configures logging; the NullHandler keeps Python's
# last-resort handler from printing our warnings when the app set up none.
logging.getLogger("clarify_auth").addHandler(logging.NullHandler())
