"""``clarify-auth fake``: a local FakeClarify in the foreground, until Ctrl-C or SIGTERM.

For a newcomer without an account: start it, point ``CLARIFY_CREDENTIALS`` at
the file it writes, and every README block and example runs against it.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from clarify_auth._errors import ClarifyAuthError, CredentialsError
from clarify_auth._urls import is_loopback_host
from clarify_auth.cli.bounds import count, seconds, seconds_or_zero
from clarify_auth.credentials.model import Credentials
from clarify_auth.testing import FakeClarify

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import FrameType
    from typing import Any, TextIO

__all__ = ["add_fake_command", "run_fake"]

# How often the foreground loop looks for new requests to show (-v); a signal
# ends the wait at once.
_POLL_S = 0.2
_MAX_PORT = 65535


def add_fake_command(commands: Any, *, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``fake`` and its options to the subcommands."""
    fake = commands.add_parser(
        "fake",
        parents=parents,
        help="run a local fake of Clarify in the foreground (no account), until Ctrl-C",
        description="Run clarify_auth.testing.FakeClarify on 127.0.0.1 in the foreground "
        "until Ctrl-C or SIGTERM, to try the README's blocks and the examples with no account.",
        epilog="example: clarify-auth fake --write clarify-credentials.json, then in another "
        "terminal: CLARIFY_CREDENTIALS=clarify-credentials.json python examples/call_api.py",
    )
    fake.add_argument("--port", type=_port, default=0,
                      help="loopback port to listen on (default 0: any free port)")  # fmt: skip
    fake.add_argument(
        "--write",
        metavar="PATH",
        help="write a credentials file for the fake there (mode 0600); refuses to overwrite "
        "a file that is not a fake's",
    )
    fake.add_argument(
        "--type",
        choices=["client-credentials", "basic-auth"],
        default="client-credentials",
        help="the type of the credentials file --write writes (default: client-credentials)",
    )
    fake.add_argument("--token-lifetime", metavar="SECONDS", type=seconds, default=3600.0,
                      help="expires_in of the tokens it issues (default 3600)")  # fmt: skip
    fake.add_argument("--token-latency", metavar="SECONDS", type=seconds_or_zero, default=0.0,
                      help="delay every token answer by this long")  # fmt: skip
    fake.add_argument("--rpc-latency", metavar="SECONDS", type=seconds_or_zero, default=0.0,
                      help="delay every JSON-RPC answer by this long")  # fmt: skip
    fake.add_argument("--fail-token-requests", metavar="N", type=count, default=0,
                      help="answer the first N token requests 503 (the SDK retries)")  # fmt: skip
    fake.add_argument("--drop-token-requests", metavar="N", type=count, default=0,
                      help="close the connection on the first N token requests")  # fmt: skip
    fake.add_argument("--reject-rpc-calls", metavar="N", type=count, default=0,
                      help="answer the first N JSON-RPC calls 401 (the SDK fetches a new "
                      "token and retries)")  # fmt: skip


def run_fake(args: argparse.Namespace, out: TextIO) -> int:
    """Serve until SIGINT or SIGTERM; print the URL and what to try next; 0 when stopped."""
    stop = threading.Event()
    with _stopped_by_signals(stop):
        try:
            fake = FakeClarify(token_lifetime=args.token_lifetime, port=args.port)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ClarifyAuthError(f"cannot listen on 127.0.0.1:{args.port}: {reason}") from None
        with fake:
            _inject_faults(fake, args)
            written = _write(fake, args.write, args.type) if args.write else None
            _banner(out, fake, written)
            verbose, shown, stopped = getattr(args, "verbose", False), 0, False
            while not stopped:
                stopped = stop.wait(_POLL_S)
                if verbose:
                    shown = _show_requests(out, fake, shown)
        out.write(
            f"stopped: {fake.token_requests} token requests, {fake.tokens_issued} tokens "
            f"issued, {fake.rpc_calls} JSON-RPC calls\n"
        )
        out.flush()
    return 0


@contextlib.contextmanager
def _stopped_by_signals(stop: threading.Event) -> Iterator[None]:
    """Let Ctrl-C (SIGINT) and SIGTERM set ``stop``, then put the old handlers back."""
    if threading.current_thread() is not threading.main_thread():
        # Nothing else would ever stop it: only the main thread receives signals.
        raise ClarifyAuthError("'fake' runs on the main thread only (a signal stops it)")

    def on_signal(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001 - signal's own
        stop.set()

    previous = {number: signal.signal(number, on_signal) for number in _SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _inject_faults(fake: FakeClarify, args: argparse.Namespace) -> None:
    fake.token_latency = args.token_latency
    fake.rpc_latency = args.rpc_latency
    if args.fail_token_requests:
        fake.fail_token_requests(args.fail_token_requests, status=503)
    if args.drop_token_requests:
        fake.drop_token_requests(args.drop_token_requests)
    if args.reject_rpc_calls:
        fake.reject_rpc_calls(args.reject_rpc_calls)


def _write(fake: FakeClarify, path: str, kind: str) -> Path:
    """Write the fake's credentials to ``path``, never over a real credentials file."""
    target = Path(path).expanduser().absolute()
    if target.exists() and not _is_a_fakes_file(target):
        raise CredentialsError(
            f"{target}: exists and is not a credentials file of a local fake; not overwriting "
            "it (remove it or pick another path for --write)"
        )
    return fake.write_credentials(
        target, type="basic-auth" if kind == "basic-auth" else "client-credentials"
    )


def _is_a_fakes_file(path: Path) -> bool:
    try:
        existing = Credentials.from_file(path)
    except CredentialsError:
        return False
    return is_loopback_host(urlsplit(existing.api_url).hostname or "")


def _banner(out: TextIO, fake: FakeClarify, written: Path | None) -> None:
    lines = [
        f"FakeClarify is listening on {fake.api_url}",
        f"  token endpoint {fake.token_url}, JSON-RPC {fake.rpc_url}",
        f"  tokens last {fake.token_lifetime:g} s; integration {fake.integration!r}",
    ]
    if written is None:
        lines.append("no credentials file written: add --write clarify-credentials.json for one")
    else:
        where = shlex.quote(str(written))
        lines += [
            f"wrote {written} (mode 0600); its secret is a fake one",
            "try, in another terminal:",
            f"  CLARIFY_CREDENTIALS={where} python examples/call_api.py",
            f"  clarify-auth check --credentials {where}",
        ]
    lines.append("press Ctrl-C to stop")
    out.writelines(line + "\n" for line in lines)
    out.flush()


def _show_requests(out: TextIO, fake: FakeClarify, shown: int) -> int:
    """Print the requests received since the first ``shown``; return how many are shown now."""
    received = fake.requests
    out.writelines(f"{seen.method} {seen.path} -> {seen.status}\n" for seen in received[shown:])
    out.flush()
    return len(received)


def _port(text: str) -> int:
    value = count(text)
    if value > _MAX_PORT:
        raise argparse.ArgumentTypeError(f"not a port (0 to {_MAX_PORT}): {text!r}")
    return value
