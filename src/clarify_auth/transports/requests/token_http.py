"""The ``requests.Session`` that carries one authenticator's token requests.

It is the user's own session when one was given; otherwise a private one,
made at the first token request, that copies a ``ClarifySession``'s proxies,
CA bundle, client certificate and ``trust_env`` at every token request (the
user may set them after building the session). A forked child never shares
the parent's private session: its sockets belong to the parent.
"""

from __future__ import annotations

import os
import weakref
from typing import TYPE_CHECKING, Any

from clarify_auth.transports.requests.token_requests import new_token_http_session

if TYPE_CHECKING:
    from collections.abc import Callable

    import requests

__all__ = ["TokenHTTP"]

# requests copies these from a ClarifySession onto its token requests.
_TRANSPORT_SETTINGS = ("proxies", "verify", "cert", "trust_env")


def _nothing() -> None:
    return None


class TokenHTTP:
    """Where token requests go: the given session, or a private one set up like the user's."""

    def __init__(self, session: requests.Session | None) -> None:
        """Use ``session`` for every token request, or (``None``) a private session."""
        self.given = session
        self._reset()

    def _reset(self) -> None:
        self._private: requests.Session | None = None
        self._settings_from: Callable[[], requests.Session | None] = _nothing
        _LIVE.add(self)

    @property
    def is_open(self) -> bool:
        """Whether a session is ready for token requests (the given one, or an open private one)."""
        return self.given is not None or self._private is not None

    def session(self) -> requests.Session:
        """The session for the next token request, with the followed session's settings."""
        if self.given is not None:
            return self.given
        private = self._private
        if private is None:
            private = self._private = new_token_http_session()
        source = self._settings_from()
        if source is not None:
            for name in _TRANSPORT_SETTINGS:
                setattr(private, name, getattr(source, name))
        return private

    def follow(self, session: requests.Session) -> None:
        """Send token requests with ``session``'s proxies, verify, cert and trust_env.

        Ignored when a session was given: that one is used as it is. Only a weak
        reference is kept, so the followed session can be collected.
        """
        if self.given is None:
            self._settings_from = weakref.ref(session)

    def close(self) -> None:
        """Close the private session's connections; the next token request opens new ones."""
        private, self._private = self._private, None
        if private is not None:
            private.close()

    def __getstate__(self) -> dict[str, Any]:
        """Carry the given session only: connections and weak references do not pickle."""
        return {"given": self.given}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Start with no private session and no followed one."""
        self.given = state["given"]
        self._reset()


# Every live TokenHTTP, so that a forked child opens token connections of its
# own instead of sharing the parent's sockets.
_LIVE: weakref.WeakSet[TokenHTTP] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for token_http in list(_LIVE):
        token_http._private = None  # noqa: SLF001 - our own class


if hasattr(os, "register_at_fork"):  # pragma: no branch - absent on Windows only
    os.register_at_fork(after_in_child=_after_fork_in_child)
