"""httpx clients send token requests through their own transport, and async ones with no thread."""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

import anyio
import anyio.to_thread
import httpx
import pytest

from _network import ForwardProxy, PrivateCA, TricklingServer, threads_alive
from clarify_auth import Authenticator, Credentials, TokenError
from clarify_auth.httpx import AsyncClient, ClarifyAuth, Client
from clarify_auth.testing import FakeClarify
from clarify_auth.transports.httpx import token_requests
from conftest import oauth_dict

if TYPE_CHECKING:
    from collections.abc import Iterator

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
PROXY_VARIABLES += tuple(name.lower() for name in PROXY_VARIABLES)


@pytest.fixture(autouse=True)
def no_proxy_from_the_machine(monkeypatch):
    """The machine's own proxy settings stay out of these tests."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


@pytest.fixture
def proxy():
    with ForwardProxy() as running:
        yield running


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return PrivateCA(tmp_path_factory.mktemp("pki"))


def tls_fake(ca: PrivateCA) -> FakeClarify:
    """A FakeClarify serving https with a certificate from the private CA."""
    cert, key = ca.issue("server", server=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    fake = FakeClarify()
    fake._server.socket = context.wrap_socket(fake._server.socket, server_side=True)
    fake.url = fake.url.replace("http://", "https://")
    fake.api_url = fake.api_url.replace("http://", "https://")
    return fake


TOKEN = {"access_token": "mock-token-1", "token_type": "Bearer", "expires_in": 3600}
RPC_OK = {"jsonrpc": "2.0", "id": 1, "result": {"ok": True}}


class Recorder:
    """A MockTransport's handler that records every request and answers token and RPC."""

    def __init__(self, token_status: int = 200) -> None:
        self.requests: list[httpx.Request] = []
        self.token_status = token_status

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path.endswith("/oauth/token"):
            if self.token_status != 200:
                return httpx.Response(self.token_status, headers={"Location": "https://x.test/"})
            return httpx.Response(200, json=TOKEN)
        return httpx.Response(200, json=RPC_OK)

    def token_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path.endswith("/oauth/token")]


def creds_for(api_url: str) -> Credentials:
    return Credentials.from_dict(oauth_dict(apiUrl=api_url))


def https_creds(fake: FakeClarify) -> Credentials:
    return Credentials.from_dict(fake.credentials_dict())


# -- what goes on the wire -------------------------------------------------------------------------


def test_the_token_request_goes_through_transport_with_exact_wire_details(oauth_creds):
    """transport= carries the token request: POST, the form, our headers and no client ones."""
    recorder = Recorder()
    hooked: list[str] = []

    def hook(request: httpx.Request) -> None:
        hooked.append(str(request.url))

    with Client(
        oauth_creds,
        transport=httpx.MockTransport(recorder),
        headers={"X-Custom": "mine"},
        cookies={"session": "c"},
        event_hooks={"request": [hook]},
    ) as client:
        client.rpc("clarify.selectItems")

    (token,) = recorder.token_requests()
    secret = oauth_creds.credentials.client_secret.get_secret_value()
    assert token.method == "POST"
    assert str(token.url) == oauth_creds.token_url
    assert {k.lower(): v for k, v in token.headers.items()} == {
        "host": "api.clarify.io",
        "content-type": "application/x-www-form-urlencoded",
        "accept": "application/json",
        "accept-encoding": "identity",
        "user-agent": token_requests.USER_AGENT,
        "content-length": str(len(token.content)),
    }
    assert parse_qs(token.content.decode()) == {
        "grant_type": ["client_credentials"],
        "client_id": ["test-client"],
        "client_secret": [secret],
        "audience": [oauth_creds.api_url],
    }
    assert hooked == [oauth_creds.api_url + "rpc"]  # the token request is not in the hooks
    assert recorder.requests[-1].headers["Authorization"] == "Bearer mock-token-1"


