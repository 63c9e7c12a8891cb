"""RedisTokenCache against a real redis-server: entries, key names, and a hostile Redis."""

from __future__ import annotations

import logging
import pickle
import subprocess
import sys
import time

import pytest

pytest.importorskip("redis")
pytest.importorskip("cryptography")

import clarify_auth
from _redis import PASSWORD, RedisServer, require_redis_server
from clarify_auth import (
    ConfigurationError,
    OAuthClientCredentials,
    RedisTokenCache,
    StoredToken,
    StoreKey,
)
from clarify_auth.testing import FakeClarify, forget_shared_tokens
from conftest import SRC

require_redis_server()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    redis_server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield redis_server
    redis_server.stop()


@pytest.fixture
def redis_client(server):
    client = server.client()
    client.flushall()
    return client


@pytest.fixture
def fake():
    forget_shared_tokens()
    with FakeClarify() as clarify:
        yield clarify
    forget_shared_tokens()


def key_for(fake):
    creds = fake.credentials()
    return StoreKey(
        creds.token_url,
        creds.credentials.client_id,
        creds.api_url,
        creds.credentials.client_secret,
    )


def stored(name="test-token-redis", expires_in=3600.0, refresh_in=2700.0):
    token = clarify_auth.AccessToken(access_token=name, expires_in=3600)
    return StoredToken(token, refresh_in=refresh_in, expires_in=expires_in)


