"""One token per client per process, and across processes with CLARIFY_TOKEN_CACHE."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
import responses

from clarify_auth import (
    Authenticator,
    ClarifySession,
    ConfigurationError,
    Credentials,
    FileTokenCache,
    OAuthClientCredentials,
)
from conftest import (
    API_URL,
    TOKEN_URL,
    make_oauth,
    run_bare_python,
    token_body,
)

SRC = str(Path(__file__).resolve().parents[2] / "src")


def call_all_at_once(sessions: list[ClarifySession]) -> list[BaseException]:
    """One thread per session, released together, each making one call; their errors."""
    barrier = threading.Barrier(len(sessions))
    errors: list[BaseException] = []

    def call(session: ClarifySession) -> None:
        barrier.wait()
        try:
            session.rpc("clarify.selectItems")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(s,)) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return errors


def test_ten_fresh_sessions_from_one_file_cost_one_token_request(fake, tmp_path):
    """A notebook cell re-run ten times (a new session each time) sends one token request."""
    path = fake.write_credentials(tmp_path / "clarify-credentials.json")

    for _ in range(10):
        with ClarifySession(path) as session:
            session.rpc("clarify.selectItems")

    assert fake.token_requests == 1
    assert fake.rpc_calls == 10


def test_32_threads_on_32_sessions_cause_one_token_request(fake, tmp_path):
    """Thirty-two threads, each with its own session from one file, share one cold fetch."""
    path = fake.write_credentials(tmp_path / "clarify-credentials.json")
    fake.token_latency = 0.3
    sessions = [ClarifySession(path) for _ in range(32)]

    errors = call_all_at_once(sessions)

    assert errors == []
    assert fake.token_requests == 1
    assert fake.rpc_calls == 32


def test_every_way_of_building_shares_the_token(fake):
    """Built directly, by from_credentials, by a session or unpickled: one token for all."""
    creds = fake.credentials()
    inner = creds.credentials
    direct = OAuthClientCredentials(
        inner.client_id, inner.client_secret, token_url=creds.token_url, audience=creds.api_url
    )
    built = [
        direct,
        OAuthClientCredentials.from_credentials(creds),
        Authenticator.from_credentials(creds),
        ClarifySession(creds).authenticator,
    ]
    built.append(pickle.loads(pickle.dumps(built[1])))

    headers = {auth.authorization() for auth in built}

    assert len(headers) == 1
    assert fake.token_requests == 1


def test_a_token_fetched_before_pickling_is_shared_after_unpickling(fake):
    """A copy unpickled in this process joins the process's token instead of keeping a twin."""
    auth = OAuthClientCredentials.from_credentials(fake.credentials())
    auth.authorization()
    copy = pickle.loads(pickle.dumps(auth))

    copy.invalidate()
    header = copy.authorization()

    assert auth.authorization() == header
    assert fake.token_requests == 2


@responses.activate
def test_a_different_secret_never_shares():
    """The same client ID with another secret gets a token of its own."""
    responses.post(TOKEN_URL, json=token_body(1))
    responses.post(TOKEN_URL, json=token_body(2))
    first = make_oauth()
    second = OAuthClientCredentials(
        "test-client", "test-secret-other", token_url=TOKEN_URL, audience=API_URL
    )

    assert first.authorization() == "Bearer test-token-1"
    assert second.authorization() == "Bearer test-token-2"
    assert len(responses.calls) == 2


@responses.activate
def test_shared_false_gives_a_private_token():
    """shared=False keeps the token to this authenticator alone."""
    responses.post(TOKEN_URL, json=token_body(1))
    responses.post(TOKEN_URL, json=token_body(2))
    shared = make_oauth()
    private = make_oauth(shared=False)

    assert shared.authorization() == "Bearer test-token-1"
    assert private.authorization() == "Bearer test-token-2"
    assert make_oauth().authorization() == "Bearer test-token-1"
    assert (shared.shared, private.shared) == (True, False)


@responses.activate
def test_different_audiences_and_token_urls_never_share():
    """Another audience or another token URL is another client."""
    other_url = "https://other.example/v1/oauth/token"
    responses.post(TOKEN_URL, json=token_body(1))
    responses.post(TOKEN_URL, json=token_body(2))
    responses.post(other_url, json=token_body(3))

    headers = [
        make_oauth().authorization(),
        make_oauth(audience="https://other.example/v1/").authorization(),
        make_oauth(token_url=other_url).authorization(),
    ]

    assert headers == ["Bearer test-token-1", "Bearer test-token-2", "Bearer test-token-3"]


def test_concurrent_401s_on_different_sessions_cost_one_new_token(fake):
    """Compare-and-invalidate holds across sessions: 16 sessions hit by one revocation refetch once."""
    creds = fake.credentials()
    sessions = [ClarifySession(creds) for _ in range(16)]
    sessions[0].rpc("clarify.selectItems")
    fake.revoke_tokens()

    errors = call_all_at_once(sessions)

    assert errors == []
    assert fake.token_requests == 2


