"""The clarify-auth command: token, header, check, demo; one-line errors and exit statuses."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
import responses

from _hostile import basic_file
from _loopback import LoopbackServer, Reply
from clarify_auth.cli.main import main
from clarify_auth.testing import FakeClarify, forget_shared_tokens
from conftest import SRC, basic_dict


def run(*argv):
    """Run the CLI in-process; return (status, stdout)."""
    out = io.StringIO()
    status = main(list(argv), stdout=out)
    return status, out.getvalue()


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_token_prints_only_the_access_token(fake, tmp_path):
    """'token' prints the bare token for $(...) in a curl command."""
    path = fake.write_credentials(tmp_path / "c.json")

    status, out = run("token", "--credentials", str(path))

    assert status == 0
    token = one_line(out)
    assert token.startswith("fake-token-1-")
    assert fake.is_valid_token(token)


def test_credentials_option_before_the_command(fake, tmp_path):
    """--credentials works before the command too."""
    path = fake.write_credentials(tmp_path / "c.json")

    status, out = run("--credentials", str(path), "token")

    assert status == 0
    assert fake.is_valid_token(out.strip())


def test_header_prints_bearer_or_basic(fake, tmp_path):
    """'header' prints the full Authorization value for either type."""
    oauth = fake.write_credentials(tmp_path / "o.json")
    basic = fake.write_credentials(tmp_path / "b.json", type="basic-auth")

    oauth_status, oauth_out = run("header", "--credentials", str(oauth))
    basic_status, basic_out = run("header", "--credentials", str(basic))

    assert (oauth_status, basic_status) == (0, 0)
    assert one_line(oauth_out).startswith("Bearer fake-token-")
    assert one_line(basic_out).startswith("Basic ")


def test_token_with_basic_credentials_explains(fake, tmp_path, capsys):
    """Basic credentials have no token: 'token' says to use 'header', exit 2."""
    path = fake.write_credentials(tmp_path / "b.json", type="basic-auth")

    status, out = run("token", "--credentials", str(path))

    assert status == 2
    assert out == ""
    assert "clarify-auth header" in one_line(capsys.readouterr().err)


def test_check_reports_without_the_secret(fake, tmp_path, capsys):
    """'check' reports integration, URL, type, token type, scope and expiry; never the secret."""
    path = fake.write_credentials(tmp_path / "c.json")

    status, out = run("check", "--credentials", str(path))

    assert status == 0
    for expected in (
        "integration: test-integration",
        f"API URL:     {fake.api_url}",
        "type:        client-credentials",
        "type Bearer",
        "scope:       clarify",
        "expires at:  ",
        "OK",
    ):
        assert expected in out
    assert fake.client_secret not in out + capsys.readouterr().err
    assert "fake-token" not in out


def test_check_basic_credentials_asks_the_server(fake, tmp_path):
    """'check' of basic-auth credentials sends one authenticated JSON-RPC request."""
    path = fake.write_credentials(tmp_path / "b.json", type="basic-auth")

    status, out = run("check", "--credentials", str(path))

    assert status == 0
    assert "basic-auth" in out
    assert "the credentials were accepted" in out
    assert fake.basic_password not in out
    assert fake.rpc_calls == 1
    assert fake.requests[-1].headers["Authorization"].startswith("Basic ")


def test_check_basic_credentials_with_a_wrong_password_exits_3(fake, tmp_path, capsys):
    """A basic-auth password the API refuses: exit 3, one line, no password."""
    data = fake.credentials_dict(type="basic-auth")
    data["credentials"]["clientSecret"] = "test-secret-wrong-basic"
    path = tmp_path / "b.json"
    path.write_text(json.dumps(data))

    status, out = run("check", "--credentials", str(path))

    err = one_line(capsys.readouterr().err)
    assert status == 3
    assert out == ""
    assert "401" in err
    assert "rejected" in err
    assert "test-secret-wrong-basic" not in err


@pytest.mark.parametrize("status_code", [403, 401])
def test_check_basic_credentials_401_or_403_is_rejected(fake, tmp_path, status_code, capsys):
    """Both 401 and 403 from the API mean the basic-auth credentials were rejected."""
    fake.on("clarify.selectItems", handler=lambda params: None)
    path = fake.write_credentials(tmp_path / "b.json", type="basic-auth")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(fake.rpc_url, status=status_code, json={"error": "nope"})

        status, _ = run("check", "--credentials", str(path))

    assert status == 3


def test_check_basic_credentials_any_other_answer_proves_them(fake, tmp_path):
    """A JSON-RPC error (here: method not found) still proves the credentials were accepted."""
    path = fake.write_credentials(tmp_path / "b.json", type="basic-auth")
    with responses.RequestsMock() as mock:
        mock.post(
            fake.rpc_url,
            json={"jsonrpc": "2.0", "id": 1, "error": {"code": -32601, "message": "no"}},
        )

        status, out = run("check", "--credentials", str(path))

    assert status == 0
    assert "200: the credentials were accepted" in out


def test_check_basic_credentials_unreachable_api_exits_4(tmp_path, capsys):
    """An API that cannot be reached is not a verdict on the credentials: exit 4."""
    with FakeClarify() as fake:
        path = fake.write_credentials(tmp_path / "b.json", type="basic-auth")

    status, _ = run("check", "--credentials", str(path))

    assert status == 4
    assert "could not reach the API" in one_line(capsys.readouterr().err)


def test_check_with_wrong_credentials_exits_3_in_one_line(fake, tmp_path, capsys):
    """Rejected credentials: exit 3 and one readable line on stderr, no traceback, no secret."""
    data = fake.credentials_dict()
    data["credentials"]["clientSecret"] = "test-secret-wrong"
    path = tmp_path / "c.json"
    path.write_text(json.dumps(data))

    status, out = run("check", "--credentials", str(path))

    err = one_line(capsys.readouterr().err)
    assert status == 3
    assert out == ""
    assert err.startswith("clarify-auth: error: ")
    assert "access_denied" in err
    assert "test-secret-wrong" not in err


def test_unreachable_endpoint_exits_4(tmp_path, capsys):
    """A token endpoint that cannot be reached: exit 4, one line."""
    with FakeClarify() as fake:
        path = fake.write_credentials(tmp_path / "c.json")
        fake.drop_token_requests(10)

        status, _ = run("check", "--credentials", str(path))

    # Retries take a couple of seconds: a notice that the fetch is slow may come first.
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 4
    assert all("waiting for the token endpoint" in line for line in err[:-1]), err
    assert "connection failed" in err[-1]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file"),
        ("{", "not valid JSON"),
        ('{"integration": "x"}', "credentials: required"),
    ],
    ids=["missing", "not-json", "incomplete"],
)
def test_bad_credentials_file_exits_2(tmp_path, capsys, content, expected):
    """An unusable file: exit 2, one line naming the file and the problem."""
    path = tmp_path / "c.json"
    if content is not None:
        path.write_text(content)

    status, _ = run("check", "--credentials", str(path))

    err = one_line(capsys.readouterr().err)
    assert status == 2
    assert str(path) in err
    assert expected in err


def test_discovery_when_nothing_is_configured(tmp_path, monkeypatch, capsys):
    """Without --credentials, discovery applies; finding nothing says where it looked."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CLARIFY_CREDENTIALS", raising=False)

    status, _ = run("header")

    assert status == 2
    assert "CLARIFY_CREDENTIALS" in one_line(capsys.readouterr().err)


