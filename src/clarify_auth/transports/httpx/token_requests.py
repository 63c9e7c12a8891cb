"""Token requests over an httpx transport: the thin loops that drive the sans-IO exchange.

What to send, what an answer means and when to retry live in
:mod:`clarify_auth.tokens.exchange`. These loops send each attempt through the
transport an ``httpx`` client would use for the token URL (its ``verify``,
``cert``, proxy, mounts, HTTP/2), as a bare ``httpx.Request`` handed straight
to ``handle_request``: no client headers, cookies, auth or event hooks, and
never a redirect. Each attempt is bounded in wall-clock time however slowly
the server sends, and leaves nothing behind when abandoned:

- async: the whole attempt runs in a cancel scope; cancelling it closes the
  connection, with no thread;
- sync: httpx has no total timeout, so a timer shuts the attempt's socket when
  its time is up (the socket comes from httpcore's ``trace`` extension as the
  connection opens), and the body is read in chunks that check the bound.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from typing import TYPE_CHECKING, Any

import anyio
import httpx

from clarify_auth._version import __version__
from clarify_auth.tokens.exchange import MAX_BODY_BYTES, Failure
from clarify_auth.tokens.token import AccessToken

if TYPE_CHECKING:
    from clarify_auth.tokens.exchange import TokenExchange
    from clarify_auth.transports.requests.token_requests import TokenEndpoint

__all__ = ["USER_AGENT", "afetch", "fetch", "transport_for"]

USER_AGENT = f"clarify-auth/{__version__} python-httpx/{httpx.__version__}"


def transport_for(
    client: httpx.Client | httpx.AsyncClient, url: str
) -> httpx.BaseTransport | httpx.AsyncBaseTransport:
    """The transport ``client`` itself would use for ``url`` (its mounts, proxy, TLS).

    ``_transport_for_url`` is private but has the same shape from httpx 0.18
    through 0.28 (a test pins it); without it, the client's default transport.
    """
    choose = getattr(client, "_transport_for_url", None)
    if choose is None:  # pragma: no cover - every httpx this package supports has it
        return client._transport  # noqa: SLF001 - see above
    return choose(httpx.URL(url))  # type: ignore[no-any-return]


def _request(exchange: TokenExchange, bound: float, extensions: dict[str, Any]) -> httpx.Request:
    wire = exchange.request()
    headers = [("User-Agent", USER_AGENT), *wire.headers]
    request = httpx.Request(wire.method, wire.url, headers=headers, content=wire.body)
    # Per read and connect: never longer than the attempt itself.
    extensions["timeout"] = dict.fromkeys(("connect", "read", "write", "pool"), bound)
    request.extensions = extensions
    return request


def _failure(exchange: TokenExchange, exc: Exception, bound: float) -> Failure:
    """What an exception of the transport means for this attempt."""
    if isinstance(exc, httpx.TimeoutException):
        return exchange.unreachable(exc, timed_out=True)
    if _caused_by_tls(exc):
        return exchange.tls_failed(exc)
    if isinstance(exc, httpx.TransportError):
        return exchange.unreachable(exc, timed_out=False)
    del bound
    return exchange.failed(exc)


def _caused_by_tls(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):  # httpx wraps httpcore, which wraps ssl: a short chain
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class _Body:
    """Collects a body in chunks, up to the size cap."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.chunks: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes) -> bool:
        """Keep ``chunk``; ``False`` when the body passed the cap."""
        self.size += len(chunk)
        self.chunks.append(chunk)
        return self.size <= MAX_BODY_BYTES


# -- sync -------------------------------------------------------------------------


class _Cutter:
    """Shuts the attempt's socket when its time is up, so a blocked read ends at once.

    httpcore tells the ``trace`` callback of each stream it opens for this
    request (TCP, then TLS, through a proxy too); the last one carries the
    bytes. A connection reused from the pool opened no stream for us: then the
    pool's record of which connection serves our request leads to its stream.
    """

    def __init__(self, transport: httpx.BaseTransport) -> None:
        self._transport = transport
        self._lock = threading.Lock()
        self._stream: Any = None
        self._core_request: object = None
        self.cut = False

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if self._core_request is None:
            self._core_request = info.get("request")
        if event.endswith((".connect_tcp.complete", ".start_tls.complete")):
            with self._lock:
                self._stream = info.get("return_value")
                cut = self.cut
            if cut:
                self._shut()

    def fire(self) -> None:
        with self._lock:
            self.cut = True
            if self._stream is None:
                self._stream = _pooled_stream(self._transport, self._core_request)
        self._shut()

    def _shut(self) -> None:
        stream = self._stream
        sock = None if stream is None else stream.get_extra_info("socket")
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _pooled_stream(transport: httpx.BaseTransport, core_request: object) -> Any:
    """The network stream of the pooled connection serving ``core_request``, if it can be seen.

    httpcore's internals (``ConnectionPool._requests``, each with its
    ``connection``, whose ``_connection`` holds ``_network_stream``), read
    defensively: anything missing means there is nothing to shut.
    """
    pool = getattr(transport, "_pool", None)
    for pool_request in list(getattr(pool, "_requests", ())):
        if getattr(pool_request, "request", None) is core_request:
            connection = getattr(pool_request, "connection", None)
            http = getattr(connection, "_connection", connection)
            return getattr(http, "_network_stream", None)
    return None


