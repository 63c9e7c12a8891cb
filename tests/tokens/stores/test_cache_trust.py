"""FileTokenCache trusts only what it opened: private folders, regular files of ours."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import pathlib
import stat
import threading
import time

import pytest

from _cache_entries import KEY, NAME, OTHER_KEY, OTHER_UID, entry
from clarify_auth import (
    FileTokenCache,
    OAuthClientCredentials,
)
from clarify_auth.testing import FakeClarify

pytestmark = pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")


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


def warnings_in(caplog):
    return [r for r in caplog.records if r.levelno == logging.WARNING]


def use_every_way(cache):
    """Call everything the authenticator calls; return what load and locked gave."""
    loaded = cache.load(KEY)
    cache.save(OTHER_KEY, entry())
    cache.discard(KEY, "test-token-good")
    with cache.lock(KEY, hold=60) as locked:
        pass
    return loaded, locked


@pytest.fixture
def root_only():
    if os.getuid() != 0:  # pragma: no cover - CI runs as root
        pytest.skip("only root can give a file away")


# -- 14. foreign folders ---------------------------------------------------------------


def test_folder_owned_by_another_user_is_refused_with_one_warning(tmp_path, caplog, root_only):
    """A folder of another user is not read, written or locked in, and says so once for many calls."""
    folder = tmp_path / "tokens"
    folder.mkdir(mode=0o700)
    FileTokenCache(folder).save(KEY, entry())
    os.chown(folder, OTHER_UID, OTHER_UID)
    cache = FileTokenCache(folder)
    caplog.set_level(logging.WARNING, logger="clarify_auth")

    results = [use_every_way(cache) for _ in range(5)]

    assert results == [(None, False)] * 5
    assert sorted(p.name for p in folder.iterdir()) == [
        f"{NAME}.json"
    ]  # nothing written, nothing removed
    assert len(warnings_in(caplog)) == 1
    assert "owned by user 65534" in caplog.text
    assert "going on without the file cache" in caplog.text
    assert "test-token" not in caplog.text


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o720, 0o702, 0o1777], ids=oct)
def test_own_folder_writable_by_others_is_refused_and_left_alone(tmp_path, caplog, mode):
    """A folder of ours that others can write to is refused as it is (not chmodded), with the fix."""
    folder = tmp_path / "tokens"
    folder.mkdir(mode=0o700)
    (folder / f"{NAME}.json").write_text(document("test-token-planted"))
    (folder / f"{NAME}.json").chmod(0o600)
    folder.chmod(mode)
    cache = FileTokenCache(folder)

    results = [use_every_way(cache) for _ in range(3)]

    assert results == [(None, False)] * 3
    assert stat.S_IMODE(folder.stat().st_mode) == mode
    assert sorted(p.name for p in folder.iterdir()) == [f"{NAME}.json"]
    assert len(warnings_in(caplog)) == 1
    assert f"mode {mode:o}" in caplog.text
    assert "chmod 700" in caplog.text
    assert "test-token" not in caplog.text


def test_a_refused_folder_does_not_fail_requests(tmp_path, caplog):
    """With the folder refused, tokens are still fetched, used and renewed, and nothing is written."""
    folder = tmp_path / "tokens"
    folder.mkdir()
    folder.chmod(0o777)
    cache = FileTokenCache(folder)

    with FakeClarify() as fake:
        auth = OAuthClientCredentials.from_credentials(fake.credentials(), token_cache=cache)
        first = auth.authorization()
        auth.invalidate()
        second = auth.authorization()

    assert first.startswith("Bearer fake-token-")
    assert second.startswith("Bearer fake-token-")
    assert first != second
    assert not list(folder.iterdir())
    assert len(warnings_in(caplog)) == 1


@pytest.mark.parametrize("mode", [0o700, 0o750, 0o755], ids=oct)
def test_own_folder_readable_but_not_writable_by_others_is_used(tmp_path, mode):
    """Others may list the folder (entries are 0600 anyway); only writing makes it untrusted."""
    folder = tmp_path / "tokens"
    folder.mkdir()
    folder.chmod(mode)
    cache = FileTokenCache(folder)

    cache.save(KEY, entry())

    assert cache.load(KEY) is not None


def test_folders_we_create_are_private_parents_included(tmp_path):
    """Missing folders, parents included, are created 0700 even under a group-friendly umask."""
    cache = FileTokenCache(tmp_path / "cache" / "clarify-auth" / "tokens")
    umask = os.umask(0o002)
    try:
        cache.save(KEY, entry())
    finally:
        os.umask(umask)

    for folder in (cache.path, cache.path.parent, cache.path.parent.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert cache.load(KEY) is not None


def test_load_does_not_create_the_folder(tmp_path, caplog):
    """Reading from a cache that does not exist yet finds nothing, quietly, and creates nothing."""
    cache = FileTokenCache(tmp_path / "tokens")

    assert cache.load(KEY) is None
    cache.discard(KEY, "test-token-good")

    assert not cache.path.exists()
    assert not caplog.records


def test_a_file_where_the_folder_should_be_is_refused(tmp_path, caplog):
    """A cache path that is a regular file is not used, with a warning."""
    (tmp_path / "tokens").write_text("")
    cache = FileTokenCache(tmp_path / "tokens")

    cache.save(KEY, entry())

    assert cache.load(KEY) is None
    assert "it is not a folder" in caplog.text


# -- 15. entries are checked as opened -------------------------------------------------


def test_symlink_to_an_attackers_valid_token_is_refused(tmp_path, caplog, root_only):
    """An entry that is a symlink to another user's well-formed token file is not followed."""
    cache = FileTokenCache(tmp_path / "tokens")
    cache.save(KEY, entry())
    target = attacker_file(tmp_path / "attacker.json")
    (cache.path / f"{NAME}.json").unlink()
    (cache.path / f"{NAME}.json").symlink_to(target)

    loaded = cache.load(KEY)
    cache.discard(KEY, "test-token-attacker")

    assert loaded is None
    assert "symbolic link" in caplog.text
    assert (cache.path / f"{NAME}.json").is_symlink()  # forget() did not believe it either
    assert "test-token" not in caplog.text


