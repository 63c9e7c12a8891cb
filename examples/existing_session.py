"""Plug clarify-auth into the requests.Session of another integration.

A data pipeline that already owns a configured requests.Session (its own
retries, proxies, headers, hooks) only needs Clarify's Authorization header.
An authenticator is a requests auth handler: assign it and keep the rest.

    python examples/existing_session.py [path/to/clarify-credentials.json]

It prints the answer and the token requests it cost (1). Exit status: 0 ok,
1 the token endpoint or the API said no, 2 no usable credentials.

To try it with no Clarify account, first start a local fake of Clarify in
another terminal, in the folder you run it from (it writes ./clarify-credentials.json
for itself and runs until Ctrl-C):

    clarify-auth fake --write clarify-credentials.json
"""

from __future__ import annotations

import sys

import requests
from requests.adapters import HTTPAdapter

import clarify_auth


def build_pipeline_session() -> requests.Session:
    """Stands in for the other integration's own session set-up."""
    session = requests.Session()
    session.headers["User-Agent"] = "my-pipeline/2.3"
    session.mount("https://", HTTPAdapter(pool_maxsize=32))
    return session


def main(argv: list[str]) -> int:
    try:
        credentials = clarify_auth.load_credentials(argv[1] if len(argv) > 1 else None)
    except clarify_auth.CredentialsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    session = build_pipeline_session()

    # The one line that adds Clarify: tokens are fetched, cached, refreshed
    # ahead of expiry and retried once after a 401, by the handler itself.
    session.auth = auth = clarify_auth.Authenticator.from_credentials(credentials)

    try:
        response = session.post(
            credentials.api_url + "rpc",
            json={"jsonrpc": "2.0", "id": 1, "method": "clarify.selectItems", "params": {}},
            headers={"X-API-Version": "1.1"},
            timeout=(5, 60),
        )
        response.raise_for_status()
    except clarify_auth.TokenError as exc:
        print(f"error: {exc}", file=sys.stderr)  # never shows the secret
        return 1
    except requests.HTTPError as exc:
        print(f"error: the API answered HTTP {exc.response.status_code}", file=sys.stderr)
        return 1
    print(f"status {response.status_code}, result {response.json()['result']}")
    print(f"token requests: {auth.counters.fetches}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
