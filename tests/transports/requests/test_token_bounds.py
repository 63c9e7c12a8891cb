"""A hostile or broken token endpoint cannot exhaust us: size, time, token syntax, echoes."""

from __future__ import annotations

import gzip
import logging
import socket  # noqa: TC003 - used in annotations of handlers only, kept plain
import socketserver
import threading
import time
import tracemalloc
from urllib.parse import quote, quote_plus

import pytest
import responses

from _network import TricklingServer, threads_alive
from clarify_auth import OAuthClientCredentials, TokenError
from clarify_auth.cli.main import main
from conftest import TOKEN_URL, make_oauth, token_body


class RawServer:
    """A loopback TCP server whose handler writes whatever bytes, as slowly as it likes."""

    def __init__(self, handler) -> None:
        self.stop_event = threading.Event()
        self.connections = 0
        outer = self

        class _Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                outer.connections += 1
                self.request.settimeout(5)
                try:
                    self.request.recv(65536)  # the request; its content does not matter here
                    handler(self.request, outer.stop_event)
                except OSError:
                    pass  # the client hung up on us: that is the point

        class _Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/oauth/token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> RawServer:  # noqa: PYI034 - a test helper, never subclassed
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.server.shutdown()
        self.server.server_close()


def trickle_headers(sock: socket.socket, stop: threading.Event) -> None:
    """Send a status line and headers one byte at a time, forever."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    for byte in head:
        if stop.wait(0.2):
            return
        sock.sendall(bytes([byte]))
    while not stop.wait(0.2):
        sock.sendall(b"X")  # an endless header line


def endless_chunks(sock: socket.socket, stop: threading.Event) -> None:
    """Answer 200 with a chunked body that never ends."""
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    sock.sendall(b"Transfer-Encoding: chunked\r\n\r\n")
    sock.sendall(b"1\r\n{\r\n")
    while not stop.wait(0.05):
        sock.sendall(b"1\r\n \r\n")


def huge_body(sock: socket.socket, stop: threading.Event) -> None:
    """Answer 200 with a Content-Length of 1 GiB and send as fast as the client reads."""
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    sock.sendall(b"Content-Length: 1073741824\r\n\r\n")
    chunk = b" " * 65536
    for _ in range(16384):
        if stop.is_set():
            return
        sock.sendall(chunk)


_BOMB: list[bytes] = []


def bomb() -> bytes:
    """About 64 KiB of gzip that inflates to 64 MiB (made once, before memory is traced)."""
    if not _BOMB:
        _BOMB.append(gzip.compress(b" " * (64 * 1024 * 1024), compresslevel=9))
    return _BOMB[0]


def gzip_bomb(sock: socket.socket, stop: threading.Event) -> None:
    """Answer 200 with a small gzip body that inflates to 64 MiB."""
    body = bomb()
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n")
    sock.sendall(f"Content-Length: {len(body)}\r\n\r\n".encode())
    sock.sendall(body)


def oauth_for(url: str, **options) -> OAuthClientCredentials:
    return OAuthClientCredentials(
        "test-client",
        "test-secret-bounds",
        token_url=url,
        audience="http://127.0.0.1/v1/",
        shared=False,
        **options,
    )


# -- size -------------------------------------------------------------------------------------


def test_a_huge_body_fails_the_attempt_without_reading_it_all():
    """A 1 GiB answer is cut off at the cap: a TokenError, and little memory held."""
    with RawServer(huge_body) as server:
        auth = oauth_for(server.url, attempts=1)
        tracemalloc.start()
        try:
            with pytest.raises(TokenError, match="64 KiB") as info:
                auth.token()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    assert info.value.status_code == 200
    assert peak < 16 * 1024 * 1024


def test_a_gzip_bomb_is_capped_after_decompression():
    """A body that inflates far beyond the cap fails the attempt; memory stays small."""
    bomb()
    with RawServer(gzip_bomb) as server:
        auth = oauth_for(server.url, attempts=1)
        tracemalloc.start()
        try:
            with pytest.raises(TokenError, match="64 KiB"):
                auth.token()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    assert peak < 16 * 1024 * 1024


@responses.activate
def test_token_requests_ask_for_no_compression():
    """Token requests send Accept-Encoding: identity, so nothing inflates behind the cap."""
    responses.post(TOKEN_URL, json=token_body(1))

    make_oauth().token()

    assert responses.calls[0].request.headers["Accept-Encoding"] == "identity"


@responses.activate
def test_a_body_just_under_the_cap_is_read():
    """A large but legal answer (a long JWT, padding) is still accepted."""
    padding = " " * (60 * 1024)
    responses.post(TOKEN_URL, body='{"access_token": "test-token-1", "expires_in": 60}' + padding)

    assert make_oauth().token().access_token.get_secret_value() == "test-token-1"


# -- time -------------------------------------------------------------------------------------


@pytest.mark.parametrize("handler", [trickle_headers, endless_chunks], ids=["headers", "body"])
def test_a_trickling_server_is_bounded_by_the_deadline(handler):
    """A server that sends a byte now and then cannot hold a fetch past its deadline."""
    with RawServer(handler) as server:
        auth = oauth_for(server.url, deadline=1.5, timeout=(1, 1))
        start = time.monotonic()

        with pytest.raises(TokenError, match="timed out"):
            auth.token()
        elapsed = time.monotonic() - start

    assert elapsed < 1.5 + 1.5  # old code: 20 s and more


def test_the_per_attempt_timeout_bounds_one_attempt():
    """timeout=(connect, read) caps a whole attempt at connect + read, then it retries."""
    with RawServer(trickle_headers) as server:
        auth = oauth_for(server.url, deadline=30, timeout=(0.3, 0.3), attempts=2)
        start = time.monotonic()

        with pytest.raises(TokenError, match="after 2 attempts"):
            auth.token()
        elapsed = time.monotonic() - start

    assert server.connections == 2
    assert elapsed < 0.6 * 2 + 2 + 2  # two bounded attempts and a backoff of at most 2 s


def test_threads_waiting_on_a_stuck_fetch_wait_no_longer_than_the_deadline():
    """Eight threads behind a stuck leader all give up by the deadline plus a small slack."""
    with RawServer(trickle_headers) as server:
        auth = oauth_for(server.url, deadline=1.5, timeout=(1, 1))
        finished: list[float] = []
        start = time.monotonic()

        def call() -> None:
            try:
                auth.authorization()
            except TokenError:
                finished.append(time.monotonic() - start)

        threads = [threading.Thread(target=call) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)

    assert len(finished) == 8
    assert max(finished) < 1.5 + 2.5


# -- token syntax -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "test-token\r\nX-Injected: yes",
        "test-token\nevil",
        "test token",
        'test"token',
        "tëst-token",
        "=test-token",
        "test-token=x",
        "test-token\x00",
    ],
    ids=["crlf", "lf", "space", "quote", "non-ascii", "leading-equals", "inner-equals", "nul"],
)
@responses.activate
def test_a_token_that_is_not_a_b64token_is_refused_without_echo(value, caplog):
    """Only RFC 6750 b64token syntax is a token; anything else is a TokenError that hides it."""
    responses.post(TOKEN_URL, json={"access_token": value, "expires_in": 60})

    with pytest.raises(TokenError, match="access_token") as info:
        make_oauth(attempts=1).token()

    assert value not in str(info.value)
    assert value not in repr(info.value)
    assert value not in caplog.text


@pytest.mark.parametrize(
    "value",
    ["eyJhbGciOi.eyJzdWIi.c2lnbmF0dXJl", "dGVzdA==", "a-b.c_d~e+f/g", "x"],
    ids=["jwt", "padded", "every-symbol", "one-char"],
)
@responses.activate
def test_b64tokens_are_accepted(value):
    """JWTs, padded base64 and every symbol RFC 6750 allows pass."""
    responses.post(TOKEN_URL, json={"access_token": value, "expires_in": 60})

    assert make_oauth().token().access_token.get_secret_value() == value


def test_the_command_line_never_prints_an_injected_header(tmp_path, capsys):
    """'clarify-auth token' with a CR/LF token prints nothing to stdout and exits non-zero."""
    import io
    import json

    with responses.RequestsMock() as mock:
        mock.post(
            "https://api.example.com/v1/oauth/token",
            json={"access_token": "t\r\nX-Evil: 1", "expires_in": 60},
        )
        path = tmp_path / "c.json"
        path.write_text(
            json.dumps(
                {
                    "apiUrl": "https://api.example.com/v1/",
                    "integration": "i",
                    "credentials": {
                        "type": "client-credentials",
                        "clientId": "c",
                        "clientSecret": "test-secret-cli",
                    },
                }
            )
        )
        out = io.StringIO()

        status = main(["token", "--no-cache", "--credentials", str(path)], stdout=out)

    assert status != 0
    assert out.getvalue() == ""
    assert "X-Evil" not in capsys.readouterr().err


# -- the secret echoed back ---------------------------------------------------------------------

SECRET = "test-secret-a+b/c=d&e f"


@pytest.mark.parametrize(
    "body",
    [
        {"error": SECRET},
        {"error": "invalid_client", "error_description": f"bad secret {SECRET}"},
        {"error": "invalid_client", "error_description": f"got {quote_plus(SECRET)}"},
        {"error": "invalid_client", "error_description": f"got {quote(SECRET, safe='')}"},
        {"error": f"x{quote_plus(SECRET)}", "error_description": "y"},
    ],
    ids=["in-error", "raw-description", "form-encoded", "percent-encoded", "encoded-in-error"],
)
@responses.activate
def test_an_echoed_secret_is_masked_in_errors_and_logs(body, caplog):
    """The secret, raw or form-encoded, in any field, never reaches the exception or the logs."""
    caplog.set_level(logging.DEBUG)
    responses.post(TOKEN_URL, status=503, json=body)
    responses.post(TOKEN_URL, status=400, json=body)
    auth = OAuthClientCredentials(
        "test-client", SECRET, token_url=TOKEN_URL, audience="https://api.clarify.io/v1/",
        sleep=lambda s: None,
    )  # fmt: skip

    with pytest.raises(TokenError) as info:
        auth.token()

    shown = f"{info.value} {info.value!r} {info.value.error} {info.value.error_description}"
    for form in (SECRET, quote_plus(SECRET), quote(SECRET, safe="")):
        assert form not in shown
        assert form not in caplog.text
    assert "**********" in shown


@responses.activate
def test_a_secret_echoed_in_the_scope_of_a_token_is_masked():
    """A success body that echoes the secret in scope does not show it anywhere later."""
    responses.post(
        TOKEN_URL,
        json={"access_token": "test-token-1", "expires_in": 60, "scope": f"a {SECRET}"},
    )
    auth = OAuthClientCredentials(
        "test-client", SECRET, token_url=TOKEN_URL, audience="https://api.clarify.io/v1/"
    )

    token = auth.token()

    assert SECRET not in repr(token)
    assert token.scope == "a **********"


@pytest.mark.parametrize("phase", ["headers", "body", "reused"])
def test_abandoned_requests_attempts_leave_no_thread_or_connection(phase):
    """Four fetches over requests that time out on a trickling server leave nothing behind."""
    with TricklingServer(phase) as server:
        url = f"http://127.0.0.1:{server.port}"
        auth = oauth_for(url, deadline=3, timeout=0.3, attempts=2 if phase == "reused" else 1)
        before = threads_alive()

        for _ in range(4):
            with pytest.raises(TokenError, match="timed out"):
                auth.token()
        still_open = server.wait_all_closed(within=1.5)
        give_up_at = time.monotonic() + 1
        while threads_alive() - before and time.monotonic() < give_up_at:
            time.sleep(0.02)
        after = threads_alive()

    if phase == "reused":  # most retries go on the kept-alive connection; one must
        assert server.reused >= 1
        assert 4 <= server.accepted <= 8
    else:
        assert server.accepted == 4
    assert still_open == 0
    assert after - before == set()
