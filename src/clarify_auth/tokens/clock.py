"""The clock that token expiry runs on: monotonic, and counting time spent suspended.

``time.monotonic`` stands still while the machine sleeps (Linux ``CLOCK_MONOTONIC``,
macOS ``mach_absolute_time``), so a laptop that slept past a token's expiry would
wake up believing the token still good and send it. The server's clock did not
stop: expiry must be measured on a clock that did not stop either.

- Linux: ``CLOCK_BOOTTIME``, ``CLOCK_MONOTONIC`` plus the time suspended.
- macOS: ``clock_gettime(CLOCK_MONOTONIC)``, which (unlike ``time.monotonic``)
  keeps counting while the machine sleeps.
- Elsewhere: :class:`WallGuardedClock`, ``time.monotonic`` that never falls behind
  the wall clock's progress (a resume from sleep moves the wall clock forward).
"""

from __future__ import annotations

import sys
import threading
import time
from functools import partial
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["WallGuardedClock", "suspend_aware_clock"]


class WallGuardedClock:
    """Seconds since creation: monotonic time, but never less than wall time elapsed.

    After a suspend the wall clock has moved on while ``time.monotonic`` may not
    have; taking the larger of the two counts the sleep. A wall clock stepped
    forward (NTP) only makes tokens refresh early, which is safe; one stepped
    back is outvoted by the monotonic reading. Readings never go backwards.
    """

    def __init__(
        self,
        monotonic: Callable[[], float] | None = None,
        wall: Callable[[], float] | None = None,
    ) -> None:
        """Start counting from now; ``time.monotonic`` and ``time.time`` unless given."""
        self._monotonic = monotonic or time.monotonic
        self._wall = wall or time.time
        self._monotonic_start = self._monotonic()
        self._wall_start = self._wall()
        self._last = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        """Seconds elapsed, suspended time included."""
        elapsed = max(
            self._monotonic() - self._monotonic_start,
            self._wall() - self._wall_start,
        )
        with self._lock:
            self._last = max(self._last, elapsed)
            return self._last


def suspend_aware_clock(platform: str | None = None) -> Callable[[], float]:
    """Return this system's monotonic clock that counts time suspended.

    Looked up on each call (not at import), so a test that patched
    ``time.clock_gettime`` is obeyed.
    """
    platform = sys.platform if platform is None else platform
    clock_gettime = getattr(time, "clock_gettime", None)
    if clock_gettime is not None:
        if platform.startswith("linux") and hasattr(time, "CLOCK_BOOTTIME"):
            return partial(clock_gettime, time.CLOCK_BOOTTIME)
        if platform == "darwin":
            return partial(clock_gettime, time.CLOCK_MONOTONIC)
    return WallGuardedClock()
