"""``clarify-auth cache``: which token store is in use, whether it works, what it holds.

It never shows a token: only whether one is stored for these credentials and
until when. Exit status: 0 the store can be used (whether or not it holds a
token), 1 it cannot (unreachable, refused), 2 bad usage or credentials.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from clarify_auth._errors import ConfigurationError
from clarify_auth.credentials.model import BasicAuthCredentials
from clarify_auth.tokens.stores.protocol import StoreKey

if TYPE_CHECKING:
    from typing import TextIO

    from clarify_auth.credentials.model import Credentials
    from clarify_auth.tokens.stores.protocol import StoredToken, TokenStore

__all__ = ["run_cache"]

EXIT_OK = 0
EXIT_UNUSABLE = 1


def run_cache(credentials: Credentials, store: TokenStore, out: TextIO, *, as_json: bool) -> int:
    """Report on ``store`` for ``credentials``; the exit status."""
    inner = credentials.credentials
    if isinstance(inner, BasicAuthCredentials):
        raise ConfigurationError(
            "these are basic-auth credentials, which use no token, so no token cache"
        )
    key = StoreKey(credentials.token_url, inner.client_id, credentials.api_url, inner.client_secret)
    check = getattr(store, "check", None)
    if check is None:  # pragma: no cover - the command line builds only stores of ours
        problem, stored = None, store.load(key)
    else:
        problem, stored = check(key)
    document = _document(store, problem, stored)
    if as_json:
        out.write(json.dumps(document) + "\n")
    else:
        out.write(_text(document))
    return EXIT_OK if problem is None else EXIT_UNUSABLE


def _document(store: TokenStore, problem: str | None, stored: StoredToken | None) -> dict[str, Any]:
    describe = getattr(store, "describe", None)
    token: dict[str, Any] = {"stored": stored is not None}
    if stored is not None:
        usable_until = datetime.now(timezone.utc) + timedelta(seconds=stored.expires_in)
        token |= {
            "expires_in": max(math.floor(stored.expires_in), 0),
            "expires_at": usable_until.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "refresh_in": max(math.floor(stored.refresh_in), 0),
        }
    return {
        "store": getattr(store, "kind", type(store).__name__),
        "where": describe() if callable(describe) else repr(store),
        "reachable": problem is None,
        "problem": problem,
        "token": token,
    }


def _text(document: dict[str, Any]) -> str:
    token = document["token"]
    if document["problem"] is not None:
        held = "unknown (the store cannot be used)"
    elif token["stored"]:
        held = f"yes, usable until {token['expires_at']} ({token['expires_in']} s from now)"
    else:
        held = "no (the next token request stores one)"
    lines = [
        ("store", document["store"]),
        ("where", document["where"]),
        ("reachable", "yes" if document["reachable"] else f"no: {document['problem']}"),
        ("token", held),
    ]
    return "".join(f"{label + ':':<11}{value}\n" for label, value in lines)