def fetch(endpoint: TokenEndpoint, transport: httpx.BaseTransport) -> tuple[AccessToken, float]:
    """Fetch a token through ``transport``, retrying as the exchange's plan says."""
    plan = endpoint.plan()
    while True:
        bound = plan.begin(now=endpoint.clock())
        sent_at = endpoint.clock()
        outcome = _attempt(endpoint.exchange, transport, bound, time.time())
        if isinstance(outcome, AccessToken):
            return plan.succeeded(outcome), sent_at
        endpoint.sleep(plan.retry_delay(outcome, now=endpoint.clock()))


def _attempt(
    exchange: TokenExchange, transport: httpx.BaseTransport, bound: float, sent_at_wall: float
) -> AccessToken | Failure:
    cutter = _Cutter(transport)
    until = time.monotonic() + bound
    request = _request(exchange, bound, {"trace": cutter.trace})
    # A timer, not a worker: it only shuts a socket, and is cancelled (its
    # thread ends) as the attempt ends, whichever way.
    timer = threading.Timer(bound, cutter.fire)
    timer.daemon = True
    timer.start()
    try:
        response = transport.handle_request(request)
        try:
            body = _Body(response.status_code)
            # The raw bytes: we asked for no compression, so nothing expands
            # behind the cap's back (a compressed answer is not JSON: retried).
            for chunk in response.stream:  # type: ignore[union-attr]
                if not body.add(chunk):
                    return exchange.too_large(body.status)
                if time.monotonic() > until:
                    return exchange.timed_out(bound, detail="the whole answer")
        finally:
            response.close()
    except Exception as exc:  # noqa: BLE001 - mapped onto the exchange's failures
        if cutter.cut:
            return exchange.timed_out(bound)
        return _failure(exchange, exc, bound)
    finally:
        timer.cancel()
        timer.join(1.0)
    if cutter.cut:
        return exchange.timed_out(bound)
    return exchange.answer(
        response.status_code, response.headers, b"".join(body.chunks), sent_at_wall=sent_at_wall
    )


# -- async ------------------------------------------------------------------------


async def afetch(
    endpoint: TokenEndpoint, transport: httpx.AsyncBaseTransport
) -> tuple[AccessToken, float]:
    """Fetch a token through ``transport`` on the event loop, with no thread."""
    plan = endpoint.plan()
    while True:
        bound = plan.begin(now=endpoint.clock())
        sent_at = endpoint.clock()
        outcome = await _aattempt(endpoint.exchange, transport, bound, time.time())
        if isinstance(outcome, AccessToken):
            return plan.succeeded(outcome), sent_at
        await anyio.sleep(plan.retry_delay(outcome, now=endpoint.clock()))


async def _aattempt(
    exchange: TokenExchange,
    transport: httpx.AsyncBaseTransport,
    bound: float,
    sent_at_wall: float,
) -> AccessToken | Failure:
    request = _request(exchange, bound, {})
    try:
        # Cancelling the scope (its deadline, or the caller's cancellation)
        # closes the connection: httpcore drops a connection cut mid-exchange.
        with anyio.fail_after(bound):
            response = await transport.handle_async_request(request)
            try:
                body = _Body(response.status_code)
                chunks = response.stream.__aiter__()  # type: ignore[union-attr]
                try:
                    async for chunk in chunks:
                        if not body.add(chunk):
                            return exchange.too_large(body.status)
                finally:
                    aclose = getattr(chunks, "aclose", None)
                    if aclose is not None:
                        with anyio.CancelScope(shield=True):
                            await aclose()
            finally:
                with anyio.CancelScope(shield=True):
                    await response.aclose()
    except TimeoutError:
        return exchange.timed_out(bound)
    except Exception as exc:  # noqa: BLE001 - mapped onto the exchange's failures
        return _failure(exchange, exc, bound)
    return exchange.answer(
        response.status_code, response.headers, b"".join(body.chunks), sent_at_wall=sent_at_wall
    )