@pytest.mark.anyio
async def test_the_async_token_request_goes_through_transport(oauth_creds):
    """AsyncClient's transport= carries its token request too."""
    recorder = Recorder()

    async with AsyncClient(oauth_creds, transport=httpx.MockTransport(recorder)) as client:
        await client.rpc("clarify.selectItems")

    assert len(recorder.token_requests()) == 1
    assert recorder.requests[-1].headers["Authorization"] == "Bearer mock-token-1"


def test_a_redirect_from_the_token_endpoint_is_never_followed(oauth_creds):
    """A 302 to the token request is a TokenError; nothing goes to where it points."""
    recorder = Recorder(token_status=302)
    auth = Authenticator.from_credentials(oauth_creds, attempts=1)

    with (
        Client(oauth_creds, authenticator=auth, transport=httpx.MockTransport(recorder)) as client,
        pytest.raises(TokenError, match="redirect"),
    ):
        client.rpc("clarify.selectItems")

    assert [str(r.url) for r in recorder.requests] == [oauth_creds.token_url]


def test_httpx_still_has_the_private_transport_chooser():
    """httpx's Client._transport_for_url exists and honours mounts (pinned: we rely on it)."""
    mounted = httpx.MockTransport(Recorder())

    with httpx.Client(mounts={"https://api.clarify.io": mounted}) as client:
        chosen = token_requests.transport_for(client, "https://api.clarify.io/v1/oauth/token")
        other = token_requests.transport_for(client, "https://elsewhere.test/")

    assert hasattr(httpx.Client, "_transport_for_url")
    assert hasattr(httpx.AsyncClient, "_transport_for_url")
    assert chosen is mounted
    assert other is not mounted


def test_clarify_auth_bound_to_a_plain_client_uses_its_transport(oauth_creds):
    """ClarifyAuth(..., client=) sends the token request through that client's transport."""
    recorder = Recorder()
    authenticator = Authenticator.from_credentials(oauth_creds)

    with httpx.Client(transport=httpx.MockTransport(recorder)) as client:
        client.auth = ClarifyAuth(authenticator, client=client)
        client.post(oauth_creds.api_url + "rpc", json={})

    assert len(recorder.token_requests()) == 1


def test_bind_refuses_what_is_not_an_httpx_client(oauth_creds):
    """bind() takes an httpx.Client or AsyncClient only."""
    auth = ClarifyAuth(Authenticator.from_credentials(oauth_creds))

    with pytest.raises(TypeError, match=r"httpx\.Client"):
        auth.bind(object())  # type: ignore[arg-type]


# -- the client's network settings --------------------------------------------------------------


def test_verify_as_an_ssl_context_applies_to_the_token_request(ca):
    """verify=SSLContext trusting a private CA carries the token request over TLS too."""
    context = ssl.create_default_context(cafile=str(ca.path))

    with tls_fake(ca) as fake, Client(https_creds(fake), verify=context) as client:
        client.rpc("clarify.selectItems")

        assert fake.token_requests == 1
        assert fake.rpc_calls == 1


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_http2_carries_the_token_request_too(ca, kind):
    """A client with http2=True sends its token request over HTTP/2, like its API calls."""
    pytest.importorskip("h2")
    from _http2 import Http2Server

    cert, key = ca.issue("h2-server", server=True)
    context = ssl.create_default_context(cafile=str(ca.path))
    with Http2Server(str(cert), str(key)) as server:
        creds = creds_for(server.api_url)
        if kind == "sync":
            with Client(creds, verify=context, http2=True) as client:
                result = client.rpc("clarify.selectItems")
        else:

            async def call() -> object:
                async with AsyncClient(creds, verify=context, http2=True) as client:
                    return await client.rpc("clarify.selectItems")

            result = anyio.run(call)

    assert result == {"ok": True}
    assert [(seen.protocol, seen.method, seen.path) for seen in server.seen] == [
        ("h2", "POST", "/v1/oauth/token"),
        ("h2", "POST", "/v1/rpc"),
    ]
    assert server.seen[0].form["grant_type"] == "client_credentials"


