"""One token request with retries: the wire format, backoff and error mapping."""

from __future__ import annotations

import contextlib
import contextvars
import email.utils
import json
import logging
import math
import random
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

import requests
from requests.utils import resolve_proxies

from clarify_auth._errors import TokenError
from clarify_auth._token import AccessToken, parse_token_response
from clarify_auth._urls import check_proxy
from clarify_auth._version import __version__

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from pydantic import SecretStr

    from clarify_auth._config import TimeoutSpec

__all__ = [
    "DEFAULT_TOKEN_TIMEOUT",
    "MAX_BODY_BYTES",
    "USER_AGENT",
    "TokenEndpoint",
    "new_token_http_session",
    "observe_token_attempts",
    "parse_retry_after",
]

logger = logging.getLogger("clarify_auth")

#: Per token request: 5 s to connect, 15 s for the answer.
DEFAULT_TOKEN_TIMEOUT: tuple[float, float] = (5.0, 15.0)
USER_AGENT = f"clarify-auth/{__version__} python-requests/{requests.__version__}"

_RETRYABLE_STATUS = frozenset({408, 425, 429})
_BACKOFF_CAP_S = 8.0
_DESCRIPTION_MAX_CHARS = 300
# A token response is a few hundred bytes; a JWT with many claims a few KiB.
# 64 KiB leaves room for any real token and error page, and bounds what a
# hostile or broken endpoint can make us hold (counted after decompression).
MAX_BODY_BYTES = 64 * 1024
_READ_CHUNK_BYTES = 4096
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


# Told ``(attempt, attempts)`` as each token request starts, on the thread that
# fetches: how the command line reports a slow fetch without reaching inside.
_attempt_observer: contextvars.ContextVar[Callable[[int, int], None] | None] = (
    contextvars.ContextVar("clarify_auth_token_attempt_observer", default=None)
)


@contextlib.contextmanager
def observe_token_attempts(observer: Callable[[int, int], None]) -> Iterator[None]:
    """Call ``observer(attempt, attempts)`` as each token request of this context starts."""
    reset = _attempt_observer.set(observer)
    try:
        yield
    finally:
        _attempt_observer.reset(reset)


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


