"""The client-credentials token exchange without I/O: what to send, what an answer means.

Like h11 or oauthlib's core, this module opens no socket: it builds the token
request (method, URL, headers, form body), interprets an answer (a token; an
RFC 6749 error; a transient failure, with ``Retry-After``; a body over the size
cap; a secret echoed back, masked), and decides whether and when to try again.
Each transport drives it with a thin loop (:mod:`clarify_auth.transports.requests.token_requests`
for ``requests``; the httpx adapter), so the wire format and its edge cases
are tested once, without a server.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, quote_plus, urlencode

from clarify_auth._errors import TokenError
from clarify_auth.tokens.token import AccessToken, parse_token_response

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from pydantic import SecretStr

__all__ = [
    "MAX_BODY_BYTES",
    "Failure",
    "FetchPlan",
    "TokenExchange",
    "TokenRequest",
    "parse_retry_after",
]

logger = logging.getLogger("clarify_auth")

_RETRYABLE_STATUS = frozenset({408, 425, 429})
_BACKOFF_CAP_S = 8.0
_DESCRIPTION_MAX_CHARS = 300
#: A token response is a few hundred bytes; a JWT with many claims a few KiB.
#: 64 KiB leaves room for any real token and error page, and bounds what a
#: hostile or broken endpoint can make us hold (counted after decompression).
MAX_BODY_BYTES = 64 * 1024
_MASK = "**********"


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or HTTP-date), or ``None``."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        # An HTTP-date is wall-clock by definition; nothing else here is.
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """What to send: a transport turns this into its own request object."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def __repr__(self) -> str:
        """Show the URL, never the form (it holds the secret)."""
        return f"TokenRequest({self.method} {self.url})"


@dataclass
class Failure:
    """Why an attempt gave no token, and whether another attempt may."""

    message: str
    status_code: int | None = None
    error: str | None = None
    error_description: str | None = None
    retryable: bool = False
    retry_after: float | None = None
    cause: BaseException | None = None

    def to_error(self, *, attempts: int) -> TokenError:
        """The ``TokenError`` a caller sees, after ``attempts`` attempts."""
        suffix = f" (after {attempts} attempts)" if attempts > 1 else ""
        error = TokenError(
            self.message + suffix,
            status_code=self.status_code,
            error=self.error,
            error_description=self.error_description,
            retryable=self.retryable,
        )
        # Keep the transport's exception (URL and host, never the form) for debugging.
        error.__cause__ = self.cause
        return error


class TokenExchange:
    """The client-credentials grant for one client: requests and answers, no I/O.

    The secret is read from its ``SecretStr`` only to build the form body and
    to mask it in what the endpoint answers.
    """

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: SecretStr,
        audience: str,
        user_agent: str | None = None,
    ) -> None:
        """Keep what every request and answer needs."""
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.audience = audience
        self.user_agent = user_agent

    def request(self) -> TokenRequest:
        """The token request: ``POST`` of the form Clarify asks for."""
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret.get_secret_value(),
            "audience": self.audience,
        }
        headers: tuple[tuple[str, str], ...] = (
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Accept", "application/json"),
            # No compression, so nothing can expand behind the size cap's back.
            ("Accept-Encoding", "identity"),
        )
        if self.user_agent is not None:
            headers += (("User-Agent", self.user_agent),)
        return TokenRequest("POST", self.token_url, headers, urlencode(form).encode("ascii"))

    def answer(  # noqa: PLR0911 - one return per kind of answer reads best
        self, status: int, headers: Mapping[str, str], body: bytes, *, sent_at_wall: float
    ) -> AccessToken | Failure:
        """What the endpoint's answer means.

        Args:
            status: The HTTP status.
            headers: The answer's headers, looked up case-insensitively by the
                transport's mapping (``Retry-After`` is read).
            body: The whole body, at most :data:`MAX_BODY_BYTES`.
            sent_at_wall: ``time.time()`` when the request left (the token's
                ``expires_at`` counts from then).
        """
        retry_after = parse_retry_after(headers.get("Retry-After"))
        data = _decode_json(body)
        where = f"token endpoint {self.token_url} answered {status}"
        if 200 <= status < 300:  # noqa: PLR2004 - the 2xx range
            if data is _NOT_JSON:
                # A captive portal or proxy page: worth another try.
                return Failure(f"{where} with a body that is not JSON", status, retryable=True)
            try:
                token = parse_token_response(
                    data, token_url=self.token_url, sent_at_wall=sent_at_wall
                )
            except TokenError as exc:
                return Failure(self.scrub(str(exc)), status)
            if token.scope is not None and (scope := self.scrub(token.scope)) != token.scope:
                token = token.model_copy(update={"scope": scope})  # an echo, never shown
            return token
        if 300 <= status < 400:  # noqa: PLR2004 - the 3xx range
            return Failure(f"{where}, a redirect; token requests do not follow redirects", status)
        error, description = _rfc6749_error(data)
        # Mask before cutting, so no cut can leave part of a secret behind.
        if error is not None:
            error = self.scrub(error)[:100]
        if description is not None:
            description = self.scrub(description)[:_DESCRIPTION_MAX_CHARS]
        transient = status >= 500 or status in _RETRYABLE_STATUS  # noqa: PLR2004
        if error is not None:
            detail = f": {error}" + (f" ({description})" if description else "")
            return Failure(where + detail, status, error, description, transient, retry_after)
        if data is _NOT_JSON:
            # An HTML error page from a proxy or load balancer, not the server's verdict.
            return Failure(
                f"{where} with a body that is not JSON",
                status,
                retryable=True,
                retry_after=retry_after,
            )
        return Failure(where, status, None, None, transient, retry_after)

    # -- what a transport reports when there is no answer ---------------------------

    def too_large(self, status: int) -> Failure:
        """The body passed :data:`MAX_BODY_BYTES`."""
        return Failure(
            f"token endpoint {self.token_url} answered {status} with a body over "
            f"{MAX_BODY_BYTES // 1024} KiB; a token response is a few hundred bytes",
            status,
        )

    def timed_out(self, bound: float, *, detail: str = "no whole answer") -> Failure:
        """No whole answer within the attempt's bound (however slowly it trickled)."""
        return Failure(
            f"token request to {self.token_url} timed out ({detail} within {bound:.3g} s)",
            retryable=True,
        )

    def unreachable(self, cause: BaseException, *, timed_out: bool) -> Failure:
        """The connection failed or a read timed out; worth another try."""
        kind = "timed out" if timed_out else "connection failed"
        return Failure(
            f"token request to {self.token_url} {kind} ({type(cause).__name__})",
            retryable=True,
            cause=cause,
        )

    def tls_failed(self, cause: BaseException) -> Failure:
        """The TLS handshake or certificate check failed: the same again would too."""
        return Failure(
            f"TLS error talking to {self.token_url}: {type(cause).__name__}", cause=cause
        )

    def failed(self, cause: BaseException) -> Failure:
        """Any other failure of the transport."""
        return Failure(
            f"token request to {self.token_url} failed ({type(cause).__name__})", cause=cause
        )

    def scrub(self, text: str) -> str:
        """``text`` with the secret masked, as it was sent or as it travelled in the form."""
        secret = self.client_secret.get_secret_value()
        for form in sorted({secret, quote_plus(secret), quote(secret, safe="")}, key=len)[::-1]:
            text = text.replace(form, _MASK)
        return text


