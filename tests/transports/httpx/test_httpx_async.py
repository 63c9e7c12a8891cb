"""clarify_auth.httpx with httpx.AsyncClient: asyncio and trio, one flight, no loop bound."""

from __future__ import annotations

import asyncio
import json
import time

import anyio
import httpx
import pytest

import clarify_auth
import clarify_auth.transports.httpx.auth
from _hostile import rpc_in_a_child
from _loopback import LoopbackServer, Reply
from clarify_auth import (
    Authenticator,
    RPCError,
    TokenError,
)
from clarify_auth.httpx import AsyncClient, ClarifyAuth
from conftest import FakeClock


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


async def rpc_many(client: AsyncClient, count: int) -> list[object]:
    results: list[object] = [None] * count

    async def one(index: int) -> None:
        results[index] = await client.rpc("clarify.selectItems")

    async with anyio.create_task_group() as tasks:
        for index in range(count):
            tasks.start_soon(one, index)
    return results


@pytest.mark.anyio
async def test_async_client_rpc_returns_the_result(fake):
    """AsyncClient.rpc is awaitable and returns the result, with the same headers as Client."""
    fake.on("clarify.selectItems", result={"data": ["a"]})

    async with AsyncClient(fake.credentials()) as client:
        result = await client.rpc("clarify.selectItems", {"query": {}})

    seen = fake.requests[-1]
    assert result == {"data": ["a"]}
    assert seen.headers["Authorization"].startswith("Bearer ")
    assert seen.headers["X-API-Version"] == "1.1"
    assert str(client.base_url) == fake.api_url
    assert client.integration == "test-integration"


@pytest.mark.anyio
async def test_32_coroutines_on_a_cold_cache_cost_one_token_request(fake):
    """Thirty-two concurrent calls with no token yet share one token request."""
    fake.token_latency = 0.2

    async with AsyncClient(fake.credentials()) as client:
        results = await rpc_many(client, 32)

    assert len(results) == 32
    assert all(result == {"meta": results[0]["meta"], "data": []} for result in results)  # type: ignore[index]
    assert fake.token_requests == 1
    assert fake.rpc_calls == 32


@pytest.mark.anyio
async def test_a_revoked_token_is_replaced_once_for_all_coroutines(fake):
    """Eight calls refused with the same revoked token cost one new token, and all succeed."""
    async with AsyncClient(fake.credentials()) as client:
        await client.rpc("clarify.selectItems")
        fake.revoke_tokens()

        results = await rpc_many(client, 8)

    assert len(results) == 8
    assert fake.token_requests == 2
    assert fake.rpc_calls == 1 + 8 + 8


