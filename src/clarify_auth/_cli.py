"""The ``clarify-auth`` command: token, header, check, demo."""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal, NoReturn

import requests

from clarify_auth._auth import Authenticator
from clarify_auth._config import token_cache_from_environment
from clarify_auth._credentials import BasicAuthCredentials, Credentials, load_credentials
from clarify_auth._errors import (
    ClarifyAuthError,
    ConfigurationError,
    CredentialsError,
    TokenError,
)
from clarify_auth._oauth import OAuthClientCredentials
from clarify_auth._urls import check_transport
from clarify_auth._version import __version__

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import TextIO

    from clarify_auth._store import TokenStore
    from clarify_auth._token import AccessToken

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1  # anything else that went wrong
EXIT_USAGE = 2  # bad arguments or an unusable credentials file
EXIT_REJECTED = 3  # the token endpoint rejected the credentials
EXIT_UNREACHABLE = 4  # the token endpoint could not be reached or kept failing
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report it
_CLIENT_ERRORS = range(400, 500)
_REJECTED_STATUSES = (401, 403)

_EPILOG = """\
credentials: --credentials PATH, else $CLARIFY_CREDENTIALS (a path) or
             $CLARIFY_CREDENTIALS_JSON (the contents), else ./clarify-credentials.json

token cache: 'token' and 'header' reuse a token until it expires, across runs,
             in $CLARIFY_TOKEN_CACHE (a folder) or the default per-user folder;
             --no-cache skips it. 'check' always fetches a new token.

exit status: 0 ok, 1 other failure, 2 bad usage or credentials file,
             3 credentials rejected, 4 token endpoint unreachable or failing

examples:
  curl -H "Authorization: Bearer $(clarify-auth token)" -H "X-API-Version: 1.1" \\
       -d '{"jsonrpc":"2.0","id":1,"method":"clarify.selectItems","params":{}}' \\
       https://api.clarify.io/v1/rpc
  clarify-auth check --credentials ~/Downloads/clarify-credentials.json
  clarify-auth demo
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line too (and exit 2), like every other error."""

    def error(self, message: str) -> NoReturn:
        """Print one line naming the problem and pointing at --help; exit 2."""
        first_line = " ".join(message.split())
        self.exit(EXIT_USAGE, f"{self.prog}: error: {first_line} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--credentials",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="credentials file (default: $CLARIFY_CREDENTIALS or $CLARIFY_CREDENTIALS_JSON, "
        "then ./clarify-credentials.json)",
    )
    common.add_argument(
        "--no-cache",
        action="store_true",
        default=argparse.SUPPRESS,
        help="neither read nor store tokens in the file cache shared by runs",
    )
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
        help="log what the SDK does (never secrets) to stderr",
    )  # fmt: skip
    parser = _Parser(
        prog="clarify-auth",
        description="Authenticate to the Clarify API with a credentials file.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    token = commands.add_parser(
        "token",
        parents=[common],
        help='print an access token, for: curl -H "Authorization: Bearer $(clarify-auth token)"',
        description="Print a valid access token (OAuth client credentials only), "
        "reusing the cached one until it expires.",
    )
    token.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: access_token, token_type, scope, expires_in "
        "(whole seconds left), expires_at (ISO 8601, UTC)",
    )
    commands.add_parser(
        "header",
        parents=[common],
        help="print the full Authorization header value (Bearer or Basic)",
        description="Print the full Authorization header value.",
    )
    commands.add_parser(
        "check",
        parents=[common],
        help="validate the credentials file and try it on the server; report, never the secret",
        description="Validate the credentials file, then fetch a new token (OAuth) or send "
        "one authenticated request (Basic), and report what was found.",
    )
    commands.add_parser(
        "demo",
        parents=[common],
        help="walk through the SDK against a local fake of Clarify (no network, no account)",
        description="Start a local FakeClarify and show what the SDK does, step by step.",
    )
    return parser


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None) -> int:
    """Run the command line; return the exit status. Errors are one line on stderr."""
    args = _parser().parse_args(argv)
    logger = logging.getLogger("clarify_auth")
    handler: logging.Handler | None = None
    level = logger.level
    if getattr(args, "verbose", False):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("clarify-auth: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        return _run_reporting(args, stdout or sys.stdout)
    finally:
        if handler is not None:
            logger.removeHandler(handler)
            logger.setLevel(level)


def _run_reporting(args: argparse.Namespace, out: TextIO) -> int:
    """Run a command; turn every failure into one line on stderr and an exit status."""
    try:
        return _run(args, out)
    except (CredentialsError, ConfigurationError) as exc:
        # A plain-http remote apiUrl (InsecureTransportError) is the file's fault too.
        return _fail(str(exc), EXIT_USAGE)
    except TokenError as exc:
        # Rejected means the server's verdict on the client: an RFC 6749 error
        # in a 4xx, or a plain 401 or 403. A 404 page is a failing endpoint.
        rejected = not exc.retryable and (
            (exc.status_code in _CLIENT_ERRORS and exc.error is not None)
            or exc.status_code in _REJECTED_STATUSES
        )
        return _fail(str(exc), EXIT_REJECTED if rejected else EXIT_UNREACHABLE)
    except (ClarifyAuthError, requests.RequestException) as exc:
        return _fail(str(exc) or type(exc).__name__, EXIT_FAILED)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - never a traceback; the text may hold anything
        return _fail(f"unexpected {type(exc).__name__}; run with -v for what the SDK did", 1)


def _run(args: argparse.Namespace, out: TextIO) -> int:
    if args.command == "demo":
        from clarify_auth._demo import run_demo  # noqa: PLC0415 - starts a server; only here

        return run_demo(out)
    credentials = load_credentials(getattr(args, "credentials", None))
    # A plain-http remote apiUrl is the file's fault, whatever the command (exit 2).
    check_transport(credentials.api_url, what="credentials")
    cache: TokenStore | Literal[False] = (
        False
        if getattr(args, "no_cache", False)
        else token_cache_from_environment(default_on=True) or False
    )
    if args.command == "token":
        return _token(credentials, out, cache=cache, as_json=args.json)
    if args.command == "header":
        out.write(Authenticator.from_credentials(credentials, token_cache=cache).authorization())
        out.write("\n")
        return EXIT_OK
    return _check(credentials, out, cache=cache)


def _token(
    credentials: Credentials,
    out: TextIO,
    *,
    cache: TokenStore | Literal[False],
    as_json: bool,
) -> int:
    if isinstance(credentials.credentials, BasicAuthCredentials):
        return _fail(
            "these are basic-auth credentials, which use no token; "
            "use 'clarify-auth header' for the full Authorization header value",
            EXIT_USAGE,
        )
    token = OAuthClientCredentials.from_credentials(credentials, token_cache=cache).token()
    if as_json:
        out.write(json.dumps(_token_document(token)) + "\n")
    else:
        out.write(token.access_token.get_secret_value() + "\n")
    return EXIT_OK


def _token_document(token: AccessToken) -> dict[str, Any]:
    left = (token.expires_at - datetime.now(timezone.utc)).total_seconds()
    return {
        "access_token": token.access_token.get_secret_value(),
        "token_type": token.token_type,
        "scope": token.scope,
        "expires_in": max(math.floor(left), 0),
        "expires_at": token.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _check(credentials: Credentials, out: TextIO, *, cache: TokenStore | Literal[False]) -> int:
    inner = credentials.credentials
    lines = [
        ("integration", credentials.integration),
        ("API URL", credentials.api_url),
        ("type", inner.type),
        ("client ID", inner.client_id),
        ("secret", "********** (never shown)"),
    ]
    if isinstance(inner, BasicAuthCredentials):
        status = _try_basic_auth(credentials)
        if status in _REJECTED_STATUSES:
            return _fail(
                f"the API at {credentials.api_url}rpc answered {status}: "
                "the server rejected these basic-auth credentials",
                EXIT_REJECTED,
            )
        lines.append(("API answer", f"{status}: the credentials were accepted"))
    else:
        # Always a new token: check is there to test the credentials.
        auth = OAuthClientCredentials.from_credentials(credentials, token_cache=cache)
        token = auth.fetch_token()
        lines += [
            ("token URL", credentials.token_url),
            ("token", f"fetched, type {token.token_type}"),
            ("scope", token.scope or "(none given)"),
            ("expires at", token.expires_at.strftime("%Y-%m-%d %H:%M:%S UTC")),
        ]
    out.writelines(f"{label + ':':<13}{value}\n" for label, value in lines)
    out.write("OK: the credentials work\n")
    return EXIT_OK


def _try_basic_auth(credentials: Credentials) -> int:
    """Send one authenticated JSON-RPC request; return the HTTP status.

    Raises:
        TokenError: The API could not be reached (exit 4, as for a token endpoint).
    """
    from clarify_auth._session import ClarifySession  # noqa: PLC0415 - only for this check

    payload = {"jsonrpc": "2.0", "id": 1, "method": "clarify.selectItems",
               "params": {"query": {"limit": 1}}}  # fmt: skip
    with ClarifySession(credentials) as session:
        try:
            return session.post("rpc", json=payload).status_code
        except requests.RequestException as exc:
            raise TokenError(
                f"could not reach the API at {credentials.api_url}rpc ({type(exc).__name__})",
                retryable=True,
            ) from None


def _fail(message: str, status: int) -> int:
    first_line = " ".join(message.split())
    sys.stderr.write(f"clarify-auth: error: {first_line}\n")
    return status
