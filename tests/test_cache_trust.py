"""FileTokenCache trusts only what it opened: private folders, regular files of ours."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time

import pytest

from clarify_auth import FileTokenCache
from clarify_auth._token import AccessToken, CachedToken

pytestmark = pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")

KEY = "a" * 40
OTHER_UID = 65534  # nobody


def entry(name="test-token-good"):
    token = AccessToken(access_token=name, expires_in=3600)
    return CachedToken.issued(token, requested_at=time.monotonic())


def document(name):
    now = time.time()
    return json.dumps(
        {
            "version": 1,
            "access_token": name,
            "token_type": "Bearer",
            "scope": None,
            "expires_in": 3600,
            "refresh_at": now + 3000,
            "expires_at": now + 3500,
        }
    )


def attacker_file(path, name="test-token-attacker"):
    """A valid entry written by another user."""
    path.write_text(document(name))
    path.chmod(0o600)
    os.chown(path, OTHER_UID, OTHER_UID)
    return path


@pytest.fixture
def root_only():
    if os.getuid() != 0:  # pragma: no cover - CI runs as root
        pytest.skip("only root can give a file away")


# -- 15. entries are checked as opened -------------------------------------------------


def test_symlink_to_an_attackers_valid_token_is_refused(tmp_path, caplog, root_only):
    """An entry that is a symlink to another user's well-formed token file is not followed."""
    cache = FileTokenCache(tmp_path / "tokens")
    cache.store(KEY, entry(), now=time.monotonic())
    target = attacker_file(tmp_path / "attacker.json")
    (cache.path / f"{KEY}.json").unlink()
    (cache.path / f"{KEY}.json").symlink_to(target)

    loaded = cache.load(KEY, now=time.monotonic())
    cache.forget(KEY, "Bearer test-token-attacker")

    assert loaded is None
    assert "symbolic link" in caplog.text
    assert (cache.path / f"{KEY}.json").is_symlink()  # forget() did not believe it either
    assert "test-token" not in caplog.text


def test_a_fifo_entry_does_not_hang_load_or_forget(tmp_path, caplog):
    """A FIFO planted as an entry is refused at once by load() and forget() (no blocking open)."""
    cache = FileTokenCache(tmp_path / "tokens")
    cache.store(KEY, entry(), now=time.monotonic())
    fifo = cache.path / f"{KEY}.json"
    fifo.unlink()
    os.mkfifo(fifo, 0o600)
    results = []

    def use():
        results.append(cache.load(KEY, now=time.monotonic()))
        cache.forget(KEY, "Bearer test-token-good")
        results.append("done")

    worker = threading.Thread(target=use, daemon=True)
    worker.start()
    worker.join(5)
    hung = worker.is_alive()
    if hung:  # release the blocked open(), or the thread outlives the test
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(5)

    assert not hung
    assert results == [None, "done"]
    assert "not a regular file" in caplog.text


def test_an_oversized_entry_is_refused(tmp_path, caplog):
    """An entry larger than 64 KiB is not read into memory and parsed, however well-formed."""
    cache = FileTokenCache(tmp_path / "tokens")
    cache.store(KEY, entry(), now=time.monotonic())
    file = cache.path / f"{KEY}.json"
    file.write_text(document("test-token-big") + " " * 70_000)

    assert cache.load(KEY, now=time.monotonic()) is None
    assert "larger than 64 KiB" in caplog.text


def _swap(file, good, target, ready, stop, swaps):
    """Flip ``file`` between a hard link to ``good`` and a symlink to ``target``, atomically."""
    staging = file.with_name("staging")
    ready.set()
    while not stop.is_set():
        staging.symlink_to(target)
        staging.replace(file)
        os.link(good, staging)
        staging.replace(file)
        swaps.value += 1


def test_swapping_the_entry_for_a_symlink_never_yields_the_attackers_token(tmp_path, root_only):
    """While another process flips an entry between a good file and a symlink to another user's token, load never returns the latter."""
    cache = FileTokenCache(tmp_path / "tokens")
    cache.store(KEY, entry("test-token-good"), now=time.monotonic())
    file = cache.path / f"{KEY}.json"
    good = cache.path / "good.json"
    os.link(file, good)
    target = attacker_file(tmp_path / "attacker.json")
    context = multiprocessing.get_context("spawn")
    ready, stop, swaps = context.Event(), context.Event(), context.Value("l", 0)
    swapper = context.Process(target=_swap, args=(file, good, target, ready, stop, swaps))
    swapper.start()
    try:
        assert ready.wait(30)
        seen = set()
        for done in range(1, 50_001):  # at least 2,000 loads and 1,000 swaps, bounded
            loaded = cache.load(KEY, now=time.monotonic())
            seen.add(loaded.header if loaded else None)
            if done >= 2000 and swaps.value >= 1000:
                break
    finally:
        stop.set()
        swapper.join(10)

    assert swaps.value >= 1000
    assert "Bearer test-token-good" in seen
    assert "Bearer test-token-attacker" not in seen


def test_an_entry_swapped_for_a_symlink_right_after_its_check_is_not_followed(
    tmp_path, monkeypatch, root_only
):
    """An entry replaced by a symlink between being looked up by name and being read is refused."""
    cache = FileTokenCache(tmp_path / "tokens")
    cache.store(KEY, entry("test-token-good"), now=time.monotonic())
    file = cache.path / f"{KEY}.json"
    target = attacker_file(tmp_path / "attacker.json")
    real_stat, real_open = os.stat, os.open
    swapped = []

    def swap():
        if not swapped:
            swapped.append(file)
            (cache.path / "staging").symlink_to(target)
            (cache.path / "staging").replace(file)

    def stat_then_swap(path, *args, **kwargs):
        info = real_stat(path, *args, **kwargs)
        if os.fspath(path) == str(file):
            swap()
        return info

    def swap_then_open(path, *args, **kwargs):
        if os.fspath(path) == str(file):
            swap()
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat_then_swap)
    monkeypatch.setattr(os, "lstat", lambda path: stat_then_swap(path, follow_symlinks=False))
    monkeypatch.setattr(os, "open", swap_then_open)

    loaded = cache.load(KEY, now=time.monotonic())

    assert swapped
    assert loaded is None
