"""clarify-auth fake: a local Clarify in the foreground, a credentials file for it, a clean stop."""

from __future__ import annotations

import io
import json
import os
import queue
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import clarify_auth
from clarify_auth.cli.main import main
from conftest import SRC

ROOT = Path(__file__).resolve().parents[2]
_TRY_IT = "clarify-auth fake --write clarify-credentials.json"
_URL = re.compile(r"listening on (http://127\.0\.0\.1:\d+/v1/)")
_START_LIMIT_S = 30.0
_STOP_LIMIT_S = 10.0


class FakeProcess:
    """python -m clarify_auth fake in a new process, its stdout read line by line (bounded)."""

    def __init__(self, *argv: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "clarify_auth", "fake", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": SRC},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put("")  # end of output

    def wait_for(self, text: str) -> str:
        """Read lines until one holds ``text``; fail after _START_LIMIT_S."""
        deadline = time.monotonic() + _START_LIMIT_S
        while time.monotonic() < deadline:
            line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            self.seen.append(line)
            if not line:
                break
            if text in line:
                return line
        pytest.fail(f"never printed {text!r}: {''.join(self.seen)}")

    def stop(self, signum: int) -> tuple[int, float, str, str]:
        """Send ``signum``; return the exit status, the seconds it took, the rest of stdout, stderr."""
        started = time.monotonic()
        self.process.send_signal(signum)
        try:
            status = self.process.wait(timeout=_STOP_LIMIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=_STOP_LIMIT_S)
            raise
        took = time.monotonic() - started
        rest = []
        for _ in range(1000):  # bounded: the output is a few lines
            line = self.lines.get(timeout=_STOP_LIMIT_S)
            if not line:
                break
            rest.append(line)
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        err = self.process.stderr.read()
        self.process.stdout.close()
        self.process.stderr.close()
        return status, took, "".join(rest), err


@pytest.fixture
def fake_process():
    """Start FakeProcess instances; kill any still running when the test ends."""
    started: list[FakeProcess] = []

    def start(*argv: str) -> FakeProcess:
        started.append(FakeProcess(*argv))
        return started[-1]

    yield start
    for each in started:
        if each.process.poll() is None:
            each.process.kill()
            each.process.wait(timeout=_STOP_LIMIT_S)
        for stream in (each.process.stdout, each.process.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.skipif(os.name != "posix", reason="SIGINT to a child process is POSIX's")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_fake_serves_the_file_it_writes_until_a_signal(tmp_path, signum, fake_process):
    """'fake --write' serves real requests with the file it wrote (0600), then stops with exit 0."""
    path = tmp_path / "clarify-credentials.json"
    fake = fake_process("--port", "0", "--write", str(path))

    url = _URL.search(fake.wait_for("listening on")).group(1)
    fake.wait_for("press Ctrl-C to stop")
    mode = stat.S_IMODE(path.stat().st_mode)
    creds = clarify_auth.Credentials.from_file(path)
    with clarify_auth.ClarifySession(path) as session:
        answer = session.rpc("clarify.selectItems", {"query": {"limit": 1}})
    example = subprocess.run(  # as the example's header says: from the folder of the file
        [sys.executable, str(ROOT / "examples" / "call_api.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": SRC},
    )
    status, took, rest, err = fake.stop(signum)

    assert creds.api_url == url
    assert mode == 0o600
    assert answer["data"] == []
    assert status == 0, err
    assert took < _STOP_LIMIT_S
    assert example.returncode == 0, example.stderr
    assert "clarify.selectItems answered" in example.stdout
    assert "stopped: 2 token requests, 2 tokens issued, 2 JSON-RPC calls" in rest
    assert err == ""
    assert f"CLARIFY_CREDENTIALS={path} python examples/call_api.py" in "".join(fake.seen)


def run_in_process(*argv, then):
    """Run 'fake' here on the main thread; ``then(out)`` runs on another, then SIGTERM stops it."""
    out = io.StringIO()
    failures: list[BaseException] = []

    def drive() -> None:
        try:
            deadline = time.monotonic() + _START_LIMIT_S
            while "press Ctrl-C" not in out.getvalue() and time.monotonic() < deadline:
                time.sleep(0.01)
            then(out)
        except BaseException as exc:
            failures.append(exc)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    driver = threading.Thread(target=drive)
    driver.start()
    status = main(["fake", *argv], stdout=out)
    driver.join(timeout=_STOP_LIMIT_S)
    if failures:
        raise failures[0]
    return status, out.getvalue()


@pytest.mark.skipif(os.name != "posix", reason="os.kill with SIGTERM, as POSIX does it")
def test_fake_injects_the_faults_it_is_asked_for(tmp_path):
    """The fault options reach the fake: a 503, a dropped request, a 401, slower answers, -v."""
    path = tmp_path / "c.json"
    calls = []

    def use(out):
        with clarify_auth.ClarifySession(path) as session:
            calls.append(session.rpc("clarify.selectItems"))
        calls.append(json.loads(path.read_text())["credentials"]["clientSecret"])

    status, out = run_in_process(
        "-v", "--write", str(path), "--fail-token-requests", "1", "--drop-token-requests", "1",
        "--reject-rpc-calls", "1", "--token-lifetime", "60", "--token-latency", "0.01",
        "--rpc-latency", "0.01",
        then=use,
    )  # fmt: skip

    assert status == 0
    assert calls[0]["data"] == []
    assert calls[1].startswith("test-secret-")
    assert "tokens last 60 s" in out
    assert "POST /v1/oauth/token -> 503" in out
    assert "POST /v1/rpc -> 401" in out
    assert "stopped: 4 token requests, 2 tokens issued, 2 JSON-RPC calls" in out


@pytest.mark.skipif(os.name != "posix", reason="os.kill with SIGTERM, as POSIX does it")
def test_fake_writes_basic_auth_files_and_overwrites_its_own(tmp_path):
    """--type basic-auth writes a Basic file; an old fake's file is overwritten, not refused."""
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"apiUrl": "http://127.0.0.1:1/v1/", "integration": "old",
        "credentials": {"type": "basic-auth", "clientId": "old", "clientSecret": "test-secret-old"}}))  # fmt: skip
    path.chmod(0o644)
    checked = []

    def check(out):
        checked.append(main(["check", "--credentials", str(path)], stdout=io.StringIO()))

    status, out = run_in_process("--write", str(path), "--type", "basic-auth", then=check)

    assert (status, checked) == (0, [0])
    assert clarify_auth.Credentials.from_file(path).credentials.type == "basic-auth"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "stopped: 0 token requests, 0 tokens issued, 1 JSON-RPC calls" in out


