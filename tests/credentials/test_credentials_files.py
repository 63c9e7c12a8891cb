"""Credentials.from_file reads only a regular file of reasonable size, and answers at once."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import clarify_auth
from clarify_auth import Credentials, CredentialsError
from conftest import oauth_dict

CAP_BYTES = 64 * 1024  # the documented cap on a credentials file
DEADLINE_S = 5.0  # far above the milliseconds a refusal takes; only a hang reaches it

posix_only = pytest.mark.skipif(os.name != "posix", reason="FIFOs, devices and sockets are POSIX")


def padded_file(tmp_path: Path, size: int) -> Path:
    """A valid credentials file padded with spaces to exactly ``size`` bytes."""
    text = json.dumps(oauth_dict()).encode()
    path = tmp_path / "padded.json"
    path.write_bytes(text + b" " * (size - len(text)))
    return path


def from_file_within_deadline(path: Path) -> Credentials | BaseException:
    """from_file(path) in a thread; a call still blocked at the deadline fails the test."""
    outcome: list[Credentials | BaseException] = []

    def call() -> None:
        try:
            outcome.append(Credentials.from_file(path))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(DEADLINE_S)
    if thread.is_alive():
        # Opening the write end releases a reader blocked in open(); it then reads EOF.
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(DEADLINE_S)
        pytest.fail(f"from_file blocked on {path} for {DEADLINE_S} s")
    return outcome[0]


@posix_only
def test_fifo_is_refused_at_once(tmp_path):
    """A FIFO (nobody writing) is a CredentialsError naming it, not a hang in open()."""
    fifo = tmp_path / "clarify-credentials.json"
    os.mkfifo(fifo)

    outcome = from_file_within_deadline(fifo)

    assert isinstance(outcome, CredentialsError)
    assert str(outcome) == f"{fifo}: is a FIFO (named pipe), not a regular file"


def _unix_socket(path: Path) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    return server


@posix_only
@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("dev-null", "is a character device, not a regular file"),
        ("directory", "is a directory, not a regular file"),
        ("socket", "is a socket, not a regular file"),
    ],
    ids=["dev-null", "directory", "socket"],
)
def test_other_non_regular_files_are_refused(tmp_path, kind, expected):
    """/dev/null, a directory or a socket is a CredentialsError saying what it is."""
    path = {"dev-null": Path("/dev/null"), "directory": tmp_path}.get(kind, tmp_path / "s")
    server = _unix_socket(path) if kind == "socket" else None

    try:
        with pytest.raises(CredentialsError) as info:
            Credentials.from_file(path)
    finally:
        if server is not None:
            server.close()

    assert str(info.value) == f"{path}: {expected}"


_DEV_ZERO_CHILD = """
import resource, sys
limit = 2 * 1024**3
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from clarify_auth import Credentials
try:
    Credentials.from_file("/dev/zero")
except Exception as exc:
    print(type(exc).__name__, exc)
"""


@posix_only
@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_dev_zero_is_refused_without_reading():
    """/dev/zero is refused before any read (checked in a child with capped memory, so a regression fails instead of eating the machine)."""
    src = str(Path(clarify_auth.__file__).parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}

    child = subprocess.run(
        [sys.executable, "-c", _DEV_ZERO_CHILD],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )

    assert child.stdout.strip() == (
        "CredentialsError /dev/zero: is a character device, not a regular file"
    ), child.stderr


def test_file_at_the_cap_loads(tmp_path):
    """A file of exactly 64 KiB (a credentials file padded with spaces) still loads."""
    path = padded_file(tmp_path, CAP_BYTES)

    assert Credentials.from_file(path).integration == "test-integration"


def test_file_above_the_cap_is_refused(tmp_path):
    """A file one byte over 64 KiB is a CredentialsError naming the file and the cap."""
    path = padded_file(tmp_path, CAP_BYTES + 1)

    with pytest.raises(CredentialsError) as info:
        Credentials.from_file(path)

    assert str(info.value) == (
        f"{path}: larger than 64 KiB; a credentials file is well under 1 KiB"
    )


def test_file_that_grows_after_the_check_is_read_only_to_the_cap(tmp_path, monkeypatch):
    """A file bigger than its fstat said (it grew) is read no further than the cap, then refused."""
    path = padded_file(tmp_path, 1024 * 1024)
    real_fstat, real_read = os.fstat, os.read
    returned: list[int] = []

    def fstat_before_growing(fd: int) -> os.stat_result:
        st = real_fstat(fd)
        fields = list(st[:10])
        fields[6] = 300  # st_size as it was before the file grew
        return os.stat_result(fields)

    def counting_read(fd: int, n: int) -> bytes:
        data = real_read(fd, n)
        returned.append(len(data))
        return data

    monkeypatch.setattr(os, "fstat", fstat_before_growing)
    monkeypatch.setattr(os, "read", counting_read)

    with pytest.raises(CredentialsError, match=r"larger than 64 KiB"):
        Credentials.from_file(path)

    assert 0 < sum(returned) <= CAP_BYTES + 1


def test_huge_sparse_file_is_refused_without_reading(tmp_path, monkeypatch):
    """A 100 MiB (sparse) file is refused from its size alone: not one byte is read."""
    path = tmp_path / "huge.json"
    with path.open("wb") as file:
        file.truncate(100 * 1024**2)
    reads: list[int] = []
    real_read = os.read
    monkeypatch.setattr(os, "read", lambda fd, n: reads.append(n) or real_read(fd, n))

    with pytest.raises(CredentialsError, match=rf"{re.escape(path.name)}: larger than 64 KiB"):
        Credentials.from_file(path)

    assert reads == []
