"""The Redis store wherever the SDK runs: httpx clients, the command line, pickles, imports."""

from __future__ import annotations

import json
import multiprocessing
import pickle
import subprocess
import sys

import pytest

pytest.importorskip("redis")
pytest.importorskip("cryptography")

import clarify_auth
from _redis import RedisServer, require_redis_server
from clarify_auth import RedisTokenCache
from clarify_auth.testing import FakeClarify, forget_shared_tokens
from conftest import SRC, run_bare_python

require_redis_server()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    redis_server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield redis_server
    redis_server.stop()


@pytest.fixture
def fake(server):
    server.client().flushall()
    forget_shared_tokens()
    with FakeClarify() as clarify:
        yield clarify
    forget_shared_tokens()


def test_nothing_of_redis_or_cryptography_is_imported_without_a_redis_store():
    """Sessions, authenticators and the file cache import neither redis nor cryptography."""
    result = run_bare_python(
        "import sys, clarify_auth\n"
        "clarify_auth.ClarifySession, clarify_auth.FileTokenCache, clarify_auth.TokenStore\n"
        "clarify_auth.RedisTokenCache\n"
        "print(sorted(m for m in ('redis', 'cryptography') if m in sys.modules))"
    )

    assert result.stdout.strip() == "[]"


def test_httpx_clients_share_the_fleets_token(server, fake, monkeypatch):
    """An httpx Client from CLARIFY_TOKEN_CACHE=redis://... takes the token a session stored."""
    pytest.importorskip("httpx")
    import clarify_auth.httpx

    monkeypatch.setenv("CLARIFY_TOKEN_CACHE", server.url)
    with clarify_auth.ClarifySession(fake.credentials()) as session:
        session.rpc("clarify.selectItems")
    forget_shared_tokens()

    with clarify_auth.httpx.Client(fake.credentials()) as client:
        client.rpc("clarify.selectItems")
    with clarify_auth.httpx.Client(
        fake.credentials(), token_cache=RedisTokenCache(server.url)
    ) as explicit:
        explicit.rpc("clarify.selectItems")

    assert fake.token_requests == 1


def run_cli(*args, env):
    return subprocess.run(
        [sys.executable, "-m", "clarify_auth", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": SRC, "HOME": env.pop("HOME"), **env},
        check=False,
    )


def test_cli_runs_share_the_fleets_token_and_cache_reports_it(server, fake, tmp_path):
    """token on two 'machines' (two HOMEs) with CLARIFY_TOKEN_CACHE=redis://: one request."""
    path = fake.write_credentials(tmp_path / "clarify-credentials.json")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()

    first = run_cli("token", "--credentials", str(path),
                    env={"HOME": str(tmp_path / "a"), "CLARIFY_TOKEN_CACHE": server.url})  # fmt: skip
    second = run_cli("token", "--credentials", str(path),
                     env={"HOME": str(tmp_path / "b"), "CLARIFY_TOKEN_CACHE": server.url})  # fmt: skip

    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert fake.token_requests == 1


def _worker(blob, out):
    session = pickle.loads(blob)
    with session:
        session.rpc("clarify.selectItems")
        counters = session.authenticator.counters
    out.put(
        (
            counters.fetches,
            counters.store_hits,
            session.authenticator.token_cache._link._client is not None,
        )
    )


def test_a_session_shipped_to_a_worker_connects_from_there(server, fake):
    """A session pickled before its first request: the worker connects to Redis itself."""
    forget_shared_tokens()
    clarify_auth.ClarifySession(fake.credentials(), token_cache=RedisTokenCache(server.url)).authenticator.authorization()  # fmt: skip
    forget_shared_tokens()
    cold = clarify_auth.ClarifySession(fake.credentials(), token_cache=RedisTokenCache(server.url))
    blob = pickle.dumps(cold)
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    worker = context.Process(target=_worker, args=(blob, out))

    worker.start()
    result = out.get(timeout=60)
    worker.join(30)

    assert result == (0, 1, True)  # no fetch: the fleet's token, over its own connection
    assert fake.token_requests == 1
    cold.close()


def test_cache_command_reports_the_store_and_its_token(server, fake, tmp_path):
    """clarify-auth cache --json: the Redis store, reachable, a token until when; never the token."""
    path = fake.write_credentials(tmp_path / "clarify-credentials.json")
    env = {"HOME": str(tmp_path), "CLARIFY_TOKEN_CACHE": server.url}
    empty = run_cli("cache", "--json", "--credentials", str(path), env=dict(env))
    token = run_cli("token", "--credentials", str(path), env=dict(env)).stdout.strip()
    held = run_cli("cache", "--json", "--credentials", str(path), env=dict(env))
    text = run_cli("cache", "--credentials", str(path), env=dict(env))
    server.kill()
    try:
        down = run_cli("cache", "--json", "--credentials", str(path), env=dict(env))
    finally:
        server.start()

    assert empty.returncode == 0, empty.stderr
    assert json.loads(empty.stdout)["token"] == {"stored": False}
    document = json.loads(held.stdout)
    assert document["store"] == "redis"
    assert document["reachable"] is True
    assert document["token"]["stored"] is True
    assert 3000 < document["token"]["expires_in"] <= 3600
    assert token not in held.stdout + text.stdout
    assert "usable until" in text.stdout
    assert down.returncode == 1
    assert json.loads(down.stdout)["reachable"] is False
    assert "ConnectionError" in json.loads(down.stdout)["problem"]


def test_cache_command_on_the_file_cache(fake, tmp_path):
    """Without CLARIFY_TOKEN_CACHE the command line's file cache is reported, then its token."""
    path = fake.write_credentials(tmp_path / "clarify-credentials.json")
    env = {"HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    before = run_cli("cache", "--credentials", str(path), env=dict(env))
    run_cli("token", "--credentials", str(path), env=dict(env))
    after = run_cli("cache", "--json", "--credentials", str(path), env=dict(env))

    assert before.returncode == 0, before.stderr
    assert "no (the next token request stores one)" in before.stdout
    assert json.loads(after.stdout)["store"] == "file"
    assert json.loads(after.stdout)["token"]["stored"] is True


def test_the_docs_redis_block_runs_against_a_real_redis(server, fake, tmp_path, monkeypatch):
    """The docs' ```python redis block (fleets.md) runs as written, pointed at the test's redis-server."""
    import contextlib
    import io
    import re
    from pathlib import Path

    page = Path(__file__).resolve().parents[3] / "docs" / "fleets.md"
    [block] = re.findall(
        r"^```python redis\n(.*?)^```",
        page.read_text(encoding="utf-8"),
        flags=re.DOTALL | re.MULTILINE,
    )
    fake.write_credentials(tmp_path / "clarify-credentials.json")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CLARIFY_CREDENTIALS", raising=False)
    out = io.StringIO()

    with contextlib.redirect_stdout(out):
        exec(block.replace("redis://127.0.0.1:6379/0", server.url), {})  # noqa: S102

    assert "TokenCounters(fetches=1, process_hits=0, store_hits=0" in out.getvalue()
    assert server.client().keys("clarify-auth:*")