def test_a_forked_child_uses_the_shared_token_on_its_own(fake):
    """After fork the child reuses the process's token and can fetch its own."""
    auth = OAuthClientCredentials.from_credentials(fake.credentials())
    header = auth.authorization()

    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        ok = OAuthClientCredentials.from_credentials(fake.credentials()).authorization() == header
        auth.invalidate()
        fresh = auth.authorization()
        os._exit(0 if ok and fresh != header else 1)
    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    assert fake.token_requests == 2


# -- CLARIFY_TOKEN_CACHE ---------------------------------------------------------------


def test_environment_turns_the_default_file_cache_on(monkeypatch, tmp_path, oauth_creds):
    """CLARIFY_TOKEN_CACHE=default gives every authenticator the default folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("CLARIFY_TOKEN_CACHE", "default")

    auth = OAuthClientCredentials.from_credentials(oauth_creds)
    session = ClarifySession(oauth_creds)

    assert auth.token_cache is not None
    assert auth.token_cache.path == tmp_path / "clarify-auth" / "tokens"
    assert session.authenticator.token_cache.path == auth.token_cache.path


def test_environment_names_a_folder(monkeypatch, tmp_path, oauth_creds):
    """An absolute path in CLARIFY_TOKEN_CACHE is the cache folder."""
    monkeypatch.setenv("CLARIFY_TOKEN_CACHE", str(tmp_path / "tokens"))

    auth = OAuthClientCredentials.from_credentials(oauth_creds)

    assert auth.token_cache.path == tmp_path / "tokens"


@pytest.mark.parametrize("value", ["", None], ids=["empty", "unset"])
def test_environment_unset_or_empty_means_no_file_cache(monkeypatch, oauth_creds, value):
    """Without CLARIFY_TOKEN_CACHE the token stays in the process."""
    if value is None:
        monkeypatch.delenv("CLARIFY_TOKEN_CACHE", raising=False)
    else:
        monkeypatch.setenv("CLARIFY_TOKEN_CACHE", value)

    assert OAuthClientCredentials.from_credentials(oauth_creds).token_cache is None


@pytest.mark.parametrize("value", ["relative/tokens", "~/tokens", "yes", "1", "DEFAULT"], ids=str)
def test_environment_with_another_value_is_a_configuration_error(monkeypatch, oauth_creds, value):
    """Anything but 'default' or an absolute path names the variable in a ConfigurationError."""
    monkeypatch.setenv("CLARIFY_TOKEN_CACHE", value)

    with pytest.raises(ConfigurationError, match=r"\$CLARIFY_TOKEN_CACHE"):
        OAuthClientCredentials.from_credentials(oauth_creds)
    with pytest.raises(ConfigurationError, match=r"\$CLARIFY_TOKEN_CACHE"):
        ClarifySession(oauth_creds)


def test_an_explicit_cache_or_false_overrides_the_environment(monkeypatch, tmp_path, oauth_creds):
    """token_cache= wins over the variable; False turns the file cache off."""
    monkeypatch.setenv("CLARIFY_TOKEN_CACHE", "default")
    mine = FileTokenCache(tmp_path / "mine")

    assert (
        OAuthClientCredentials.from_credentials(oauth_creds, token_cache=mine).token_cache is mine
    )
    assert (
        OAuthClientCredentials.from_credentials(oauth_creds, token_cache=False).token_cache is None
    )


def test_filelock_is_a_runtime_dependency():
    """FileTokenCache always works: filelock is required without any extra."""
    from importlib.metadata import requires

    plain = [r for r in requires("clarify-auth") or [] if "extra ==" not in r]

    assert any(r.replace(" ", "").startswith("filelock") for r in plain)


_RUN_ONCE = """
import sys
from clarify_auth import ClarifySession
with ClarifySession(sys.argv[1]) as session:
    session.rpc("clarify.selectItems")
"""


def _python(*args: str, env_cache: str | None, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC, "XDG_CACHE_HOME": str(home)}
    env.pop("CLARIFY_TOKEN_CACHE", None)
    if env_cache is not None:
        env["CLARIFY_TOKEN_CACHE"] = env_cache
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_ten_sequential_runs_with_the_variable_cost_one_token_request(fake, tmp_path):
    """A script run ten times with CLARIFY_TOKEN_CACHE=default sends one token request."""
    path = fake.write_credentials(tmp_path / "clarify-credentials.json")

    results = [
        _python("-c", _RUN_ONCE, str(path), env_cache="default", home=tmp_path / "xdg")
        for _ in range(10)
    ]

    assert [r.returncode for r in results] == [0] * 10, results[0].stderr
    assert fake.token_requests == 1
    assert fake.rpc_calls == 10


def test_sequential_runs_without_the_variable_each_fetch(fake, tmp_path):
    """Without the variable each run is on its own (the comparison for the test above)."""
    path = fake.write_credentials(tmp_path / "clarify-credentials.json")

    for _ in range(3):
        assert _python("-c", _RUN_ONCE, str(path), env_cache=None, home=tmp_path).returncode == 0

    assert fake.token_requests == 3


# -- expires_at ------------------------------------------------------------------------------


def _near(moment: datetime, expected: datetime) -> bool:
    return abs((moment - expected).total_seconds()) < 5


def test_expires_at_of_a_fetched_token(fake):
    """A fetched token's expires_at is when the endpoint says it dies, in UTC."""
    before = datetime.now(timezone.utc)

    token = OAuthClientCredentials.from_credentials(fake.credentials()).token()

    assert token.expires_at.tzinfo is timezone.utc
    assert _near(token.expires_at, before + timedelta(seconds=3600))


