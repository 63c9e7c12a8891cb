"""Checks for options shared by the authenticators and the session."""

from __future__ import annotations

from clarify_auth._errors import ConfigurationError

__all__ = [
    "TimeoutSpec",
    "checked_timeout",
    "is_positive_number",
]

#: A ``requests`` timeout: seconds, or ``(connect, read)`` seconds.
TimeoutSpec = float | tuple[float, float]


def is_positive_number(value: object) -> bool:
    """Tell whether ``value`` is an int or float above zero (``bool`` excluded)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def checked_timeout(timeout: object, *, what: str) -> TimeoutSpec:
    """Return ``timeout`` as floats, or raise ``ConfigurationError`` naming ``what``."""
    if is_positive_number(timeout):
        return float(timeout)  # type: ignore[arg-type]  # checked just above
    if (
        isinstance(timeout, tuple)
        and len(timeout) == 2  # noqa: PLR2004 - (connect, read)
        and all(is_positive_number(part) for part in timeout)
    ):
        return (float(timeout[0]), float(timeout[1]))
    raise ConfigurationError(
        f"{what} must be a positive number of seconds or a (connect, read) tuple of them"
    )
