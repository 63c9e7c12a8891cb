"""The ``clarify-auth`` command: token, header, check, cache, demo, fake."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from typing import TYPE_CHECKING, Any, Literal, NoReturn

import requests

from clarify_auth._errors import (
    ClarifyAuthError,
    ConfigurationError,
    CredentialsError,
    TokenError,
)
from clarify_auth._urls import check_transport
from clarify_auth._version import __version__
from clarify_auth.cli.bounds import Budget, SlowTokenNotice, seconds
from clarify_auth.cli.cache import run_cache
from clarify_auth.cli.check import REJECTED_STATUSES, failure_document, run_check, token_expiry
from clarify_auth.cli.fake import add_fake_command, run_fake
from clarify_auth.credentials.model import BasicAuthCredentials, Credentials, load_credentials
from clarify_auth.tokens.stores.environment import token_cache_from_environment
from clarify_auth.tokens.stores.file_store import FileTokenCache
from clarify_auth.transports.requests.authenticators import Authenticator
from clarify_auth.transports.requests.oauth import OAuthClientCredentials
from clarify_auth.transports.requests.token_requests import DEFAULT_TOKEN_TIMEOUT

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import TextIO

    from clarify_auth.tokens.stores.protocol import TokenStore

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1  # anything else that went wrong
EXIT_USAGE = 2  # bad arguments or an unusable credentials file
EXIT_REJECTED = 3  # the token endpoint rejected the credentials
EXIT_UNREACHABLE = 4  # the token endpoint could not be reached or kept failing
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report it
_CLIENT_ERRORS = range(400, 500)
# Commands that run a local fake of their own, and so refuse the options that
# would mean nothing to them; every other command takes them all.
_LOCAL_COMMANDS = ("demo", "fake")
_REFUSED = {
    "credentials": "it makes its own credentials for a local fake "
    "(to try yours: clarify-auth check --credentials PATH)",
    "no_cache": "it uses no file cache",
}

_EPILOG = """\
credentials: --credentials PATH, else $CLARIFY_CREDENTIALS (a path) or
             $CLARIFY_CREDENTIALS_JSON (the contents), else ./clarify-credentials.json

