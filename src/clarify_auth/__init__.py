"""Authentication for the Clarify industrial-data API.

Load a ``clarify-credentials.json``, get a ``requests`` session that signs every
request, refreshes OAuth tokens ahead of expiry, and never leaks a secret::

    import clarify_auth

    with clarify_auth.ClarifySession() as session:  # finds clarify-credentials.json
        items = session.rpc("clarify.selectItems", {"query": {"limit": 10}})
"""

import logging

from clarify_auth._auth import Authenticator, BasicAuth, OAuthClientCredentials
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
from clarify_auth._session import ClarifySession
from clarify_auth._token import AccessToken
from clarify_auth._version import __version__

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
    "InsecureTransportError",
    "OAuthClientCredentials",
    "RPCError",
    "RPCResponseError",
    "TokenError",
    "__version__",
    "load_credentials",
]

# A library never configures logging; the NullHandler keeps Python's
# last-resort handler from printing our warnings when the app set up none.
logging.getLogger("clarify_auth").addHandler(logging.NullHandler())
