"""Load a credentials file and call the Clarify API.

Run with the path of a credentials file, or with none to use the usual
discovery ($CLARIFY_CREDENTIALS, then ./clarify-credentials.json):

    python examples/call_api.py [path/to/clarify-credentials.json]

It prints the API's answer and the token requests the call cost (1).
Exit status: 0 ok, 1 the token endpoint or the API said no, 2 no usable credentials.

To try it with no Clarify account, first start a local fake of Clarify in
another terminal, in the folder you run it from (it writes ./clarify-credentials.json
for itself and runs until Ctrl-C):

    clarify-auth fake --write clarify-credentials.json
"""

from __future__ import annotations

import sys

import clarify_auth


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else None
    try:
        credentials = clarify_auth.load_credentials(path)
    except clarify_auth.CredentialsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    print(f"integration {credentials.integration} at {credentials.api_url}")
    with clarify_auth.ClarifySession(credentials) as session:
        try:
            result = session.rpc("clarify.selectItems", {"query": {"limit": 10}})
        except clarify_auth.TokenError as exc:
            # Rejected credentials or an unreachable token endpoint; never shows the secret.
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except clarify_auth.RPCError as exc:
            print(f"error: the API answered {exc.code}: {exc.message}", file=sys.stderr)
            return 1
        requests_sent = session.authenticator.counters.fetches
    print(f"clarify.selectItems answered: {result}")
    print(f"token requests: {requests_sent}")  # 1, or 0 when a cache already held a token
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
