"""Call the Clarify API with httpx: clarify_auth.httpx.Client and ClarifyAuth.

Needs the ``httpx`` extra (``pip install 'clarify-auth[httpx]'``). Run with the
path of a credentials file, or with none for the usual discovery
($CLARIFY_CREDENTIALS, then ./clarify-credentials.json):

    python examples/httpx_client.py [path/to/clarify-credentials.json]

To try it with no Clarify account, first start a local fake of Clarify in
another terminal, in the folder you run it from (it writes ./clarify-credentials.json
for itself and runs until Ctrl-C):

    clarify-auth fake --write clarify-credentials.json
"""

from __future__ import annotations

import sys

import httpx

import clarify_auth
import clarify_auth.httpx


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else None
    try:
        credentials = clarify_auth.load_credentials(path)
    except clarify_auth.CredentialsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    try:
        # base_url is the credentials' apiUrl; X-API-Version is set; rpc() maps errors.
        with clarify_auth.httpx.Client(credentials) as client:
            result = client.rpc("clarify.selectItems", {"query": {"limit": 10}})
            print(f"clarify.selectItems answered {len(result['data'])} items")

        # Or your own httpx.Client: ClarifyAuth signs requests to the API and no others,
        # with the token the Client above already holds (no second token request).
        auth = clarify_auth.httpx.ClarifyAuth(
            clarify_auth.Authenticator.from_credentials(credentials)
        )
        with httpx.Client(auth=auth, headers={"X-API-Version": "1.1"}, timeout=30) as own:
            payload = {"jsonrpc": "2.0", "id": 1, "method": "clarify.selectItems", "params": {}}
            response = own.post(credentials.api_url + "rpc", json=payload)
            print(f"the same call on a plain httpx.Client: HTTP {response.status_code}")
        print(f"token requests: {auth.authenticator.counters.fetches}")  # 1 for both clients
    except clarify_auth.TokenError as exc:
        # Rejected credentials or an unreachable token endpoint; never shows the secret.
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except clarify_auth.RPCError as exc:
        print(f"error: the API answered {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except httpx.HTTPStatusError as exc:
        print(f"error: the API answered HTTP {exc.response.status_code}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
