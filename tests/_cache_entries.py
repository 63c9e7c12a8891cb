"""What the file-cache tests share: a key, another user, a token entry, the warnings logged."""

from __future__ import annotations

import logging

from pydantic import SecretStr

from clarify_auth.tokens.stores.protocol import StoredToken, StoreKey
from clarify_auth.tokens.token import AccessToken

KEY = StoreKey(
    "https://api.clarify.io/v1/oauth/token",
    "test-client-a",
    "https://api.clarify.io/v1/",
    SecretStr("test-secret-cache-a"),
)
OTHER_KEY = StoreKey(
    "https://api.clarify.io/v1/oauth/token",
    "test-client-b",
    "https://api.clarify.io/v1/",
    SecretStr("test-secret-cache-b"),
)
#: The file name (without .json or .lock) of KEY's entry.
NAME = KEY.digest[:40]
OTHER_UID = 65534  # nobody


def entry(name: str = "test-token-good") -> StoredToken:
    """A stored token issued now, valid for an hour (refresh due in 45 minutes)."""
    token = AccessToken(access_token=name, expires_in=3600)
    return StoredToken(token, refresh_in=2700.0, expires_in=3570.0)


def warnings_in(caplog: object) -> list[str]:
    """The WARNING messages caplog captured."""
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]  # type: ignore[attr-defined]