class FetchPlan:
    """One fetch's attempts: how long each may take, and whether and when to try again.

    A transport's loop::

        plan = FetchPlan(exchange, attempts=4, deadline=60, now=clock())
        while True:
            bound = plan.begin(now=clock())           # seconds this attempt may take
            outcome = <send exchange.request(), read at most bound seconds>
            if isinstance(outcome, AccessToken):
                return plan.succeeded(outcome)
            sleep(plan.retry_delay(outcome, now=clock()))  # raises TokenError to give up
    """

    def __init__(
        self,
        exchange: TokenExchange,
        *,
        attempts: int,
        deadline: float,
        attempt_timeout: float,
        now: float,
        observer: Callable[[int, int], None] | None = None,
    ) -> None:
        """Start the fetch's clock."""
        self.exchange = exchange
        self.attempts = attempts
        self.deadline = deadline
        self.attempt_timeout = attempt_timeout
        self.give_up_at = now + deadline
        self.attempt = 0
        self._observer = observer

    def begin(self, *, now: float) -> float:
        """Count an attempt; the seconds it may take (its timeout, within the deadline)."""
        self.attempt += 1
        if self._observer is not None:
            self._observer(self.attempt, self.attempts)
        return max(min(self.attempt_timeout, self.give_up_at - now), 0.001)

    def succeeded(self, token: AccessToken) -> AccessToken:
        """Log the token's arrival; return it."""
        logger.info(
            "fetched an access token from %s (expires in %.0f s, attempt %d)",
            self.exchange.token_url,
            token.expires_in,
            self.attempt,
        )
        return token

    def retry_delay(self, failure: Failure, *, now: float) -> float:
        """Seconds to wait before the next attempt.

        Raises:
            TokenError: No attempt is left, the failure is final, or the next
                attempt would start after the deadline.
        """
        if not failure.retryable or self.attempt >= self.attempts:
            raise failure.to_error(attempts=self.attempt)
        delay = _backoff(self.attempt)
        if failure.retry_after is not None:
            delay = max(delay, failure.retry_after)
        if delay >= self.give_up_at - now:
            failure.message += (
                f"; giving up, the next attempt would start after the {self.deadline:g} s "
                "allowed for fetching a token"
            )
            raise failure.to_error(attempts=self.attempt)
        logger.warning(
            "%s; retrying in %.1f s (attempt %d of %d)",
            failure.message,
            delay,
            self.attempt + 1,
            self.attempts,
        )
        return delay


_NOT_JSON = object()


def _decode_json(body: bytes) -> object:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return _NOT_JSON


def _rfc6749_error(data: object) -> tuple[str | None, str | None]:
    if not isinstance(data, dict):
        return None, None
    error = data.get("error")
    if not isinstance(error, str) or not error:
        return None, None
    description = data.get("error_description")
    return error, description if isinstance(description, str) else None


def _backoff(attempt: int) -> float:
    """Capped exponential backoff with equal jitter: 0.25-0.5 s, 0.5-1 s, 1-2 s, ..."""
    ceiling = min(_BACKOFF_CAP_S, 0.5 * 2.0 ** (attempt - 1))
    jitter: float = random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not crypto
    return ceiling / 2 + jitter