@pytest.mark.anyio
async def test_a_streamed_body_gets_the_401_and_the_next_call_a_new_token(fake):
    """An async generator body cannot be resent: 401 returned, token dropped, next call fine."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "clarify.selectItems"}).encode()

    async def chunks():
        yield body[:10]
        yield body[10:]

    async with AsyncClient(fake.credentials()) as client:
        await client.rpc("clarify.selectItems")
        fake.revoke_tokens()

        streamed = await client.post("rpc", content=chunks())
        after = await client.rpc("clarify.selectItems")

    assert streamed.status_code == 401
    assert after["data"] == []
    assert fake.token_requests == 2
    assert fake.rpc_calls == 3


@pytest.mark.anyio
async def test_the_event_loop_keeps_running_during_a_slow_token_request(fake):
    """While a token request takes 0.5 s, a ticker on the same loop ticks every 10 ms."""
    fake.token_latency = 0.5
    ticks = 0
    done = anyio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            await anyio.sleep(0.01)
            ticks += 1

    async with AsyncClient(fake.credentials()) as client, anyio.create_task_group() as tasks:
        tasks.start_soon(ticker)
        started = time.monotonic()
        await client.rpc("clarify.selectItems")
        elapsed = time.monotonic() - started
        done.set()

    assert elapsed >= 0.5
    assert ticks >= 20  # about 50 if nothing blocked; a blocked loop would tick about once


@pytest.mark.anyio
async def test_a_fresh_token_is_read_on_the_loop_without_a_worker_thread(fake, monkeypatch):
    """Once a token is held, a request takes it straight from the lifecycle, no thread hop."""
    async with AsyncClient(fake.credentials()) as client:
        await client.rpc("clarify.selectItems")

        async def no_threads(call: object) -> str:
            raise AssertionError("a worker thread was used on the hot path")

        monkeypatch.setattr(clarify_auth.transports.httpx.auth, "_on_worker_thread", no_threads)
        results = await rpc_many(client, 4)

    assert len(results) == 4
    assert fake.token_requests == 1


@pytest.mark.anyio
async def test_a_refresh_ahead_of_expiry_makes_only_its_leader_wait(fake):
    """Inside the refresh window one task refreshes on the loop; the others use the old token."""
    clock = FakeClock()
    auth = Authenticator.from_credentials(fake.credentials(), clock=clock, sleep=clock.sleep)
    waits: list[float] = []

    async def timed() -> None:
        started = time.monotonic()
        await client.rpc("clarify.selectItems")
        waits.append(time.monotonic() - started)

    async with AsyncClient(fake.credentials(), authenticator=auth) as client:
        await client.rpc("clarify.selectItems")
        fake.token_latency = 0.3
        clock.advance(3400)  # a 3600 s token is refreshed in its last 300 s
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(timed)
            await anyio.sleep(0.05)  # the first task leads the refresh
            for _ in range(4):
                tasks.start_soon(timed)
        await client.rpc("clarify.selectItems")

    headers = [r.headers["Authorization"] for r in fake.requests if r.path == "/v1/rpc"]
    assert sorted(waits)[:4] == [w for w in sorted(waits) if w < 0.2]  # four did not wait
    assert max(waits) >= 0.25  # the leader waited for its refresh
    assert headers[0] in headers[1:6]
    assert headers[-1] != headers[0]
    assert fake.token_requests == 2


@pytest.mark.anyio
async def test_a_cancelled_caller_stops_at_once_and_the_next_call_fetches_anew(fake):
    """A call cancelled during its token request returns at once; the next call gets a token."""
    fake.token_latency = 0.5

    async with AsyncClient(fake.credentials()) as client:
        started = time.monotonic()
        with anyio.move_on_after(0.1) as scope:
            await client.rpc("clarify.selectItems")
        waited = time.monotonic() - started
        await client.rpc("clarify.selectItems")

    assert scope.cancelled_caught
    assert waited < 0.4
    # The cancelled fetch died with its caller (its connection closed); the next led anew.
    assert fake.token_requests == 2
    assert fake.rpc_calls == 1


@pytest.mark.anyio
async def test_a_rejected_client_raises_token_error(fake):
    """Credentials the token endpoint refuses raise TokenError from rpc(), with its status."""
    fake.fail_token_requests(status=401)

    async with AsyncClient(fake.credentials()) as client:
        with pytest.raises(TokenError) as caught:
            await client.rpc("clarify.selectItems")

    assert caught.value.status_code == 401
    assert fake.rpc_calls == 0


@pytest.mark.anyio
async def test_rpc_errors_and_http_errors(fake):
    """A JSON-RPC error raises RPCError; a second 401 raises httpx.HTTPStatusError."""
    fake.on("clarify.insert", error={"code": -32602, "message": "Invalid params", "data": [1]})

    async with AsyncClient(fake.credentials()) as client:
        with pytest.raises(RPCError) as rpc_error:
            await client.rpc("clarify.insert")
        fake.reject_rpc_calls(2)
        with pytest.raises(httpx.HTTPStatusError) as http_error:
            await client.rpc("clarify.selectItems")

    assert (rpc_error.value.code, rpc_error.value.message, rpc_error.value.data) == (
        -32602,
        "Invalid params",
        [1],
    )
    assert http_error.value.response.status_code == 401
    assert fake.token_requests == 2


class LookedUpHeader(Authenticator):
    """A user's own authenticator whose authorization() may block (a vault lookup)."""

    def __init__(self, header: str) -> None:
        self.header = header
        self.threads: set[str] = set()

    def authorization(self) -> str:
        import threading

        self.threads.add(threading.current_thread().name)
        time.sleep(0.01)
        return self.header


@pytest.mark.anyio
async def test_a_custom_authenticator_is_asked_on_a_worker_thread(fake):
    """An Authenticator subclass may block in authorization(): it runs off the event loop."""
    import base64
    import threading

    pair = base64.b64encode(f"{fake.integration}:{fake.basic_password}".encode()).decode()
    custom = LookedUpHeader(f"Basic {pair}")

    async with AsyncClient(fake.credentials(), authenticator=custom) as client:
        await client.rpc("clarify.selectItems")

    assert fake.rpc_calls == 1
    assert threading.current_thread().name not in custom.threads


@pytest.mark.anyio
async def test_basic_auth_is_signed_and_not_retried(fake):
    """Basic credentials need no token request; a 401 is returned as is."""
    async with AsyncClient(fake.credentials("basic-auth")) as client:
        await client.rpc("clarify.selectItems")
        fake.reject_rpc_calls(1)
        with pytest.raises(httpx.HTTPStatusError):
            await client.rpc("clarify.selectItems")

    assert fake.token_requests == 0
    assert fake.rpc_calls == 2