def test_verbose_logs_to_stderr_without_secrets(fake, tmp_path, capsys):
    """-v shows the SDK's log lines on stderr."""
    path = fake.write_credentials(tmp_path / "c.json")

    status, out = run("header", "-v", "--credentials", str(path))

    err = capsys.readouterr().err
    assert status == 0
    assert "clarify-auth: fetched an access token" in err
    assert out.split()[1] not in err


def test_plain_http_remote_api_url_is_a_credentials_file_problem(tmp_path, capsys):
    """An apiUrl refused for plain http is the file's fault: exit 2, one line."""
    data = {
        "apiUrl": "http://api.example.com/v1/",
        "integration": "x",
        "credentials": {
            "type": "client-credentials",
            "clientId": "c",
            "clientSecret": "test-secret-x",
        },
    }
    path = tmp_path / "c.json"
    path.write_text(json.dumps(data))

    status, _ = run("check", "--credentials", str(path))

    assert status == 2
    assert "plain http" in one_line(capsys.readouterr().err)


def test_interrupt_exits_130(fake, tmp_path, capsys, monkeypatch):
    """Ctrl-C gives exit 130 and one line, not a traceback."""
    import clarify_auth.cli.main as cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "load_credentials", interrupted)

    status, _ = run("header")

    assert status == 130
    assert one_line(capsys.readouterr().err) == "clarify-auth: error: interrupted"


