"""Authenticators: the ``requests`` auth handler base class and Basic Auth."""

from __future__ import annotations

import abc
import base64
import importlib
import logging
from typing import TYPE_CHECKING, TypeVar

import requests
import requests.auth
from pydantic import SecretStr
from requests.structures import CaseInsensitiveDict

from clarify_auth._errors import ConfigurationError, CredentialsError
from clarify_auth._urls import Origin, check_transport, normalise_base_url, origin_of, origin_prefix
from clarify_auth.credentials.model import BasicAuthCredentials, ClientCredentials, Credentials
from clarify_auth.tokens.lifecycle import TokenCounters

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from clarify_auth.tokens.token import AccessToken
    from clarify_auth.transports.requests.options import OAuthOptions

__all__ = ["Authenticator", "BasicAuth"]

logger = logging.getLogger("clarify_auth")


# Where the authenticator for each credentials type lives; looked up when
# needed, so this base class imports none of its subclasses' modules.
_AUTHENTICATOR_FOR_TYPE = {
    "basic-auth": ("clarify_auth.transports.requests.authenticators", "BasicAuth"),
    "client-credentials": ("clarify_auth.transports.requests.oauth", "OAuthClientCredentials"),
}


class Authenticator(requests.auth.AuthBase, abc.ABC):
    """Base class of the Clarify authenticators; a ``requests`` auth handler.

    Use one as ``requests.get(url, auth=authenticator)``, as
    ``some_session.auth = authenticator``, or let :class:`ClarifySession` do it.
    It refuses to attach credentials to a plain ``http://`` URL whose host is
    not loopback. One built with ``api_url`` (as :meth:`from_credentials`
    does) signs only requests to that URL's origin (scheme, host and port):
    a request to any other origin goes out with no credentials.

    Example:
        >>> auth = Authenticator.from_credentials(creds)  # doctest: +SKIP
        >>> requests.post(creds.api_url + "rpc", json=..., auth=auth)  # doctest: +SKIP
    """

    # The API's origin when restricted to it, else None (any origin).
    _api_origin: Origin | None = None
    # The last origin that passed the checks, as "scheme://netloc/"; requests
    # to it skip them (it is the same answer every time).
    _trusted_origin = "\0"

    @abc.abstractmethod
    def authorization(self) -> str:
        """Return the full ``Authorization`` header value, fetching a token if needed."""

    def invalidate(self) -> None:
        """Forget any cached token, so the next request fetches a new one."""

    def cached_authorization(self) -> str | None:
        """The ``Authorization`` value if it is at hand with no I/O and no wait, else ``None``.

        Transports on an event loop call this first and run
        :meth:`authorization` on a worker thread only when it says ``None``.
        """
        return None

    def token(self) -> AccessToken:
        """The OAuth access token, fetching one if needed (see :class:`OAuthClientCredentials`).

        Raises:
            ConfigurationError: These are Basic credentials, which have no token;
                :meth:`authorization` gives their header.
        """
        raise ConfigurationError(
            f"{type(self).__name__} has no access token (basic-auth credentials send "
            "their user name and password); authorization() gives the header"
        )

    @property
    def counters(self) -> TokenCounters:
        """What this client's token cost this process so far (no token, no cost, for Basic)."""
        return TokenCounters()

    def refused(self, header: str) -> bool:
        """Tell the authenticator the server answered 401 to ``header``.

        Drops that token if it is still the current one (compare-and-invalidate,
        so concurrent 401s cost one new token) and returns whether a retry with
        a new header makes sense. Basic credentials never change: ``False``.
        """
        del header
        return False

    @classmethod
    def from_credentials(
        cls, credentials: Credentials, **options: Unpack[OAuthOptions]
    ) -> Authenticator:
        """Build the authenticator that ``credentials.credentials.type`` calls for.

        It signs requests to the origin of ``credentials.api_url`` only. Keyword
        options go to the authenticator's constructor (for OAuth, for example
        ``timeout=``).
        """
        if cls is not Authenticator:
            raise NotImplementedError
        if not isinstance(credentials, Credentials):
            raise TypeError(f"expected Credentials, got {type(credentials).__name__}")
        module, name = _AUTHENTICATOR_FOR_TYPE[credentials.credentials.type]
        subclass: type[Authenticator] = getattr(importlib.import_module(module), name)
        return subclass.from_credentials(credentials, **options)

    @property
    def api_url(self) -> str | None:
        """The API whose origin alone gets credentials, or ``None`` for any origin."""
        return self.__dict__.get("_api_url")

    def _restrict_to(self, api_url: str | None) -> None:
        if api_url is None:
            return
        if not isinstance(api_url, str):
            raise ConfigurationError(f"api_url must be a string, got {type(api_url).__name__}")
        try:
            url = normalise_base_url(api_url)
        except ValueError as exc:
            raise ConfigurationError(f"api_url: {exc}") from None
        self._api_url = url
        self._api_origin = origin_of(url)

    def signs(self, url: str) -> bool:
        """Tell whether a request to ``url`` gets this authenticator's credentials.

        Raises:
            InsecureTransportError: ``url`` would get them over plain http to a
                host that is not loopback.
        """
        if url.startswith(self._trusted_origin):
            return True
        if self._api_origin is not None and origin_of(url) != self._api_origin:
            return False
        check_transport(url, what="credentials")
        self._trusted_origin = origin_prefix(url)
        return True

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        """Attach ``Authorization`` to a request about to be sent to the API's origin."""
        if self.signs(r.url or ""):
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

    def __init__(
        self, username: str, password: str | SecretStr, *, api_url: str | None = None
    ) -> None:
        """Build the header for ``username`` and ``password``.

        Args:
            username: The user name (Clarify's integration ID).
            password: The password (``clientSecret``).
            api_url: Sign only requests to this URL's origin; ``None``, any origin.
        """
        if not isinstance(username, str) or not username:
            raise CredentialsError("BasicAuth: username must be a non-empty string")
        if ":" in username:
            # RFC 7617: the server would split at the first ':' and read another user.
            raise CredentialsError("BasicAuth: username must not contain ':' (RFC 7617)")
        secret = _secret(password, "password")
        if not secret.get_secret_value():
            raise CredentialsError("BasicAuth: password must not be empty")
        self.username = username
        self._password = secret
        pair = f"{username}:{secret.get_secret_value()}".encode()
        self._header = "Basic " + base64.b64encode(pair).decode("ascii")
        self._restrict_to(api_url)

    @classmethod
    def from_credentials(
        cls, credentials: Credentials, **options: Unpack[OAuthOptions]
    ) -> BasicAuth:
        """Build from ``basic-auth`` credentials (``clientId`` / ``clientSecret``)."""
        # Basic Auth has no token to share: a store or private token means nothing here.
        options.pop("token_cache", None)
        options.pop("shared", None)
        if options:
            raise TypeError(f"BasicAuth takes no options, got {', '.join(sorted(options))}")
        inner = inner_credentials(credentials, BasicAuthCredentials, "BasicAuth")
        return cls(inner.client_id, inner.client_secret, api_url=credentials.api_url)

    def authorization(self) -> str:
        """Return ``"Basic " + base64(username:password)``."""
        return self._header

    def cached_authorization(self) -> str:
        """Return the header, always at hand."""
        return self._header

    def __repr__(self) -> str:
        """Show the user name only."""
        return f"{type(self).__name__}(username={self.username!r})"

    def __eq__(self, other: object) -> bool:
        """Equal when both send the same header (requests compares auth handlers)."""
        return (
            isinstance(other, BasicAuth)
            and other._header == self._header
            and other._api_origin == self._api_origin
        )

    def __hash__(self) -> int:
        """Hash by user name only."""
        return hash((BasicAuth, self.username))


_T = TypeVar("_T", ClientCredentials, BasicAuthCredentials)
# What each kind of inner credentials is called in the file, and who takes the other kind.
_KINDS = {
    ClientCredentials: ("client-credentials", "OAuthClientCredentials"),
    BasicAuthCredentials: ("basic-auth", "BasicAuth"),
}


def inner_credentials(credentials: Credentials, kind: type[_T], taker: str) -> _T:
    """``credentials.credentials`` if it is of ``kind``; else raise naming the type and the way out.

    Raises:
        CredentialsError: The file holds the other type of credentials.
    """
    inner = credentials.credentials
    if not isinstance(inner, kind):
        wanted, _ = _KINDS[kind]
        found, other = _KINDS[type(inner)]
        raise CredentialsError(
            f"credentials.type: is {found!r}; {taker} needs {wanted!r} credentials "
            f"(use {other} or Authenticator.from_credentials)"
        )
    return inner


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
    if isinstance(value, SecretStr):
        text = value.get_secret_value()
    elif isinstance(value, str):
        text = value
    else:
        raise CredentialsError(f"{name} must be a string or SecretStr, got {type(value).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise CredentialsError(f"{name} must be valid Unicode text") from None
    return SecretStr(text)
