"""clarify-auth cache: which store, whether it can be used, what it holds; never the token."""

from __future__ import annotations

import io
import json

import pytest

from clarify_auth.cli.main import main
from clarify_auth.testing import FakeClarify, forget_shared_tokens


@pytest.fixture
def fake(tmp_path, monkeypatch):
    forget_shared_tokens()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("CLARIFY_TOKEN_CACHE", raising=False)
    with FakeClarify() as clarify:
        yield clarify
    forget_shared_tokens()


def run(*argv):
    out = io.StringIO()
    status = main(list(argv), stdout=out)
    return status, out.getvalue()


def test_the_file_cache_before_and_after_a_token(fake, tmp_path):
    """No folder yet: usable, no token; after 'token': the token's expiry, never the token."""
    path = fake.write_credentials(tmp_path / "creds.json")

    before = run("cache", "--credentials", str(path))
    _, token = run("token", "--credentials", str(path))
    status, text = run("cache", "--credentials", str(path))
    _, document = run("cache", "--json", "--credentials", str(path))

    assert before[0] == 0
    assert "token:     no (the next token request stores one)" in before[1]
    assert "store:     file" in before[1]
    assert status == 0
    assert "token:     yes, usable until" in text
    assert token.strip() not in text + document
    parsed = json.loads(document)
    assert parsed["reachable"] is True
    assert parsed["problem"] is None
    assert set(parsed["token"]) == {"stored", "expires_in", "expires_at", "refresh_in"}
    assert parsed["token"]["refresh_in"] < parsed["token"]["expires_in"]


def test_a_folder_others_can_write_is_reported_unusable(fake, tmp_path):
    """A cache folder writable by others: exit 1, the reason, no token looked at."""
    path = fake.write_credentials(tmp_path / "creds.json")
    folder = tmp_path / "cache" / "clarify-auth" / "tokens"
    folder.mkdir(parents=True)
    folder.chmod(0o777)

    status, document = run("cache", "--json", "--credentials", str(path))

    assert status == 1
    parsed = json.loads(document)
    assert parsed["reachable"] is False
    assert "other users can write to it" in parsed["problem"]
    assert parsed["token"] == {"stored": False}


def test_a_redis_nobody_listens_on_is_reported_unusable(fake, tmp_path, monkeypatch):
    """CLARIFY_TOKEN_CACHE=redis://... with nothing there: exit 1, 'no: ConnectionError ...'."""
    pytest.importorskip("redis")
    monkeypatch.setenv("CLARIFY_TOKEN_CACHE", "redis://:test-secret-pw@127.0.0.1:1/0")
    path = fake.write_credentials(tmp_path / "creds.json")

    status, text = run("cache", "--credentials", str(path))

    assert status == 1
    assert "store:     redis" in text
    assert "reachable: no: ConnectionError" in text
    assert "token:     unknown (the store cannot be used)" in text
    assert "test-secret-pw" not in text


def test_basic_credentials_and_no_cache_are_usage_errors(fake, tmp_path, capsys):
    """basic-auth credentials use no token cache; 'cache --no-cache' makes no sense: exit 2."""
    basic = fake.write_credentials(tmp_path / "basic.json", type="basic-auth")
    oauth = fake.write_credentials(tmp_path / "oauth.json")

    assert run("cache", "--credentials", str(basic))[0] == 2
    assert "basic-auth credentials, which use no token" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:
        run("cache", "--no-cache", "--credentials", str(oauth))
    assert refused.value.code == 2
    assert "'cache' takes no --no-cache" in capsys.readouterr().err
