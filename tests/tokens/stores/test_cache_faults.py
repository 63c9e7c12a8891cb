"""FileTokenCache faults are warnings, never failed requests; killed writers leave no token behind."""

from __future__ import annotations

import errno
import json
import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import filelock
import pytest

from _cache_entries import KEY, NAME, OTHER_KEY, OTHER_UID, entry, warnings_in
from clarify_auth import (
    FileTokenCache,
    OAuthClientCredentials,
)
from clarify_auth.tokens.stores import file_store as _cache
from clarify_auth.tokens.stores import protocol as _store

pytestmark = pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")


@pytest.fixture
def cache(tmp_path):
    cache = FileTokenCache(tmp_path / "tokens")
    cache.save(KEY, entry())  # the folder exists, with an entry
    return cache


def fail_opening_under(monkeypatch, folder, code):
    """Make os.open (files, temporary files, lock files) fail with ``code`` inside ``folder``."""
    real_open = os.open

    def open_(path, flags, *args, **kwargs):
        if os.fspath(path).startswith(str(folder)):
            raise OSError(code, os.strerror(code), os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)


def assert_no_secret(caplog, fake):
    assert "test-token" not in caplog.text
    assert "fake-token" not in caplog.text
    assert fake.client_secret not in caplog.text


# -- 16. faults are warnings ----------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [errno.EROFS, errno.EPERM, errno.EACCES, errno.ELOOP, errno.EIO, errno.ENOSPC],
    ids=errno.errorcode.get,
)
def test_file_system_faults_never_fail_a_request(fake, cache, monkeypatch, caplog, code):
    """Any errno from the cache's files is a warning, and tokens are fetched and used without it."""
    fail_opening_under(monkeypatch, cache.path, code)
    auth = OAuthClientCredentials.from_credentials(fake.credentials(), token_cache=cache)

    first = auth.authorization()
    auth.invalidate()
    second = auth.authorization()
    with cache.lock(KEY, hold=60) as locked:
        pass

    assert first.startswith("Bearer fake-token-1-")
    assert second.startswith("Bearer fake-token-2-")
    assert locked is False
    assert cache.load(KEY) is None
    assert os.strerror(code) in caplog.text
    assert str(cache.path) in caplog.text
    assert_no_secret(caplog, fake)


@pytest.mark.parametrize(
    "error",
    [PermissionError(errno.EPERM, "Operation not permitted"), OSError(errno.EROFS, "Read-only")],
    ids=["PermissionError", "OSError"],
)
def test_lock_errors_from_filelock_are_warnings(fake, cache, monkeypatch, caplog, error):
    """An OSError that filelock raises while locking means going on unlocked, with a warning."""

    def fail(self, *args, **kwargs):
        raise error

    monkeypatch.setattr(filelock.FileLock, "acquire", fail)
    auth = OAuthClientCredentials.from_credentials(fake.credentials(), token_cache=cache)

    header = auth.authorization()

    assert header.startswith("Bearer fake-token-1-")
    assert "cannot lock" in caplog.text
    assert "going on unlocked" in caplog.text


@pytest.mark.parametrize(
    "plant",
    [
        lambda lock: lock.symlink_to(lock.name),
        lambda lock: lock.mkdir(),
    ],
    ids=["symlink-loop", "directory"],
)
def test_a_lock_file_that_cannot_be_a_lock_is_a_warning(fake, tmp_path, caplog, plant):
    """A .lock that is a symlink loop or a folder: the token is fetched unlocked, with a warning."""
    cache = FileTokenCache(tmp_path / "tokens")
    auth = OAuthClientCredentials.from_credentials(fake.credentials(), token_cache=cache)
    auth.authorization()
    [lock] = cache.path.glob("*.lock")
    lock.unlink()
    plant(lock)
    auth.invalidate()

    header = auth.authorization()
    with cache.lock(auth._lifecycle.store_key, hold=60) as locked:
        pass

    assert header.startswith("Bearer fake-token-2-")
    assert locked is False
    assert "cannot lock" in caplog.text
    assert fake.token_requests == 2
    assert_no_secret(caplog, fake)


def test_a_hot_loop_over_a_broken_cache_warns_once_per_fault(tmp_path, caplog):
    """The same fault is logged once per interval, not once per call, and again after the interval."""
    cache = FileTokenCache(tmp_path / "tokens")
    cache.path.mkdir(mode=0o700)
    (cache.path / f"{NAME}.lock").mkdir()

    for _ in range(200):
        with cache.lock(KEY, hold=60):
            pass
    logged = len(warnings_in(caplog))
    for key in list(_store._last_warned):
        _store._last_warned[key] -= _cache._WARNING_INTERVAL_S + 1
    with cache.lock(KEY, hold=60):
        pass

    assert logged == 1
    assert len(warnings_in(caplog)) == 2


def test_a_failed_write_leaves_no_temporary_file(cache, monkeypatch, caplog):
    """A disk that fills up mid-write: a warning, the old entry stays, no temporary file remains."""

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(json, "dump", full)

    cache.save(KEY, entry("test-token-new"))

    assert "cannot write (No space left on device)" in caplog.text
    assert not list(cache.path.glob(".tmp-*"))
    assert cache.load(KEY).token.access_token.get_secret_value() == "test-token-good"


