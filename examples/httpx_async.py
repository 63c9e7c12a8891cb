"""Many concurrent Clarify calls from asyncio (or trio) with clarify_auth.httpx.AsyncClient.

Needs the ``httpx`` extra (``pip install 'clarify-auth[httpx]'``). All the calls
start before any token exists; they share one token request, which runs on a
worker thread so the event loop never waits on it.

    python examples/httpx_async.py [path/to/clarify-credentials.json] [--trio]

To try it with no Clarify account, first start a local fake of Clarify in
another terminal, in the folder you run it from (it writes ./clarify-credentials.json
for itself and runs until Ctrl-C):

    clarify-auth fake --write clarify-credentials.json
"""

from __future__ import annotations

import asyncio
import sys

import anyio
import httpx

import clarify_auth
import clarify_auth.httpx

CALLS = 20


async def select_items_concurrently(credentials: clarify_auth.Credentials) -> list[int | str]:
    """Item counts of CALLS concurrent calls, or the error each one met."""
    # One AsyncClient per event loop: its connections belong to the loop that opened
    # them. The token does not: a new client reuses the one the process holds.
    async with clarify_auth.httpx.AsyncClient(credentials) as client:
        outcomes: list[int | str] = [0] * CALLS

        async def one(index: int) -> None:
            try:
                result = await client.rpc("clarify.selectItems", {"query": {"limit": 10}})
            except (clarify_auth.ClarifyAuthError, httpx.HTTPStatusError) as exc:
                outcomes[index] = str(exc)  # a TokenError never shows the secret
                return
            outcomes[index] = len(result["data"])

        async with anyio.create_task_group() as tasks:  # asyncio.gather works as well
            for index in range(CALLS):
                tasks.start_soon(one, index)
    return outcomes


def main(argv: list[str]) -> int:
    args = [arg for arg in argv[1:] if arg != "--trio"]
    backend = "trio" if "--trio" in argv else "asyncio"
    try:
        credentials = clarify_auth.load_credentials(args[0] if args else None)
    except clarify_auth.CredentialsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if backend == "asyncio":
        outcomes = asyncio.run(select_items_concurrently(credentials))
    else:
        outcomes = anyio.run(select_items_concurrently, credentials, backend="trio")
    errors = [outcome for outcome in outcomes if isinstance(outcome, str)]
    if errors:
        print(f"error: {len(errors)} of {CALLS} calls failed: {errors[0]}", file=sys.stderr)
        return 1
    print(f"{CALLS} concurrent calls on {backend}: {sum(map(int, outcomes))} items")
    # Every authenticator of these credentials in this process shares one token and its counts.
    fetches = clarify_auth.Authenticator.from_credentials(credentials).counters.fetches
    print(f"token requests: {fetches}")  # 1: one fetch served all the concurrent calls
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
