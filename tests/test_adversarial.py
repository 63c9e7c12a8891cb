"""Breaks an adversarial review found: origin spellings, echoes, cache sharing, CLI verdicts."""

from __future__ import annotations

import io
import json
import logging
import os
import pathlib
import threading
from datetime import datetime, timezone

import pytest
import requests
import responses

from _loopback import LoopbackServer, Reply
from clarify_auth import (
    BasicAuth,
    ClarifyAuthError,
    ClarifySession,
    Credentials,
    FileTokenCache,
    OAuthClientCredentials,
    TokenError,
)
from clarify_auth.cli.main import main
from conftest import BASIC_PASSWORD, SECRET, basic_dict, make_oauth, token_body


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), stdout=out), out.getvalue()


# -- origin confusion: the session judges the raw URL, requests sends the normalised one ---


def test_backslash_url_to_another_origin_carries_no_credentials(basic_creds):
    """A URL that urlsplit reads as the API but requests sends to another host gets no credentials."""
    session = ClarifySession(
        basic_creds, authenticator=BasicAuth("test-integration", BASIC_PASSWORD)
    )
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, "https://evil.example/%5C@api.clarify.io/v1/rpc", body="x")
        reply = session.get("https://evil.example\\@api.clarify.io/v1/rpc")

    assert reply.request.url.startswith("https://evil.example/")
    assert "Authorization" not in reply.request.headers


def test_backslash_url_cannot_smuggle_plain_http_to_a_remote_host(basic_creds):
    """Plain http to a remote host is refused even when urlsplit reads the host as loopback."""
    session = ClarifySession(basic_creds)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, "http://evil.example/%5C@127.0.0.1/x", body="x")
        with pytest.raises(ClarifyAuthError):
            session.get("http://evil.example\\@127.0.0.1/x")
        assert len(mock.calls) == 0


def test_uppercase_http_token_url_is_refused_through_a_remote_proxy():
    """An 'HTTP://' loopback token URL must not send the secret in clear through a remote proxy."""
    transport = requests.Session()
    transport.trust_env = False
    transport.proxies = {"http": "http://proxy.example.corp:3128"}
    auth = make_oauth(
        token_url="HTTP://127.0.0.1:9/v1/oauth/token", session=transport, token_cache=False
    )
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, "http://127.0.0.1:9/v1/oauth/token", json=token_body())
        with pytest.raises(ClarifyAuthError):
            auth.token()
        assert len(mock.calls) == 0  # the client secret left, through the remote proxy


def test_idn_api_url_requests_carry_authorization():
    """Requests to an internationalised apiUrl's own origin carry Authorization."""
    creds = Credentials.from_dict(basic_dict(apiUrl="https://bücher.example/v1/"))
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, "https://xn--bcher-kva.example/v1/rpc", json={})
        reply = ClarifySession(creds).post("rpc", json={})

    assert reply.request.headers.get("Authorization", "").startswith("Basic ")


def test_http_to_https_upgrade_redirect_strips_authorization():
    """A redirect from http://localhost to https://localhost (another origin) drops Authorization."""
    creds = Credentials.from_dict(basic_dict(apiUrl="http://localhost/v1/"))
    with responses.RequestsMock() as mock:
        mock.add(
            responses.POST,
            "http://localhost/v1/rpc",
            status=307,
            headers={"Location": "https://localhost/v1/rpc"},
        )
        mock.add(responses.POST, "https://localhost/v1/rpc", json={})
        ClarifySession(creds).post("rpc", json={})
        upgraded = mock.calls[1].request

    assert upgraded.url.startswith("https://localhost/")
    assert "Authorization" not in upgraded.headers


# -- secrets -----------------------------------------------------------------------------


def test_secret_echoed_as_token_type_is_masked():
    """A token endpoint that echoes the secret as token_type does not get it into the TokenError."""
    auth = make_oauth(token_cache=False, attempts=1)
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, "https://api.clarify.io/v1/oauth/token",
                 json=token_body(token_type=SECRET))  # fmt: skip
        with pytest.raises(TokenError) as caught:
            auth.token()

    assert SECRET[:12] not in str(caught.value)


# -- sharing and packaging ---------------------------------------------------------------


def test_pyproject_declares_filelock_as_a_runtime_dependency():
    """filelock is a runtime dependency of the distribution, as the contract and README say."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: pytest's own dependency
        import tomli as tomllib

    pyproject = pathlib.Path(__file__).parent.parent / "pyproject.toml"
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]

    assert any(d.replace(" ", "").lower().startswith("filelock") for d in dependencies)


def test_sessions_differing_only_in_file_cache_share_one_token(fake, tmp_path):
    """Two sessions of one client, one with a file cache, share the process's token."""
    fake.on("clarify.selectItems", result={"data": []})
    ClarifySession(fake.credentials()).rpc("clarify.selectItems")
    ClarifySession(fake.credentials(), token_cache=FileTokenCache(tmp_path / "tokens")).rpc(
        "clarify.selectItems"
    )

    assert fake.token_requests == 1


# -- the file cache ------------------------------------------------------------------------


def test_expires_at_of_a_token_from_the_file_cache_is_its_own(fake, tmp_path):
    """A token another process stored 3500 s ago reports the expiry it has, not a fresh lifetime."""
    folder = tmp_path / "tokens"
    first = OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=FileTokenCache(folder), shared=False
    )
    first.token()
    (entry,) = folder.glob("*.json")
    stored = json.loads(entry.read_text())
    stored["refresh_at"] -= 3500  # as if written by a process 3500 s ago
    stored["expires_at"] -= 3500
    stored["token_expires_at"] -= 3500
    entry.write_text(json.dumps(stored))

    token = OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=FileTokenCache(folder), shared=False
    ).token()

    assert fake.token_requests == 1  # it did come from the file
    left = (token.expires_at - datetime.now(timezone.utc)).total_seconds()
    assert left < 200  # about 100 s are left, not 3600


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


def test_cache_lock_failure_is_a_warning_not_an_exception(fake, tmp_path, caplog):
    """A lock file the cache cannot open (here a directory) degrades to a warning."""
    folder = tmp_path / "tokens"
    folder.mkdir(mode=0o700)
    auth = OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=FileTokenCache(folder), shared=False
    )
    (folder / f"{auth._lifecycle.store_key.digest[:40]}.lock").mkdir()
    caplog.set_level(logging.WARNING, logger="clarify_auth")

    assert auth.authorization().startswith("Bearer ")
    assert caplog.records


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


def test_threads_waiting_on_a_cache_locked_fetch_share_its_result(fake, tmp_path):
    """Threads waiting while the leader waits for the cache lock share its token, not a timeout."""
    import filelock

    folder = tmp_path / "tokens"
    folder.mkdir(mode=0o700)
    auth = OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=FileTokenCache(folder, lock_timeout=2.5), deadline=0.2
    )
    held, release = threading.Event(), threading.Event()

    def hang_holding_the_lock():  # stands in for another process that hangs
        with filelock.FileLock(folder / f"{auth._lifecycle.store_key.digest[:40]}.lock"):
            held.set()
            release.wait(10)

    threading.Thread(target=hang_holding_the_lock, daemon=True).start()
    assert held.wait(5)
    outcomes: list[str] = []

    def call():
        try:
            auth.token()
            outcomes.append("token")
        except TokenError:
            outcomes.append("TokenError")

    callers = [threading.Thread(target=call) for _ in range(3)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(10)
    release.set()

    assert len(set(outcomes)) == 1, outcomes  # everyone shares one result or one error


# -- the command line ------------------------------------------------------------------------


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
