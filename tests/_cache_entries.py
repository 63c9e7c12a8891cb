"""What the file-cache tests share: a key, another user, a token entry, the warnings logged."""

from __future__ import annotations

import logging
import time

from clarify_auth._token import AccessToken, CachedToken

KEY = "a" * 40
OTHER_UID = 65534  # nobody


def entry(name: str = "test-token-good") -> CachedToken:
    """A cached token issued now, valid for an hour."""
    token = AccessToken(access_token=name, expires_in=3600)
    return CachedToken.issued(token, requested_at=time.monotonic())


def warnings_in(caplog: object) -> list[str]:
    """The WARNING messages caplog captured."""
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]  # type: ignore[attr-defined]
