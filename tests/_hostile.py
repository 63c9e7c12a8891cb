"""What several tests of hostile input share: a basic-auth file, and an rpc() run in a child."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from conftest import SRC

_RUN_IN_A_CHILD = r"""
import asyncio, sys
import clarify_auth
from clarify_auth import Credentials
from clarify_auth.httpx import AsyncClient, Client
api_url, case = sys.argv[1], sys.argv[2]
creds = Credentials.from_dict({"apiUrl": api_url, "integration": "test-integration",
    "credentials": {"type": "basic-auth", "clientId": "test-integration",
                    "clientSecret": "test-secret-r2"}})
if case in ("session", "httpx"):
    make = clarify_auth.ClarifySession if case == "session" else Client
    with make(creds) as client:
        try:
            client.rpc("clarify.selectItems")
        except clarify_auth.RPCError:
            print("RPCError")
        except BaseException as exc:
            print(type(exc).__name__)
else:
    client = AsyncClient(creds)
    for _ in range(2):  # bounded: two loops
        loop = asyncio.new_event_loop()
        try:
            print(loop.run_until_complete(client.rpc("clarify.selectItems")))
        except BaseException as exc:
            print(type(exc).__name__)
        finally:
            # What asyncio's documentation asks of a loop closed by hand (and what
            # asyncio.run, anyio.run and trio.run do): finalise async generators.
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
"""


def basic_file(
    api_url: str = "https://api.clarify.io/v1/",
    secret: str = "test-secret-r2",  # noqa: S107 - obviously fake
) -> dict[str, Any]:
    """A basic-auth credentials document, for the tests to break."""
    return {
        "apiUrl": api_url,
        "integration": "test-integration",
        "credentials": {
            "type": "basic-auth",
            "clientId": "test-integration",
            "clientSecret": secret,
        },
    }


def rpc_in_a_child(api_url: str, case: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", _RUN_IN_A_CHILD, api_url, case],
        env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin", "NO_PROXY": "*"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()
