"""Eight worker processes, one token: a ProcessPoolExecutor sharing a FileTokenCache.

    pip install clarify-auth
    python examples/process_pool.py [path/to/clarify-credentials.json]

Each task receives a pickled copy of the session (a copy works on its own:
its own lock and connections). Without the cache, every process that starts
cold asks the rate-limited token endpoint for a token of its own; with it, the
first process fetches and the others read its token from a file only this
user can read.

To try it with no Clarify account, first start a local fake of Clarify in
another terminal, in the folder you run it from (it writes ./clarify-credentials.json
for itself and runs until Ctrl-C):

    clarify-auth fake --write clarify-credentials.json
"""

from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor

import clarify_auth

PROCESSES = 8
TASKS = 32


def count_items(session: clarify_auth.ClarifySession, task: int) -> int:
    result = session.rpc("clarify.selectItems", {"query": {"limit": 10, "skip": 10 * task}})
    return len(result["data"])


def main(argv: list[str]) -> int:
    credentials = clarify_auth.load_credentials(argv[1] if len(argv) > 1 else None)
    cache = clarify_auth.FileTokenCache()  # ~/.cache/clarify-auth/tokens, mode 0600
    session = clarify_auth.ClarifySession(credentials, token_cache=cache)
    context = multiprocessing.get_context("spawn")  # the safe start method everywhere
    with ProcessPoolExecutor(max_workers=PROCESSES, mp_context=context) as pool:
        counts = list(pool.map(count_items, [session] * TASKS, range(TASKS)))
    print(f"{TASKS} tasks on {PROCESSES} processes: {sum(counts)} items")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