def warnings_in(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_an_entry_round_trips_with_its_lifetime_from_redis(server, redis_client, fake):
    """save then load gives the token back; its deadlines come from Redis's own TTL."""
    store = RedisTokenCache(server.url)
    key = key_for(fake)

    store.save(key, stored(expires_in=100.0, refresh_in=70.0))
    redis_client.pexpire(store._entry_keys(key).entry, 50_000)  # Redis's clock is the one
    loaded = store.load(key)

    assert loaded is not None
    assert loaded.token.access_token.get_secret_value() == "test-token-redis"
    assert 49.0 < loaded.expires_in <= 50.0
    assert 19.0 < loaded.refresh_in <= 20.0
    remaining = loaded.token.expires_at.timestamp() - time.time()
    assert 50 < remaining < 3600  # the token's own end lies past the entry's


def test_nothing_in_redis_reveals_the_client_token_or_secret(server, redis_client, fake):
    """Key names hold no client ID, URL or host; values hold no token; both keys share a slot."""
    store = RedisTokenCache(server.url)
    key = key_for(fake)
    store.save(key, stored("test-token-plaintext"))
    with store.lock(key, hold=5) as held:
        names = [name.decode() for name in redis_client.keys("*")]
        values = [redis_client.get(name) for name in names]

    assert held is True
    assert len(names) == 2
    everything = " ".join(names) + " ".join(v.decode() for v in values)
    for clear in ("test-client", "127.0.0.1", str(fake.port), "oauth", "test-secret", "test-token"):
        assert clear not in everything
    tags = {name.split("{")[1].split("}")[0] for name in names}
    assert len(tags) == 1  # one hash tag: one Redis Cluster slot for entry and lock
    assert all(name.startswith("clarify-auth:v1:{") for name in names)


def test_every_key_expires_no_later_than_its_token(server, redis_client, fake):
    """The entry's TTL is the token's usable life; the lock's is bounded by the hold."""
    store = RedisTokenCache(server.url, lock_ttl=3)
    key = key_for(fake)
    store.save(key, stored(expires_in=42.0))
    with store.lock(key, hold=60):
        lock_ttl = redis_client.pttl(store._entry_keys(key).lock)
    entry_ttl = redis_client.pttl(store._entry_keys(key).entry)

    assert 41_000 < entry_ttl <= 42_000
    assert 0 < lock_ttl <= 3_000


def test_a_prefix_of_ones_own(server, redis_client, fake):
    """prefix= starts every key name."""
    store = RedisTokenCache(server.url, prefix="team-a")

    store.save(key_for(fake), stored())

    [name] = redis_client.keys("*")
    assert name.startswith(b"team-a:v1:{")


def test_another_secret_means_other_keys_and_no_token(server, redis_client, fake):
    """The same client with another secret finds nothing: no key ring, a new secret is new keys."""
    from pydantic import SecretStr

    store = RedisTokenCache(server.url)
    key = key_for(fake)
    store.save(key, stored())
    rotated = StoreKey(key.token_url, key.client_id, key.audience, SecretStr("test-secret-new"))

    assert store.load(rotated) is None
    assert store._entry_keys(rotated).entry != store._entry_keys(key).entry


def _plant(redis_client, store, key, value, *, ttl_ms=60_000):
    redis_client.set(store._entry_keys(key).entry, value, px=ttl_ms)


@pytest.mark.parametrize(
    ("plant", "reason"),
    [
        (lambda c, s, k: _plant(c, s, k, b"garbage"), "not an entry this version writes"),
        (lambda c, s, k: _plant(c, s, k, b"v1." + b"0" * 32 + b".AAAA"), "does not open"),
        (lambda c, s, k: _plant(c, s, k, b"x" * 100_000), "more than an entry"),
        (lambda c, s, k: c.hset(s._entry_keys(k).entry, "a", "b"), "is a Redis hash"),
        (lambda c, s, k: c.rpush(s._entry_keys(k).entry, "a"), "is a Redis list"),
        (
            lambda c, s, k: c.set(s._entry_keys(k).entry, s._entry_keys(k).seal(stored())[0]),
            "never expires",
        ),
    ],
    ids=["garbage", "forged", "huge", "hash", "list", "no-expiry"],
)
def test_anything_else_under_our_name_is_ignored_with_a_warning(
    server, redis_client, fake, caplog, plant, reason
):
    """Garbage, a forgery, a huge value, a key of another type or without TTL: a warning, a fetch."""
    store = RedisTokenCache(server.url)
    plant(redis_client, store, key_for(fake))
    auth = OAuthClientCredentials.from_credentials(fake.credentials(), token_cache=store)

    header = auth.authorization()

    assert header.startswith("Bearer fake-token-1-")
    assert fake.token_requests == 1
    assert any(reason in message for message in warnings_in(caplog)), warnings_in(caplog)
    assert store.load(key_for(fake)).token.access_token.get_secret_value() == header[7:]


def test_an_entry_altered_or_copied_under_another_key_is_refused(
    server, redis_client, fake, caplog
):
    """A flipped byte fails authentication; a valid entry copied to another client's key too."""
    from pydantic import SecretStr

    store = RedisTokenCache(server.url)
    key = key_for(fake)
    other = StoreKey(key.token_url, "test-client-other", key.audience, key.secret)
    store.save(key, stored("test-token-original"))
    name = store._entry_keys(key).entry
    value = redis_client.get(name)
    redis_client.set(store._entry_keys(other).entry, value, px=60_000)
    flipped = value[:-5] + (b"A" if value[-5:-4] != b"A" else b"B") + value[-4:]
    redis_client.set(name, flipped, px=60_000)
    assert SecretStr  # the other key differs only in its client ID

    assert store.load(key) is None
    assert store.load(other) is None
    messages = " ".join(warnings_in(caplog))
    assert messages.count("does not open with this secret's key") == 2


def test_a_lock_key_of_another_type_does_not_block_the_fetch(server, redis_client, fake, caplog):
    """A hash planted where the lock goes: no wait, one fetch, a warning."""
    store = RedisTokenCache(server.url, lock_timeout=10)
    redis_client.hset(store._entry_keys(key_for(fake)).lock, "a", "b")
    auth = OAuthClientCredentials.from_credentials(fake.credentials(), token_cache=store)
    started = time.monotonic()

    auth.authorization()

    assert time.monotonic() - started < 5  # not the 10 s lock_timeout
    assert fake.token_requests == 1
    assert any("not a lock" in message for message in warnings_in(caplog))


def test_a_lock_planted_without_expiry_is_given_one(server, redis_client, fake):
    """A lock string without TTL (never ours) gets the lock's TTL, so it cannot block for ever."""
    store = RedisTokenCache(server.url, lock_timeout=0.3, lock_ttl=2)
    name = store._entry_keys(key_for(fake)).lock
    redis_client.set(name, "someone")

    with store.lock(key_for(fake), hold=60) as held:
        pass

    assert held is False
    assert 0 < redis_client.pttl(name) <= 2000


def test_discard_removes_only_the_token_still_stored(server, redis_client, fake):
    """discard with the refused token removes it; with an older token it leaves the new one."""
    store = RedisTokenCache(server.url)
    key = key_for(fake)
    store.save(key, stored("test-token-new"))

    store.discard(key, "test-token-old")
    kept = store.load(key)
    store.discard(key, "test-token-new")

    assert kept.token.access_token.get_secret_value() == "test-token-new"
    assert store.load(key) is None


def test_a_token_in_the_process_costs_no_redis_round_trip(server, redis_client, fake):
    """After the first token, 200 requests send no command to Redis."""
    store = RedisTokenCache(server.url)
    with clarify_auth.ClarifySession(fake.credentials(), token_cache=store) as session:
        session.get("rpc")
        before = redis_client.info("stats")["total_commands_processed"]
        for _ in range(200):
            session.get("rpc")
        after = redis_client.info("stats")["total_commands_processed"]
        counters = session.authenticator.counters  # type: ignore[attr-defined]

    assert after - before == 1  # the INFO command itself
    assert counters.process_hits == 200
    assert counters.store == "redis"


def test_a_second_process_takes_the_token_from_redis(server, redis_client, fake):
    """A fresh process (a new interpreter) uses the token another one put in Redis."""
    first = OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=RedisTokenCache(server.url)
    )
    header = first.authorization()
    code = f"""
from clarify_auth import Credentials, OAuthClientCredentials, RedisTokenCache
creds = Credentials.from_dict({fake.credentials_dict()!r})
auth = OAuthClientCredentials.from_credentials(creds, token_cache=RedisTokenCache({server.url!r}))
print(auth.authorization(), auth.counters.store_hits, auth.counters.fetches)
"""

    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": SRC},
        check=True,
    )

    assert result.stdout.split() == [*header.split(), "1", "0"]
    assert fake.token_requests == 1