def _token_request_headers() -> dict[str, str]:
    # Asked per request, so a user's own session (session=) sends them too;
    # no compression, so nothing can expand behind the size cap's back.
    return {"Accept": "application/json", "Accept-Encoding": "identity"}


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
        """Fetch a token through ``http``; return it with the clock reading when its request left.

        ``http`` carries the request (its proxies, CA bundle, client certificate),
        never with its own ``auth`` and never following a redirect.

        Raises:
            TokenError: The endpoint rejected the client, or every attempt failed,
                or the deadline ran out.
        """
        start = self.clock()
        give_up_at = start + self.deadline
        attempt = 0
        observer = _attempt_observer.get()
        while True:
            attempt += 1
            if observer is not None:
                observer(attempt, self.attempts)
            sent_at = self.clock()
            sent_at_wall = time.time()
            failure = self._attempt(http, remaining=give_up_at - sent_at, sent_at_wall=sent_at_wall)
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

    def _attempt(
        self, http: requests.Session, *, remaining: float, sent_at_wall: float
    ) -> AccessToken | _Failure:
        """One token request, bounded in wall-clock time however slowly the server sends.

        Socket timeouts bound each read, not the whole: a server that trickles
        a byte a second never trips them. So the exchange runs on a worker
        thread, and this one stops waiting when the attempt's time is up and
        shuts the connection under the worker.
        """
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret.get_secret_value(),
            "audience": self.audience,
        }
        bound = max(min(_whole(self.timeout), remaining), 0.001)
        proxies = _proxies_for(self.token_url, http)
        check_proxy(self.token_url, proxies, what="the client secret")

        def send() -> requests.Response:
            return http.request(
                "POST",
                self.token_url,
                data=form,
                headers=_token_request_headers(),
                auth=_no_auth,
                timeout=_cap_timeout(self.timeout, bound),
                # A redirect would carry the secret to wherever it points.
                allow_redirects=False,
                stream=True,
            )

        exchange = _Exchange(send, until=time.monotonic() + bound)
        threading.Thread(
            target=exchange.run, name="clarify-auth-token-request", daemon=True
        ).start()
        if not exchange.done.wait(bound + _HANDOVER_SLACK_S):
            exchange.abandon()
            return _Failure(
                f"token request to {self.token_url} timed out (no whole answer within "
                f"{bound:.3g} s)",
                retryable=True,
            )
        outcome = exchange.outcome
        if isinstance(outcome, BaseException):
            return self._failure(outcome, bound)
        assert outcome is not None  # noqa: S101 - set before done
        response, body = outcome
        return self._interpret(response, body, sent_at_wall=sent_at_wall)

    def _failure(self, outcome: BaseException, bound: float) -> _Failure:
        """What an exchange that raised ``outcome`` means; re-raise what is not ours."""
        if isinstance(outcome, _BodyTooLarge):
            return _Failure(
                f"token endpoint {self.token_url} answered {outcome.status} with a body over "
                f"{MAX_BODY_BYTES // 1024} KiB; a token response is a few hundred bytes",
                outcome.status,
            )
        if isinstance(outcome, _TooSlow):
            return _Failure(
                f"token request to {self.token_url} timed out (the answer took over {bound:.3g} s)",
                retryable=True,
            )
        if isinstance(outcome, requests.exceptions.SSLError):
            return _Failure(
                f"TLS error talking to {self.token_url}: {type(outcome).__name__}", cause=outcome
            )
        if isinstance(
            outcome,
            requests.ConnectionError | requests.Timeout | requests.exceptions.ChunkedEncodingError,
        ):
            kind = "timed out" if isinstance(outcome, requests.Timeout) else "connection failed"
            return _Failure(
                f"token request to {self.token_url} {kind} ({type(outcome).__name__})",
                retryable=True,
                cause=outcome,
            )
        if isinstance(outcome, requests.RequestException):
            return _Failure(
                f"token request to {self.token_url} failed ({type(outcome).__name__})",
                cause=outcome,
            )
        raise outcome

    def _interpret(  # noqa: PLR0911 - one return per kind of answer reads best
        self, response: requests.Response, body: bytes, *, sent_at_wall: float
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
                token = parse_token_response(
                    data, token_url=self.token_url, sent_at_wall=sent_at_wall
                )
            except TokenError as exc:
                return _Failure(self._scrub(str(exc)), status)
            if token.scope is not None and (scope := self._scrub(token.scope)) != token.scope:
                token = token.model_copy(update={"scope": scope})  # an echo, never shown
            return token
        if 300 <= status < 400:  # noqa: PLR2004 - the 3xx range
            return _Failure(f"{where}, a redirect; token requests do not follow redirects", status)
        error, description = _rfc6749_error(data)
        # Mask before cutting, so no cut can leave part of a secret behind.
        if error is not None:
            error = self._scrub(error)[:100]
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
        # Servers have been known to echo what they were sent: the secret as
        # it was, or as it travelled in the form (either URL encoding).
        secret = self.client_secret.get_secret_value()
        for form in sorted({secret, quote_plus(secret), quote(secret, safe="")}, key=len)[::-1]:
            text = text.replace(form, _MASK)
        return text

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the settings; the clock is the owner's to restore (it may hold a lock)."""
        state = self.__dict__.copy()
        state.pop("clock", None)
        return state


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


# How long past an attempt's bound the caller waits for the worker to hand over
# an answer it already has, before giving up on it.
_HANDOVER_SLACK_S = 0.25


class _BodyTooLarge(Exception):  # noqa: N818 - an outcome, not raised to users
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _TooSlow(Exception):  # noqa: N818 - an outcome, not raised to users
    pass


class _Exchange:
    """One token request on a worker thread; its caller may stop waiting for it."""

    def __init__(self, send: Callable[[], requests.Response], *, until: float) -> None:
        self._send = send
        self._until = until
        self._lock = threading.Lock()
        self._response: requests.Response | None = None
        self._abandoned = False
        self.done = threading.Event()
        self.outcome: tuple[requests.Response, bytes] | BaseException | None = None

    def run(self) -> None:
        try:
            response = self._send()
            with self._lock:
                self._response = response
                abandoned = self._abandoned
            if abandoned:
                _shut(response)
                return
            try:
                self.outcome = (response, self._read(response))
            finally:
                response.close()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, who decides
            self.outcome = exc
        finally:
            self.done.set()

    def _read(self, response: requests.Response) -> bytes:
        chunks = []
        size = 0
        for chunk in response.iter_content(_READ_CHUNK_BYTES):
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise _BodyTooLarge(response.status_code)
            chunks.append(chunk)
            if time.monotonic() > self._until:
                raise _TooSlow
        return b"".join(chunks)

    def abandon(self) -> None:
        """Stop caring for the answer; cut the connection if it is open."""
        with self._lock:
            self._abandoned = True
            response = self._response
        if response is not None:
            _shut(response)


def _shut(response: requests.Response) -> None:
    """Shut the response's socket: a read blocked on it in another thread ends at once."""
    raw = response.raw
    connection = getattr(raw, "_connection", None) or getattr(raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(Exception):
        response.close()


def _proxies_for(url: str, http: requests.Session) -> dict[str, str]:
    """The proxies ``http`` would use for ``url``: its own, the environment's, no_proxy."""
    merged = http.merge_environment_settings(url, {}, None, None, None)["proxies"]
    request = requests.Request("POST", url)
    return dict(resolve_proxies(request, merged, http.trust_env))  # type: ignore[arg-type]


def _whole(timeout: TimeoutSpec) -> float:
    """A whole attempt's bound: ``connect + read``, or the one number given."""
    return timeout[0] + timeout[1] if isinstance(timeout, tuple) else timeout


def _cap_timeout(timeout: TimeoutSpec, remaining: float) -> TimeoutSpec:
    """Never let one attempt outlive the whole fetch's deadline."""
    remaining = max(remaining, 0.001)
    if isinstance(timeout, tuple):
        return (min(timeout[0], remaining), min(timeout[1], remaining))
    return min(timeout, remaining)