def test_a_client_without_http2_cannot_reach_an_http2_only_token_endpoint(ca):
    """Against an HTTP/2-only server a plain client's token request fails (so h2 was needed above)."""
    pytest.importorskip("h2")
    from _http2 import Http2Server

    cert, key = ca.issue("h2-only", server=True)
    context = ssl.create_default_context(cafile=str(ca.path))
    with Http2Server(str(cert), str(key)) as server:
        creds = creds_for(server.api_url)
        auth = Authenticator.from_credentials(creds, attempts=1)
        with Client(creds, verify=context, authenticator=auth) as client, pytest.raises(TokenError):
            client.rpc("clarify.selectItems")

    assert server.seen == []


def test_a_certificate_the_client_does_not_trust_is_a_tls_token_error(ca):
    """Without the private CA the token request fails as a TLS error, at once."""
    with tls_fake(ca) as fake, Client(https_creds(fake)) as client:
        with pytest.raises(TokenError, match="TLS error"):
            client.rpc("clarify.selectItems")

        assert fake.rpc_calls == 0


def test_the_clients_proxy_carries_the_token_request(fake, proxy):
    """proxy= sends the token request through the proxy, like the API call."""
    with Client(fake.credentials(), proxy=proxy.url) as client:
        client.rpc("clarify.selectItems")

    assert proxy.count("POST", "/v1/oauth/token") == 1
    assert proxy.count("POST", "/v1/rpc") == 1


def test_a_mount_carries_the_token_request(fake, proxy):
    """mounts= for the API's origin applies to the token request."""
    mounts = {fake.url: httpx.HTTPTransport(proxy=proxy.url)}

    with Client(fake.credentials(), mounts=mounts) as client:
        client.rpc("clarify.selectItems")

    assert proxy.count("POST", "/v1/oauth/token") == 1


@pytest.mark.parametrize("trust_env", [True, False], ids=["trust-env", "no-trust-env"])
def test_trust_env_decides_whether_https_proxy_carries_the_token_request(
    ca, proxy, monkeypatch, trust_env
):
    """HTTPS_PROXY carries the token request only when trust_env is on."""
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    context = ssl.create_default_context(cafile=str(ca.path))

    with (
        tls_fake(ca) as fake,
        Client(https_creds(fake), verify=context, trust_env=trust_env) as client,
    ):
        client.rpc("clarify.selectItems")
        port = fake.api_url.split(":")[2].split("/")[0]

        assert fake.token_requests == 1
    assert (proxy.count("CONNECT", port) > 0) is trust_env


def test_the_secret_reaches_no_log_record_at_debug(fake, caplog):
    """httpx and httpcore DEBUG logging of a token request shows no secret and no token."""
    for name in ("httpx", "httpcore", "clarify_auth", ""):
        caplog.set_level(logging.DEBUG, logger=name)
    creds = fake.credentials()

    with Client(creds) as client:
        client.rpc("clarify.selectItems")
        token = client.authenticator.token().access_token.get_secret_value()

    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "send_request_body" in text  # httpcore did log the token request
    assert creds.credentials.client_secret.get_secret_value() not in text
    assert token not in text


# -- async: no thread, one flight, cancellation, loops -------------------------------------------


@pytest.mark.anyio
async def test_an_async_fetch_starts_no_thread(fake, monkeypatch):
    """During an async token fetch no thread is started and anyio's worker is never asked."""
    fake.token_latency = 0.3
    seen: set[int | None] = set()
    await anyio.sleep(0.05)  # trio's test runner starts a thread of its own as it begins
    before = threads_alive()

    async def no_worker(*args: object, **kwargs: object) -> None:
        raise AssertionError("a worker thread was asked for")

    monkeypatch.setattr(anyio.to_thread, "run_sync", no_worker)
    done = anyio.Event()

    async def watch() -> None:
        with anyio.fail_after(10):
            while not done.is_set():
                seen.update(threads_alive())
                await anyio.sleep(0.005)

    async with AsyncClient(fake.credentials()) as client, anyio.create_task_group() as tasks:
        tasks.start_soon(watch)
        await client.rpc("clarify.selectItems")
        done.set()

    assert fake.token_requests == 1
    names = {t.ident: t.name for t in threading.enumerate()}
    assert {names.get(ident, ident) for ident in seen - before} == set()


