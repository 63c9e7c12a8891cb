"""``clarify-auth check``: try the credentials on the server; report as text or one JSON object.

The JSON document (``check --json``), on success and on failure alike::

    {"ok": true, "outcome": "accepted", "exit_status": 0,
     "credentials": {"type": ..., "integration": ..., "client_id": ..., "api_url": ...,
                     "token_url": ...},               # token_url for client-credentials only
     "token": {"token_type": ..., "scope": ..., "expires_in": 3600,
               "expires_at": "2026-01-01T12:00:00Z"}}  # client-credentials
     "api": {"url": ".../rpc", "status_code": 200}}   # basic-auth, instead of "token"

On failure ``ok`` is false, ``outcome`` one of ``unusable`` (exit 2),
``rejected`` (3), ``unreachable`` (4), ``failed`` (1), ``interrupted`` (130),
``error`` the one line also printed on stderr, ``credentials`` what was loaded
(``null`` when the file itself is the problem) and, when a server answered,
``server`` with its ``status_code``, ``error`` and ``error_description``.
Never a secret, never a token.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import requests

from clarify_auth._errors import TokenError
from clarify_auth.credentials.model import BasicAuthCredentials, Credentials
from clarify_auth.transports.requests.oauth import OAuthClientCredentials

if TYPE_CHECKING:
    from typing import TextIO

    from clarify_auth.tokens.token import AccessToken

__all__ = ["REJECTED_STATUSES", "failure_document", "run_check", "token_expiry"]

REJECTED_STATUSES = (401, 403)
_OUTCOMES = {0: "accepted", 2: "unusable", 3: "rejected", 4: "unreachable", 130: "interrupted"}


def run_check(
    credentials: Credentials,
    out: TextIO,
    *,
    as_json: bool,
    oauth_options: dict[str, Any],
    api_timeout: float | None,
) -> int:
    """Fetch a new token (OAuth) or send one JSON-RPC request (Basic); report; return 0.

    Raises:
        TokenError: Rejected (a 401 or 403 for Basic) or unreachable.
    """
    document: dict[str, Any] = {"ok": True, "outcome": "accepted", "exit_status": 0,
                                "credentials": _described(credentials)}  # fmt: skip
    inner = credentials.credentials
    lines = [
        ("integration", credentials.integration),
        ("API URL", credentials.api_url),
        ("type", inner.type),
        ("client ID", inner.client_id),
        ("secret", "********** (never shown)"),
    ]
    if isinstance(inner, BasicAuthCredentials):
        status = _try_basic_auth(credentials, timeout=api_timeout)
        document["api"] = {"url": f"{credentials.api_url}rpc", "status_code": status}
        lines.append(("API answer", f"{status}: the credentials were accepted"))
    else:
        # Always a new token: check is there to test the credentials.
        auth = OAuthClientCredentials.from_credentials(credentials, **oauth_options)
        token = auth.fetch_token()
        document["token"] = {"token_type": token.token_type, "scope": token.scope,
                             **token_expiry(token)}  # fmt: skip
        lines += [
            ("token URL", credentials.token_url),
            ("token", f"fetched, type {token.token_type}"),
            ("scope", token.scope or "(none given)"),
            ("expires at", token.expires_at.strftime("%Y-%m-%d %H:%M:%S UTC")),
        ]
    if as_json:
        out.write(json.dumps(document) + "\n")
    else:
        out.writelines(f"{label + ':':<13}{value}\n" for label, value in lines)
        out.write("OK: the credentials work\n")
    return 0


def failure_document(
    credentials: Credentials | None, message: str, status: int, exc: BaseException
) -> dict[str, Any]:
    """The ``check --json`` document of a check that failed with ``exc`` (exit ``status``)."""
    document: dict[str, Any] = {
        "ok": False,
        "outcome": _OUTCOMES.get(status, "failed"),
        "exit_status": status,
        "error": message,
        "credentials": None if credentials is None else _described(credentials),
    }
    if isinstance(exc, TokenError) and exc.status_code is not None:
        document["server"] = {
            "status_code": exc.status_code,
            "error": exc.error,
            "error_description": exc.error_description,
        }
    return document


def token_expiry(token: AccessToken) -> dict[str, Any]:
    """``expires_in`` (whole seconds left now) and ``expires_at`` (ISO 8601, UTC)."""
    left = (token.expires_at - datetime.now(timezone.utc)).total_seconds()
    return {
        "expires_in": max(math.floor(left), 0),
        "expires_at": token.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _described(credentials: Credentials) -> dict[str, Any]:
    inner = credentials.credentials
    described = {
        "type": inner.type,
        "integration": credentials.integration,
        "client_id": inner.client_id,
        "api_url": credentials.api_url,
    }
    if not isinstance(inner, BasicAuthCredentials):
        described["token_url"] = credentials.token_url
    return described


def _try_basic_auth(credentials: Credentials, *, timeout: float | None) -> int:
    """Send one authenticated JSON-RPC request; return the HTTP status.

    Raises:
        TokenError: The API refused the credentials (401 or 403: exit 3), or could
            not be reached (exit 4, as for a token endpoint).
    """
    from clarify_auth.transports.requests.session import ClarifySession  # noqa: PLC0415 - only for this check

    payload = {"jsonrpc": "2.0", "id": 1, "method": "clarify.selectItems",
               "params": {"query": {"limit": 1}}}  # fmt: skip
    options: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
    with ClarifySession(credentials, **options) as session:
        try:
            status = session.post("rpc", json=payload).status_code
        except requests.RequestException as exc:
            raise TokenError(
                f"could not reach the API at {credentials.api_url}rpc ({type(exc).__name__})",
                retryable=True,
            ) from None
    if status in REJECTED_STATUSES:
        raise TokenError(
            f"the API at {credentials.api_url}rpc answered {status}: "
            "the server rejected these basic-auth credentials",
            status_code=status,
        )
    return status