def test_the_environment_variable_turns_redis_on_everywhere(
    server, redis_client, fake, monkeypatch
):
    """CLARIFY_TOKEN_CACHE=redis://... : sessions and authenticators share one store per URL."""
    monkeypatch.setenv("CLARIFY_TOKEN_CACHE", server.url)
    first = OAuthClientCredentials.from_credentials(fake.credentials(), shared=False)
    with clarify_auth.ClarifySession(fake.credentials()) as session:
        store = session.authenticator.token_cache  # type: ignore[attr-defined]

    assert isinstance(first.token_cache, RedisTokenCache)
    assert store is first.token_cache
    first.authorization()
    assert redis_client.keys("clarify-auth:*")


@pytest.mark.parametrize(
    "value",
    ["redis://host:notaport/0", "rediss://:pw@[::1/0", "unix://"],
    ids=["port", "bracket", "unix-without-path"],
)
def test_a_malformed_redis_url_in_the_environment_names_the_variable(monkeypatch, fake, value):
    """A malformed URL is a ConfigurationError naming CLARIFY_TOKEN_CACHE, never the value."""
    monkeypatch.setenv("CLARIFY_TOKEN_CACHE", value)

    with pytest.raises(
        ConfigurationError, match=r"\$CLARIFY_TOKEN_CACHE: RedisTokenCache"
    ) as raised:
        OAuthClientCredentials.from_credentials(fake.credentials())

    assert "pw" not in str(raised.value)


