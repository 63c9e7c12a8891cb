"""``clarify-auth demo``: the SDK against a local FakeClarify, step by step.

The client and the fake share one clock that the demo can move on, so "an hour
later" takes no time, and neither does the SDK's backoff between retries.
Nothing leaves 127.0.0.1 and no account is needed.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, TextIO
from urllib.parse import urlsplit

from clarify_auth.credentials.model import Credentials
from clarify_auth.testing import FakeClarify
from clarify_auth.transports.requests.session import ClarifySession

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["run_demo"]

_LIFETIME_S = 3600.0
_THREADS = 32
_WAIT_LIMIT_S = 10.0


class _SharedClock:
    """time.monotonic plus an offset the demo moves on, for client and fake alike."""

    def __init__(self) -> None:
        self._offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += seconds


class _Narrator(logging.Handler):
    """Prints the SDK's own log lines under the step they belong to."""

    def __init__(self, out: TextIO) -> None:
        super().__init__(logging.INFO)
        self.out = out

    def emit(self, record: logging.LogRecord) -> None:
        self.out.write(f"     sdk: {record.getMessage()}\n")


def run_demo(out: TextIO) -> int:
    """Run the walkthrough, printing to ``out``; 0 when every step behaved as shown."""
    clock = _SharedClock()
    narrator = _Narrator(out)
    logger = logging.getLogger("clarify_auth")
    old_level = logger.level
    logger.addHandler(narrator)
    logger.setLevel(logging.INFO)
    started = time.monotonic()
    try:
        with (
            FakeClarify(
                integration="demo-integration", token_lifetime=_LIFETIME_S, clock=clock
            ) as fake,
            tempfile.TemporaryDirectory() as folder,
        ):
            return _walk_through(out, fake, clock, Path(folder), started)
    finally:
        logger.removeHandler(narrator)
        logger.setLevel(old_level)


@dataclass
class _Walk:
    """What the steps share: where to print, the fake, the clock, and a tally."""

    out: TextIO
    fake: FakeClarify
    clock: _SharedClock
    api_calls: int = 0

    def say(self, text: str) -> None:
        self.out.write(text + "\n")

    def expect(self, ok: bool, what: str) -> None:  # noqa: FBT001 - reads as a sentence
        if not ok:
            raise _DemoError(what)

    def call(self, session: ClarifySession, times: int = 1) -> object:
        result: object = None
        for _ in range(times):
            result = session.rpc("clarify.selectItems", {"query": {"limit": 10}})
        self.api_calls += times
        return result

    def so_far(self, before: int, why: str) -> str:
        """The running total of token requests, and what this step's new ones were for."""
        total = self.fake.token_requests
        new = total - before
        return f"token requests so far: {total} ({new} in this step: {why})"

    @property
    def rejected_calls(self) -> int:
        """API calls the fake answered 401 (the SDK's retries not counted)."""
        rpc = urlsplit(self.fake.rpc_url).path
        return sum(
            seen.path == rpc and seen.status == HTTPStatus.UNAUTHORIZED
            for seen in self.fake.requests
        )


def _walk_through(
    out: TextIO, fake: FakeClarify, clock: _SharedClock, folder: Path, started: float
) -> int:
    walk = _Walk(out, fake, clock)
    walk.say("clarify-auth demo: the SDK against a local fake of Clarify (no network, no account)")
    try:
        creds = _step_load(walk, folder)
        with ClarifySession(creds, clock=clock, sleep=clock.advance) as session:
            _step_first_calls(walk, session)
            _step_refresh_ahead(walk, session)
            _step_endpoint_failure(walk, session)
            _step_revoked(walk, session)
        _step_storm(walk, creds)
        rejected = walk.rejected_calls
        walk.expect(rejected == 1, "no call but the one in step 6 got 401")
    except _DemoError as exc:
        walk.say(f"\ndemo FAILED: expected that {exc}")
        return 1
    walk.say(
        f"\nSummary: {walk.api_calls} API calls, {fake.token_requests} token requests "
        f"({fake.tokens_issued} tokens issued), 0 errors seen by your code, "
        f"in {time.monotonic() - started:.1f} s."
    )
    walk.say(
        f"   The SDK retried {rejected} call after a 401 (step 6) and "
        f"{fake.token_requests - fake.tokens_issued} token request after a 503 (step 5)."
    )
    walk.say("Next: put your clarify-credentials.json here and run 'clarify-auth check';")
    walk.say("   or try the examples against a local fake: clarify-auth fake --write c.json")
    return 0


