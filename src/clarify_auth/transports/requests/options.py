"""The options an OAuth authenticator takes, as a ``TypedDict`` for ``**options``.

``ClarifySession(creds, attempts=6)`` and
``OAuthClientCredentials.from_credentials(creds, deadline=30)`` pass their
keyword options on to :class:`~clarify_auth.OAuthClientCredentials`; typed
with ``Unpack``, ``mypy --strict`` reports a misspelt or mistyped option in
the caller's code instead of a ``TypeError`` at run time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, TypedDict

if TYPE_CHECKING:
    from collections.abc import Callable

    import requests

    from clarify_auth._config import TimeoutSpec
    from clarify_auth.tokens.stores.protocol import TokenStore

__all__ = ["OAuthOptions", "SessionOptions"]


class SessionOptions(TypedDict, total=False):
    """What ``ClarifySession(..., **options)`` passes on to its OAuth authenticator.

    Every key is an argument of :class:`~clarify_auth.OAuthClientCredentials`
    (see there); ``timeout`` is not among them, since a session's ``timeout``
    is its own, for API calls.
    """

    api_url: str | None
    attempts: int
    deadline: float
    refresh_in_background: bool
    clock: Callable[[], float] | None
    sleep: Callable[[float], None] | None
    token_cache: TokenStore | Literal[False] | None
    shared: bool
    session: requests.Session | None


class OAuthOptions(SessionOptions, total=False):
    """What ``from_credentials(creds, **options)`` passes on: the session's, and ``timeout``."""

    timeout: TimeoutSpec