def test_forget_removes_only_the_refused_token(cache, monkeypatch, caplog):
    """forget() leaves another token and a damaged entry alone, and warns if it cannot remove."""

    def deny(*args, **kwargs):
        raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))

    cache.discard(KEY, "test-token-other")
    kept = cache.load(KEY)
    monkeypatch.setattr(os, "unlink", deny)
    monkeypatch.setattr(Path, "unlink", deny)  # Python 3.10's pathlib bound os.unlink early
    cache.discard(KEY, "test-token-good")
    monkeypatch.undo()
    (cache.path / f"{NAME}.json").write_text("{not json")
    cache.discard(KEY, "test-token-good")

    assert kept is not None
    assert (cache.path / f"{NAME}.json").exists()
    assert "cannot remove a refused token (Operation not permitted)" in caplog.text


def test_a_lock_that_cannot_be_released_is_a_warning(cache, monkeypatch, caplog):
    """Failing to release the lock is logged, not raised out of the token request."""

    class UnreleasableLock:
        def release(self):
            raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(FileTokenCache, "_acquire", lambda self, key: UnreleasableLock())

    with cache.lock(KEY, hold=60) as locked:
        pass

    assert locked is True
    assert "cannot unlock (Input/output error)" in caplog.text


def _use_as_nobody(folder, out):
    """In a child started as root: become nobody, use the cache, send back what happened."""
    os.setgroups([])
    os.setgid(OTHER_UID)
    os.setuid(OTHER_UID)
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logging.getLogger("clarify_auth").addHandler(handler)
    try:
        cache = FileTokenCache(folder)
        with cache.lock(KEY, hold=60) as locked:
            cache.save(KEY, entry())
        loaded = cache.load(KEY)
        out.send(("ok", os.getuid(), locked, loaded, messages))
    except BaseException as exc:
        out.send(("raised", os.getuid(), repr(exc), None, messages))


def test_a_read_only_folder_as_an_unprivileged_user(caplog):
    """A real EACCES (a 0500 folder of ours, no root to bypass it) is a warning, not an error."""
    if os.getuid() != 0:  # pragma: no cover - CI runs as root
        pytest.skip("needs root to start a child as another user")
    base = Path(tempfile.mkdtemp())
    try:
        os.chown(base, OTHER_UID, OTHER_UID)
        folder = base / "tokens"
        folder.mkdir(mode=0o500)
        os.chown(folder, OTHER_UID, OTHER_UID)
        context = multiprocessing.get_context("spawn")
        receive, send = context.Pipe(duplex=False)
        child = context.Process(target=_use_as_nobody, args=(folder, send))
        child.start()
        assert receive.poll(60)
        outcome, uid, locked, loaded, messages = receive.recv()
        child.join(10)
    finally:
        shutil.rmtree(base)

    assert (outcome, uid, locked, loaded) == ("ok", OTHER_UID, False, None)
    assert any("cannot lock (Permission denied)" in m for m in messages), messages
    assert any("cannot write (Permission denied)" in m for m in messages), messages


# -- 17. no token left behind ----------------------------------------------------------


def _store_and_hang_before_rename(folder, ready):
    """Store a token, but stop between writing the temporary file and renaming it."""

    def hang(*args, **kwargs):
        ready.set()
        time.sleep(60)

    os.replace = hang
    Path.replace = hang  # Python 3.10's pathlib bound os.replace at import
    FileTokenCache(folder).save(KEY, entry("test-token-leftover"))


def test_temporary_files_of_killed_writers_are_removed_later(tmp_path):
    """A token left in .tmp-*.json by a writer killed mid-store is deleted by a later store, once old."""
    folder = tmp_path / "tokens"
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    writer = context.Process(target=_store_and_hang_before_rename, args=(folder, ready))
    writer.start()
    assert ready.wait(60)
    os.kill(writer.pid, signal.SIGKILL)
    writer.join(10)
    [leftover] = folder.glob(".tmp-*.json")
    assert json.loads(leftover.read_text())["access_token"] == "test-token-leftover"
    long_ago = time.time() - 600  # ten minutes: long dead
    os.utime(leftover, (long_ago, long_ago))
    fresh = folder / ".tmp-fresh.json"  # another process writing right now
    fresh.write_text("{}")
    outside = tmp_path / "outside.json"
    outside.write_text("keep me")
    link = folder / ".tmp-link.json"
    link.symlink_to(outside)
    os.utime(link, (long_ago, long_ago), follow_symlinks=False)

    FileTokenCache(folder).save(OTHER_KEY, entry())

    assert not leftover.exists()
    assert fresh.exists()
    assert outside.read_text() == "keep me"
    assert not [f for f in folder.glob(".tmp-*.json") if "leftover" in f.read_text()]


def test_a_folder_that_cannot_be_listed_still_gets_the_token(cache, monkeypatch, caplog):
    """If old temporary files cannot be looked for, that is logged and the token is stored anyway."""

    def fail(*args, **kwargs):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "scandir", fail)

    cache.save(KEY, entry("test-token-new"))

    assert "cannot remove old temporary files (Input/output error)" in caplog.text
    assert cache.load(KEY).token.access_token.get_secret_value() == "test-token-new"


# -- attacks an adversarial review found, beside the behaviour they attack --


def test_cache_lock_failure_is_a_warning_not_an_exception(fake, tmp_path, caplog):
    """A lock file the cache cannot open (here a directory) degrades to a warning."""
    folder = tmp_path / "tokens"
    folder.mkdir(mode=0o700)
    auth = OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=FileTokenCache(folder), shared=False
    )
    (folder / f"{auth._lifecycle.store_key.digest[:40]}.lock").mkdir()
    caplog.set_level(logging.WARNING, logger="clarify_auth")

    assert auth.authorization().startswith("Bearer ")
    assert caplog.records
