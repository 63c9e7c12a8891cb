"""Access tokens: the model, parsing the token endpoint's answer, and expiry policy."""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from clarify_auth._errors import TokenError

__all__ = ["AccessToken", "CachedToken", "expiry_after", "parse_token_response"]

logger = logging.getLogger("clarify_auth")

# Used when a success body carries no expires_in at all (RFC 6749 only
# RECOMMENDS it): short enough that a wrong guess heals itself soon.
_DEFAULT_EXPIRES_IN_S = 300.0
# However long the server says a token lives, it is refreshed at least daily,
# so a bogus lifetime ("1e300") can never mean "used forever".
_MAX_CACHE_LIFETIME_S = 86_400.0
# Refresh early by a share of the lifetime, capped: a 24 h token is renewed
# 5 min before it expires, a 2 min token 30 s before, a 2 s token 0.5 s before.
_EARLY_REFRESH_SHARE = 0.25
_MAX_EARLY_REFRESH_S = 300.0
# Stop using a token slightly before the server would reject it (clock skew,
# the request's own flight time): 5 % of the lifetime, at most 30 s.
_EXPIRY_MARGIN_SHARE = 0.05
_MAX_EXPIRY_MARGIN_S = 30.0
# RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
# Anything else (CR/LF above all) could smuggle a header into a request.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# expires_at of a token claiming to live for ever stops here (datetime ends in 9999).
_MAX_SHOWN_LIFETIME_S = 100 * 365 * 86_400.0


def _reject_bool(value: object) -> object:
    # JSON true/false would otherwise pass as 1.0/0.0 seconds.
    if isinstance(value, bool):
        msg = "must be a number"
        raise ValueError(msg)  # noqa: TRY004 - pydantic wants ValueError
    return value


class AccessToken(BaseModel):
    """An OAuth 2.0 access token as the token endpoint returned it, and when it expires.

    ``access_token`` is a ``SecretStr``: ``repr`` and ``str`` show asterisks.
    ``expires_at`` is an aware UTC ``datetime``: when the token endpoint says
    the token dies (counted from when its request left). Built without one, it
    is now plus ``expires_in``.

    Example:
        >>> token = AccessToken(access_token="test-token-1", token_type="Bearer",
        ...                     expires_in=86400)
        >>> token.access_token
        SecretStr('**********')
        >>> token.expires_at.tzinfo
        datetime.timezone.utc
    """

    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)

    access_token: Annotated[SecretStr, Field(min_length=1)]
    token_type: str = "Bearer"  # noqa: S105 - a token type, not a password
    scope: str | None = None
    expires_in: Annotated[
        float, BeforeValidator(_reject_bool), Field(gt=0, allow_inf_nan=False)
    ] = _DEFAULT_EXPIRES_IN_S
    # Filled in by _default_expiry when not given; typed as the contract promises.
    expires_at: AwareDatetime = None  # type: ignore[assignment]

    @field_validator("access_token")
    @classmethod
    def _b64token(cls, value: SecretStr) -> SecretStr:
        if not _B64TOKEN.fullmatch(value.get_secret_value()):
            msg = "must be an RFC 6750 b64token (letters, digits, -._~+/ then any =)"
            raise ValueError(msg)
        return value

    @field_validator("expires_at")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else value.astimezone(timezone.utc)

    @model_validator(mode="after")
    def _default_expiry(self) -> AccessToken:
        if self.expires_at is None:
            object.__setattr__(self, "expires_at", expiry_after(self.expires_in))
        return self

    @property
    def scopes(self) -> tuple[str, ...]:
        """The scopes, split on commas or spaces (Clarify separates them by commas)."""
        if not self.scope:
            return ()
        return tuple(part for part in self.scope.replace(",", " ").split() if part)


def expiry_after(seconds: float, *, start: float | None = None) -> datetime:
    """The aware UTC time ``seconds`` after ``start`` (a ``time.time()`` reading, default now)."""
    begin = datetime.now(timezone.utc) if start is None else _utc(start)
    return begin + timedelta(seconds=min(seconds, _MAX_SHOWN_LIFETIME_S))


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, timezone.utc)


@dataclass(frozen=True, slots=True)
class CachedToken:
    """A token with its header value and deadlines on the monotonic clock."""

    token: AccessToken
    header: str
    refresh_at: float
    expires_at: float
    # requests' CaseInsensitiveDict stores (original key, value); built once per token.
    header_item: tuple[str, str]

    @classmethod
    def issued(cls, token: AccessToken, *, requested_at: float) -> CachedToken:
        """Compute the deadlines for a token whose request left at ``requested_at``.

        The lifetime counts from when the request was sent, not when the answer
        arrived, so the time on the wire only ever shortens it.
        """
        lifetime = min(token.expires_in, _MAX_CACHE_LIFETIME_S)
        margin = min(lifetime * _EXPIRY_MARGIN_SHARE, _MAX_EXPIRY_MARGIN_S)
        early = min(lifetime * _EARLY_REFRESH_SHARE, _MAX_EARLY_REFRESH_S)
        return cls.at(
            token,
            refresh_at=requested_at + lifetime - early,
            expires_at=requested_at + lifetime - margin,
        )

    @classmethod
    def at(cls, token: AccessToken, *, refresh_at: float, expires_at: float) -> CachedToken:
        """Cache ``token`` with the given deadlines, building its header once."""
        header = "Bearer " + token.access_token.get_secret_value()
        return cls(
            token=token,
            header=header,
            refresh_at=refresh_at,
            expires_at=expires_at,
            header_item=("Authorization", header),
        )

    def __repr__(self) -> str:
        """Show the deadlines, never the header."""
        return f"CachedToken(refresh_at={self.refresh_at!r}, expires_at={self.expires_at!r})"


def parse_token_response(data: Any, *, token_url: str, sent_at_wall: float) -> AccessToken:
    """Validate a decoded success body from the token endpoint.

    ``sent_at_wall`` is the ``time.time()`` reading when the request left: the
    token's ``expires_at`` counts from then.

    Raises:
        TokenError: The body is not a usable access token. The message names the
            bad field, never a value.
    """
    if not isinstance(data, dict):
        raise TokenError(f"token endpoint {token_url} answered with JSON that is not an object")
    if "expires_in" not in data:
        logger.warning(
            "token endpoint %s gave no expires_in; assuming the token lives %.0f s",
            token_url,
            _DEFAULT_EXPIRES_IN_S,
        )
    try:
        token = AccessToken.model_validate(
            {
                key: data[key]
                for key in ("access_token", "token_type", "scope", "expires_in")
                if key in data
            }
        )
        token = token.model_copy(
            update={"expires_at": expiry_after(token.expires_in, start=sent_at_wall)}
        )
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors()})
        raise TokenError(
            f"token endpoint {token_url} answered with an unusable token: "
            f"invalid {', '.join(fields)}"
        ) from None
    if token.token_type.lower() != "bearer":
        # The type is not quoted: an endpoint may echo anything there, a secret too.
        raise TokenError(
            f"token endpoint {token_url} issued a token whose token_type is not Bearer; "
            "only Bearer tokens are supported"
        )
    if token.expires_in > _MAX_CACHE_LIFETIME_S:
        logger.info(
            "token endpoint %s says the token lives %.0f s; it will be refreshed after %.0f s",
            token_url,
            token.expires_in if math.isfinite(token.expires_in) else -1,
            _MAX_CACHE_LIFETIME_S,
        )
    return token
