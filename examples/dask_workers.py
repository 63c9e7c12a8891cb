"""A ClarifySession shipped to Dask workers, sharing one token through a FileTokenCache.

    pip install 'clarify-auth[dask]'
    python examples/dask_workers.py [--no-cache] [path/to/clarify-credentials.json]

Dask pickles the session into every task. A pickle carries the credentials
(necessarily) and, when one is cached, the current token; a cold copy joins
the token its worker process already holds, or fetches one, unless a
FileTokenCache lets the worker processes on a machine share one. It prints
what that cost, 100 tasks on 4 worker processes: 1 token request with the
cache, 4 without it (one per worker process). Exit status: 0 ok, 1 the token
endpoint or the API said no, 2 no usable credentials.

To try it with no Clarify account, first start a local fake of Clarify in
another terminal, in the folder you run it from (it writes ./clarify-credentials.json
for itself and runs until Ctrl-C):

    clarify-auth fake --write clarify-credentials.json
"""

from __future__ import annotations

import os
import sys

from distributed import Client, LocalCluster

import clarify_auth

TASKS = 100


def count_items(session: clarify_auth.ClarifySession, task: int) -> tuple[int, int, int]:
    """The items of one page, this worker's process ID and the token requests it sent so far."""
    result = session.rpc("clarify.selectItems", {"query": {"limit": 10, "skip": 10 * task}})
    return len(result["data"]), os.getpid(), session.authenticator.counters.fetches


def main(argv: list[str]) -> int:
    args = [arg for arg in argv[1:] if arg != "--no-cache"]
    cache = False if "--no-cache" in argv else clarify_auth.FileTokenCache()
    try:
        credentials = clarify_auth.load_credentials(args[0] if args else None)
    except clarify_auth.CredentialsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    session = clarify_auth.ClarifySession(credentials, token_cache=cache)
    with (
        LocalCluster(
            n_workers=4, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        futures = client.map(count_items, [session] * TASKS, range(TASKS), pure=False)
        try:
            results = client.gather(futures)
        except clarify_auth.ClarifyAuthError as exc:
            print(f"error: {exc}", file=sys.stderr)  # rejected credentials: never the secret
            return 1
    fetched = {pid: fetches for _, pid, fetches in results}  # a worker's count only grows
    print(f"{TASKS} tasks on {len(fetched)} worker processes: {sum(r[0] for r in results)} items")
    where = "no cache" if cache is False else "file cache"
    print(f"token requests: {sum(fetched.values())} ({where})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
