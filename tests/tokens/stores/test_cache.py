"""FileTokenCache: one token request for many processes, files that are never trusted blindly."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import pickle
import signal
import stat
import time
from datetime import datetime, timezone

import pytest

import clarify_auth
from clarify_auth import (
    ClarifySession,
    FileTokenCache,
    OAuthClientCredentials,
)
from clarify_auth.testing import FakeClarify
from conftest import SECRET

pytestmark = pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")


@pytest.fixture
def cache(tmp_path):
    return FileTokenCache(tmp_path / "tokens")


def cache_file(cache: FileTokenCache):
    files = list(cache.path.glob("*.json"))
    assert len(files) == 1, files
    return files[0]


def test_second_authenticator_reads_the_first_ones_token(fake, cache):
    """A token fetched by one authenticator is read, not fetched, by another using the cache."""
    first = OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=cache, shared=False
    )
    second = OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=cache, shared=False
    )

    header = first.authorization()

    assert second.authorization() == header
    assert fake.token_requests == 1


def test_cache_files_are_private_and_hold_no_secret(fake, cache):
    """The folder is 0700, the file 0600, written atomically, and the client secret is not in it."""
    OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=cache, shared=False
    ).token()

    file = cache_file(cache)
    assert stat.S_IMODE(cache.path.stat().st_mode) == 0o700
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert fake.client_secret not in file.read_text()
    assert fake.client_secret not in file.name
    assert not list(cache.path.glob(".tmp-*"))
    assert json.loads(file.read_text())["access_token"].startswith("fake-token-1-")


def test_key_depends_on_url_client_audience_and_secret():
    """Different endpoints, clients, audiences or secrets never share an entry."""
    from pydantic import SecretStr

    from clarify_auth.tokens.stores.protocol import StoreKey

    base = ("https://a/t", "c", "https://a/", SecretStr("test-secret-1"))
    keys = {
        StoreKey(*base).digest,
        StoreKey("https://b/t", *base[1:]).digest,
        StoreKey(base[0], "d", *base[2:]).digest,
        StoreKey(*base[:2], "https://b/", base[3]).digest,
        StoreKey(*base[:3], SecretStr("test-secret-2")).digest,
    }

    assert len(keys) == 5
    assert all("test-secret" not in k for k in keys)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda f: f.write_text("{not json"), "corrupt or truncated"),
        (lambda f: f.write_text(f.read_text()[:30]), "corrupt or truncated"),
        (lambda f: f.write_text(json.dumps({"version": 99})), "corrupt or truncated"),
        (
            lambda f: f.write_text(json.dumps({**json.loads(f.read_text()), "expires_at": "soon"})),
            "corrupt or truncated",
        ),
        (
            lambda f: f.write_text(
                json.dumps({**json.loads(f.read_text()), "expires_at": float("inf")})
            ),
            "corrupt or truncated",
        ),
        (lambda f: f.write_text("[]"), "corrupt or truncated"),
        (lambda f: f.chmod(0o644), "let other users read it"),
        (lambda f: os.chown(f, 65534, 65534), "owned by user 65534"),
    ],
    ids=[
        "not-json",
        "truncated",
        "other-version",
        "bad-deadline",
        "infinite-deadline",
        "array",
        "world-readable",
        "foreign-owned",
    ],
)
def test_untrustworthy_files_are_ignored_logged_and_replaced(fake, cache, caplog, damage, reason):
    """A damaged, readable-by-others or foreign file is ignored with a log line, then replaced."""
    if "owned" in reason and os.getuid() != 0:  # pragma: no cover - CI runs as root
        pytest.skip("only root can give a file away")
    OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=cache, shared=False
    ).token()
    file = cache_file(cache)
    damage(file)
    caplog.set_level(logging.WARNING, logger="clarify_auth")

    token = OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=cache, shared=False
    ).token()

    assert fake.token_requests == 2
    assert reason in caplog.text
    assert "ignored and will be replaced" in caplog.text
    assert json.loads(file.read_text())["access_token"] == token.access_token.get_secret_value()
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert file.stat().st_uid == os.getuid()


def test_symlinks_are_not_followed(fake, cache, tmp_path, caplog):
    """A cache entry that is a symlink (to a planted file) is not believed."""
    OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=cache, shared=False
    ).token()
    file = cache_file(cache)
    planted = tmp_path / "planted.json"
    planted.write_text(file.read_text())
    planted.chmod(0o600)
    file.unlink()
    file.symlink_to(planted)

    OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=cache, shared=False
    ).token()

    assert fake.token_requests == 2
    assert "not a regular file" in caplog.text


def test_expired_entries_are_not_used(cache):
    """An entry past its expiry is ignored, quietly."""
    with FakeClarify(token_lifetime=60) as fake:
        OAuthClientCredentials.from_credentials(
            fake.credentials(), token_cache=cache, shared=False
        ).token()
        file = cache_file(cache)
        document = json.loads(file.read_text())
        document["expires_at"] = time.time() - 1
        file.write_text(json.dumps(document))

        OAuthClientCredentials.from_credentials(
            fake.credentials(), token_cache=cache, shared=False
        ).token()

        assert fake.token_requests == 2


def test_a_stored_lifetime_longer_than_the_tokens_own_is_cut(fake, cache):
    """A file that claims more life than the token was issued with is not believed beyond it."""
    OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=cache, shared=False
    ).token()
    file = cache_file(cache)
    document = json.loads(file.read_text())
    document["expires_at"] = time.time() + 10 * 86400
    file.write_text(json.dumps(document))
    auth = OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=cache, shared=False
    )

    auth.token()

    assert auth._lifecycle.entry.expires_at - time.monotonic() <= 3600


def test_revoked_token_is_dropped_from_the_cache_too(fake, cache):
    """After a 401 the shared token is forgotten, so the retry does not read it back."""
    session = ClarifySession(fake.credentials(), token_cache=cache, shared=False)
    session.rpc("clarify.selectItems")
    fake.revoke_tokens()

    assert session.rpc("clarify.selectItems")["data"] == []
    assert fake.tokens_issued == 2
    assert json.loads(cache_file(cache).read_text())["access_token"].startswith("fake-token-2-")


def test_invalidate_forgets_the_shared_token(fake, cache):
    """invalidate() removes the shared entry that held our token."""
    auth = OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=cache, shared=False
    )
    auth.token()

    auth.invalidate()

    assert not list(cache.path.glob("*.json"))
    auth.invalidate()  # nothing cached: nothing to do


def test_an_unwritable_folder_degrades_to_no_sharing(fake, tmp_path, caplog):
    """If the cache cannot be written, tokens are still fetched and used, with a warning."""
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("")
    cache = FileTokenCache(blocker / "tokens")

    header = OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=cache
    ).authorization()

    assert header.startswith("Bearer fake-token-1-")
    assert "going on" in caplog.text


def test_lock_held_by_a_live_process_times_out(fake, tmp_path, caplog):
    """A process that hangs holding the lock delays others by lock_timeout at most."""
    cache = FileTokenCache(tmp_path / "tokens", lock_timeout=0.5)
    auth = OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=cache, shared=False
    )
    holder = _hold_lock_in_child(cache, auth._lifecycle.store_key.digest[:40])
    try:
        start = time.monotonic()
        header = auth.authorization()
        waited = time.monotonic() - start
    finally:
        holder.kill()
        holder.join(5)

    assert header.startswith("Bearer fake-token-")
    assert 0.4 <= waited < 5
    assert "fetching a token without it" in caplog.text


def test_lock_of_a_killed_process_does_not_block(fake, tmp_path):
    """A lock left by a process killed with SIGKILL is free at once (the OS releases it)."""
    cache = FileTokenCache(tmp_path / "tokens", lock_timeout=30)
    auth = OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=cache, shared=False
    )
    holder = _hold_lock_in_child(cache, auth._lifecycle.store_key.digest[:40])
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(5)
    assert (cache.path / f"{auth._lifecycle.store_key.digest[:40]}.lock").exists()

    start = time.monotonic()
    auth.authorization()

    assert time.monotonic() - start < 5


def _hold(cache, key, ready):
    with cache._locked(key):
        ready.set()
        time.sleep(60)


def _hold_lock_in_child(cache, key):
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    holder = context.Process(target=_hold, args=(cache, key, ready), daemon=True)
    holder.start()
    assert ready.wait(30)
    return holder


def _cold_worker(credentials, folder, barrier, out):
    cache = FileTokenCache(folder) if folder else None
    session = ClarifySession(
        clarify_auth.Credentials.model_validate(credentials), token_cache=cache
    )
    barrier.wait(60)
    out.put(session.rpc("clarify.selectItems")["data"])


def _start_cold(fake, folder, count=8):
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(count)
    out = context.Queue()
    workers = [
        context.Process(target=_cold_worker, args=(fake.credentials_dict(), folder, barrier, out))
        for _ in range(count)
    ]
    for worker in workers:
        worker.start()
    results = [out.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(30)
    return results


def test_eight_cold_processes_share_one_token_request(fake, tmp_path):
    """8 processes released together on a cold shared cache cause exactly one token request."""
    fake.token_latency = 0.3

    results = _start_cold(fake, str(tmp_path / "tokens"))

    assert results == [[]] * 8
    assert fake.token_requests == 1


def test_without_the_cache_each_process_fetches(fake):
    """The same 8 processes without a shared cache send 8 token requests."""
    fake.token_latency = 0.3

    results = _start_cold(fake, None)

    assert results == [[]] * 8
    assert fake.token_requests == 8


def test_cache_pickles_and_travels_with_an_authenticator(fake, cache):
    """A pickled authenticator keeps its cache; the cache carries only its settings."""
    auth = OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=cache, shared=False
    )

    copy = pickle.loads(pickle.dumps(auth))
    cache_copy = pickle.loads(pickle.dumps(cache))

    assert copy.token_cache.path == cache.path
    assert (cache_copy.path, cache_copy.lock_timeout) == (cache.path, 30.0)
    assert repr(cache) == f"FileTokenCache(path={str(cache.path)!r})"
    assert copy.authorization() == auth.authorization()
    assert fake.token_requests == 1


def test_default_folder_is_per_user(monkeypatch, tmp_path):
    """Without a path the cache lives under $XDG_CACHE_HOME, else ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert FileTokenCache().path == tmp_path / "xdg" / "clarify-auth" / "tokens"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert FileTokenCache().path == tmp_path / "home" / ".cache" / "clarify-auth" / "tokens"


