"""What bounds a command in time, and what it says while it waits.

``--timeout SECONDS`` becomes a :class:`Budget` that every step of a command
takes its share of (the file cache's lock, the token fetch's deadline, the
API's timeout); a slow token request is reported on stderr by a
:class:`SlowTokenNotice`, without ``-v``.
"""

from __future__ import annotations

import argparse
import math
import threading
import time
from typing import TYPE_CHECKING

from clarify_auth.transports.requests.token_requests import observe_token_attempts

if TYPE_CHECKING:
    from typing import TextIO

    from typing_extensions import Self

__all__ = ["Budget", "SlowTokenNotice", "count", "seconds", "seconds_or_zero"]

# A slow token request is reported once it has taken this long, then again
# every _NOTICE_EVERY_S while it goes on.
_NOTICE_AFTER_S = 2.0
_NOTICE_EVERY_S = 5.0
# How often the notice's thread looks whether a token request has started.
_NOTICE_POLL_S = 0.1
# Never less than this for a step, so that a nearly spent budget still makes
# a real (if short) attempt and fails as a timeout, not as a bad option.
_SMALLEST_S = 0.05


class Budget:
    """The seconds a command may still take (``None``: no ``--timeout``, no bound)."""

    def __init__(self, seconds: float | None) -> None:
        """Start counting now."""
        self.seconds = seconds
        self._ends_at = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float | None:
        """Seconds left (at least a small positive number), or ``None`` when unbounded."""
        if self._ends_at is None:
            return None
        return max(self._ends_at - time.monotonic(), _SMALLEST_S)


class SlowTokenNotice:
    """Says on stderr, after a couple of seconds, that a token request is still going on.

    ``with SlowTokenNotice(sys.stderr):`` around a command: the SDK tells it of
    each token request as it starts (on this thread); a request that is fast
    prints nothing.
    """

    def __init__(self, stream: TextIO) -> None:
        """Print to ``stream``; nothing starts until ``with``."""
        self._stream = stream
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._started_at: float | None = None
        self._attempt = (0, 0)
        self._thread = threading.Thread(target=self._watch, name="clarify-auth-notice", daemon=True)
        self._observing = observe_token_attempts(self._attempt_started)

    def __enter__(self) -> Self:
        """Start watching."""
        self._observing.__enter__()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop watching (the thread ends within a poll)."""
        self._done.set()
        self._thread.join(timeout=1.0)
        self._observing.__exit__(None, None, None)

    def _attempt_started(self, attempt: int, attempts: int) -> None:
        with self._lock:
            if self._started_at is None:
                self._started_at = time.monotonic()
            self._attempt = (attempt, attempts)

    def _watch(self) -> None:
        last_shown: float | None = None
        while True:
            with self._lock:
                started_at, (attempt, attempts) = self._started_at, self._attempt
            now = time.monotonic()
            if started_at is None:
                due = now + _NOTICE_POLL_S
            elif last_shown is None:
                due = started_at + _NOTICE_AFTER_S
            else:
                due = last_shown + _NOTICE_EVERY_S
            if due > now:
                if self._done.wait(min(due - now, _NOTICE_POLL_S)):
                    return
                continue
            assert started_at is not None  # noqa: S101 - due is in the future otherwise
            self._stream.write(
                f"clarify-auth: waiting for the token endpoint: attempt {attempt} of {attempts}, "
                f"{now - started_at:.0f} s so far\n"
            )
            self._stream.flush()
            last_shown = now


def seconds(text: str) -> float:
    """An argparse type: a finite number of seconds above 0."""
    value = seconds_or_zero(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"not a number of seconds > 0: {text!r}")
    return value


def seconds_or_zero(text: str) -> float:
    """An argparse type: a finite number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"not a number of seconds >= 0: {text!r}")
    return value


def count(text: str) -> int:
    """An argparse type: a whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"not a whole number >= 0: {text!r}")
    return value