def test_expires_at_from_the_process_store_and_a_pickle(fake):
    """A token from the process store or a pickle shows the same expires_at as when fetched."""
    first = OAuthClientCredentials.from_credentials(fake.credentials())
    original = first.token().expires_at
    time.sleep(1.1)

    from_store = OAuthClientCredentials.from_credentials(fake.credentials()).token()
    private = pickle.loads(pickle.dumps(OAuthClientCredentials.from_credentials(
        fake.credentials())))  # fmt: skip

    assert from_store.expires_at == original
    assert private.token().expires_at == original
    assert fake.token_requests == 1


def test_expires_at_from_the_file_cache(fake, tmp_path):
    """A token read from the file cache shows when it was issued to expire, not now + lifetime."""
    cache = FileTokenCache(tmp_path / "tokens")
    original = OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=cache, shared=False
    ).token()
    time.sleep(1.1)

    other = OAuthClientCredentials.from_credentials(
        fake.credentials(), token_cache=cache, shared=False
    ).token()

    assert fake.token_requests == 1
    assert abs((other.expires_at - original.expires_at).total_seconds()) < 0.01


def test_a_token_shown_in_a_notebook_cell_shows_expiry_not_the_token(fake):
    """repr of a token (what a notebook cell displays) has expires_at and no token."""
    token = OAuthClientCredentials.from_credentials(fake.credentials()).token()

    shown = repr(token)

    assert token.access_token.get_secret_value() not in shown
    assert "expires_at=datetime.datetime(" in shown
    assert "tzinfo=datetime.timezone.utc" in shown


# -- structure -------------------------------------------------------------------------------


def test_the_token_lifecycle_knows_no_http_library():
    """_lifecycle imports neither requests nor httpx: transports are adapters around it."""
    code = (
        "import sys; import clarify_auth.tokens.lifecycle; "
        "print(sorted(m for m in ('requests', 'httpx', 'urllib3') if m in sys.modules))"
    )
    result = run_bare_python(code)

    assert result.stdout.strip() == "[]"


def test_auth_and_oauth_modules_do_not_import_each_other():
    """_oauth builds on _auth; _auth names no subclass module in its imports."""
    import ast

    import clarify_auth.transports.requests.authenticators as auth_module

    tree = ast.parse(Path(auth_module.__file__).read_text())
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }

    assert "clarify_auth.transports.requests.oauth" not in imported


def test_requests_session_with_from_credentials_authenticator_shares(fake):
    """A plain requests.Session using a from_credentials authenticator joins the same token."""
    creds = fake.credentials()
    session = ClarifySession(creds)
    session.rpc("clarify.selectItems")

    plain = requests.Session()
    plain.auth = Authenticator.from_credentials(creds)
    body = {"jsonrpc": "2.0", "id": 1, "method": "clarify.selectItems", "params": {}}
    response = plain.post(creds.api_url + "rpc", json=body, timeout=10)

    assert response.status_code == 200
    assert fake.token_requests == 1


def test_credentials_from_another_file_with_the_same_client_share(fake, tmp_path):
    """Two files holding the same client are one client: one token."""
    first = fake.write_credentials(tmp_path / "a.json")
    second = fake.write_credentials(tmp_path / "b.json")

    ClarifySession(first).rpc("clarify.selectItems")
    ClarifySession(second).rpc("clarify.selectItems")

    assert fake.token_requests == 1
    assert Credentials.from_file(first) == Credentials.from_file(second)


# -- attacks an adversarial review found, beside the behaviour they attack --


def test_sessions_differing_only_in_file_cache_share_one_token(fake, tmp_path):
    """Two sessions of one client, one with a file cache, share the process's token."""
    fake.on("clarify.selectItems", result={"data": []})
    ClarifySession(fake.credentials()).rpc("clarify.selectItems")
    ClarifySession(fake.credentials(), token_cache=FileTokenCache(tmp_path / "tokens")).rpc(
        "clarify.selectItems"
    )

    assert fake.token_requests == 1