def test_usage_errors_exit_2(capsys):
    """No command, or an unknown one, is a usage error."""
    with pytest.raises(SystemExit) as info:
        run()

    assert info.value.code == 2


def test_demo_runs_and_reports(capsys):
    """'demo' walks through every step against a local fake and exits 0 within seconds."""
    status, out = run("demo")

    assert status == 0
    assert "1. A credentials file" in out
    assert "7. 32 threads call at once" in out
    assert "32 calls succeeded; token requests: 1" in out
    assert "retrying in" in out
    assert "got 401" in out
    assert "Summary: 46 API calls, 6 token requests (5 tokens issued), 0 errors" in out
    assert "test-secret" not in out


def test_demo_reports_a_step_that_misbehaves(monkeypatch):
    """If a step does not behave as described, the demo says so and exits 1."""
    from clarify_auth.testing import FakeClarify as Real

    class Leaky(Real):
        @property
        def token_requests(self):
            return 99

    monkeypatch.setattr("clarify_auth.cli.demo.FakeClarify", Leaky)

    status, out = run("demo")

    assert status == 1
    assert "demo FAILED: expected that the first call fetches one token" in out


@pytest.mark.parametrize(
    "command", [["clarify-auth"], [sys.executable, "-m", "clarify_auth"]], ids=["script", "module"]
)
def test_entry_points_show_help(command):
    """The console script and python -m both answer --help with the commands and exit statuses."""
    script = Path(sys.executable).parent / "clarify-auth"
    if command == ["clarify-auth"]:
        command = [str(script)]

    result = subprocess.run(
        [*command, "--help"], capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 0
    for word in ("token", "header", "check", "demo", "fake", "--credentials", "exit status"):
        assert word in result.stdout


def test_python_m_runs_the_demo_end_to_end():
    """python -m clarify_auth demo works as a separate process in a few seconds."""
    result = subprocess.run(
        [sys.executable, "-m", "clarify_auth", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "Summary:" in result.stdout
    assert result.stderr == ""


# -- tokens reused across runs -----------------------------------------------------------


def clarify_auth_command(*argv, env=None):
    """Run python -m clarify_auth in a new process, as a shell loop would."""
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "clarify_auth", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=environment,
    )


def test_five_token_runs_cost_one_token_request(fake, tmp_path):
    """Five 'clarify-auth token' processes in a row: one token request, the same token."""
    path = fake.write_credentials(tmp_path / "c.json")

    results = [clarify_auth_command("token", "--credentials", str(path)) for _ in range(5)]

    assert [r.returncode for r in results] == [0] * 5, results[0].stderr
    assert len({r.stdout for r in results}) == 1
    assert fake.token_requests == 1


def test_header_runs_reuse_the_token_too(fake, tmp_path):
    """'header' reads and writes the same file cache as 'token'."""
    path = fake.write_credentials(tmp_path / "c.json")

    token_status, token_out = run("token", "--credentials", str(path))
    forget_shared_tokens()  # as if in a new process
    header_status, header_out = run("header", "--credentials", str(path))

    assert (token_status, header_status) == (0, 0)
    assert header_out.strip() == f"Bearer {token_out.strip()}"
    assert fake.token_requests == 1


def test_the_cache_folder_follows_the_environment(fake, tmp_path, monkeypatch):
    """With CLARIFY_TOKEN_CACHE set, the command line keeps its tokens in that folder."""
    path = fake.write_credentials(tmp_path / "c.json")
    monkeypatch.setenv("CLARIFY_TOKEN_CACHE", str(tmp_path / "mine"))

    status, _ = run("token", "--credentials", str(path))

    assert status == 0
    assert len(list((tmp_path / "mine").glob("*.json"))) == 1


def test_a_bad_cache_variable_is_a_usage_error(fake, tmp_path, monkeypatch, capsys):
    """A CLARIFY_TOKEN_CACHE that is neither 'default' nor absolute: exit 2, naming it."""
    path = fake.write_credentials(tmp_path / "c.json")
    monkeypatch.setenv("CLARIFY_TOKEN_CACHE", "relative")

    status, _ = run("token", "--credentials", str(path))

    assert status == 2
    assert "$CLARIFY_TOKEN_CACHE" in one_line(capsys.readouterr().err)


def test_no_cache_skips_the_file_cache(fake, tmp_path):
    """--no-cache neither reads nor writes the cache: each run fetches."""
    path = fake.write_credentials(tmp_path / "c.json")
    cache_home = Path(__import__("os").environ["XDG_CACHE_HOME"])

    for _ in range(3):
        forget_shared_tokens()  # as if in a new process
        status, _ = run("token", "--no-cache", "--credentials", str(path))
        assert status == 0

    assert fake.token_requests == 3
    assert not (cache_home / "clarify-auth").exists()


def test_token_json_prints_one_object(fake, tmp_path):
    """--json prints access_token, token_type, scope, whole seconds left and UTC expiry."""
    from datetime import timedelta

    path = fake.write_credentials(tmp_path / "c.json")
    before = datetime.now(timezone.utc)

    status, out = run("token", "--json", "--credentials", str(path))

    document = json.loads(one_line(out))
    assert status == 0
    assert set(document) == {"access_token", "token_type", "scope", "expires_in", "expires_at"}
    assert fake.is_valid_token(document["access_token"])
    assert document["token_type"] == "Bearer"
    assert document["scope"] == "clarify"
    assert isinstance(document["expires_in"], int)
    assert 3590 <= document["expires_in"] <= 3600
    expires_at = datetime.strptime(document["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=timezone.utc
    )
    assert abs((expires_at - (before + timedelta(seconds=3600))).total_seconds()) < 5


def test_token_json_later_shows_less_time_left(fake, tmp_path, monkeypatch):
    """expires_in is what is left now, for a token read back from the cache."""
    from datetime import timedelta

    import clarify_auth.cli.check as cli

    path = fake.write_credentials(tmp_path / "c.json")
    run("token", "--credentials", str(path))
    forget_shared_tokens()  # as if in a new process
    later = datetime.now(timezone.utc) + timedelta(seconds=600)

    class Later(datetime):
        @classmethod
        def now(cls, tz=None):
            return later

    monkeypatch.setattr(cli, "datetime", Later)
    status, out = run("token", "--json", "--credentials", str(path))

    assert status == 0
    assert 2990 <= json.loads(out)["expires_in"] <= 3000
    assert fake.token_requests == 1


def test_check_always_fetches_and_stores_the_token(fake, tmp_path):
    """'check' sends a token request even with a cached token, and leaves its token cached."""
    path = fake.write_credentials(tmp_path / "c.json")
    _, first = run("token", "--credentials", str(path))
    forget_shared_tokens()  # as if in a new process

    check_status, _ = run("check", "--credentials", str(path))
    forget_shared_tokens()
    token_status, second = run("token", "--credentials", str(path))

    assert (check_status, token_status) == (0, 0)
    assert fake.token_requests == 2
    assert first.startswith("fake-token-1-")
    assert second.startswith("fake-token-2-")


@pytest.mark.parametrize(
    "make",
    [
        lambda tmp: "/dev/zero",
        str,
        lambda tmp: str(tmp / "missing.json"),
        lambda tmp: (tmp / "x.json").write_bytes(b"\xff\xfe") and str(tmp / "x.json"),
        lambda tmp: (tmp / "y.json").write_text("[]") and str(tmp / "y.json"),
    ],
    ids=["dev-zero", "directory", "missing", "not-utf8", "array"],
)
def test_no_credentials_input_gives_a_traceback(tmp_path, make, capsys):
    """Whatever --credentials names, 'check' exits 2 with one line, never a traceback."""
    status, _ = run("check", "--credentials", make(tmp_path))

    err = capsys.readouterr().err
    assert status == 2
    assert "Traceback" not in err
    one_line(err)


def test_an_unexpected_error_is_one_line(fake, tmp_path, monkeypatch, capsys):
    """Even a bug (a foreign exception) ends in one line and exit 1, its text not shown."""
    import clarify_auth.cli.main as cli

    def broken(*args, **kwargs):
        raise RuntimeError("test-secret-in-a-foreign-message")

    monkeypatch.setattr(cli, "load_credentials", broken)

    status, _ = run("header")

    err = one_line(capsys.readouterr().err)
    assert status == 1
    assert "RuntimeError" in err
    assert "test-secret" not in err


def test_usage_errors_are_one_line(capsys):
    """An unknown option is one line on stderr naming it, exit 2."""
    with pytest.raises(SystemExit) as info:
        run("token", "--no-such-option")

    assert info.value.code == 2
    err = one_line(capsys.readouterr().err)
    assert "--no-such-option" in err
    assert "--help" in err


def test_verbose_leaves_no_handler_behind(fake, tmp_path):
    """-v logs for one run only: the logger is as it was afterwards."""
    logger = logging.getLogger("clarify_auth")
    before = (list(logger.handlers), logger.level)
    path = fake.write_credentials(tmp_path / "c.json")

    run("token", "-v", "--credentials", str(path))

    assert (list(logger.handlers), logger.level) == before


# -- attacks an adversarial review found, beside the behaviour they attack --


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), stdout=out), out.getvalue()


def test_cli_header_refuses_a_plain_http_remote_basic_api_url(write_json, capsys):
    """'header' with a basic-auth file whose apiUrl is plain http to a remote host exits 2."""
    path = write_json(basic_dict(apiUrl="http://api.example.com/v1/"))

    status, out = run_cli("header", "--credentials", str(path))

    assert status == 2
    assert out == ""


def test_cli_4xx_without_an_rfc6749_body_is_not_reported_as_rejected(write_json):
    """A 404 whose JSON body is not an RFC 6749 error is a failing endpoint (4), not a rejection (3)."""
    server = LoopbackServer().start()
    try:
        server.routes["POST /v1/oauth/token"] = lambda seen: Reply(404, {"message": "no route"})
        data = basic_dict(apiUrl=server.url + "/v1/")
        data["credentials"]["type"] = "client-credentials"
        path = write_json(data)

        status, _ = run_cli("token", "--no-cache", "--credentials", str(path))
    finally:
        server.stop()

    assert status == 4


def test_cli_header_with_a_non_unicode_secret_exits_2(tmp_path):
    """`clarify-auth header` on a file whose clientSecret holds a lone surrogate exits 2 (unusable file), not 1."""
    path = tmp_path / "clarify-credentials.json"
    path.write_text(json.dumps(basic_file()).replace("test-secret-r2", "test-secret-r2\\ud800"))
    done = subprocess.run(
        [sys.executable, "-m", "clarify_auth", "header", "--no-cache", "--credentials", str(path)],
        env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "test-secret-r2" not in done.stderr + done.stdout