@pytest.mark.anyio
async def test_32_tasks_share_one_token_request(fake):
    """Thirty-two tasks that need a token at once cost one token request."""
    fake.token_latency = 0.2

    async with AsyncClient(fake.credentials()) as client, anyio.create_task_group() as tasks:
        for _ in range(32):
            tasks.start_soon(client.rpc, "clarify.selectItems")

    assert fake.token_requests == 1
    assert fake.rpc_calls == 32


@pytest.mark.anyio
async def test_tasks_and_threads_share_one_token_request(fake):
    """Sixteen tasks on an AsyncClient and eight threads on a Client share one fetch."""
    fake.token_latency = 0.3
    failures: list[BaseException] = []

    def in_thread(client: Client) -> None:
        try:
            client.rpc("clarify.selectItems")
        except BaseException as exc:
            failures.append(exc)

    with Client(fake.credentials()) as sync_client:
        threads = [threading.Thread(target=in_thread, args=(sync_client,)) for _ in range(8)]
        async with AsyncClient(fake.credentials()) as client:
            async with anyio.create_task_group() as tasks:
                for _ in range(16):
                    tasks.start_soon(client.rpc, "clarify.selectItems")
                await anyio.sleep(0.05)
                for thread in threads:
                    thread.start()
            for thread in threads:
                thread.join(10)

    assert failures == []
    assert fake.token_requests == 1
    assert fake.rpc_calls == 24


@pytest.mark.anyio
async def test_a_cancelled_waiter_never_cancels_the_fetch(fake):
    """A waiter cancelled mid-fetch stops at once; the leader and the other waiters get the token."""
    fake.token_latency = 0.4
    results: list[object] = []

    async def call() -> None:
        results.append(await client.rpc("clarify.selectItems"))

    async def impatient() -> None:
        with anyio.move_on_after(0.1):
            await client.rpc("clarify.selectItems")

    async with AsyncClient(fake.credentials()) as client, anyio.create_task_group() as tasks:
        tasks.start_soon(call)
        await anyio.sleep(0.02)
        tasks.start_soon(impatient)
        for _ in range(4):
            tasks.start_soon(call)

    assert len(results) == 5
    assert fake.token_requests == 1


@pytest.mark.anyio
async def test_cancelling_the_starter_breaks_no_task_or_thread(fake):
    """Cancel the task that started the fetch: waiting tasks and a waiting thread get a token."""
    fake.token_latency = 0.4
    results: list[object] = []
    failures: list[BaseException] = []

    def in_thread(client: Client) -> None:
        try:
            results.append(client.rpc("clarify.selectItems"))
        except BaseException as exc:
            failures.append(exc)

    async def call() -> None:
        results.append(await client.rpc("clarify.selectItems"))

    with Client(fake.credentials()) as sync_client:
        thread = threading.Thread(target=in_thread, args=(sync_client,))
        async with AsyncClient(fake.credentials()) as client:
            async with anyio.create_task_group() as tasks:
                starter = anyio.CancelScope()
                tasks.start_soon(_run_in_scope, starter, client)
                await anyio.sleep(0.05)
                for _ in range(4):
                    tasks.start_soon(call)
                thread.start()
                await anyio.sleep(0.1)
                starter.cancel()
            thread.join(10)

    assert failures == []
    assert len(results) == 5
    assert fake.token_requests == 2  # the starter's died with it; one waiter led anew


async def _run_in_scope(scope: anyio.CancelScope, client: AsyncClient) -> None:
    with scope:
        await client.rpc("clarify.selectItems")


def test_one_async_client_serves_two_event_loops_in_turn(fake):
    """asyncio.run twice with one AsyncClient: each loop fetches on its own loop and works."""
    client = AsyncClient(fake.credentials())

    async def once() -> object:
        client.authenticator.invalidate()
        return await client.rpc("clarify.selectItems")

    first = asyncio.run(once())
    second = asyncio.run(once())
    asyncio.run(client.aclose())

    assert first == second
    assert fake.token_requests == 2


# -- nothing outlives an attempt ----------------------------------------------------------------


