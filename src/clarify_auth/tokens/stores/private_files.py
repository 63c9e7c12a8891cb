"""Files only their owner can have written or can read: the file store's safety checks.

A cache folder must belong to this user and be writable by no one else (so no
one else can swap what is in it); an entry is opened without following links or
blocking (a FIFO planted as an entry must not hang us), then checked through
the open descriptor, and read up to a size cap.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

__all__ = [
    "MAX_ENTRY_BYTES",
    "UntrustedError",
    "distrust_folder",
    "make_private_folder",
    "read_private_file",
    "remove_stale_temporaries",
]

# An entry is a few hundred bytes; anything much larger is not ours.
MAX_ENTRY_BYTES = 64 * 1024
# Flags a platform lacks are 0.
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_READ_FLAGS |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
_POSIX = hasattr(os, "getuid")


class UntrustedError(Exception):
    """An entry that exists but must not be believed; the message says why."""


def make_private_folder(path: Path) -> None:
    """Create ``path`` and its missing parents with mode 0700, as XDG asks."""
    try:
        path.mkdir(mode=0o700)
    except FileNotFoundError:
        if path.parent == path:  # pragma: no cover - the root always exists
            raise
        make_private_folder(path.parent)
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)
    except FileExistsError:
        pass  # made by another process just now: the caller checks what is there


def distrust_folder(info: os.stat_result) -> str | None:
    """Why the cache folder must not be used, or None."""
    if not stat.S_ISDIR(info.st_mode):
        return "it is not a folder"
    if _POSIX:  # pragma: no branch - POSIX CI
        if info.st_uid != os.getuid():
            return f"it is owned by user {info.st_uid}, not by this user"
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o022:
            # Not tightened for the user: entries may have been planted already.
            return (
                f"other users can write to it (mode {mode:o}); remove it, or check "
                "what is in it and make it private with chmod 700"
            )
    return None


def read_private_file(file: Path) -> bytes:
    """Read ``file`` without following links or blocking, checking what was opened.

    Raises:
        UntrustedError: It is not a regular file of ours that only we can read,
            or it is too large.
        OSError: It could not be opened or read (ELOOP: it is a link).
    """
    handle = os.open(file, _READ_FLAGS)
    try:
        reason = _distrust(os.fstat(handle))
        if reason is not None:
            raise UntrustedError(reason)
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(handle, MAX_ENTRY_BYTES + 1 - size):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_ENTRY_BYTES:
                raise UntrustedError(f"it is larger than {MAX_ENTRY_BYTES // 1024} KiB")
        return b"".join(chunks)
    finally:
        os.close(handle)


def _distrust(info: os.stat_result) -> str | None:
    """Why a cache file must not be believed, or None."""
    if not stat.S_ISREG(info.st_mode):
        return "it is not a regular file"
    if _POSIX:  # pragma: no branch - POSIX CI
        if info.st_uid != os.getuid():
            return f"it is owned by user {info.st_uid}, not by this user"
        if info.st_mode & 0o077:
            return f"its permissions {stat.S_IMODE(info.st_mode):o} let other users read it"
    return None


def remove_stale_temporaries(folder: Path, *, older_than: float) -> None:
    """Delete ``.tmp-*.json`` files last written before ``older_than`` (a ``time.time()``).

    Raises:
        OSError: The folder could not be listed.
    """
    with os.scandir(folder) as entries:
        for entry in entries:
            if not (entry.name.startswith(".tmp-") and entry.name.endswith(".json")):
                continue
            # lstat and unlink: a link is looked at and removed itself, never followed.
            with contextlib.suppress(FileNotFoundError):  # another process was first
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(info.st_mode) and info.st_mtime < older_than:
                    Path(entry.path).unlink()
