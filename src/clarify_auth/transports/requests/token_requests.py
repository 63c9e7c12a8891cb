"""Token requests over ``requests``: the thin loop that drives the sans-IO exchange.

What to send, what an answer means and when to retry live in
:mod:`clarify_auth.tokens.exchange`; this module sends each attempt through a
``requests.Session`` (the user's proxies, CA bundle, client certificate),
bounds it in wall-clock time however slowly the server sends, and maps the
library's exceptions onto the exchange's failures.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import requests
from requests.utils import resolve_proxies

from clarify_auth._urls import check_proxy
from clarify_auth._version import __version__
from clarify_auth.tokens.exchange import (
    MAX_BODY_BYTES,
    Failure,
    FetchPlan,
    TokenExchange,
    parse_retry_after,
)
from clarify_auth.tokens.token import AccessToken
from clarify_auth.transports.requests.sockets import opening, shut_socket, watch_new_sockets

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from pydantic import SecretStr

    from clarify_auth._config import TimeoutSpec

__all__ = [
    "DEFAULT_TOKEN_TIMEOUT",
    "MAX_BODY_BYTES",
    "USER_AGENT",
    "TokenEndpoint",
    "current_attempt_observer",
    "new_token_http_session",
    "observe_token_attempts",
    "parse_retry_after",
    "whole",
]

logger = logging.getLogger("clarify_auth")

#: Per token request: 5 s to connect, 15 s for the answer.
DEFAULT_TOKEN_TIMEOUT: tuple[float, float] = (5.0, 15.0)
USER_AGENT = f"clarify-auth/{__version__} python-requests/{requests.__version__}"

_READ_CHUNK_BYTES = 4096


# Told ``(attempt, attempts)`` as each token request starts, on the thread that
# fetches: how the command line reports a slow fetch without reaching inside.
_attempt_observer: contextvars.ContextVar[Callable[[int, int], None] | None] = (
    contextvars.ContextVar("clarify_auth_token_attempt_observer", default=None)
)


def current_attempt_observer() -> Callable[[int, int], None] | None:
    """The observer of :func:`observe_token_attempts` in this context, if any."""
    return _attempt_observer.get()


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


class TokenEndpoint:
    """Posts the client-credentials grant through ``requests``, retrying transient failures.

    The wire format and the retry policy are the :class:`TokenExchange`'s;
    this class adds the session, the per-attempt timeout and the deadline.
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
        self.exchange = TokenExchange(
            token_url=token_url,
            client_id=client_id,
            client_secret=client_secret,
            audience=audience,
        )

    def fetch(self, http: requests.Session) -> tuple[AccessToken, float]:
        """Fetch a token through ``http``; return it with the clock reading when its request left.

        ``http`` carries the request (its proxies, CA bundle, client certificate),
        never with its own ``auth`` and never following a redirect.

        Raises:
            TokenError: The endpoint rejected the client, or every attempt failed,
                or the deadline ran out.
        """
        plan = self.plan()
        while True:
            bound = plan.begin(now=self.clock())
            sent_at = self.clock()
            outcome = self._attempt(http, bound=bound, sent_at_wall=time.time())
            if isinstance(outcome, AccessToken):
                return plan.succeeded(outcome), sent_at
            self.sleep(plan.retry_delay(outcome, now=self.clock()))

    def plan(self) -> FetchPlan:
        """A new fetch's attempts, its deadline counted from now."""
        return FetchPlan(
            self.exchange,
            attempts=self.attempts,
            deadline=self.deadline,
            attempt_timeout=whole(self.timeout),
            now=self.clock(),
            observer=_attempt_observer.get(),
        )

    def _attempt(
        self, http: requests.Session, *, bound: float, sent_at_wall: float
    ) -> AccessToken | Failure:
        """One token request, bounded in wall-clock time however slowly the server sends.

        Socket timeouts bound each read, not the whole: a server that trickles
        a byte a second never trips them. So the exchange runs on a worker
        thread, and this one stops waiting when the attempt's time is up and
        shuts the connection under the worker.
        """
        wire = self.exchange.request()
        proxies = _proxies_for(wire.url, http)
        check_proxy(wire.url, proxies, what="the client secret")

        def send() -> requests.Response:
            return http.request(
                wire.method,
                wire.url,
                data=wire.body.decode("ascii"),  # a str: requests sends it as it is
                headers=dict(wire.headers),
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
            return self.exchange.timed_out(bound)
        outcome = exchange.outcome
        if isinstance(outcome, BaseException):
            return self._failure(outcome, bound)
        assert outcome is not None  # noqa: S101 - set before done
        response, body = outcome
        return self.exchange.answer(
            response.status_code, response.headers, body, sent_at_wall=sent_at_wall
        )

    def _failure(self, outcome: BaseException, bound: float) -> Failure:
        """What an exchange that raised ``outcome`` means; re-raise what is not ours."""
        if isinstance(outcome, _BodyTooLarge):
            return self.exchange.too_large(outcome.status)
        if isinstance(outcome, _TooSlow):
            return self.exchange.timed_out(bound, detail="the whole answer")
        if isinstance(outcome, requests.exceptions.SSLError):
            return self.exchange.tls_failed(outcome)
        if isinstance(
            outcome,
            requests.ConnectionError | requests.Timeout | requests.exceptions.ChunkedEncodingError,
        ):
            return self.exchange.unreachable(
                outcome, timed_out=isinstance(outcome, requests.Timeout)
            )
        if isinstance(outcome, requests.RequestException):
            return self.exchange.failed(outcome)
        raise outcome

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the settings; the clock is the owner's to restore (it may hold a lock)."""
        state = self.__dict__.copy()
        state.pop("clock", None)
        return state


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
    """One token request on a worker thread; its caller may stop waiting for it.

    Abandoned, it shuts the sockets its worker uses (seen as urllib3 opens
    them or takes them from the pool: :mod:`.sockets`), so a read blocked on a
    server that trickles its headers ends at once, and the thread with it.
    """

    def __init__(self, send: Callable[[], requests.Response], *, until: float) -> None:
        self._send = send
        self._until = until
        self._lock = threading.Lock()
        self._response: requests.Response | None = None
        self._abandoned = False
        # Duplicates of the sockets opened for this exchange: a shutdown through
        # one reaches the connection even after TLS took over the original.
        self._sockets: list[socket.socket] = []
        self.done = threading.Event()
        self.outcome: tuple[requests.Response, bytes] | BaseException | None = None

    def track(self, sock: socket.socket) -> None:
        """Remember a socket the worker just opened; shut it at once if abandoned."""
        with self._lock:
            if self._abandoned:
                shut_socket(sock)
                return
            with contextlib.suppress(OSError):
                self._sockets.append(sock.dup())

    def _forget_sockets(self, *, shut: bool) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            if shut:
                shut_socket(sock)
            sock.close()

    def run(self) -> None:
        watch_new_sockets()
        opening.exchange = self
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
            opening.exchange = None
            self._forget_sockets(shut=False)
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
        self._forget_sockets(shut=True)
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


def whole(timeout: TimeoutSpec) -> float:
    """A whole attempt's bound: ``connect + read``, or the one number given."""
    return timeout[0] + timeout[1] if isinstance(timeout, tuple) else timeout


def _cap_timeout(timeout: TimeoutSpec, remaining: float) -> TimeoutSpec:
    """Never let one attempt outlive the whole fetch's deadline."""
    remaining = max(remaining, 0.001)
    if isinstance(timeout, tuple):
        return (min(timeout[0], remaining), min(timeout[1], remaining))
    return min(timeout, remaining)
