"""Redis outages cost nothing but the sharing: real faults of a real redis-server."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

pytest.importorskip("redis")
pytest.importorskip("cryptography")

import clarify_auth
from _redis import PASSWORD, RedisServer, require_redis_server
from clarify_auth import OAuthClientCredentials, RedisTokenCache
from clarify_auth.testing import FakeClarify, forget_shared_tokens

require_redis_server()

# Far below redis-py's own defaults (5 s and 10 retries in 8.x, for ever in 7.x).
BOUND_S = 2.0


@pytest.fixture
def server(tmp_path):
    redis_server = RedisServer(tmp_path)
    yield redis_server
    redis_server.stop()


@pytest.fixture
def fake():
    forget_shared_tokens()
    with FakeClarify() as clarify:
        yield clarify
    forget_shared_tokens()


def cold(fake, store):
    """A machine starting cold: a private process token, the shared store."""
    return OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=store, shared=False
    )


def timed_authorization(auth):
    started = time.monotonic()
    header = auth.authorization()
    return header, time.monotonic() - started


def warnings_in(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_redis_killed_then_back_one_warning_and_used_again(server, fake, caplog):
    """Killed: every cold machine fetches for itself, one warning; restarted: shared again."""
    caplog.set_level(logging.INFO, logger="clarify_auth")
    store = RedisTokenCache(server.url, retry_after=0.3)
    server.kill()

    results = [timed_authorization(cold(fake, store)) for _ in range(3)]
    outage_warnings = warnings_in(caplog)
    server.start()
    time.sleep(0.35)  # retry_after
    first = cold(fake, store)
    shared = first.authorization()
    again = cold(fake, store).authorization()

    assert all(header.startswith("Bearer fake-token-") for header, _ in results)
    assert max(took for _, took in results) < BOUND_S
    assert len(outage_warnings) == 1
    assert "failed to read" in outage_warnings[0]
    assert "each process fetches its own tokens until it is back" in outage_warnings[0]
    assert "is reachable again" in caplog.text
    assert again == shared
    assert fake.token_requests == 4
    assert first.counters.store_failures == 0


def test_redis_frozen_no_call_waits_long(server, fake, caplog):
    """SIGSTOP: the first cold call waits one timeout, later ones skip Redis; no exception."""
    store = RedisTokenCache(server.url, retry_after=30)
    store.load(cold(fake, store)._lifecycle.store_key)  # a pooled connection, as in service
    server.freeze()
    try:
        results = [timed_authorization(cold(fake, store)) for _ in range(5)]
    finally:
        server.thaw()

    assert all(header.startswith("Bearer fake-token-") for header, _ in results)
    assert max(took for _, took in results) < BOUND_S
    assert sum(took for _, took in results[1:]) < BOUND_S  # skipped, not waited for again
    assert len(warnings_in(caplog)) == 1
    assert "TimeoutError" in warnings_in(caplog)[0]


def test_a_wrong_password_is_a_warning_without_the_password(tmp_path, fake, caplog):
    """A Redis that refuses the password: requests work, the warning says why, never the password."""
    server = RedisServer(tmp_path, password=PASSWORD)
    try:
        url = server.url.replace(PASSWORD, "test-secret-wrong-password")
        store = RedisTokenCache(url)

        header, took = timed_authorization(cold(fake, store))

        assert header.startswith("Bearer fake-token-1-")
        assert took < BOUND_S
        [warning] = warnings_in(caplog)
        assert "AuthenticationError" in warning
        assert "test-secret-wrong-password" not in caplog.text
        assert PASSWORD not in caplog.text
    finally:
        server.stop()


def test_a_certificate_not_trusted_is_a_warning(tmp_path, fake, caplog):
    """rediss:// without the server's CA: the TLS failure is a warning; requests work."""
    server = RedisServer(tmp_path, tls=True)
    try:
        store = RedisTokenCache(server.url.split("?")[0])

        header, took = timed_authorization(cold(fake, store))

        assert header.startswith("Bearer fake-token-1-")
        assert took < BOUND_S
        [warning] = warnings_in(caplog)
        assert "CERTIFICATE_VERIFY_FAILED" in warning
    finally:
        server.stop()


def test_a_read_only_replica_refuses_the_write(tmp_path, server, fake, caplog):
    """A replica (read-only): the write fails with a warning, the request does not."""
    (tmp_path / "replica").mkdir()
    replica = RedisServer(
        tmp_path / "replica", extra=("--replicaof", "127.0.0.1", str(server.port))
    )
    try:
        store = RedisTokenCache(replica.url)

        header = cold(fake, store).authorization()

        assert header.startswith("Bearer fake-token-1-")
        assert any("ReadOnlyError" in w or "READONLY" in w for w in warnings_in(caplog))
    finally:
        replica.stop()


def test_redis_out_of_memory_refuses_the_write(server, fake, caplog):
    """maxmemory reached with noeviction: the write fails with a warning, the request does not."""
    admin = server.client()
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", "1")
    store = RedisTokenCache(server.url)

    header = cold(fake, store).authorization()

    assert header.startswith("Bearer fake-token-1-")
    assert any("OutOfMemoryError" in warning for warning in warnings_in(caplog))
    admin.config_set("maxmemory", "0")


def test_a_closed_port_costs_no_exception_through_a_session(fake, caplog):
    """Nothing listens where the URL points: a ClarifySession works as without a store."""
    store = RedisTokenCache("redis://127.0.0.1:1/0")
    with clarify_auth.ClarifySession(fake.credentials(), token_cache=store) as session:
        result = session.rpc("clarify.selectItems")

    assert result["data"] == []
    assert "ConnectionError" in " ".join(warnings_in(caplog))


def test_the_async_client_never_blocks_its_event_loop_on_redis(server, fake):
    """AsyncClient with Redis frozen: the loop keeps ticking while the token is fetched."""
    pytest.importorskip("httpx")
    import clarify_auth.httpx

    store = RedisTokenCache(server.url, timeout=1.0)
    store.load(cold(fake, store)._lifecycle.store_key)

    async def main():
        gaps = []

        async def tick():
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.01)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        ticker = asyncio.create_task(tick())
        async with clarify_auth.httpx.AsyncClient(fake.credentials(), token_cache=store) as client:
            result = await client.rpc("clarify.selectItems")
        ticker.cancel()
        return result, max(gaps)

    server.freeze()
    try:
        result, longest_gap = asyncio.run(main())
    finally:
        server.thaw()

    assert result["data"] == []
    assert longest_gap < 0.5  # Redis's 1 s timeout ran on a worker thread, not on the loop
