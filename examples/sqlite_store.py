"""A token store of your own: processes sharing one token through a SQLite file.

    pip install clarify-auth
    clarify-auth fake --write clarify-credentials.json   # a local Clarify, in another terminal
    python examples/sqlite_store.py [path/to/clarify-credentials.json]

Anything with the four methods of ``clarify_auth.TokenStore`` (``load``,
``save``, ``discard``, ``lock``) and a ``lock_timeout`` can keep tokens:
a database, a secrets manager, a key-value service. This one keeps them in a
SQLite file and lets SQLite's write lock (on a second file) decide which process fetches. It
prints how many token requests four processes cost: 1.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import sqlite3
import sys
import time
from typing import TYPE_CHECKING

import clarify_auth

if TYPE_CHECKING:
    from collections.abc import Iterator

PROCESSES = 4


class SqliteTokenStore:
    """Tokens in a SQLite file: the wall-clock deadline is stored beside each token."""

    lock_timeout = 30.0  # seconds a process waits for another's token request

    def __init__(self, path: str) -> None:
        """Create the table if it is not there."""
        self.path = path
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS tokens"
                " (key TEXT PRIMARY KEY, token TEXT, refresh_at REAL, expires_at REAL)"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=self.lock_timeout, isolation_level=None)

    def load(self, key: clarify_auth.StoreKey) -> clarify_auth.StoredToken | None:
        """The token stored for ``key`` if it has not expired."""
        with contextlib.closing(self._connect()) as db:
            row = db.execute(
                "SELECT token, refresh_at, expires_at FROM tokens WHERE key = ?", (key.digest,)
            ).fetchone()
        now = time.time()
        if row is None or row[2] <= now:
            return None
        token = clarify_auth.AccessToken.model_validate(json.loads(row[0]))
        return clarify_auth.StoredToken(token, row[1] - now, row[2] - now)

    def save(self, key: clarify_auth.StoreKey, stored: clarify_auth.StoredToken) -> None:
        """Keep the token with its deadlines as wall-clock times."""
        now = time.time()
        token = stored.token
        document = json.dumps(
            {
                "access_token": token.access_token.get_secret_value(),
                "token_type": token.token_type,
                "scope": token.scope,
                "expires_in": token.expires_in,
                "expires_at": token.expires_at.isoformat(),
            }
        )
        with contextlib.closing(self._connect()) as db:
            db.execute(
                "INSERT OR REPLACE INTO tokens VALUES (?, ?, ?, ?)",
                (key.digest, document, now + stored.refresh_in, now + stored.expires_in),
            )

    def discard(self, key: clarify_auth.StoreKey, access_token: str) -> None:
        """Remove the token the API refused, if it is still the stored one."""
        stored = self.load(key)
        if stored is not None and stored.token.access_token.get_secret_value() == access_token:
            with contextlib.closing(self._connect()) as db:
                db.execute("DELETE FROM tokens WHERE key = ?", (key.digest,))

    @contextlib.contextmanager
    def lock(self, key: clarify_auth.StoreKey, *, hold: float) -> Iterator[bool]:
        """Let one process fetch while the others wait for its token."""
        del key, hold  # one lock for every client is enough here
        # A write transaction on a second file: SQLite's own inter-process lock.
        lock = sqlite3.connect(self.path + ".lock", timeout=self.lock_timeout, isolation_level=None)
        with contextlib.closing(lock) as db:
            db.execute("BEGIN IMMEDIATE")  # waits up to lock_timeout for the holder before us
            try:
                yield True
            finally:
                db.execute("COMMIT")


def worker(credentials: clarify_auth.Credentials, path: str) -> int:
    """One process's work; returns the token requests this process sent."""
    auth = clarify_auth.OAuthClientCredentials.from_credentials(
        credentials, token_cache=SqliteTokenStore(path)
    )
    with clarify_auth.ClarifySession(credentials, authenticator=auth) as session:
        session.rpc("clarify.selectItems", {"query": {"limit": 1}})
    return auth.counters.fetches


def main(argv: list[str]) -> int:
    try:
        credentials = clarify_auth.load_credentials(argv[1] if len(argv) > 1 else None)
        path = "clarify-tokens.sqlite3"
        context = multiprocessing.get_context("spawn")
        with context.Pool(PROCESSES) as pool:
            fetches = pool.starmap(worker, [(credentials, path)] * PROCESSES)
    except clarify_auth.ClarifyAuthError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{PROCESSES} processes, {sum(fetches)} token request(s) between them")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
