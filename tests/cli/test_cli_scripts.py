"""The command line in scripts: check --json, --timeout, a slow-token notice, closed pipes, no ignored option."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest

from clarify_auth.cli import bounds
from clarify_auth.cli.main import main
from clarify_auth.testing import FakeClarify
from conftest import SRC

_TIMEOUT_S = 1.5
_NOTICE = re.compile(
    r"^clarify-auth: waiting for the token endpoint: attempt \d of \d, \d+ s so far$"
)


def run(*argv):
    """Run the CLI in-process; return (status, stdout)."""
    out = io.StringIO()
    status = main(list(argv), stdout=out)
    return status, out.getvalue()


def command(*argv, **options):
    """Run python -m clarify_auth in a new process."""
    return subprocess.run(
        [sys.executable, "-m", "clarify_auth", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": SRC},
        **options,
    )


def error_line(err: str) -> str:
    """The one error line, after any slow-token notices."""
    lines = err.strip().splitlines()
    assert all(_NOTICE.match(line) for line in lines[:-1]), err
    assert lines[-1].startswith("clarify-auth: error: "), err
    return lines[-1]


@contextlib.contextmanager
def silent_endpoint():
    """A loopback port whose kernel accepts connections that nobody ever answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1/"


def write_credentials(path, api_url, kind="client-credentials"):
    inner = {"type": kind, "clientId": "test-client", "clientSecret": "test-secret-silent"}
    path.write_text(json.dumps({"apiUrl": api_url, "integration": "x", "credentials": inner}))
    return str(path)


# -- check --json ----------------------------------------------------------------------------


def test_check_json_reports_what_was_checked_and_the_expiry(fake, tmp_path):
    """check --json: one object with the credentials checked, the outcome and the token's expiry."""
    path = fake.write_credentials(tmp_path / "c.json")
    before = datetime.now(timezone.utc)

    status, out = run("check", "--json", "--credentials", str(path))

    document = json.loads(out)
    assert status == 0
    assert out.count("\n") == 1
    assert document["ok"] is True
    assert (document["outcome"], document["exit_status"]) == ("accepted", 0)
    assert document["credentials"] == {
        "type": "client-credentials",
        "integration": "test-integration",
        "client_id": "test-client",
        "api_url": fake.api_url,
        "token_url": fake.token_url,
    }
    token = document["token"]
    assert (token["token_type"], token["scope"]) == ("Bearer", "clarify")
    assert 3590 <= token["expires_in"] <= 3600
    expires_at = datetime.strptime(token["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=timezone.utc
    )
    assert abs((expires_at - before).total_seconds() - 3600) < 5
    assert fake.client_secret not in out
    assert "fake-token" not in out


def test_check_json_of_basic_credentials_gives_the_apis_answer(fake, tmp_path):
    """For basic-auth, the document holds the API's answer instead of a token."""
    path = fake.write_credentials(tmp_path / "b.json", type="basic-auth")

    status, out = run("check", "--json", "--credentials", str(path))

    document = json.loads(out)
    assert status == 0
    assert document["api"] == {"url": fake.rpc_url, "status_code": 200}
    assert "token" not in document
    assert "token_url" not in document["credentials"]
    assert fake.basic_password not in out


def test_check_json_of_rejected_credentials(fake, tmp_path, capsys):
    """Rejected: exit 3, the document says so with the server's answer; the error line on stderr."""
    data = fake.credentials_dict()
    data["credentials"]["clientSecret"] = "test-secret-wrong"
    path = tmp_path / "c.json"
    path.write_text(json.dumps(data))

    status, out = run("check", "--json", "--credentials", str(path))

    document = json.loads(out)
    err = error_line(capsys.readouterr().err)
    assert status == 3
    assert (document["ok"], document["outcome"], document["exit_status"]) == (False, "rejected", 3)
    assert document["server"] == {"status_code": 401, "error": "access_denied",
                                  "error_description": "Unauthorized"}  # fmt: skip
    assert document["credentials"]["client_id"] == "test-client"
    assert err == f"clarify-auth: error: {document['error']}"
    assert "test-secret-wrong" not in out + err


def test_check_json_of_rejected_basic_credentials(fake, tmp_path):
    """A basic-auth password the API refuses: exit 3 and the API's status in the document."""
    data = fake.credentials_dict(type="basic-auth")
    data["credentials"]["clientSecret"] = "test-secret-wrong-basic"
    path = tmp_path / "b.json"
    path.write_text(json.dumps(data))

    status, out = run("check", "--json", "--credentials", str(path))

    document = json.loads(out)
    assert (status, document["outcome"]) == (3, "rejected")
    assert document["server"]["status_code"] == 401
    assert "test-secret-wrong-basic" not in out


def test_check_json_of_an_unusable_file(tmp_path, capsys):
    """The file itself is the problem: exit 2, outcome unusable, credentials null."""
    path = tmp_path / "c.json"
    path.write_text("{")

    status, out = run("check", "--json", "--credentials", str(path))

    document = json.loads(out)
    assert status == 2
    assert document == {"ok": False, "outcome": "unusable", "exit_status": 2,
                        "error": document["error"], "credentials": None}  # fmt: skip
    assert str(path) in document["error"]
    error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("failure", "outcome", "expected"),
    [(KeyboardInterrupt, "interrupted", 130), (RuntimeError, "failed", 1)],
    ids=["interrupted", "unexpected"],
)
def test_check_json_of_other_failures(fake, tmp_path, monkeypatch, failure, outcome, expected):
    """Ctrl-C and an unexpected error still end in one document with their exit status."""
    from clarify_auth.cli import check

    def broken(*args, **kwargs):
        raise failure

    monkeypatch.setattr(check.OAuthClientCredentials, "fetch_token", broken)
    path = fake.write_credentials(tmp_path / "c.json")

    status, out = run("check", "--json", "--credentials", str(path))

    document = json.loads(out)
    assert status == expected
    assert (document["outcome"], document["exit_status"]) == (outcome, expected)
    assert "server" not in document


