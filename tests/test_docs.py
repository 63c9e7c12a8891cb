"""Every Python block in the README and the docs, and every example, runs against a loopback Clarify.

The convention for ```python blocks (README.md and docs/*.md): each runs alone,
in a fresh namespace, in an empty working folder of its own that holds a
``clarify-credentials.json`` (client credentials) for a ``FakeClarify`` started
for that block, with ``CLARIFY_CREDENTIALS``, ``CLARIFY_CREDENTIALS_JSON`` and
``CLARIFY_TOKEN_CACHE`` unset and ``XDG_CACHE_HOME`` in the temporary folder
(so ``FileTokenCache()`` writes there). That is exactly what a reader has after
``clarify-auth fake --write clarify-credentials.json``, so a block says where
its credentials come from (``ClarifySession()`` finds the file, or
``load_credentials()``) and carries every import it uses. A ``# prints: TEXT``
comment on a line of a block is checked: the block's output contains TEXT.

Blocks marked in their info string run elsewhere, against a real server:
```python redis in tests/test_redis_everywhere.py, ```python mqtt in
tests/test_mqtt.py; ```python pytest blocks are test modules, run by pytester.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import clarify_auth
from _loopback import Reply
from conftest import oauth_dict

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
PAGES = sorted((ROOT / "docs").glob("*.md"))
PRINTS = re.compile(r"#\s*prints:\s*(.+?)\s*$", flags=re.MULTILINE)


def blocks(language: str, text: str = README) -> list[str]:
    return re.findall(
        rf"^```{re.escape(language)}\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE
    )


def documented_blocks(language: str) -> list[tuple[str, str]]:
    """(where, code) of every block fenced as ``language`` in the README and the docs."""
    found: list[tuple[str, str]] = []
    for path in [ROOT / "README.md", *PAGES]:
        for number, code in enumerate(blocks(language, path.read_text(encoding="utf-8")), 1):
            found.append((f"{path.relative_to(ROOT)} #{number}", code))
    return found


PYTHON_BLOCKS = documented_blocks("python")


def mosquitto_is_installed() -> bool:
    from clarify_auth._mosquitto import BrokerUnavailableError, find_mosquitto

    try:
        find_mosquitto()
    except BrokerUnavailableError:  # pragma: no cover - CI installs mosquitto
        return False
    return True


@pytest.fixture
def workdir(server, tmp_path, monkeypatch):
    """A working directory with a clarify-credentials.json for the loopback server."""
    (tmp_path / "clarify-credentials.json").write_text(
        json.dumps(oauth_dict(apiUrl=server.api_url))
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CLARIFY_CREDENTIALS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # FileTokenCache()
    return tmp_path


@pytest.fixture
def reader(tmp_path, monkeypatch):
    """What a reader of the docs has: an empty folder with a credentials file for a local fake."""
    from clarify_auth.testing import FakeClarify

    folder = tmp_path / "reader"
    folder.mkdir()
    for name in ("CLARIFY_CREDENTIALS", "CLARIFY_CREDENTIALS_JSON", "CLARIFY_TOKEN_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(folder)
    with FakeClarify() as fake:
        fake.write_credentials(folder / "clarify-credentials.json")
        yield fake


@pytest.mark.parametrize(("where", "code"), PYTHON_BLOCKS, ids=[w for w, _ in PYTHON_BLOCKS])
def test_each_python_block_runs_alone(where, code, reader):
    """A ```python block of the README or the docs runs by itself and prints what it says."""
    out = io.StringIO()

    with contextlib.redirect_stdout(out):
        exec(compile(code, where, "exec"), {"__name__": "__main__"})  # noqa: S102

    for expected in PRINTS.findall(code):
        assert expected in out.getvalue(), f"{where}: {expected!r} not in {out.getvalue()!r}"


NOTEBOOK_BLOCKS = documented_blocks("python notebook")


@pytest.mark.parametrize(("where", "code"), NOTEBOOK_BLOCKS, ids=[w for w, _ in NOTEBOOK_BLOCKS])
def test_each_notebook_block_runs_with_top_level_await(where, code, reader):
    """A ```python notebook block runs as a cell does: top-level await on a running loop.

    That is where the script form, asyncio.run(), fails.
    """
    out = io.StringIO()
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT

    async def cell() -> None:
        script_form = asyncio.sleep(0)
        with pytest.raises(RuntimeError, match=r"asyncio\.run\(\) cannot be called"):
            asyncio.run(script_form)  # what the script form would meet here
        script_form.close()
        awaitable = eval(compile(code, where, "exec", flags=flags), {"__name__": "__main__"})  # noqa: S307
        await awaitable

    with contextlib.redirect_stdout(out):
        asyncio.run(cell())

    assert "await " in code
    for expected in PRINTS.findall(code):
        assert expected in out.getvalue(), f"{where}: {expected!r} not in {out.getvalue()!r}"


def test_every_async_block_has_its_notebook_form_beside_it():
    """Each page with an asyncio.run() script block also shows the top-level-await form."""
    script_pages = {w.split(" #")[0] for w, code in PYTHON_BLOCKS if "asyncio.run(" in code}
    notebook_pages = {w.split(" #")[0] for w, _ in NOTEBOOK_BLOCKS}

    assert script_pages
    assert script_pages <= notebook_pages


def test_the_readme_and_the_docs_have_python_blocks():
    """The README has its quick start and every page of the docs is collected."""
    pages = {where.split(" #")[0] for where, _ in PYTHON_BLOCKS}

    assert "README.md" in pages
    assert len(PYTHON_BLOCKS) >= 15
    assert {"docs/getting-started.md", "docs/testing.md", "docs/errors.md"} <= pages


def test_pytest_blocks_pass_in_a_users_project(pytester):
    """Blocks fenced as 'python pytest' are test modules; they pass as a user would run them."""
    tests = documented_blocks("python pytest")
    for number, (_, source) in enumerate(tests, 1):
        pytester.makepyfile(**{f"test_docs_{number}": source})

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")

    assert len(tests) >= 2
    if mosquitto_is_installed() or os.environ.get("CLARIFY_AUTH_REQUIRE_MOSQUITTO"):
        result.assert_outcomes(passed=len(tests))
    else:  # pragma: no cover - CI installs mosquitto; the MQTT block skips, saying why
        result.assert_outcomes(passed=len(tests) - 1, skipped=1)
        assert "mosquitto is not installed" in result.stdout.str()


def test_the_credentials_file_shown_is_valid():
    """The credentials file shown in the docs parses."""
    (example,) = blocks("json", (ROOT / "docs" / "getting-started.md").read_text(encoding="utf-8"))

    creds = clarify_auth.Credentials.from_json(example)

    assert creds.credentials.type == "client-credentials"


def test_readme_opens_with_the_two_commands():
    """The first code block holds the set-up commands: run the main job, run the tests."""
    first = blocks("bash")[0].strip().splitlines()

    assert len(first) == 2
    assert "python -m clarify_auth demo" in first[0]
    assert "python -m pytest --cov" in first[1]
    assert README.index(blocks("bash")[0]) < README.index("## ")


@pytest.mark.skipif(
    not (ROOT / ".ci" / "run").exists(), reason="no .ci/run here: an sdist does not ship it"
)
def test_ci_runs_the_readme_test_command():
    """.ci/run runs the same test command as the README."""
    command = next(line for line in blocks("bash")[0].splitlines() if "pytest" in line)
    test_command = command.split("&&")[-1].split("#")[0].strip()

    assert test_command in (ROOT / ".ci" / "run").read_text()


def run_example(
    name: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_example_call_api(workdir, server):
    """examples/call_api.py loads the file and calls the API."""
    result = run_example("call_api.py")

    assert result.returncode == 0, result.stderr
    assert "clarify.selectItems answered: {'ok': True}" in result.stdout


def test_example_call_api_with_env_and_bad_credentials(workdir, server, tmp_path):
    """call_api.py reports rejected credentials in one line and exits 1; a bad path exits 2."""
    server.token_replies.append(
        Reply(401, {"error": "access_denied", "error_description": "Unauthorized"})
    )
    env_file = tmp_path / "other.json"
    env_file.write_text(json.dumps(oauth_dict(apiUrl=server.api_url)))

    rejected = run_example("call_api.py", env={"CLARIFY_CREDENTIALS": str(env_file)})
    missing = run_example("call_api.py", str(tmp_path / "nope.json"))

    assert rejected.returncode == 1
    assert "access_denied" in rejected.stderr
    assert "test-secret" not in rejected.stderr + rejected.stdout
    assert missing.returncode == 2
    assert "nope.json: no such file" in missing.stderr


def test_example_call_api_rpc_error(workdir, server):
    """call_api.py reports a JSON-RPC error and exits 1."""
    server.routes["POST /v1/rpc"] = lambda seen: Reply(
        json={"jsonrpc": "2.0", "id": 1, "error": {"code": -32601, "message": "Method not found"}}
    )

    result = run_example("call_api.py")

    assert result.returncode == 1
    assert "-32601: Method not found" in result.stderr


def test_example_existing_session(workdir, server):
    """examples/existing_session.py signs another integration's session."""
    result = run_example("existing_session.py")

    assert result.returncode == 0, result.stderr
    assert "status 200" in result.stdout
    assert server.requests_to("POST", "/v1/rpc")[0].headers["User-Agent"] == "my-pipeline/2.3"