def test_basic_credentials_accept_and_ignore_a_cache(fake, cache):
    """A session with Basic credentials takes token_cache and has nothing to share."""
    session = ClarifySession(fake.credentials("basic-auth"), token_cache=cache, shared=False)

    assert session.rpc("clarify.selectItems")["data"] == []


@pytest.mark.parametrize("value", [0, -1, "5"], ids=repr)
def test_bad_lock_timeout(value):
    """lock_timeout must be a positive number."""
    with pytest.raises(clarify_auth.ConfigurationError, match="lock_timeout"):
        FileTokenCache(lock_timeout=value)


def test_token_cache_must_be_a_file_token_cache(oauth_creds):
    """Anything else is refused at construction."""
    with pytest.raises(clarify_auth.ConfigurationError, match="token_cache"):
        OAuthClientCredentials.from_credentials(oauth_creds, token_cache={"a": 1})


def test_unreadable_entry_is_ignored(fake, cache, monkeypatch, caplog):
    """An entry that cannot be read is ignored with its reason."""
    auth = OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=cache, shared=False
    )
    auth.token()
    file = cache_file(cache)
    real_open = os.open

    def deny(path, *args, **kwargs):
        if os.fspath(path) == str(file):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    assert cache.load(auth._lifecycle.store_key) is None
    assert "cannot read it" in caplog.text
    assert SECRET not in caplog.text


