"""Getting a credentials document safely: a bounded file read and strict JSON.

``_credentials.py`` says what a credentials document means; this module gets
its bytes and its JSON without hanging, without unbounded memory, and without
ever quoting what it read. Every failure is a ``CredentialsError`` that names
the file (or variable) and the problem.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from clarify_auth._errors import CredentialsError

__all__ = ["MAX_FILE_BYTES", "absolute_path", "json_kind", "prefix", "read_file"]

#: The largest credentials file read, in bytes. Clarify's files are about 300
#: bytes; 64 KiB leaves room for pretty-printing and extra keys many times
#: over, while a mistaken path (a log, a disk image, a device) costs nothing.
MAX_FILE_BYTES = 64 * 1024

_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO without a writer must not block open()
    | getattr(os, "O_NOCTTY", 0)  # a terminal opened by mistake must not become ours
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)  # Windows: bytes as they are
)

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def prefix(source: str | None) -> str:
    """``"source: "``, or nothing when there is no source to name."""
    return f"{source}: " if source else ""


def absolute_path(path: str) -> str:
    """``path`` made absolute, as a person looking for the file needs it.

    Not resolved: the name stays the one the user gave, links included. When
    the current directory no longer exists, ``path`` is returned as it is.
    """
    try:
        return str(Path(path).absolute())
    except OSError:
        return path


def read_file(path: object, *, named_by: str | None = None) -> tuple[str, bytes]:
    """Read a credentials file: ``(absolute name, contents)``.

    Only a regular file of at most :data:`MAX_FILE_BYTES` is read. It is opened
    without blocking (a FIFO cannot hang the open) and checked as opened, so
    what is checked is what is read; at most one byte past the cap is read, so
    a file that grows meanwhile is bounded too.

    Args:
        path: A ``str`` or ``os.PathLike``; ``~`` is expanded.
        named_by: The environment variable that named the file, to name in errors.

    Raises:
        CredentialsError: The path is not usable, or the file is missing,
            unreadable, not a regular file, or too big. The message names the
            absolute path.
    """
    raw: str | bytes | None = None
    if isinstance(path, str | os.PathLike):
        try:
            raw = os.fspath(path)
        except TypeError:  # __fspath__ returned neither str nor bytes
            raw = None
    if not isinstance(raw, str):
        raise CredentialsError(f"expected a path (str or os.PathLike), got {type(path).__name__}")
    name = absolute_path(_expand_user(raw))
    where = f" (named by ${named_by})" if named_by else ""
    if "\0" in name:
        shown = name.replace("\0", "\\0")
        raise CredentialsError(f"{shown}: not a valid path (contains a NUL character){where}")
    try:
        fd = os.open(name, _OPEN_FLAGS)
    except OSError as exc:
        raise CredentialsError(f"{name}: {_why_not_opened(exc, name)}{where}") from None
    try:
        return name, _read_regular(fd, name, where)
    except OSError as exc:
        raise CredentialsError(f"{name}: cannot read ({_reason(exc)}){where}") from None
    finally:
        os.close(fd)


def _expand_user(path: str) -> str:
    try:
        return str(Path(path).expanduser())
    except RuntimeError:  # no home directory to put for "~": the name stays as given
        return path


def _read_regular(fd: int, name: str, where: str) -> bytes:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise CredentialsError(f"{name}: {_not_regular(info.st_mode)}{where}")
    if info.st_size > MAX_FILE_BYTES:
        raise _too_big(name, where)
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_FILE_BYTES:
        chunk = os.read(fd, MAX_FILE_BYTES + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > MAX_FILE_BYTES:  # it grew since fstat
        raise _too_big(name, where)
    return b"".join(chunks)


def _too_big(name: str, where: str) -> CredentialsError:
    return CredentialsError(
        f"{name}: larger than {MAX_FILE_BYTES // 1024} KiB; "
        f"a credentials file is well under 1 KiB{where}"
    )


def _not_regular(mode: int) -> str:
    kind = next((name for test, name in _KINDS if test(mode)), "something else")
    return f"is {kind}, not a regular file"


def _why_not_opened(exc: OSError, name: str) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):  # Windows cannot open a directory at all
        return _not_regular(stat.S_IFDIR)
    if exc.errno == errno.ENXIO:  # a socket cannot be opened; say that it is one
        try:
            return _not_regular(Path(name).stat().st_mode)
        except OSError:
            pass
    return f"cannot read ({_reason(exc)})"


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def json_kind(value: object) -> str:
    """What a JSON value is, in words: ``"an array"``, ``"null"``, ..."""
    kinds = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    for kind, name in kinds.items():
        if isinstance(value, kind):
            return name
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__
