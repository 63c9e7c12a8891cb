"""What the Redis store writes: key names that reveal nothing, entries only the secret opens.

Every key is derived from the client secret (HKDF-SHA256), so no key ring is
shared or rotated: a new secret means new key names and new entry keys, and
the old entries expire with their tokens.

- Key names are ``{prefix}:v1:{<tag>}:token`` and ``...:lock``, where the tag
  is an HMAC of the token URL, client ID and audience under a key derived from
  the secret: nothing in clear, and the ``{...}`` hash tag puts an entry and
  its lock in one Redis Cluster slot (one script touches both).
- An entry is ASCII (``decode_responses=True`` clients read it unharmed):
  ``v1.<fingerprint>.<base64url(nonce + AES-256-GCM ciphertext)>``, the key's
  full name as associated data, so an entry altered or copied under another
  key fails to open. The fingerprint (an HMAC of the access token) lets a
  script remove a refused token only if it is still the stored one, without
  Redis ever seeing the token.
- The entry's lifetime is Redis's own TTL, so machines whose clocks disagree
  agree on when the token must be refreshed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from clarify_auth.tokens.stores.protocol import StoredToken
from clarify_auth.tokens.token import AccessToken

if TYPE_CHECKING:
    from clarify_auth.tokens.stores.protocol import StoreKey

__all__ = ["EntryKeys", "UnusableEntryError", "entry_keys", "opened_reply", "text_of"]

_VERSION = "v1"
_NONCE_BYTES = 12
#: Hex digits of the access token's fingerprint.
FINGERPRINT_CHARS = 32
#: The characters an entry starts with: ``v1.<fingerprint>`` (see EntryKeys.marker).
MARKER_CHARS = len(_VERSION) + 1 + FINGERPRINT_CHARS
# Longer than any token's lifetime we keep (a day), with room for rounding.
_MAX_LEAD_S = 2 * 86_400.0
#: How far the machines' clocks may disagree before an entry whose token
#: expired is refused (only a replayed entry gets anywhere near it).
CLOCK_SKEW_S = 300.0


class UnusableEntryError(Exception):
    """A value under our key that is not an entry we wrote for this secret."""


@dataclass(frozen=True, slots=True)
class EntryKeys:
    """One client's key names and the keys that seal its entries (derived once)."""

    entry: str
    lock: str
    _seal: bytes
    _fingerprint: bytes

    def fingerprint(self, access_token: str) -> str:
        """The access token's fingerprint: useless without the secret."""
        mac = hmac.new(self._fingerprint, access_token.encode(), hashlib.sha256)
        return mac.hexdigest()[:FINGERPRINT_CHARS]

    def marker(self, access_token: str) -> str:
        """How an entry holding ``access_token`` starts: compared by scripts in Redis."""
        return f"{_VERSION}.{self.fingerprint(access_token)}"

    def seal(self, stored: StoredToken) -> tuple[str, int]:
        """The entry's value and its time to live in milliseconds."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415

        token = stored.token
        ttl_ms = max(math.floor(stored.expires_in * 1000), 1)
        access_token = token.access_token.get_secret_value()
        document = {
            "access_token": access_token,
            "token_type": token.token_type,
            "scope": token.scope,
            "expires_in": token.expires_in,
            # Seconds before the entry's end (Redis's TTL) that a refresh is due.
            "lead": max(stored.expires_in - stored.refresh_in, 0.0),
            # The TTL it was written with: Redis's TTL can only shrink from there, so
            # an entry set back with a longer one (a replay) gains nothing, no clock asked.
            "ttl_ms": ttl_ms,
            # When the token dies, as the endpoint said: a replay of a long-dead entry
            # is refused however its TTL was set (with room for clocks that disagree).
            "token_expires_at": token.expires_at.timestamp(),
        }
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(self._seal).encrypt(
            nonce, json.dumps(document).encode(), self.entry.encode()
        )
        body = base64.urlsafe_b64encode(nonce + sealed).decode("ascii")
        value = f"{self.marker(access_token)}.{body}"
        return value, ttl_ms

    def open(self, value: bytes | str, *, ttl_ms: int, now_wall: float) -> StoredToken:
        """The token in ``value``, its deadlines counted from Redis's TTL.

        Raises:
            UnusableEntryError: Not an entry sealed with this secret for this key.
        """
        from cryptography.exceptions import InvalidTag  # noqa: PLC0415
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415

        text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
        version, _, rest = text.partition(".")
        fingerprint, _, body = rest.partition(".")
        if version != _VERSION or len(fingerprint) != FINGERPRINT_CHARS:
            raise UnusableEntryError("it is not an entry this version writes")
        try:
            raw = base64.urlsafe_b64decode(body.encode("ascii"))
            plain = AESGCM(self._seal).decrypt(
                raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], self.entry.encode()
            )
        except (InvalidTag, ValueError, binascii.Error, UnicodeEncodeError):
            raise UnusableEntryError(
                "it does not open with this secret's key (altered, or copied from another key)"
            ) from None
        try:
            document = json.loads(plain)
            lead, saved_ttl_ms = float(document["lead"]), int(document["ttl_ms"])
            token_expires_at = float(document["token_expires_at"])
            if not (0 <= lead <= _MAX_LEAD_S and saved_ttl_ms > 0):
                raise ValueError  # noqa: TRY301 - one message for every bad field
            token = AccessToken.model_validate(
                {
                    **{k: document[k] for k in ("access_token", "token_type", "scope")},
                    "expires_in": document["expires_in"],
                    "expires_at": datetime.fromtimestamp(token_expires_at, timezone.utc),
                }
            )
        except (ValueError, TypeError, KeyError, ValidationError, OverflowError, OSError):
            raise UnusableEntryError("its sealed contents are not a token") from None
        if now_wall > token_expires_at + CLOCK_SKEW_S:
            raise UnusableEntryError("its token expired long ago (an old entry set back)")
        ttl_s = min(ttl_ms, saved_ttl_ms) / 1000
        if fingerprint != self.fingerprint(token.access_token.get_secret_value()):
            raise UnusableEntryError("its fingerprint does not match its token")
        return StoredToken(token, refresh_in=ttl_s - lead, expires_in=ttl_s)


def entry_keys(key: StoreKey, prefix: str) -> EntryKeys:
    """Derive one client's key names and sealing keys from its secret."""
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF  # noqa: PLC0415

    secret = key.secret.get_secret_value().encode()
    client = f"{key.token_url}\n{key.client_id}\n{key.audience}".encode()

    def derive(purpose: bytes) -> bytes:
        hkdf = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=b"clarify-auth redis token store",
            info=b"clarify-auth/" + purpose + b"/v1\n" + client,
        )
        return hkdf.derive(secret)

    tag = hmac.new(derive(b"name"), client, hashlib.sha256).hexdigest()[:32]
    base = f"{prefix}:{_VERSION}:{{{tag}}}"
    return EntryKeys(
        entry=f"{base}:token",
        lock=f"{base}:lock",
        _seal=derive(b"entry"),
        _fingerprint=derive(b"fingerprint"),
    )


def text_of(value: object) -> str:
    """A value Redis sent, as text for a message (bytes decoded, never raising)."""
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


def opened_reply(keys: EntryKeys, reply: Any, *, now_wall: float) -> StoredToken | str | None:
    """The load script's reply: the token, ``None`` for no entry, or why what is there is unusable.

    The script answers ``[1, value, pttl]`` for a string, ``[0]`` for no key,
    ``[-1, type]`` for another type and ``[-2, size]`` for a value too large.
    """
    status = int(reply[0])
    if status == 0:
        return None
    if status == -1:
        return f"it is a Redis {text_of(reply[1])}, not an entry"
    if status == -2:  # noqa: PLR2004 - the script's "too large"
        return f"it holds {text_of(reply[1])} bytes, more than an entry"
    ttl_ms = int(reply[2])
    if ttl_ms < 0:
        return "it never expires, and every entry written here does"
    try:
        return keys.open(reply[1], ttl_ms=ttl_ms, now_wall=now_wall)
    except UnusableEntryError as exc:
        return str(exc)