def test_a_redis_url_without_the_extra_names_the_extra(monkeypatch, fake):
    """With redis or cryptography missing, the error says pip install 'clarify-auth[redis]'."""
    from clarify_auth.tokens.stores import redis_link as _redis_cache

    real = _redis_cache.importlib.util.find_spec
    monkeypatch.setattr(
        _redis_cache.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "cryptography" else real(name, *a),
    )

    with pytest.raises(ConfigurationError, match=r"pip install 'clarify-auth\[redis\]'") as raised:
        RedisTokenCache("redis://127.0.0.1/0")

    assert "cryptography is not installed" in str(raised.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "give a url or a client"),
        ({"url": "redis://h/0", "client": object()}, "give a url or a client"),
        ({"url": "http://h/0"}, "must start with redis://"),
        ({"url": 5}, "url must be a string"),
        ({"client": object()}, "synchronous redis-py client"),
        ({"url": "redis://h/0", "prefix": "a{b}"}, "prefix must be"),
        ({"url": "redis://h/0", "timeout": 0}, "timeout must be a positive number"),
        ({"url": "redis://h/0", "lock_timeout": True}, "lock_timeout must be"),
    ],
    ids=["none", "both", "scheme", "type", "client", "prefix", "timeout", "bool"],
)
def test_bad_settings_are_refused_by_name(kwargs, message):
    """Each bad setting is a ConfigurationError naming it."""
    with pytest.raises(ConfigurationError, match=message):
        RedisTokenCache(**kwargs)


def test_repr_and_logs_never_show_the_password(tmp_path, fake, caplog):
    """repr masks the URL's password; so does the outage warning."""
    store = RedisTokenCache(f"redis://fleet:{PASSWORD}@127.0.0.1:1/0")
    auth = OAuthClientCredentials.from_credentials(fake.credentials(), token_cache=store)

    auth.authorization()

    assert PASSWORD not in repr(store) + store.describe()
    assert "fleet:***@127.0.0.1:1" in repr(store)
    assert PASSWORD not in caplog.text
    assert "failed to read" in caplog.text


def test_a_store_pickles_as_its_settings_and_connects_where_unpickled(server, redis_client, fake):
    """The pickle holds no connection; the copy connects on first use, and shares the token."""
    store = RedisTokenCache(server.url, prefix="pickled", lock_timeout=3)
    session = clarify_auth.ClarifySession(fake.credentials(), token_cache=store)
    session.get("rpc")

    copy = pickle.loads(pickle.dumps(store))
    forget_shared_tokens()
    other = OAuthClientCredentials.from_credentials(fake.credentials(), token_cache=copy)

    assert copy._link._client is None
    assert (copy.prefix, copy.lock_timeout) == ("pickled", 3.0)
    assert other.authorization() == session.authenticator.authorization()
    assert fake.token_requests == 1
    session.close()


def test_a_store_built_from_a_client_works_and_refuses_to_pickle(server, redis_client, fake):
    """A ready redis-py client is used as given; pickling such a store says why it cannot."""
    store = RedisTokenCache(client=server.client())
    auth = OAuthClientCredentials.from_credentials(fake.credentials(), token_cache=store)

    auth.authorization()

    assert redis_client.keys("clarify-auth:*")
    assert "client=Redis" in repr(store)
    with pytest.raises(TypeError, match="build it from a URL"):
        pickle.dumps(store)


def test_a_forked_child_opens_its_own_connections(server, redis_client, fake):
    """After fork the child's store uses a new connection, never the parent's socket."""
    import os

    store = RedisTokenCache(server.url)
    store.load(key_for(fake))
    parent_id = store._redis().client_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.write(write, str(store._redis().client_id()).encode())
        finally:
            os._exit(0)
    os.close(write)
    child_id = int(os.read(read, 64))
    os.waitpid(pid, 0)

    assert child_id != parent_id
    assert store._redis().client_id() == parent_id


