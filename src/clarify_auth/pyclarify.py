"""Clarify's official SDK, pyclarify, on clarify-auth's tokens and session (extra ``pyclarify``).

``pip install 'clarify-auth[pyclarify]'``. :class:`Client` is a
``pyclarify.Client``: ``select_items``, ``data_frame``, ``insert`` and every
other method work and answer as pyclarify's own do. Two things change under
them:

- **Tokens** come from clarify-auth, shared with every session and client of
  the process (and with the file cache), refreshed ahead of expiry: ten
  clients cost one token request, and so do 32 threads starting cold.
- **Requests** go through a :class:`~clarify_auth.ClarifySession` instead of
  the module-level ``requests.post``: pooled connections, timeouts, one
  refresh-and-retry after a 401, credentials only to the API's origin, and
  the session's proxies and CA bundle (``client.session``).

No token is kept in the client's ``headers`` and no secret anywhere in it:
the session signs each request as it leaves.

Example:
    >>> from clarify_auth.pyclarify import Client
    >>> client = Client("clarify-credentials.json")  # doctest: +SKIP
    >>> client.select_items(limit=10).result.data  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

try:
    with warnings.catch_warnings():
        # pyclarify declares its models with APIs that pydantic deprecates; the
        # warnings are pyclarify's to fix and would fail a -W error run at import.
        warnings.simplefilter("ignore", DeprecationWarning)
        import pyclarify  # type: ignore[import-untyped]  # pyclarify ships no type information
except ImportError:  # pragma: no cover - tested in a subprocess without pyclarify
    msg = (
        "clarify_auth.pyclarify needs the 'pyclarify' extra: pip install 'clarify-auth[pyclarify]'"
    )
    raise ImportError(msg, name="pyclarify") from None

from clarify_auth.transports.requests.session import ClarifySession
from clarify_auth.transports.requests.token_requests import USER_AGENT

if TYPE_CHECKING:
    import os
    from collections.abc import Mapping

    import requests
    from typing_extensions import Self

    from clarify_auth.credentials.model import Credentials
    from clarify_auth.transports.requests.authenticators import Authenticator

__all__ = ["Client"]


class _Authentication:
    """What pyclarify reads from ``client.authentication``, backed by the session's authenticator.

    It holds no secret and no token of its own: ``get_token`` asks the
    authenticator, which keeps both as ``SecretStr``.
    """

    __slots__ = ("_authenticator", "api_url", "integration_id")

    def __init__(self, session: ClarifySession) -> None:
        self.integration_id = session.integration
        self.api_url = session.api_url
        self._authenticator: Authenticator = session.authenticator

    def get_token(self) -> str | None:
        """Return the current access token, fetching one only when needed.

        pyclarify's methods call this before each request; the value is not
        sent from here (the session signs the request). ``None`` for
        ``basic-auth`` credentials, which have no token.

        Raises:
            TokenError: No token could be obtained.
        """
        scheme, _, value = self._authenticator.authorization().partition(" ")
        return value if scheme == "Bearer" else None

    def refresh_token(self) -> str | None:
        """Drop the current token (for every client of the process) and return a new one."""
        self._authenticator.invalidate()
        return self.get_token()

    def __repr__(self) -> str:
        """Show the integration and API URL, never a secret or token."""
        return f"Authentication(integration_id={self.integration_id!r}, api_url={self.api_url!r})"


class Client(pyclarify.Client):  # type: ignore[misc]  # pyclarify.Client is untyped (Any)
    """A ``pyclarify.Client`` whose tokens and requests are clarify-auth's.

    Every pyclarify method works as with pyclarify's own client and returns
    its response models. Calls are sent through ``client.session``, a
    :class:`~clarify_auth.ClarifySession`: set its ``proxies``, ``verify`` or
    ``cert`` and token requests follow them too.

    Args:
        credentials: What :class:`~clarify_auth.ClarifySession` takes:
            :class:`~clarify_auth.Credentials`, a path to a credentials file,
            or ``None`` to find one (``$CLARIFY_CREDENTIALS``,
            ``$CLARIFY_CREDENTIALS_JSON``, then ``./clarify-credentials.json``).
        api_version: The Clarify API version, sent as ``X-API-Version`` and
            used by pyclarify to shape its requests. ``None`` means pyclarify's
            own default (``pyclarify.__API_version__``, ``"1.1"`` in 0.7).
        session_options: Passed to :class:`~clarify_auth.ClarifySession`
            (``timeout``, ``token_cache``, ``authenticator``, ``attempts``, ...).

    Example:
        >>> with Client("clarify-credentials.json", api_version="1.1") as client:  # doctest: +SKIP
        ...     response = client.select_items(limit=10)
    """

    def __init__(
        self,
        credentials: Credentials | str | os.PathLike[str] | None = None,
        *,
        api_version: str | None = None,
        **session_options: Any,
    ) -> None:
        """Load the credentials, build the session, then set up pyclarify's client on it."""
        version = pyclarify.__API_version__ if api_version is None else api_version
        session = ClarifySession(credentials, api_version=version, **session_options)
        self.session = session
        # pyclarify passes the session on to authenticate(), which reads it.
        super().__init__(session, api_version=version)
        self.headers["User-Agent"] = f"{self.headers['User-Agent']} {USER_AGENT}"

    def authenticate(self, clarify_credentials: ClarifySession) -> None:
        """Point ``authentication`` at the session (pyclarify's ``__init__`` calls this).

        Raises:
            TypeError: Given anything but a session: a ``Client``'s credentials
                are chosen when it is built.
        """
        if not isinstance(clarify_credentials, ClarifySession):
            raise TypeError(
                "clarify_auth.pyclarify.Client takes its credentials when it is built: "
                "Client(credentials)"
            )
        self.authentication = _Authentication(clarify_credentials)

    def update_headers(self, headers: Mapping[str, str]) -> None:
        """Update the headers of every call, except ``Authorization``.

        pyclarify sets ``Authorization`` here before each call; the session
        signs each request instead, so no token is ever kept in ``headers``.
        """
        super().update_headers({k: v for k, v in headers.items() if k.lower() != "authorization"})

    def make_request(self, payload: str) -> requests.Response:
        """POST one JSON-RPC payload through the session (pooled, signed, retried after a 401)."""
        response: requests.Response = self.session.post(
            self.base_url, data=payload, headers=self.headers
        )
        return response

    def close(self) -> None:
        """Close the session's connections (the token stays cached for the process)."""
        self.session.close()

    def __enter__(self) -> Self:
        """Use as ``with Client() as client:``."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close."""
        self.close()

    def __repr__(self) -> str:
        """Show the integration, API URL and version, never a secret or token."""
        return (
            f"{type(self).__name__}(integration={self.authentication.integration_id!r}, "
            f"api_url={self.authentication.api_url!r}, api_version={self.api_version!r})"
        )