def test_early_refresh_is_shared_too(fake, cache):
    """When two processes reach the refresh point, the second takes the token the first fetched."""
    from conftest import FakeClock

    clocks = [FakeClock(), FakeClock()]
    first, second = (
        OAuthClientCredentials.from_credentials(
            fake.credentials(),
            token_cache=cache,
            clock=c,
            sleep=c.sleep,
            refresh_in_background=False,
        )
        for c in clocks
    )
    assert first.authorization() == second.authorization()
    for clock in clocks:
        clock.advance(3400)  # inside the early-refresh window of a 3600 s token

    renewed = first.authorization()
    taken = second.authorization()

    assert renewed == taken
    assert renewed.startswith("Bearer fake-token-2-")
    assert fake.token_requests == 2


# -- attacks an adversarial review found, beside the behaviour they attack --


def test_expires_at_of_a_token_from_the_file_cache_is_its_own(fake, tmp_path):
    """A token another process stored 3500 s ago reports the expiry it has, not a fresh lifetime."""
    folder = tmp_path / "tokens"
    first = OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=FileTokenCache(folder), shared=False
    )
    first.token()
    (entry,) = folder.glob("*.json")
    stored = json.loads(entry.read_text())
    stored["refresh_at"] -= 3500  # as if written by a process 3500 s ago
    stored["expires_at"] -= 3500
    stored["token_expires_at"] -= 3500
    entry.write_text(json.dumps(stored))

    token = OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=FileTokenCache(folder), shared=False
    ).token()

    assert fake.token_requests == 1  # it did come from the file
    left = (token.expires_at - datetime.now(timezone.utc)).total_seconds()
    assert left < 200  # about 100 s are left, not 3600