@pytest.mark.parametrize(
    ("name", "flags", "processes", "expected"),
    [
        ("process_pool.py", [], "on 8 processes", 1),
        ("process_pool.py", ["--no-cache"], "on 8 processes", 8),
        ("dask_workers.py", [], "on 4 worker processes", 1),
        ("dask_workers.py", ["--no-cache"], "on 4 worker processes", 4),
    ],
    ids=["pool-cache", "pool-no-cache", "dask-cache", "dask-no-cache"],
)
def test_examples_across_processes_print_what_they_cost(name, flags, processes, expected, tmp_path):
    """The process-pool and Dask examples print their token requests: 1 with the cache, else one a process."""
    from clarify_auth.testing import FakeClarify

    with FakeClarify() as fake:
        fake.token_latency = 0.2
        path = fake.write_credentials(tmp_path / "clarify-credentials.json")

        result = run_example(
            name, *flags, str(path), env={"XDG_CACHE_HOME": str(tmp_path / "cache")}
        )

        assert result.returncode == 0, result.stderr[-2000:]
        assert f"tasks {processes}: 0 items" in result.stdout
        assert f"token requests: {expected} (" in result.stdout
        assert fake.token_requests == expected


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("call_api.py", []),
        ("existing_session.py", []),
        ("process_pool.py", ["--no-cache"]),
        ("httpx_client.py", []),
        ("httpx_async.py", []),
        ("sqlite_store.py", []),
    ],
)
def test_every_example_reports_rejected_credentials_in_one_line(name, args, tmp_path):
    """A rejected secret: exit 1 and one 'error:' line, no traceback, no secret."""
    from clarify_auth.testing import FakeClarify

    with FakeClarify() as fake:
        fake.fail_token_requests(
            1000, status=401, body={"error": "access_denied", "error_description": "Unauthorized"}
        )
        path = fake.write_credentials(tmp_path / "clarify-credentials.json")
        secret = fake.client_secret

        result = subprocess.run(
            [sys.executable, str(ROOT / "examples" / name), *args, str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env={
                **os.environ,
                "XDG_CACHE_HOME": str(tmp_path / "cache"),
                "CLARIFY_TOKEN_CACHE": "",
            },
            check=False,
        )

    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "access_denied" in result.stderr
    assert secret not in result.stderr + result.stdout


def test_the_api_examples_print_their_token_requests(workdir, server):
    """call_api.py and existing_session.py print the one token request they cost."""
    for name in ("call_api.py", "existing_session.py"):
        result = run_example(name)

        assert result.returncode == 0, result.stderr
        assert "token requests: 1" in result.stdout


def test_the_api_reference_names_every_public_name():
    """docs/reference.md renders (::: clarify_auth.NAME) every name of __all__ and each public submodule."""
    reference = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    rendered = set(re.findall(r"^::: clarify_auth\.(\S+)$", reference, flags=re.MULTILINE))

    assert set(clarify_auth.__all__) <= rendered
    assert {"httpx", "mqtt", "pyclarify", "testing", "pytest_plugin"} <= rendered


def test_the_readme_links_every_page_of_the_site():
    """The README's Documentation list links each docs page, and mkdocs.yml's nav holds each one."""
    documentation = README.split("## Documentation", 1)[1].split("\n## ", 1)[0]
    linked = set(re.findall(r"\]\(docs/([\w-]+\.md)\)", documentation))
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    guides = {page.name for page in PAGES} - {"index.md", "changelog.md"}

    assert guides <= linked
    assert all(f": {page.name}" in nav for page in PAGES)
