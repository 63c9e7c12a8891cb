"""One token fetch in progress, whose outcome every waiting thread and task shares."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from clarify_auth._errors import TokenError

if TYPE_CHECKING:
    from clarify_auth.tokens.token import CachedToken

__all__ = ["Flight", "LeaderGoneError"]


class LeaderGoneError(TokenError):
    """The caller leading a fetch was interrupted: its waiters claim again."""


class Flight:
    """One token fetch in progress, whose outcome every waiting thread and task shares."""

    __slots__ = ("_done", "entry", "error")

    def __init__(self) -> None:
        """Start unsettled."""
        self._done = threading.Event()
        self.entry: CachedToken | None = None
        self.error: BaseException | None = None

    def succeed(self, entry: CachedToken) -> None:
        """Settle with a token."""
        self.entry = entry
        self._done.set()

    def fail(self, error: BaseException) -> None:
        """Settle with an error, raised to every waiter."""
        self.error = error
        self._done.set()

    def done(self) -> bool:
        """Whether the flight is settled (no wait)."""
        return self._done.is_set()

    def result(self, timeout: float) -> CachedToken:
        """The token, waiting up to ``timeout`` seconds; raises the flight's error."""
        if not self._done.wait(timeout):
            raise TokenError(
                f"gave up after waiting {timeout:g} s for another thread's token request",
                retryable=True,
            )
        if self.error is not None:
            raise self.error
        assert self.entry is not None  # noqa: S101 - set before _done
        return self.entry
