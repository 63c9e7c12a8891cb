"""Token requests per workflow: fresh sessions, command-line runs, sequential and parallel processes.

Each row starts from nothing (a new process, an empty cache folder) and counts
what FakeClarify saw. The peers have no file cache; where a row has no
equivalent for them, the nearest workflow is measured (a fresh client per run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
SRC = HERE.parent / "src"

# Run in a child: build `clients` fresh clients of one contender, one API call each.
_CHILD = """
import sys, json
sys.path.insert(0, {here!r})
import _contenders
name, credentials, clients = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
cls = next(c for c in _contenders.CONTENDERS if c.name == name)
for _ in range(clients):
    contender = cls(credentials)
    status = contender.call()
    contender.close()
    assert status == 200, status
"""


def _env(cache_home: Path, *, token_cache: bool) -> dict[str, str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    env.pop("CLARIFY_TOKEN_CACHE", None)
    if token_cache:
        env["CLARIFY_TOKEN_CACHE"] = "default"  # noqa: S105 - a folder choice, not a password
    return env


def _client_run(name: str, credentials: dict[str, Any], clients: int, env: dict[str, str]) -> Any:
    code = _CHILD.format(here=str(HERE))
    return subprocess.Popen(
        [sys.executable, "-c", code, name, json.dumps(credentials), str(clients)], env=env
    )


def _wait(processes: list[Any]) -> None:
    for process in processes:
        if process.wait(timeout=120) != 0:
            message = f"a benchmark child failed with {process.returncode}"
            raise RuntimeError(message)


def measure(fake: Any, names: list[str]) -> dict[str, dict[str, int | None]]:
    """Token requests for each workflow and contender; ``None`` where there is no equivalent."""
    rows: dict[str, dict[str, int | None]] = {}

    def count(run: Any) -> int:
        before = fake.stats()["token_requests"]
        with tempfile.TemporaryDirectory(prefix="clarify-bench-cache-") as home:
            run(Path(home))
        return int(fake.stats()["token_requests"] - before)

    credentials = fake.credentials
    with tempfile.TemporaryDirectory(prefix="clarify-bench-creds-") as folder:
        path = Path(folder) / "clarify-credentials.json"
        path.write_text(json.dumps(credentials))
        ours = "clarify-auth"

        rows["(a) 10 fresh sessions in one process"] = {
            name: count(
                lambda home, name=name: _wait(
                    [_client_run(name, credentials, 10, _env(home, token_cache=False))]
                )
            )
            for name in names
        }

        def cli_runs(home: Path) -> None:
            for _ in range(5):
                subprocess.run(
                    [sys.executable, "-m", "clarify_auth", "token", "--credentials", str(path)],
                    env=_env(home, token_cache=False),
                    check=True,
                    capture_output=True,
                    timeout=60,
                )

        rows["(b) 5 runs of `clarify-auth token` (peers: a fresh client per run)"] = {
            name: count(cli_runs)
            if name == ours
            else count(
                lambda home, name=name: [
                    _wait([_client_run(name, credentials, 1, _env(home, token_cache=False))])
                    for _ in range(5)
                ]
            )
            for name in names
        }
        rows["(c) 10 sequential processes, CLARIFY_TOKEN_CACHE=default"] = {
            name: count(
                lambda home, name=name: [
                    _wait([_client_run(name, credentials, 1, _env(home, token_cache=True))])
                    for _ in range(10)
                ]
            )
            for name in names
        }
        rows["(d) 8 processes started together, CLARIFY_TOKEN_CACHE=default"] = {
            name: count(
                lambda home, name=name: _wait(
                    [
                        _client_run(name, credentials, 1, _env(home, token_cache=True))
                        for _ in range(8)
                    ]
                )
            )
            for name in names
        }
    return rows
