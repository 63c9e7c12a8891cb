"""A fleet on one real redis-server: machines are separate processes with separate HOMEs."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import pytest

pytest.importorskip("redis")
pytest.importorskip("cryptography")

from _redis import RedisServer, require_redis_server
from clarify_auth import OAuthClientCredentials, RedisTokenCache
from clarify_auth.testing import FakeClarify, forget_shared_tokens

require_redis_server()

CONTEXT = multiprocessing.get_context("spawn")


@pytest.fixture
def server(tmp_path):
    redis_server = RedisServer(tmp_path)
    yield redis_server
    redis_server.stop()


def _machine(credentials, url, home, barrier, out, options):
    """One machine: its own HOME, a cold process, one authorization (or a loop of them)."""
    os.environ["HOME"] = home
    os.environ["XDG_CACHE_HOME"] = f"{home}/.cache"
    from clarify_auth import Credentials

    store = RedisTokenCache(url, **options.get("store", {}))
    auth = OAuthClientCredentials.from_credentials(
        Credentials.from_dict(credentials), token_cache=store
    )
    if barrier is not None:
        barrier.wait(30)
    started = time.monotonic()
    headers = [auth.authorization()]
    until = started + options.get("run_s", 0.0)
    while time.monotonic() < until:
        time.sleep(0.02)
        headers.append(auth.authorization())
    counters = auth.counters
    out.put(
        (sorted(set(headers)), time.monotonic() - started, counters.fetches, counters.store_hits)
    )


def run_fleet(fake, server, tmp_path, count, *, wave="a", **options):
    barrier = CONTEXT.Barrier(count)
    out = CONTEXT.Queue()
    machines = []
    for number in range(count):
        home = tmp_path / f"home-{wave}{number}"
        home.mkdir()
        machine = CONTEXT.Process(
            target=_machine,
            args=(fake.credentials_dict(), server.url, str(home), barrier, out, options),
        )
        machine.start()
        machines.append(machine)
    results = [out.get(timeout=90) for _ in machines]
    for machine in machines:
        machine.join(30)
    return results


def test_machines_starting_cold_together_send_one_token_request(server, tmp_path):
    """8 machines released together: 1 token request; a second wave of 4: none."""
    with FakeClarify() as fake:
        fake.token_latency = 0.3

        first = run_fleet(fake, server, tmp_path, 8)
        after_first = fake.token_requests
        second = run_fleet(fake, server, tmp_path, 4, wave="b")

        assert after_first == 1
        assert fake.token_requests == 1
        assert len({headers[0] for headers, *_ in first + second}) == 1
        assert sorted(fetches for _, _, fetches, _ in first) == [0] * 7 + [1]
        assert all(hits == 1 for _, _, _, hits in second)


def test_at_the_refresh_point_one_fetch_serves_the_fleet(server, tmp_path):
    """4 machines calling for 3.5 s with 3 s tokens: the refresh is one token request for all."""
    with FakeClarify(token_lifetime=3) as fake:
        fake.token_latency = 0.2

        results = run_fleet(fake, server, tmp_path, 4, run_s=3.5)

        assert fake.token_requests == 2
        assert all(len(headers) == 2 for headers, *_ in results)  # everyone moved to the new one
        assert len({tuple(headers) for headers, *_ in results}) == 1
        assert sum(fetches for _, _, fetches, _ in results) == 2


def _die_holding_the_lock(credentials, url, home, started):
    """A machine that takes the fleet's lock, starts a token request and is killed."""
    os.environ["HOME"] = home
    from clarify_auth import Credentials

    store = RedisTokenCache(url, lock_ttl=1.0)
    auth = OAuthClientCredentials.from_credentials(
        Credentials.from_dict(credentials), token_cache=store
    )
    started.set()
    auth.authorization()  # the token endpoint is slow: the test kills us meanwhile


def test_a_fetcher_that_dies_blocks_the_others_no_longer_than_its_lock(server, tmp_path):
    """The lock holder is SIGKILLed mid-request: 4 waiters take over, at most 2 requests in all."""
    with FakeClarify() as fake:
        fake.token_latency = 30.0
        (tmp_path / "home-dead").mkdir()
        started = CONTEXT.Event()
        holder = CONTEXT.Process(
            target=_die_holding_the_lock,
            args=(fake.credentials_dict(), server.url, str(tmp_path / "home-dead"), started),
        )
        holder.start()
        assert started.wait(30)
        deadline = time.monotonic() + 30
        while fake.token_requests == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(10)
        fake.token_latency = 0.2

        results = run_fleet(fake, server, tmp_path, 4, store={"lock_ttl": 1.0})

        assert fake.token_requests == 2  # the dead one's and one taking over
        assert len({headers[0] for headers, *_ in results}) == 1
        assert max(waited for _, waited, _, _ in results) < 10  # bounded: lock_ttl, not 15 s


def test_a_waiter_gives_up_after_lock_timeout_and_fetches_itself(server, tmp_path):
    """A live holder that never finishes: the waiter fetches on its own after lock_timeout."""
    forget_shared_tokens()
    with FakeClarify() as fake:
        holder_store = RedisTokenCache(server.url, lock_ttl=30)
        waiter = OAuthClientCredentials.from_credentials(
            fake.credentials(),
            token_cache=RedisTokenCache(server.url, lock_timeout=0.5),
            shared=False,
        )
        from clarify_auth import StoreKey

        creds = fake.credentials()
        key = StoreKey(creds.token_url, creds.credentials.client_id, creds.api_url,
                       creds.credentials.client_secret)  # fmt: skip
        with holder_store.lock(key, hold=30) as held:
            started = time.monotonic()
            header = waiter.authorization()
            waited = time.monotonic() - started

        assert held is True
        assert header.startswith("Bearer fake-token-1-")
        assert 0.4 < waited < 10
        assert fake.token_requests == 1
    forget_shared_tokens()


def test_a_refused_token_is_replaced_once_for_the_fleet(server, tmp_path):
    """Two machines get 401 on the same token: one new token request between them."""
    import clarify_auth

    forget_shared_tokens()
    with FakeClarify() as fake:
        sessions = [
            clarify_auth.ClarifySession(
                fake.credentials(),
                authenticator=OAuthClientCredentials.from_credentials(
                    fake.credentials(), token_cache=RedisTokenCache(server.url), shared=False
                ),
            )
            for _ in range(2)
        ]
        for session in sessions:
            session.rpc("clarify.selectItems")
        fake.revoke_tokens()

        for session in sessions:
            session.rpc("clarify.selectItems")

        assert fake.token_requests == 2
        first, second = (s.authenticator.counters for s in sessions)  # type: ignore[attr-defined]
        assert (first.fetches, second.fetches) == (2, 0)
        assert second.store_hits == 2
        for session in sessions:
            session.close()
    forget_shared_tokens()