@pytest.mark.skipif(os.name != "posix", reason="os.kill with SIGTERM, as POSIX does it")
def test_fake_without_write_says_how_to_get_a_file():
    """Without --write the banner says how to get a credentials file."""
    status, out = run_in_process(then=lambda out: None)

    assert status == 0
    assert "no credentials file written: add --write clarify-credentials.json" in out


@pytest.mark.parametrize(
    "real",
    [
        json.dumps({"integration": "mine", "credentials": {"type": "basic-auth",
                    "clientId": "mine", "clientSecret": "test-secret-real"}}),
        "notes, not a credentials file",
    ],
    ids=["remote-credentials", "another-file"],
)  # fmt: skip
def test_fake_never_overwrites_real_credentials(tmp_path, capsys, real):
    """A file that is not an old fake's is not overwritten: exit 2, the file as it was."""
    path = tmp_path / "clarify-credentials.json"
    path.write_text(real)

    status = main(["fake", "--write", str(path)], stdout=io.StringIO())

    assert status == 2
    assert path.read_text() == real
    assert "not overwriting it" in capsys.readouterr().err


def test_fake_on_a_port_in_use_is_one_line(capsys):
    """A port already taken: exit 1 and one line naming the port."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        status = main(["fake", "--port", str(port)], stdout=io.StringIO())

    err = capsys.readouterr().err.strip()
    assert status == 1
    assert err.startswith(f"clarify-auth: error: cannot listen on 127.0.0.1:{port}: ")
    assert len(err.splitlines()) == 1


def test_fake_off_the_main_thread_is_refused(capsys):
    """Off the main thread no signal could stop it: refused, exit 1."""
    statuses = []
    thread = threading.Thread(target=lambda: statuses.append(main(["fake"], stdout=io.StringIO())))

    thread.start()
    thread.join(timeout=_STOP_LIMIT_S)

    assert statuses == [1]
    assert "main thread" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["--port", "70000"],
        ["--port", "x"],
        ["--token-lifetime", "0"],
        ["--token-latency", "-1"],
        ["--rpc-latency", "nan"],
        ["--fail-token-requests", "-2"],
        ["--type", "magic"],
    ],
    ids=[
        "port-too-big",
        "port-not-a-number",
        "lifetime-zero",
        "latency-negative",
        "nan",
        "count-negative",
        "type",
    ],
)
def test_fake_options_are_checked(argv, capsys):
    """A bad option value is a one-line usage error, exit 2."""
    with pytest.raises(SystemExit) as info:
        main(["fake", *argv], stdout=io.StringIO())

    assert info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_fake_credentials_are_mode_0600_from_the_start(tmp_path, monkeypatch):
    """FakeClarify.write_credentials creates the file 0600; it is never readable by others."""
    from clarify_auth.testing import FakeClarify

    modes = []
    real_open = os.open

    def recording_open(path, flags, mode=0o777, **kwargs):
        modes.append(mode)
        return real_open(path, flags, mode, **kwargs)

    monkeypatch.setattr(os, "open", recording_open)
    with FakeClarify() as fake:
        path = fake.write_credentials(tmp_path / "c.json")

    assert modes == [0o600]
    assert stat.S_IMODE(Path(path).stat().st_mode) == 0o600


def _words(text: str) -> str:
    return " ".join(text.replace("`", " ").split())


@pytest.mark.parametrize(
    "name", sorted(p.name for p in (ROOT / "examples").iterdir() if p.suffix in {".py", ".ipynb"})
)
def test_every_example_says_how_to_try_it_with_the_fake(name):
    """Each example's header (a module docstring, the notebook's first cell) names 'clarify-auth fake'."""
    import ast

    path = ROOT / "examples" / name
    if path.suffix == ".py":
        header = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    else:
        header = "".join(json.loads(path.read_text(encoding="utf-8"))["cells"][0]["source"])

    assert _TRY_IT in _words(header)


def test_the_readme_quick_start_says_how_to_try_it_with_the_fake():
    """The README's quick start tells a newcomer without an account to start the fake."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]

    assert _TRY_IT in _words(quick_start)


def test_fake_clarify_listens_on_the_port_it_is_given():
    """FakeClarify(port=N) serves on that loopback port, its URLs saying so."""
    from clarify_auth.testing import FakeClarify

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with FakeClarify(port=port) as fake:
        creds = fake.credentials()

    assert fake.port == port
    assert creds.api_url == f"http://127.0.0.1:{port}/v1/"
