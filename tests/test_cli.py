"""The clarify-auth command: token, header, check, demo; one-line errors and exit statuses."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from clarify_auth._cli import main
from clarify_auth.testing import FakeClarify


@pytest.fixture
def fake():
    with FakeClarify() as server:
        yield server


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
        "expires in:  3600 s",
        "OK",
    ):
        assert expected in out
    assert fake.client_secret not in out + capsys.readouterr().err
    assert "fake-token" not in out


def test_check_basic_credentials(fake, tmp_path):
    """'check' of basic-auth credentials validates the file and says there is no token."""
    path = fake.write_credentials(tmp_path / "b.json", type="basic-auth")

    status, out = run("check", "--credentials", str(path))

    assert status == 0
    assert "basic-auth" in out
    assert fake.basic_password not in out


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

    assert status == 4
    assert "connection failed" in one_line(capsys.readouterr().err)


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


def test_other_sdk_errors_exit_1(tmp_path, capsys):
    """An insecure apiUrl (an SDK error that is not about the file or token) exits 1."""
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

    assert status == 1
    assert "plain http" in one_line(capsys.readouterr().err)


def test_interrupt_exits_130(fake, tmp_path, capsys, monkeypatch):
    """Ctrl-C gives exit 130 and one line, not a traceback."""
    import clarify_auth._cli as cli

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

    monkeypatch.setattr("clarify_auth._demo.FakeClarify", Leaky)

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
    for word in ("token", "header", "check", "demo", "--credentials", "exit status"):
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
