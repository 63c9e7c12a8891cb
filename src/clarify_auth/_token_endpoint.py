"""One token request with retries: the wire format, backoff and error mapping."""

from __future__ import annotations

import email.utils
import json
import logging
import math
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import requests

from clarify_auth._errors import TokenError
from clarify_auth._token import AccessToken, parse_token_response
from clarify_auth._version import __version__

if TYPE_CHECKING:
    from collections.abc import Callable

    from pydantic import SecretStr

    from clarify_auth._config import TimeoutSpec

__all__ = [
    "DEFAULT_TOKEN_TIMEOUT",
    "USER_AGENT",
    "TokenEndpoint",
    "new_token_http_session",
    "parse_retry_after",
]

logger = logging.getLogger("clarify_auth")

#: Per token request: 5 s to connect, 15 s for the answer.
DEFAULT_TOKEN_TIMEOUT: tuple[float, float] = (5.0, 15.0)
USER_AGENT = f"clarify-auth/{__version__} python-requests/{requests.__version__}"

_RETRYABLE_STATUS = frozenset({408, 425, 429})
_BACKOFF_CAP_S = 8.0
_DESCRIPTION_MAX_CHARS = 300


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


def _no_auth(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """Leave token requests alone (and keep requests from reading ~/.netrc for them)."""
    return request


def new_token_http_session() -> requests.Session:
    """A session for token requests only, never the authenticated one."""
    session = requests.Session()
    session.auth = _no_auth
    session.headers["User-Agent"] = USER_AGENT
    session.headers["Accept"] = "application/json"
    return session


@dataclass
class _Failure:
    message: str
    status_code: int | None = None
    error: str | None = None
    error_description: str | None = None
    retryable: bool = False
    retry_after: float | None = None
    cause: BaseException | None = None

    def to_error(self, *, attempts: int) -> TokenError:
        suffix = f" (after {attempts} attempts)" if attempts > 1 else ""
        error = TokenError(
            self.message + suffix,
            status_code=self.status_code,
            error=self.error,
            error_description=self.error_description,
            retryable=self.retryable,
        )
        # Keep the requests exception (URL and host, never the form) for debugging.
        error.__cause__ = self.cause
        return error


class TokenEndpoint:
    """Posts the client-credentials grant to a token URL, retrying transient failures.

    The secret is read from its ``SecretStr`` only to build the form body.
    """

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: SecretStr,
        audience: str,
        timeout: TimeoutSpec,
        attempts: int,
        deadline: float,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        """Store what a fetch needs; nothing is sent yet."""
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.audience = audience
        self.timeout = timeout
        self.attempts = attempts
        self.deadline = deadline
        self.clock = clock
        self.sleep = sleep

    def fetch(self, http: requests.Session) -> tuple[AccessToken, float]:
        """Fetch a token; return it with the clock reading taken when its request left.

        Raises:
            TokenError: The endpoint rejected the client, or every attempt failed,
                or the deadline ran out.
        """
        start = self.clock()
        give_up_at = start + self.deadline
        attempt = 0
        while True:
            attempt += 1
            sent_at = self.clock()
            failure = self._attempt(http, remaining=give_up_at - sent_at)
            if isinstance(failure, AccessToken):
                logger.info(
                    "fetched an access token from %s (expires in %.0f s, attempt %d)",
                    self.token_url,
                    failure.expires_in,
                    attempt,
                )
                return failure, sent_at
            if not failure.retryable or attempt >= self.attempts:
                raise failure.to_error(attempts=attempt)
            delay = _backoff(attempt)
            if failure.retry_after is not None:
                delay = max(delay, failure.retry_after)
            remaining = give_up_at - self.clock()
            if delay >= remaining:
                failure.message += (
                    f"; giving up, the next attempt would start after the {self.deadline:g} s "
                    "allowed for fetching a token"
                )
                raise failure.to_error(attempts=attempt)
            logger.warning(
                "%s; retrying in %.1f s (attempt %d of %d)",
                failure.message,
                delay,
                attempt + 1,
                self.attempts,
            )
            self.sleep(delay)

    def _attempt(self, http: requests.Session, *, remaining: float) -> AccessToken | _Failure:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret.get_secret_value(),
            "audience": self.audience,
        }
        try:
            response = http.post(
                self.token_url,
                data=form,
                timeout=_cap_timeout(self.timeout, remaining),
                # A redirect would carry the secret to wherever it points.
                allow_redirects=False,
            )
            body = response.content
        except requests.exceptions.SSLError as exc:
            return _Failure(
                f"TLS error talking to {self.token_url}: {type(exc).__name__}", cause=exc
            )
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as exc:
            kind = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
            return _Failure(
                f"token request to {self.token_url} {kind} ({type(exc).__name__})",
                retryable=True,
                cause=exc,
            )
        except requests.RequestException as exc:
            return _Failure(
                f"token request to {self.token_url} failed ({type(exc).__name__})", cause=exc
            )
        return self._interpret(response, body)

    def _interpret(  # noqa: PLR0911 - one return per kind of answer reads best
        self, response: requests.Response, body: bytes
    ) -> AccessToken | _Failure:
        status = response.status_code
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        data = _decode_json(body)
        where = f"token endpoint {self.token_url} answered {status}"
        if 200 <= status < 300:  # noqa: PLR2004 - the 2xx range
            if data is _NOT_JSON:
                # A captive portal or proxy page: worth another try.
                return _Failure(f"{where} with a body that is not JSON", status, retryable=True)
            try:
                return parse_token_response(data, token_url=self.token_url)
            except TokenError as exc:
                return _Failure(str(exc), status)
        if 300 <= status < 400:  # noqa: PLR2004 - the 3xx range
            return _Failure(f"{where}, a redirect; token requests do not follow redirects", status)
        error, description = _rfc6749_error(data)
        if description is not None:
            description = self._scrub(description)[:_DESCRIPTION_MAX_CHARS]
        transient = status >= 500 or status in _RETRYABLE_STATUS  # noqa: PLR2004
        if error is not None:
            detail = f": {error}" + (f" ({description})" if description else "")
            return _Failure(where + detail, status, error, description, transient, retry_after)
        if data is _NOT_JSON:
            # An HTML error page from a proxy or load balancer, not the server's verdict.
            return _Failure(
                f"{where} with a body that is not JSON",
                status,
                retryable=True,
                retry_after=retry_after,
            )
        return _Failure(where, status, None, None, transient, retry_after)

    def _scrub(self, text: str) -> str:
        # Servers have been known to echo what they were sent.
        secret = self.client_secret.get_secret_value()
        return text.replace(secret, "**********") if secret else text


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
    return error[:100], description if isinstance(description, str) else None


def _backoff(attempt: int) -> float:
    """Capped exponential backoff with equal jitter: 0.25-0.5 s, 0.5-1 s, 1-2 s, ..."""
    ceiling = min(_BACKOFF_CAP_S, 0.5 * 2.0 ** (attempt - 1))
    jitter: float = random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not crypto
    return ceiling / 2 + jitter


def _cap_timeout(timeout: TimeoutSpec, remaining: float) -> TimeoutSpec:
    """Never let one attempt outlive the whole fetch's deadline."""
    remaining = max(remaining, 0.001)
    if isinstance(timeout, tuple):
        return (min(timeout[0], remaining), min(timeout[1], remaining))
    return min(timeout, remaining)