@pytest.mark.parametrize("kind", ["password", "acl", "tls"])
def test_managed_redis_forms_work(tmp_path, fake, kind):
    """A password, an ACL user, and TLS with a private CA (rediss://...?ssl_ca_certs=)."""
    server = RedisServer(
        tmp_path,
        password=PASSWORD if kind == "password" else None,
        acl=kind == "acl",
        tls=kind == "tls",
    )
    try:
        store = RedisTokenCache(server.url)
        auth = OAuthClientCredentials.from_credentials(
            fake.credentials(), token_cache=store, shared=False
        )
        header = auth.authorization()
        forget_shared_tokens()
        again = OAuthClientCredentials.from_credentials(
            fake.credentials(), token_cache=RedisTokenCache(server.url), shared=False
        )

        assert again.authorization() == header
        assert again.counters.store_hits == 1
        assert fake.token_requests == 1
    finally:
        server.stop()


# -- what the adversarial review found ------------------------------------------------------


def test_an_entry_set_back_with_a_longer_ttl_gains_nothing(server, redis_client, fake):
    """A replay: the same sealed value SET again with a week's TTL keeps its first TTL at most."""
    store = RedisTokenCache(server.url)
    key = key_for(fake)
    store.save(key, stored(expires_in=60.0, refresh_in=45.0))
    name = store._entry_keys(key).entry
    value = redis_client.get(name)

    redis_client.set(name, value, px=7 * 86_400_000)
    loaded = store.load(key)

    assert loaded is not None
    assert loaded.expires_in <= 60.0
    assert loaded.refresh_in <= 45.0


def test_an_entry_whose_token_died_long_ago_is_refused(server, redis_client, fake, caplog):
    """A sealed entry of a token that expired an hour ago, set back with any TTL: ignored."""
    from datetime import datetime, timedelta, timezone

    store = RedisTokenCache(server.url)
    key = key_for(fake)
    dead = clarify_auth.AccessToken(
        access_token="test-token-dead",
        expires_in=60,
        expires_at=datetime.now(timezone.utc) - timedelta(hours=1),
    )
    value, _ = store._entry_keys(key).seal(StoredToken(dead, refresh_in=45.0, expires_in=60.0))
    redis_client.set(store._entry_keys(key).entry, value, px=60_000)

    assert store.load(key) is None
    assert any("expired long ago" in message for message in warnings_in(caplog))


@pytest.mark.parametrize("days", [7, 30], ids=["a-week", "a-month"])
def test_tokens_that_live_for_days_are_shared(server, redis_client, fake, days):
    """A token the endpoint says lives a week or a month round-trips (kept a day at most)."""
    store = RedisTokenCache(server.url)
    key = key_for(fake)
    token = clarify_auth.AccessToken(access_token="test-token-long", expires_in=days * 86_400)
    store.save(key, StoredToken(token, refresh_in=86_000.0, expires_in=86_400.0))

    loaded = store.load(key)

    assert loaded is not None
    assert loaded.token.expires_at == token.expires_at
    assert 86_399 < loaded.expires_in <= 86_400


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:1/0?password=test-secret-query-pw",
        "unix:///nonexistent/redis.sock?db=0&password=test-secret-query-pw",
        "redis://fleet:test-secret-query%26pw@127.0.0.1:1/0",
    ],
    ids=["query", "unix-query", "percent-encoded"],
)
# redis-py 5.0 (the floor) leaves the socket of a failed unix connect unclosed.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_no_form_of_a_password_in_the_url_is_ever_shown(fake, caplog, url):
    """A password in the query string or percent-encoded: not in repr, describe() or the logs."""
    store = RedisTokenCache(url)

    OAuthClientCredentials.from_credentials(fake.credentials(), token_cache=store).authorization()

    shown = repr(store) + store.describe() + caplog.text + str(store.check(key_for(fake))[0])
    assert "test-secret-query" not in shown
    assert "failed to read" in caplog.text


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://127.0.0.1/0?socket_timeout=abc", "socket_timeout"),
        ("redis://127.0.0.1/0?socket_timeout=30", "would undo the store's own bounds"),
        ("redis://127.0.0.1/0?socket_connect_timeout=5", "socket_connect_timeout"),
        ("redis://127.0.0.1/0?db=notanumber", "db"),
    ],
    ids=["bad-value", "own-timeout", "connect-timeout", "bad-db"],
)
def test_url_options_that_break_or_undo_the_bounds_are_refused(monkeypatch, fake, url, message):
    """Options redis-py would choke on, or that undo the 0.2 s bound: ConfigurationError at once."""
    monkeypatch.setenv("CLARIFY_TOKEN_CACHE", url)

    with pytest.raises(ConfigurationError, match=message) as raised:
        OAuthClientCredentials.from_credentials(fake.credentials())

    assert "CLARIFY_TOKEN_CACHE" in str(raised.value)