@pytest.mark.anyio
async def test_another_origin_gets_no_credentials_and_its_401_costs_nothing(fake):
    """Requests to another port carry no Authorization, and its 401s touch no token."""
    other = LoopbackServer().start()
    other.routes["GET /harvest"] = lambda seen: Reply(401, {"error": "unauthorized"})
    try:
        async with AsyncClient(fake.credentials()) as client:
            await client.rpc("clarify.selectItems")
            statuses = [(await client.get(other.url + "/harvest")).status_code for _ in range(3)]
            await client.rpc("clarify.selectItems")
    finally:
        other.stop()

    assert statuses == [401] * 3
    assert not any("Authorization" in seen.headers for seen in other.seen)
    assert fake.token_requests == 1


# -- no event loop is bound: these tests start their own loops ------------------------------------------------------------------


def test_one_clarify_auth_across_repeated_asyncio_run(fake):
    """One ClarifyAuth serves concurrent calls in one asyncio.run() after another."""
    auth = ClarifyAuth(Authenticator.from_credentials(fake.credentials()))
    body = {"jsonrpc": "2.0", "id": 1, "method": "clarify.selectItems"}

    async def run_once() -> list[int]:
        async with httpx.AsyncClient(auth=auth) as client:
            responses = await asyncio.gather(
                *(client.post(fake.rpc_url, json=body) for _ in range(8))
            )
        return [response.status_code for response in responses]

    first = asyncio.run(run_once())
    fake.revoke_tokens()  # the second loop fetches anew, after a 401
    second = asyncio.run(run_once())
    third = asyncio.run(run_once())

    assert first == second == third == [200] * 8
    assert fake.token_requests == 2


def test_a_client_per_event_loop_costs_no_new_token(fake, tmp_path):
    """A new AsyncClient in each asyncio.run() takes the token the process already holds."""
    path = fake.write_credentials(tmp_path / "clarify-credentials.json")

    async def run_once() -> object:
        async with AsyncClient(path) as client:
            return await client.rpc("clarify.selectItems")

    results = [asyncio.run(run_once()) for _ in range(3)]

    assert results[0] == results[2]
    assert fake.token_requests == 1


def test_an_async_client_without_kept_connections_serves_repeated_asyncio_run(fake):
    """With no keep-alive connections, one AsyncClient serves one asyncio.run() after another."""
    client = AsyncClient(fake.credentials(), limits=httpx.Limits(max_keepalive_connections=0))

    first = asyncio.run(client.rpc("clarify.selectItems"))
    second = asyncio.run(client.rpc("clarify.selectItems"))
    asyncio.run(client.aclose())

    assert first == second
    assert fake.token_requests == 1


def test_one_async_client_serves_repeated_asyncio_run(fake):
    """The same AsyncClient, kept connections and all, works across asyncio.run() calls."""
    client = AsyncClient(fake.credentials())

    first = asyncio.run(client.rpc("clarify.selectItems"))
    second = asyncio.run(client.rpc("clarify.selectItems"))
    third = asyncio.run(rpc_many(client, 4))
    asyncio.run(client.aclose())

    assert first == second == third[0]
    assert fake.rpc_calls == 6
    assert fake.token_requests == 1


def test_one_async_client_serves_asyncio_then_trio(fake):
    """The same AsyncClient moves from an asyncio loop to a trio run and back."""
    client = AsyncClient(fake.credentials())

    async def once() -> object:
        return await client.rpc("clarify.selectItems")

    results = [
        anyio.run(once, backend="asyncio"),
        anyio.run(once, backend="trio"),
        anyio.run(once, backend="asyncio"),
    ]
    anyio.run(client.aclose, backend="asyncio")

    assert results[0] == results[1] == results[2]
    assert fake.token_requests == 1


def test_the_same_token_under_asyncio_and_trio(fake):
    """anyio.run on asyncio, then on trio: one token request, every call signed."""

    async def run_once() -> list[object]:
        async with AsyncClient(fake.credentials()) as client:
            return await rpc_many(client, 4)

    on_asyncio = anyio.run(run_once, backend="asyncio")
    on_trio = anyio.run(run_once, backend="trio")

    assert on_asyncio == on_trio
    assert fake.token_requests == 1
    assert fake.rpc_calls == 8


# -- attacks an adversarial review found, beside the behaviour they attack --


def test_async_client_serves_a_second_event_loop_after_run_until_complete(loopback):
    """AsyncClient serves a second hand-made loop when the first finalised its async generators."""
    loopback.routes["POST /v1/rpc"] = lambda _: Reply(200, {"jsonrpc": "2.0", "id": 1, "result": 7})
    assert rpc_in_a_child(loopback.url + "/v1/", "loops") == ["7", "7"]