def test_a_fifo_entry_does_not_hang_load_or_forget(tmp_path, caplog):
    """A FIFO planted as an entry is refused at once by load() and forget() (no blocking open)."""
    cache = FileTokenCache(tmp_path / "tokens")
    cache.save(KEY, entry())
    fifo = cache.path / f"{NAME}.json"
    fifo.unlink()
    os.mkfifo(fifo, 0o600)
    results = []

    def use():
        results.append(cache.load(KEY))
        cache.discard(KEY, "test-token-good")
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
    cache.save(KEY, entry())
    file = cache.path / f"{NAME}.json"
    file.write_text(document("test-token-big") + " " * 70_000)

    assert cache.load(KEY) is None
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
    cache.save(KEY, entry("test-token-good"))
    file = cache.path / f"{NAME}.json"
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
            loaded = cache.load(KEY)
            seen.add(loaded.token.access_token.get_secret_value() if loaded else None)
            if done >= 2000 and swaps.value >= 1000:
                break
    finally:
        stop.set()
        swapper.join(10)

    assert swaps.value >= 1000
    assert "test-token-good" in seen
    assert "test-token-attacker" not in seen


def test_an_entry_swapped_for_a_symlink_right_after_its_check_is_not_followed(
    tmp_path, monkeypatch, root_only
):
    """An entry replaced by a symlink between being looked up by name and being read is refused."""
    cache = FileTokenCache(tmp_path / "tokens")
    cache.save(KEY, entry("test-token-good"))
    file = cache.path / f"{NAME}.json"
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

    loaded = cache.load(KEY)

    assert swapped
    assert loaded is None


# -- attacks an adversarial review found, beside the behaviour they attack --


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs chown")
def test_cache_folder_owned_by_another_user_is_refused(fake, tmp_path, caplog):
    """A world-writable cache folder owned by another user is refused with a warning."""
    folder = tmp_path / "someone-elses"
    folder.mkdir()
    os.chown(folder, 65534, 65534)
    folder.chmod(0o777)
    caplog.set_level(logging.WARNING, logger="clarify_auth")

    OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=FileTokenCache(folder)
    ).token()

    assert list(folder.iterdir()) == []  # no token (or lock) written into it
    assert caplog.records  # and the user is told


def test_cache_entry_is_checked_as_opened_not_before(fake, tmp_path, monkeypatch):
    """An entry swapped for a symlink between the check and the read is not followed."""
    folder = tmp_path / "tokens"
    OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=FileTokenCache(folder), shared=False
    ).token()
    (entry,) = folder.glob("*.json")
    planted = json.loads(entry.read_text())
    planted["access_token"] = "planted-token"
    elsewhere = tmp_path / "planted.json"
    elsewhere.write_text(json.dumps(planted))
    real_lstat = pathlib.Path.lstat

    def lstat_then_swap(self):  # the attacker wins the race right after the check
        info = real_lstat(self)
        if self == entry:
            entry.unlink()
            entry.symlink_to(elsewhere)
        return info

    monkeypatch.setattr(pathlib.Path, "lstat", lstat_then_swap)
    header = OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=FileTokenCache(folder), shared=False
    ).authorization()

    assert header != "Bearer planted-token"