def test_a_lock_planted_with_a_long_ttl_is_cut_to_the_locks_own(server, redis_client, fake):
    """A lock set to live 11 days delays a cold start by lock_ttl, not by lock_timeout."""
    store = RedisTokenCache(server.url, lock_timeout=10, lock_ttl=1)
    name = store._entry_keys(key_for(fake)).lock
    redis_client.set(name, "someone", px=1_000_000_000)
    auth = OAuthClientCredentials.from_credentials(fake.credentials(), token_cache=store)
    started = time.monotonic()

    auth.authorization()

    assert time.monotonic() - started < 5
    assert fake.token_requests == 1
    assert redis_client.pttl(name) <= 1000


def test_a_lock_key_of_another_type_is_replaced_so_sharing_goes_on(server, redis_client, fake):
    """After a hash took the lock's name, the next fetch takes a real lock; the next machine waits."""
    name = RedisTokenCache(server.url)._entry_keys(key_for(fake)).lock
    redis_client.hset(name, "a", "b")
    first = cold_machine(fake, RedisTokenCache(server.url))

    first.authorization()
    kind = redis_client.type(name)
    second = cold_machine(fake, RedisTokenCache(server.url))

    assert kind in (b"string", b"none")
    assert second.authorization() == first.authorization()
    assert fake.token_requests == 1


def cold_machine(fake, store):
    return OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=store, shared=False
    )


def test_a_waiter_keeps_waiting_when_the_old_entry_vanishes(server, redis_client, fake):
    """The entry disappears while the holder fetches: the waiter waits on, then takes the new one."""
    import threading

    key = key_for(fake)
    holder, waiter = RedisTokenCache(server.url), RedisTokenCache(server.url, lock_timeout=10)
    holder.save(key, stored("test-token-old"))
    outcome = {}

    def wait() -> None:
        with waiter.lock(key, hold=30) as held:
            outcome["held"], outcome["at"] = held, time.monotonic()

    with holder.lock(key, hold=30):
        thread = threading.Thread(target=wait)
        thread.start()
        time.sleep(0.2)
        holder.discard(key, "test-token-old")  # a 401 elsewhere, or its TTL ran out
        time.sleep(0.3)
        still_waiting = thread.is_alive()
        holder.save(key, stored("test-token-new"))
        saved_at = time.monotonic()
        thread.join(10)

    assert still_waiting
    assert outcome["held"] is False
    assert outcome["at"] >= saved_at
    assert waiter.load(key).token.access_token.get_secret_value() == "test-token-new"


def test_a_forked_child_can_warn_while_a_parent_thread_was_warning(fake):
    """The warnings' lock, held by a parent thread at fork time, is a new one in the child."""
    import os

    from clarify_auth.tokens.stores import protocol

    protocol._warned_lock.acquire()
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            try:
                protocol.warn_limited(("fork", "test"), 0, "a warning in the child")
            finally:
                os._exit(0)
        deadline, status = time.monotonic() + 10, None
        while status is None and time.monotonic() < deadline:
            done, code = os.waitpid(pid, os.WNOHANG)
            status = code if done else None
            time.sleep(0.01)
        if status is None:  # deadlocked: the bug this test is for
            os.kill(pid, 9)
            os.waitpid(pid, 0)
    finally:
        protocol._warned_lock.release()

    assert status is not None
    assert os.waitstatus_to_exitcode(status) == 0
