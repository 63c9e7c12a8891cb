"""Authenticators: the ``requests`` auth handler base class and Basic Auth."""

from __future__ import annotations

import abc
import base64
import logging
from typing import Any

import requests
import requests.auth
from pydantic import SecretStr
from requests.structures import CaseInsensitiveDict

from clarify_auth._credentials import BasicAuthCredentials, Credentials
from clarify_auth._errors import CredentialsError
from clarify_auth._urls import check_transport, origin_prefix

__all__ = ["Authenticator", "BasicAuth"]

logger = logging.getLogger("clarify_auth")


class Authenticator(requests.auth.AuthBase, abc.ABC):
    """Base class of the Clarify authenticators; a ``requests`` auth handler.

    Use one as ``requests.get(url, auth=authenticator)``, as
    ``some_session.auth = authenticator``, or let :class:`ClarifySession` do it.
    It refuses to attach credentials to a plain ``http://`` URL whose host is
    not loopback.

    Example:
        >>> auth = Authenticator.from_credentials(creds)  # doctest: +SKIP
        >>> requests.post(creds.api_url + "rpc", json=..., auth=auth)  # doctest: +SKIP
    """

    @abc.abstractmethod
    def authorization(self) -> str:
        """Return the full ``Authorization`` header value, fetching a token if needed."""

    def invalidate(self) -> None:
        """Forget any cached token, so the next request fetches a new one."""

    @classmethod
    def from_credentials(cls, credentials: Credentials, **options: Any) -> Authenticator:
        """Build the authenticator that ``credentials.credentials.type`` calls for.

        Keyword options go to the authenticator's constructor (for OAuth, for
        example ``timeout=``).
        """
        if cls is not Authenticator:
            raise NotImplementedError
        if not isinstance(credentials, Credentials):
            raise TypeError(f"expected Credentials, got {type(credentials).__name__}")
        if isinstance(credentials.credentials, BasicAuthCredentials):
            return BasicAuth.from_credentials(credentials, **options)
        from clarify_auth._oauth import OAuthClientCredentials  # noqa: PLC0415 - it subclasses us

        return OAuthClientCredentials.from_credentials(credentials, **options)

    # The last origin that passed check_transport, as "scheme://host:port/";
    # requests to it skip the check (it is the same answer every time).
    _trusted_origin = "\0"

    def _check_origin(self, url: str) -> None:
        if not url.startswith(self._trusted_origin):
            check_transport(url, what="credentials")
            self._trusted_origin = origin_prefix(url)

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        """Attach ``Authorization`` to a request about to be sent."""
        self._check_origin(r.url or "")
        _set_authorization(r, self.authorization())
        return r


class BasicAuth(Authenticator):
    """HTTP Basic Auth with a Clarify integration's ``basic-auth`` credentials.

    The header is built once, from UTF-8 ``username:password``.

    Example:
        >>> auth = BasicAuth("test-integration", "test-secret-basic")
        >>> auth
        BasicAuth(username='test-integration')
    """

    def __init__(self, username: str, password: str | SecretStr) -> None:
        """Build the header for ``username`` and ``password``."""
        if not isinstance(username, str) or not username:
            raise CredentialsError("BasicAuth: username must be a non-empty string")
        secret = password if isinstance(password, SecretStr) else _secret(password, "password")
        if not secret.get_secret_value():
            raise CredentialsError("BasicAuth: password must not be empty")
        self.username = username
        self._password = secret
        pair = f"{username}:{secret.get_secret_value()}".encode()
        self._header = "Basic " + base64.b64encode(pair).decode("ascii")

    @classmethod
    def from_credentials(cls, credentials: Credentials, **options: Any) -> BasicAuth:
        """Build from ``basic-auth`` credentials (``clientId`` / ``clientSecret``)."""
        options.pop("token_cache", None)  # Basic Auth has no token to share
        if options:
            raise TypeError(f"BasicAuth takes no options, got {', '.join(sorted(options))}")
        inner = credentials.credentials
        if not isinstance(inner, BasicAuthCredentials):
            raise CredentialsError(
                "credentials.type: is 'client-credentials'; BasicAuth needs 'basic-auth' "
                "credentials (use OAuthClientCredentials or Authenticator.from_credentials)"
            )
        return cls(inner.client_id, inner.client_secret)

    def authorization(self) -> str:
        """Return ``"Basic " + base64(username:password)``."""
        return self._header

    def __repr__(self) -> str:
        """Show the user name only."""
        return f"{type(self).__name__}(username={self.username!r})"

    def __eq__(self, other: object) -> bool:
        """Equal when both send the same header (requests compares auth handlers)."""
        return isinstance(other, BasicAuth) and other._header == self._header

    def __hash__(self) -> int:
        """Hash by user name only."""
        return hash((BasicAuth, self.username))


def _set_authorization(r: requests.PreparedRequest, value: str) -> None:
    """Set the header as CaseInsensitiveDict.__setitem__ does, minus two calls.

    This is the per-request hot path; the exact type check keeps any other
    mapping (a subclass, a user's replacement) on the ordinary, public route.
    """
    headers = r.headers
    if type(headers) is CaseInsensitiveDict:
        headers._store["authorization"] = ("Authorization", value)  # type: ignore[attr-defined]  # noqa: SLF001
    else:
        headers["Authorization"] = value


def _secret(value: object, name: str) -> SecretStr:
    if not isinstance(value, str):
        raise CredentialsError(f"{name} must be a string or SecretStr, got {type(value).__name__}")
    return SecretStr(value)
