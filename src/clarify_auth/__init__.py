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
    from clarify_auth._errors import (
        ClarifyAuthError,
        ConfigurationError,
        CredentialsError,
        InsecureTransportError,
        RPCError,
        RPCResponseError,
        TokenError,
    )
    from clarify_auth.credentials.model import (
        BasicAuthCredentials,
        ClientCredentials,
        Credentials,
        load_credentials,
    )
    from clarify_auth.tokens.lifecycle import TokenCounters
    from clarify_auth.tokens.stores.file_store import FileTokenCache
    from clarify_auth.tokens.stores.protocol import StoredToken, StoreKey, TokenStore
    from clarify_auth.tokens.stores.redis_store import RedisTokenCache
    from clarify_auth.tokens.token import AccessToken
    from clarify_auth.transports.requests.authenticators import Authenticator, BasicAuth
    from clarify_auth.transports.requests.oauth import OAuthClientCredentials
    from clarify_auth.transports.requests.options import OAuthOptions, SessionOptions
    from clarify_auth.transports.requests.session import ClarifySession

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
    "OAuthOptions",
    "RPCError",
    "RPCResponseError",
    "RedisTokenCache",
    "SessionOptions",
    "StoreKey",
    "StoredToken",
    "TokenCounters",
    "TokenError",
    "TokenStore",
    "__version__",
    "load_credentials",
]

_WHERE = {
    "AccessToken": "tokens.token",
    "Authenticator": "transports.requests.authenticators",
    "BasicAuth": "transports.requests.authenticators",
    "OAuthClientCredentials": "transports.requests.oauth",
    "BasicAuthCredentials": "credentials.model",
    "ClientCredentials": "credentials.model",
    "Credentials": "credentials.model",
    "load_credentials": "credentials.model",
    "ClarifyAuthError": "_errors",
    "ConfigurationError": "_errors",
    "CredentialsError": "_errors",
    "InsecureTransportError": "_errors",
    "RPCError": "_errors",
    "RPCResponseError": "_errors",
    "TokenError": "_errors",
    "ClarifySession": "transports.requests.session",
    "FileTokenCache": "tokens.stores.file_store",
    "RedisTokenCache": "tokens.stores.redis_store",
    "StoreKey": "tokens.stores.protocol",
    "StoredToken": "tokens.stores.protocol",
    "TokenStore": "tokens.stores.protocol",
    "TokenCounters": "tokens.lifecycle",
    "OAuthOptions": "transports.requests.options",
    "SessionOptions": "transports.requests.options",
}


# Public submodules, imported on first use as attributes too (``clarify_auth.httpx``
# after ``import clarify_auth``); one without its extra raises the ImportError
# that names the extra.
_SUBMODULES = frozenset({"httpx", "mqtt", "pyclarify", "testing"})


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