@pytest.fixture(params=["headers", "body"])
def trickling(request) -> Iterator[TricklingServer]:
    with TricklingServer(request.param) as server:
        yield server


def _slow_auth(server: TricklingServer) -> tuple[Credentials, Authenticator]:
    creds = creds_for(f"http://127.0.0.1:{server.port}/v1/")
    return creds, Authenticator.from_credentials(creds, timeout=0.3, attempts=1, deadline=1)


def test_abandoned_sync_attempts_leave_no_thread_or_connection(trickling):
    """Four sync fetches that time out on a trickling server leave no thread and no socket."""
    creds, auth = _slow_auth(trickling)
    before = threads_alive()

    with Client(creds, authenticator=auth) as client:
        for _ in range(4):
            started = time.monotonic()
            with pytest.raises(TokenError, match="timed out"):
                client.rpc("clarify.selectItems")
            assert time.monotonic() - started < 3

        still_open = trickling.wait_all_closed(within=1.5)
        time.sleep(0.05)
        after = threads_alive()

    assert trickling.accepted == 4
    assert still_open == 0
    assert after - before == set()


@pytest.mark.anyio
async def test_abandoned_async_attempts_leave_no_thread_or_connection(trickling):
    """Four async fetches that time out on a trickling server leave no thread and no socket."""
    creds, auth = _slow_auth(trickling)
    await anyio.sleep(0.05)  # trio's test runner starts a thread of its own as it begins
    before = threads_alive()

    async with AsyncClient(creds, authenticator=auth) as client:
        for _ in range(4):
            with anyio.fail_after(3), pytest.raises(TokenError, match="timed out"):
                await client.rpc("clarify.selectItems")
        give_up_at = time.monotonic() + 1.5
        while trickling.open and time.monotonic() < give_up_at:  # noqa: ASYNC110 - a count on server threads
            await anyio.sleep(0.02)
        after = threads_alive()

    assert trickling.accepted == 4
    assert trickling.open == 0
    assert after - before == set()


@pytest.mark.anyio
async def test_async_and_sync_clients_share_a_token_through_a_store(fake, tmp_path):
    """With a file store, an async fetch stores the token; a sync client of a new process uses it."""
    from clarify_auth import FileTokenCache
    from clarify_auth.testing import forget_shared_tokens

    cache = FileTokenCache(tmp_path / "tokens")

    first = AsyncClient(fake.credentials(), token_cache=cache)
    second = AsyncClient(fake.credentials(), token_cache=cache)
    async with first:
        await first.rpc("clarify.selectItems")
    forget_shared_tokens()  # as if another process
    async with second:
        await second.rpc("clarify.selectItems")
    forget_shared_tokens()
    with Client(fake.credentials(), token_cache=cache) as sync_client:
        sync_client.rpc("clarify.selectItems")

    assert fake.token_requests == 1
    assert fake.rpc_calls == 3


@pytest.mark.anyio
async def test_a_store_lock_taken_by_a_cancelled_fetch_is_released(fake, tmp_path):
    """Cancel an async fetch that holds the store's lock: the next fetch is not held up by it."""
    from clarify_auth import FileTokenCache

    fake.token_latency = 0.5
    cache = FileTokenCache(tmp_path / "tokens", lock_timeout=5)

    async with AsyncClient(fake.credentials(), token_cache=cache) as client:
        with anyio.move_on_after(0.2):
            await client.rpc("clarify.selectItems")
        fake.token_latency = 0.0
        started = time.monotonic()
        await client.rpc("clarify.selectItems")

    assert time.monotonic() - started < 3  # not the 5 s of a lock left held
    assert fake.token_requests == 2


@pytest.mark.anyio
async def test_a_401_on_an_async_client_with_a_store_fetches_once_more(fake, tmp_path):
    """A revoked token is dropped (from the store too) and replaced, on the loop."""
    from clarify_auth import FileTokenCache

    async with AsyncClient(fake.credentials(), token_cache=FileTokenCache(tmp_path)) as client:
        await client.rpc("clarify.selectItems")
        fake.revoke_tokens()
        await client.rpc("clarify.selectItems")

    assert fake.token_requests == 2