def _step_load(walk: _Walk, folder: Path) -> Credentials:
    walk.say(f"\n1. A credentials file, as downloaded from Clarify (fake at {walk.fake.api_url})")
    path = walk.fake.write_credentials(folder / "clarify-credentials.json")
    creds = Credentials.from_file(path)
    inner = creds.credentials
    walk.say(f"   loaded {path.name}: integration {creds.integration!r}, type {inner.type},")
    walk.say(f"   secret {inner.client_secret} (a SecretStr: never printed, logged or raised)")
    return creds


def _step_first_calls(walk: _Walk, session: ClarifySession) -> None:
    walk.say("\n2. The first API call fetches a token, then uses it")
    walk.call(session)
    walk.say(f"   clarify.selectItems answered; {walk.so_far(0, 'the first token')}")
    walk.expect(walk.fake.token_requests == 1, "the first call fetches one token")
    walk.say("\n3. Ten more calls reuse the cached token")
    walk.call(session, times=10)
    walk.say(f"   {walk.api_calls} calls so far; {walk.so_far(1, 'none was needed')}")
    walk.expect(walk.fake.token_requests == 1, "the token is reused")


def _step_refresh_ahead(walk: _Walk, session: ClarifySession) -> None:
    walk.say("\n4. The clock moves 55 minutes on: the token expires in 5 minutes")
    auth = session.authenticator
    before = walk.fake.token_requests
    first = auth.authorization()  # the cached token: nothing is fetched before the clock moves
    walk.clock.advance(_LIFETIME_S - 300)
    walk.call(session)
    # The fake counts a token as issued before the refresh thread has read the
    # answer, logged it and stored the token. Only the client holding the new
    # token means the refresh is over; moving the clock on any sooner (step 5)
    # expires the token still on its way, which then earns a 401, and prints
    # this step's log line under the next heading.
    refreshed = _wait_until(lambda: auth.authorization() != first)
    walk.say("   the call went out at once with the current token; a background refresh")
    walk.say("   fetched the next one meanwhile.")
    walk.say(f"   {walk.so_far(before, 'the refresh ahead of expiry').capitalize()}")
    second = 2
    walk.expect(refreshed and walk.fake.tokens_issued == second, "the refresh ran ahead of expiry")


def _step_endpoint_failure(walk: _Walk, session: ClarifySession) -> None:
    walk.say("\n5. The token endpoint fails with 503 while a new token is needed")
    before = walk.fake.token_requests
    walk.fake.fail_token_requests(1, status=503)
    walk.clock.advance(_LIFETIME_S)
    walk.call(session)
    walk.say("   the SDK retried with backoff and the call succeeded;")
    walk.say(f"   {walk.so_far(before, 'the one answered 503, then its retry')}")
    walk.expect(
        walk.fake.token_requests == before + 2 and walk.rejected_calls == 0,
        "one token request failed, the next one served the call, and no call got 401",
    )


def _step_revoked(walk: _Walk, session: ClarifySession) -> None:
    walk.say("\n6. The server revokes every token; the next call gets 401")
    before = walk.fake.token_requests
    walk.fake.revoke_tokens()
    walk.call(session)
    walk.say("   the SDK dropped the token, fetched a new one, retried once: the call succeeded;")
    walk.say(f"   {walk.so_far(before, 'the new token after the 401')}")
    walk.expect(walk.rejected_calls == 1, "exactly one call got 401, the one after the revocation")


def _step_storm(walk: _Walk, creds: Credentials) -> None:
    walk.say(f"\n7. {_THREADS} threads call at once on a fresh session (a cold start)")
    before = walk.fake.token_requests
    with ClarifySession(creds) as cold:
        errors = _storm(cold)
    walk.api_calls += _THREADS
    storm_requests = walk.fake.token_requests - before
    walk.say(
        f"   {_THREADS - len(errors)} calls succeeded; token requests: {storm_requests} "
        f"for all {_THREADS} threads (so far: {walk.fake.token_requests})"
    )
    walk.expect(not errors and storm_requests == 1, "one token request serves every thread")


def _storm(session: ClarifySession) -> list[BaseException]:
    barrier = threading.Barrier(_THREADS)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            barrier.wait(timeout=_WAIT_LIMIT_S)
            session.rpc("clarify.selectItems")
        except Exception as exc:  # noqa: BLE001 - reported in the summary
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=_WAIT_LIMIT_S)
    return errors


def _wait_until(condition: Callable[[], bool]) -> bool:
    """Poll ``condition`` until it holds (True) or the wait limit passes (False)."""
    deadline = time.monotonic() + _WAIT_LIMIT_S
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.001)
    return True


class _DemoError(Exception):
    """A step did not behave as the demo says it does."""
