"""Getting a credentials document safely: a bounded file read and strict JSON.

``model.py`` says what a credentials document means; this module gets
its bytes and its JSON without hanging, without unbounded memory, and without
ever quoting what it read. Every failure is a ``CredentialsError`` that names
the file (or variable) and the problem.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from clarify_auth._errors import CredentialsError

__all__ = [
    "MAX_FILE_BYTES",
    "absolute_path",
    "json_kind",
    "parse_json_object",
    "prefix",
    "read_file",
]

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


def parse_json_object(text: object, *, source: str | None) -> dict[str, Any]:
    """Parse the JSON text of a credentials document, which must be one object.

    ``text`` is ``str`` or UTF-8 ``bytes``; a BOM is tolerated. A key given
    twice in one object, at any depth, is refused: JSON leaves its meaning
    open, and a second ``apiUrl`` that some other reader takes is how
    credentials go to the wrong host.

    Raises:
        CredentialsError: The text is not UTF-8, not JSON, not an object, or
            has a duplicate key. The message names ``source`` and says where,
            never what the text holds.
    """
    head = prefix(source)
    data, repeated = _loads(_decoded(text, head), head)
    if repeated:
        problems = [f"{path}: duplicate key" for path in _repeated_key_paths(data)]
        raise CredentialsError(head + "; ".join(problems))
    if not isinstance(data, dict):
        raise CredentialsError(head + f"expected a JSON object, got {json_kind(data)}")
    return data


def _decoded(text: object, head: str) -> str:
    if isinstance(text, bytes | bytearray):
        text = _utf8(bytes(text))
        if isinstance(text, int):
            raise CredentialsError(head + f"not valid UTF-8 (bad byte at position {text})")
    elif not isinstance(text, str):
        kind = type(text).__name__
        raise CredentialsError(head + f"expected JSON text (str or bytes), got {kind}")
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise CredentialsError(head + "empty; expected a JSON object")
    return text


def _utf8(data: bytes) -> str | int:
    """The text, or the position of the first byte that is not UTF-8."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return exc.start


def _loads(text: str, head: str) -> tuple[Any, bool]:
    """The parsed value, and whether some object in it repeated a key."""
    repeated = False

    def object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal repeated
        obj = dict(pairs)
        if len(obj) == len(pairs):
            return obj
        repeated = True
        return _ObjectWithRepeatedKeys(pairs)

    try:
        return json.loads(text, object_pairs_hook=object_pairs), repeated
    except json.JSONDecodeError as exc:
        # The decoder's message gives a position, never the text itself.
        problem = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    except RecursionError:
        problem = "nested too deeply"
    except ValueError:  # an integer of more digits than int() converts
        problem = "a number with too many digits"
    # Raised out here, not in a handler, so that the decoder's exception is not
    # chained on as __context__: its .doc is the whole text, secret included.
    raise CredentialsError(head + f"not valid JSON ({problem})")


class _ObjectWithRepeatedKeys(dict[str, Any]):
    """A JSON object in which some key came more than once; only ever reported."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        seen: set[str] = set()
        self.repeated: list[str] = []
        for key, _ in pairs:
            if key in seen and key not in self.repeated:
                self.repeated.append(key)
            seen.add(key)


def _repeated_key_paths(data: object) -> list[str]:
    """Dotted paths of the repeated keys, in document order (no recursion: depth is the input's)."""
    paths: list[str] = []
    stack: list[tuple[str, object]] = [("", data)]
    while stack:
        path, value = stack.pop()
        children: list[tuple[str, object]] = []
        if isinstance(value, dict):
            paths.extend(_member(path, key) for key in getattr(value, "repeated", ()))
            children = [(_member(path, key), item) for key, item in value.items()]
        elif isinstance(value, list):
            children = [(f"{path}[{index}]", item) for index, item in enumerate(value)]
        stack.extend(reversed(children))
    return paths


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _member(path: str, key: str) -> str:
    # An odd key is shown as a short JSON string, so that a message stays one line.
    shown = key if _PLAIN_KEY.fullmatch(key) else json.dumps(key[:64])
    return f"{path}.{shown}" if path else shown