# -- --timeout -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [["token"], ["token", "--no-cache"], ["header"], ["check"], ["check", "--json"]],
    ids=["token", "token-no-cache", "header", "check", "check-json"],
)
def test_timeout_bounds_a_silent_token_endpoint(tmp_path, argv, capsys):
    """Against an endpoint that accepts and never answers, --timeout ends the command: exit 4."""
    with silent_endpoint() as api_url:
        path = write_credentials(tmp_path / "c.json", api_url)
        started = time.monotonic()

        status, out = run(*argv, "--timeout", str(_TIMEOUT_S), "--credentials", path)

        took = time.monotonic() - started
    assert status == 4
    assert took < 3 * _TIMEOUT_S
    assert "timed out" in error_line(capsys.readouterr().err)
    if "--json" in argv:
        assert json.loads(out)["outcome"] == "unreachable"


def test_timeout_bounds_a_silent_api_for_basic_credentials(tmp_path, capsys):
    """check of basic-auth credentials against an API that never answers: exit 4 in time."""
    with silent_endpoint() as api_url:
        path = write_credentials(tmp_path / "b.json", api_url, kind="basic-auth")
        started = time.monotonic()

        status, _ = run("check", "--timeout", str(_TIMEOUT_S), "--credentials", path)

        took = time.monotonic() - started
    assert status == 4
    assert took < 3 * _TIMEOUT_S
    assert "could not reach the API" in error_line(capsys.readouterr().err)


def test_timeout_in_a_separate_process(tmp_path):
    """python -m clarify_auth check --timeout against a silent endpoint, as a health check runs it."""
    with silent_endpoint() as api_url:
        path = write_credentials(tmp_path / "c.json", api_url)
        started = time.monotonic()

        result = command("check", "--json", "--timeout", str(_TIMEOUT_S), "--credentials", path)

        took = time.monotonic() - started
    assert result.returncode == 4, result.stderr
    assert took < 3 * _TIMEOUT_S + 5  # a new interpreter's start-up, on a busy machine
    assert json.loads(result.stdout)["outcome"] == "unreachable"
    assert "Traceback" not in result.stderr


def test_timeout_leaves_fast_commands_alone(fake, tmp_path):
    """With time to spare, --timeout changes nothing: the token, the header, basic too."""
    oauth = fake.write_credentials(tmp_path / "c.json")
    basic = fake.write_credentials(tmp_path / "b.json", type="basic-auth")

    results = [
        run("token", "--timeout", "30", "--credentials", str(oauth)),
        run("header", "--timeout", "30", "--credentials", str(basic)),
    ]

    assert [status for status, _ in results] == [0, 0]
    assert fake.is_valid_token(results[0][1].strip())
    assert results[1][1].startswith("Basic ")


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
def test_timeout_must_be_positive_seconds(value, capsys):
    """--timeout takes a positive finite number of seconds; anything else is a usage error."""
    with pytest.raises(SystemExit) as info:
        run("check", "--timeout", value)

    assert info.value.code == 2
    assert "--timeout" in capsys.readouterr().err


# -- a slow token request says so --------------------------------------------------------------


def test_a_slow_token_request_is_reported_without_v(fake, tmp_path, monkeypatch, capsys):
    """A token request still going after the notice's delay prints attempt and elapsed time."""
    monkeypatch.setattr(bounds, "_NOTICE_AFTER_S", 0.2)
    monkeypatch.setattr(bounds, "_NOTICE_EVERY_S", 0.3)
    fake.fail_token_requests(1, status=503)
    fake.token_latency = 1.2
    path = fake.write_credentials(tmp_path / "c.json")

    status, _ = run("token", "--no-cache", "--credentials", str(path))

    lines = capsys.readouterr().err.splitlines()
    assert status == 0
    assert lines
    assert all(_NOTICE.match(line) for line in lines), lines
    assert any("attempt 2 of 4" in line for line in lines), lines