def _raising(exc: Exception) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return httpx.MockTransport(handler)


def _huge(request: httpx.Request) -> httpx.Response:
    from clarify_auth.tokens.exchange import MAX_BODY_BYTES

    return httpx.Response(200, content=b"x" * (MAX_BODY_BYTES + 1))


TRANSPORT_FAILURES = [
    pytest.param(_raising(httpx.ConnectError("refused")), "connection failed", id="connect"),
    pytest.param(_raising(httpx.ReadTimeout("slow")), "timed out", id="read-timeout"),
    pytest.param(_raising(httpx.UnsupportedProtocol("x")), "connection failed", id="protocol"),
    pytest.param(_raising(ValueError("odd")), r"failed \(ValueError\)", id="other"),
    pytest.param(httpx.MockTransport(_huge), "KiB", id="too-large"),
]


@pytest.mark.parametrize(("transport", "message"), TRANSPORT_FAILURES)
def test_a_sync_transport_failure_is_a_token_error(oauth_creds, transport, message):
    """Each way the client's transport fails becomes the exchange's TokenError."""
    auth = Authenticator.from_credentials(oauth_creds, attempts=1)

    with (
        Client(oauth_creds, authenticator=auth, transport=transport) as client,
        pytest.raises(TokenError, match=message),
    ):
        client.rpc("clarify.selectItems")


@pytest.mark.anyio
@pytest.mark.parametrize(("transport", "message"), TRANSPORT_FAILURES)
async def test_an_async_transport_failure_is_a_token_error(oauth_creds, transport, message):
    """Each way the async client's transport fails becomes the exchange's TokenError."""
    auth = Authenticator.from_credentials(oauth_creds, attempts=1)

    async with AsyncClient(oauth_creds, authenticator=auth, transport=transport) as client:
        with pytest.raises(TokenError, match=message):
            await client.rpc("clarify.selectItems")


@pytest.mark.anyio
async def test_an_async_fetch_retries_on_the_loop(fake):
    """A 503 then a token: the async fetch sleeps on the loop and tries again."""
    fake.fail_token_requests(1, status=503)

    async with AsyncClient(fake.credentials()) as client:
        await client.rpc("clarify.selectItems")

    assert fake.token_requests == 2


def test_an_authenticator_with_its_own_session_keeps_using_it(fake):
    """authenticator=...(session=requests.Session()) sends token requests through that session."""
    import requests

    recorder = Recorder()
    with requests.Session() as session:
        auth = Authenticator.from_credentials(fake.credentials(), session=session)
        transport = httpx.MockTransport(recorder)

        with Client(fake.credentials(), authenticator=auth, transport=transport) as client:
            client.rpc("clarify.selectItems")

    assert fake.token_requests == 1
    assert recorder.token_requests() == []


def test_a_sync_attempt_on_a_reused_connection_is_cut_in_time():
    """A retry on a kept-alive connection that then trickles is cut at its bound, socket closed."""
    with TricklingServer("reused") as server:
        creds = creds_for(f"http://127.0.0.1:{server.port}/v1/")
        auth = Authenticator.from_credentials(creds, timeout=0.3, attempts=2, deadline=3)
        before = threads_alive()

        with Client(creds, authenticator=auth) as client:
            started = time.monotonic()
            with pytest.raises(TokenError, match="timed out"):
                client.rpc("clarify.selectItems")
            elapsed = time.monotonic() - started
            still_open = server.wait_all_closed(within=1.5)
            after = threads_alive()

    assert server.accepted == 1  # the retry went on the same connection
    assert elapsed < 2.5
    assert still_open == 0
    assert after - before == set()


def test_a_bound_clarify_auth_pickles_unbound(oauth_creds):
    """A pickled ClarifyAuth leaves its client behind; the copy fetches through requests."""
    import pickle

    with httpx.Client() as client:
        auth = ClarifyAuth(Authenticator.from_credentials(oauth_creds), client=client)
        copy = pickle.loads(pickle.dumps(auth))

    assert copy._native(httpx.Client) is None
    assert auth._native(httpx.Client) is not None