token cache: 'token' and 'header' reuse a token until it expires, across runs,
             in $CLARIFY_TOKEN_CACHE (a folder, or a redis:// URL for a fleet) or
             the default per-user folder; --no-cache skips it. 'check' always
             fetches a new token. 'cache' says what the cache holds (exit 0 when
             it can be used, 1 when it cannot).

exit status: 0 ok, 1 other failure (a closed output pipe too, quietly),
             2 bad usage or credentials file, 3 credentials rejected,
             4 token endpoint unreachable or failing (or --timeout ran out)

examples:
  curl -H "Authorization: Bearer $(clarify-auth token)" -H "X-API-Version: 1.1" \\
       -d '{"jsonrpc":"2.0","id":1,"method":"clarify.selectItems","params":{}}' \\
       https://api.clarify.io/v1/rpc
  clarify-auth check --credentials ~/Downloads/clarify-credentials.json
  clarify-auth check --json --timeout 10
  clarify-auth demo
  clarify-auth fake --write clarify-credentials.json   # a local Clarify, until Ctrl-C
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line too (and exit 2), like every other error."""

    def error(self, message: str) -> NoReturn:
        """Print one line naming the problem and pointing at --help; exit 2."""
        first_line = " ".join(message.split())
        self.exit(EXIT_USAGE, f"{self.prog}: error: {first_line} (see {self.prog} --help)\n")


def _common_options(*, hidden: bool) -> _Parser:
    """--credentials, --no-cache and -v; ``hidden`` parses the first two only to refuse them."""
    common = _Parser(add_help=False)
    common.add_argument(
        "--credentials",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS
        if hidden
        else "credentials file (default: $CLARIFY_CREDENTIALS "
        "or $CLARIFY_CREDENTIALS_JSON, then ./clarify-credentials.json)",
    )
    common.add_argument(
        "--no-cache",
        action="store_true",
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS
        if hidden
        else "neither read nor store tokens in the file cache shared by runs",
    )
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
        help="log what the SDK does (never secrets) to stderr; 'fake' also prints each "
        "request it answers" if hidden else "log what the SDK does (never secrets) to stderr",
    )  # fmt: skip
    return common


def _parser() -> argparse.ArgumentParser:
    common = _common_options(hidden=False)
    local = _common_options(hidden=True)
    timeout = _Parser(add_help=False)
    timeout.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=seconds,
        help="give up after this long in all, token requests and retries included (exit 4)",
    )
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
        parents=[common, timeout],
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
        parents=[common, timeout],
        help="print the full Authorization header value (Bearer or Basic)",
        description="Print the full Authorization header value.",
    )
    check = commands.add_parser(
        "check",
        parents=[common, timeout],
        help="validate the credentials file and try it on the server; report, never the secret",
        description="Validate the credentials file, then fetch a new token (OAuth) or send "
        "one authenticated request (Basic), and report what was found.",
    )
    check.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (also on failure): ok, outcome, exit_status, credentials "
        "(type, integration, client_id, api_url, token_url), then token (token_type, scope, "
        "expires_in, expires_at) or api (url, status_code), or error and server",
    )
    cache = commands.add_parser(
        "cache",
        parents=[common],
        help="say which token cache is in use, whether it works, and whether it holds a token",
        description="Report the token cache ($CLARIFY_TOKEN_CACHE: files, or Redis for a "
        "fleet) for these credentials: reachable or not, and until when it holds a token "
        "(never the token). Exit 0 when the cache can be used, 1 when it cannot.",
    )
    cache.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: store, where, reachable, problem, token (stored, "
        "expires_in, expires_at, refresh_in)",
    )
    commands.add_parser(
        "demo",
        parents=[local],
        help="walk through the SDK against a local fake of Clarify (no network, no account)",
        description="Start a local FakeClarify and show what the SDK does, step by step.",
    )
    add_fake_command(commands, parents=[local])
    return parser


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None) -> int:
    """Run the command line; return the exit status. Errors are one line on stderr."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command in _LOCAL_COMMANDS:
        for name, why in _REFUSED.items():
            if name in vars(args):
                parser.error(f"'{args.command}' takes no --{name.replace('_', '-')}: {why}")
    if args.command == "cache" and "no_cache" in vars(args):
        parser.error("'cache' takes no --no-cache: it reports on the cache")
    logger = logging.getLogger("clarify_auth")
    handler: logging.Handler | None = None
    level = logger.level
    if getattr(args, "verbose", False):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("clarify-auth: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    out = stdout or sys.stdout
    try:
        status = _run_reporting(args, out)
        out.flush()
    except BrokenPipeError:
        return _quiet_after_a_closed_pipe(out)
    finally:
        if handler is not None:
            logger.removeHandler(handler)
            logger.setLevel(level)
    return status


def _quiet_after_a_closed_pipe(out: TextIO) -> int:
    """The reader went away (``clarify-auth token | true``): say nothing, exit 1.

    As Python's documentation for SIGPIPE advises, stdout then points at
    devnull, so that the interpreter's own flush at exit does not fail again.
    """
    with contextlib.suppress(AttributeError, OSError, ValueError):  # not a real file: no flush
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())
        os.close(devnull)
    return EXIT_FAILED


class _Known:
    """What a command learnt before it failed, for the failure's JSON document."""

    credentials: Credentials | None = None


def _run_reporting(args: argparse.Namespace, out: TextIO) -> int:
    """Run a command; turn every failure into one line on stderr and an exit status."""
    known = _Known()
    try:
        return _run(args, out, known)
    except BrokenPipeError:
        raise
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - one line, never a traceback
        message, status = _verdict(exc)
        if args.command == "check" and args.json:
            out.write(json.dumps(failure_document(known.credentials, message, status, exc)) + "\n")
        return _fail(message, status)


def _verdict(exc: BaseException) -> tuple[str, int]:
    """The one line and the exit status that report ``exc``."""
    if isinstance(exc, CredentialsError | ConfigurationError):
        # A plain-http remote apiUrl (InsecureTransportError) is the file's fault too.
        return str(exc), EXIT_USAGE
    if isinstance(exc, TokenError):
        # Rejected means the server's verdict on the client: an RFC 6749 error
        # in a 4xx, or a plain 401 or 403. A 404 page is a failing endpoint.
        rejected = not exc.retryable and (
            (exc.status_code in _CLIENT_ERRORS and exc.error is not None)
            or exc.status_code in REJECTED_STATUSES
        )
        return str(exc), EXIT_REJECTED if rejected else EXIT_UNREACHABLE
    if isinstance(exc, ClarifyAuthError | requests.RequestException):
        return str(exc) or type(exc).__name__, EXIT_FAILED
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", EXIT_INTERRUPTED
    # Never a traceback; the text of a foreign exception may hold anything.
    return f"unexpected {type(exc).__name__}; run with -v for what the SDK did", EXIT_FAILED


def _run(args: argparse.Namespace, out: TextIO, known: _Known) -> int:
    if args.command == "demo":
        from clarify_auth.cli.demo import run_demo  # noqa: PLC0415 - starts a server; only here

        return run_demo(out)
    if args.command == "fake":
        return run_fake(args, out)
    budget = Budget(getattr(args, "timeout", None))
    credentials = known.credentials = load_credentials(getattr(args, "credentials", None))
    # A plain-http remote apiUrl is the file's fault, whatever the command (exit 2).
    check_transport(credentials.api_url, what="credentials")
    cache: TokenStore | Literal[False] = (
        False
        if getattr(args, "no_cache", False)
        else token_cache_from_environment(default_on=True) or False
    )
    if args.command == "cache":
        assert cache is not False  # noqa: S101 - default_on gives a store, --no-cache is refused
        return run_cache(credentials, cache, out, as_json=args.json)
    with SlowTokenNotice(sys.stderr):
        if args.command == "token":
            return _token(
                credentials, out, options=_oauth_options(cache, budget), as_json=args.json
            )
        if args.command == "header":
            authenticator = Authenticator.from_credentials(
                credentials, **_oauth_options(cache, budget, basic=_is_basic(credentials))
            )
            out.write(authenticator.authorization() + "\n")
            return EXIT_OK
        return run_check(
            credentials,
            out,
            as_json=args.json,
            oauth_options=_oauth_options(cache, budget),
            api_timeout=budget.remaining(),
        )


def _is_basic(credentials: Credentials) -> bool:
    return isinstance(credentials.credentials, BasicAuthCredentials)


def _oauth_options(
    cache: TokenStore | Literal[False], budget: Budget, *, basic: bool = False
) -> dict[str, Any]:
    """The options of the command's OAuth authenticator: its cache, and --timeout's share."""
    remaining = budget.remaining()
    if remaining is None or basic:
        return {"token_cache": cache}
    if cache is not False:
        # Waiting for another process's token request takes from the budget too.
        cache = _waiting_at_most(cache, remaining)
    connect, read = DEFAULT_TOKEN_TIMEOUT
    return {
        "token_cache": cache,
        "deadline": remaining,
        "timeout": (min(connect, remaining), min(read, remaining)),
    }


def _waiting_at_most(cache: TokenStore, seconds: float) -> TokenStore:
    """The same store, waiting for another's token request no longer than ``seconds``."""
    if isinstance(cache, FileTokenCache):
        return FileTokenCache(cache.path, lock_timeout=min(cache.lock_timeout, seconds))
    from clarify_auth.tokens.stores.redis_store import RedisTokenCache  # noqa: PLC0415 - only for Redis

    if isinstance(cache, RedisTokenCache):
        return cache.waiting_at_most(seconds)
    return cache  # pragma: no cover - the command line builds only stores of ours


def _token(credentials: Credentials, out: TextIO, *, options: dict[str, Any], as_json: bool) -> int:
    if _is_basic(credentials):
        return _fail(
            "these are basic-auth credentials, which use no token; "
            "use 'clarify-auth header' for the full Authorization header value",
            EXIT_USAGE,
        )
    token = OAuthClientCredentials.from_credentials(credentials, **options).token()
    if as_json:
        document = {
            "access_token": token.access_token.get_secret_value(),
            "token_type": token.token_type,
            "scope": token.scope,
            **token_expiry(token),
        }
        out.write(json.dumps(document) + "\n")
    else:
        out.write(token.access_token.get_secret_value() + "\n")
    return EXIT_OK


def _fail(message: str, status: int) -> int:
    first_line = " ".join(message.split())
    sys.stderr.write(f"clarify-auth: error: {first_line}\n")
    return status