def test_a_fast_token_request_prints_nothing(fake, tmp_path, capsys):
    """A token that comes at once: nothing on stderr."""
    path = fake.write_credentials(tmp_path / "c.json")

    status, _ = run("check", "--credentials", str(path))

    assert status == 0
    assert capsys.readouterr().err == ""


def test_the_notice_after_two_seconds_in_a_separate_process(tmp_path):
    """With its own defaults, a process waiting about 2 s for its token says so once on stderr."""
    with FakeClarify() as fake:
        fake.token_latency = 2.8
        path = fake.write_credentials(tmp_path / "c.json")

        result = command("token", "--no-cache", "--credentials", str(path))

    lines = result.stderr.splitlines()
    assert result.returncode == 0, result.stderr
    assert len(lines) == 1, result.stderr
    assert re.fullmatch(
        r"clarify-auth: waiting for the token endpoint: attempt 1 of 4, [23] s so far", lines[0]
    )


# -- a closed output pipe -------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["token"], ["check", "--json"]], ids=["token", "check-json"])
def test_a_closed_pipe_ends_quietly(fake, tmp_path, argv):
    """'clarify-auth token | true': the reader is gone before the write; nothing on stderr."""
    path = fake.write_credentials(tmp_path / "c.json")
    process = subprocess.Popen(
        [sys.executable, "-m", "clarify_auth", *argv, "--credentials", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": SRC},
    )
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdout.close()  # the reader goes away, as `true` does

    status = process.wait(timeout=60)
    err = process.stderr.read()
    process.stderr.close()

    assert status == 1
    assert err == b""


def test_a_closed_pipe_in_process_points_stdout_at_devnull(fake, tmp_path, capsys):
    """In-process, a write to a pipe with no reader: exit 1, nothing on stderr, the fd redirected."""
    path = fake.write_credentials(tmp_path / "c.json")
    read_end, write_end = os.pipe()
    os.close(read_end)
    with open(write_end, "w", encoding="utf-8") as out:  # noqa: PTH123 - a descriptor
        status = main(["token", "--credentials", str(path)], stdout=out)
        out.write("more\n")
        out.flush()  # goes to devnull now: no error

    assert status == 1
    assert capsys.readouterr().err == ""


def test_a_closed_pipe_without_a_descriptor_is_quiet_too(fake, tmp_path, capsys):
    """An output object with no file descriptor whose reader is gone: exit 1, nothing said."""

    class Gone(io.StringIO):
        def write(self, text):
            raise BrokenPipeError

    path = fake.write_credentials(tmp_path / "c.json")

    status = main(["token", "--credentials", str(path)], stdout=Gone())

    assert status == 1
    assert capsys.readouterr().err == ""


# -- no option is accepted and ignored ----------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["demo", "--credentials", "nope.json"], "--credentials"),
        (["--credentials", "nope.json", "demo"], "--credentials"),
        (["demo", "--no-cache"], "--no-cache"),
        (["fake", "--credentials", "nope.json"], "--credentials"),
        (["--no-cache", "fake"], "--no-cache"),
    ],
    ids=[
        "demo-credentials",
        "demo-credentials-first",
        "demo-no-cache",
        "fake-credentials",
        "fake-no-cache-first",
    ],
)
def test_local_commands_refuse_options_they_would_ignore(argv, option, capsys):
    """demo and fake make their own credentials: --credentials or --no-cache is a usage error."""
    with pytest.raises(SystemExit) as info:
        run(*argv)

    err = capsys.readouterr().err.strip()
    assert info.value.code == 2
    assert f"takes no {option}" in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--timeout", "1"],
        ["fake", "--timeout", "1"],
        ["header", "--json"],
        ["demo", "--json"],
    ],
    ids=["demo-timeout", "fake-timeout", "header-json", "demo-json"],
)
def test_options_a_command_has_no_use_for_are_usage_errors(argv, capsys):
    """An option that would mean nothing to the command is refused, never ignored."""
    with pytest.raises(SystemExit) as info:
        run(*argv)

    assert info.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


def test_the_docs_show_the_document_check_json_prints(fake, tmp_path):
    """The docs' example of check --json (cli.md) has the same fields as the real document."""
    import pathlib

    page = pathlib.Path(__file__).resolve().parents[2] / "docs" / "cli.md"
    (shown,) = re.findall(
        r"^```json output\n(.*?)^```",
        page.read_text(encoding="utf-8"),
        flags=re.DOTALL | re.MULTILINE,
    )
    path = fake.write_credentials(tmp_path / "c.json")

    status, out = run("check", "--json", "--credentials", str(path))

    real, example = json.loads(out), json.loads(shown)
    assert status == 0
    assert set(real) == set(example)
    for part in ("credentials", "token"):
        assert set(real[part]) == set(example[part])
