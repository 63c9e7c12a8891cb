"""Eight worker processes, one token: a ProcessPoolExecutor sharing a FileTokenCache.

    pip install clarify-auth
    python examples/process_pool.py [--no-cache] [path/to/clarify-credentials.json]

Each task receives a pickled copy of the session (a copy works on its own:
its own lock and connections). Without the cache, every process that starts
cold asks the rate-limited token endpoint for a token of its own; with it, the
first process fetches and the others read its token from a file only this
user can read. It prints what that cost: with the cache, 1 token request for
all the processes; with --no-cache, one per process that ran a task (8 here).
Exit status: 0 ok, 1 the token endpoint or the API said no, 2 no usable
credentials.

To try it with no Clarify account, first start a local fake of Clarify in
another terminal, in the folder you run it from (it writes ./clarify-credentials.json
for itself and runs until Ctrl-C):

    clarify-auth fake --write clarify-credentials.json
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor

import clarify_auth

PROCESSES = 8
TASKS = 32


def count_items(session: clarify_auth.ClarifySession, task: int) -> tuple[int, int, int]:
    """The items of one page, this process's ID and the token requests it sent so far."""
    result = session.rpc("clarify.selectItems", {"query": {"limit": 10, "skip": 10 * task}})
    return len(result["data"]), os.getpid(), session.authenticator.counters.fetches


def main(argv: list[str]) -> int:
    args = [arg for arg in argv[1:] if arg != "--no-cache"]
    cache = False if "--no-cache" in argv else clarify_auth.FileTokenCache()  # mode 0600 files
    try:
        credentials = clarify_auth.load_credentials(args[0] if args else None)
    except clarify_auth.CredentialsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    session = clarify_auth.ClarifySession(credentials, token_cache=cache)
    context = multiprocessing.get_context("spawn")  # the safe start method everywhere
    try:
        with ProcessPoolExecutor(max_workers=PROCESSES, mp_context=context) as pool:
            results = list(pool.map(count_items, [session] * TASKS, range(TASKS)))
    except clarify_auth.ClarifyAuthError as exc:
        print(f"error: {exc}", file=sys.stderr)  # rejected credentials: never the secret
        return 1
    fetched = {pid: fetches for _, pid, fetches in results}  # a process's count only grows
    print(f"{TASKS} tasks on {len(fetched)} processes: {sum(r[0] for r in results)} items")
    where = "no cache" if cache is False else "file cache"
    print(f"token requests: {sum(fetched.values())} ({where})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
