"""clarify-auth demo: the same steps, the same lines under each, the same counts, every run."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import clarify_auth
from clarify_auth.cli.demo import run_demo
from clarify_auth.cli.main import main

RUNS = 10
# What may differ between runs: the fake's port, and durations shown to a tenth
# of a second (the backoff's jitter, the run's own time).
_VARIABLE = [
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:PORT"),
    (re.compile(r"\b\d+\.\d+ s\b"), "N s"),
]
_SUMMARY = re.compile(
    r"Summary: (?P<calls>\d+) API calls, (?P<requests>\d+) token requests "
    r"\((?P<issued>\d+) tokens issued\).*\n.*retried (?P<rejected>\d+) call after a 401"
)


def normalised(text: str) -> str:
    for pattern, replacement in _VARIABLE:
        text = pattern.sub(replacement, text)
    return text


def steps(text: str) -> list[tuple[str, ...]]:
    """The output as blocks (a heading, then the lines under it), split at blank lines."""
    return [tuple(block.splitlines()) for block in normalised(text).strip().split("\n\n")]


def counts(text: str) -> dict[str, int]:
    """What the run reports: calls, token requests, tokens issued, 401s; and 401s it shows."""
    summary = _SUMMARY.search(text)
    assert summary is not None, text
    found = {key: int(value) for key, value in summary.groupdict().items()}
    found["401s shown"] = sum(" got 401" in line for line in _sdk_lines(text))
    return found


def demo_output() -> str:
    out = io.StringIO()

    status = run_demo(out)

    assert status == 0, out.getvalue()
    return out.getvalue()


def _sdk_lines(text: str) -> list[str]:
    """The SDK's own log lines, as the demo prints them."""
    return [line for line in text.splitlines() if line.startswith("     sdk: ")]


def assert_every_401_explained(blocks: list[tuple[str, ...]]) -> None:
    """A step under which the SDK logs a 401 says in its heading that a 401 is coming."""
    for heading, *lines in blocks:
        shown = [line for line in _sdk_lines("\n".join(lines)) if "401" in line]
        assert not shown or "401" in heading, f"unexplained 401 under {heading!r}: {shown}"


@pytest.fixture(scope="module")
def reference() -> str:
    """One run's output, the one every other run is compared with."""
    return demo_output()


def test_the_reference_run_has_every_step(reference):
    """The output is an opening line, steps 1 to 7, and a summary, with the 401 explained."""
    blocks = steps(reference)

    headings = [block[0] for block in blocks]
    assert headings[0].startswith("clarify-auth demo:")
    assert [h.split(".", 1)[0] for h in headings[1:-1]] == [str(n) for n in range(1, 8)]
    assert headings[-1].startswith("Summary:")
    assert counts(reference) == {
        "calls": 46,
        "requests": 6,
        "issued": 5,
        "rejected": 1,
        "401s shown": 1,
    }
    assert_every_401_explained(blocks)


def test_running_totals_say_what_the_new_requests_were_for(reference):
    """Each running total of token requests says how many are new in its step, and why."""
    totals = re.findall(
        r"token requests so far: (\d+) \((\d+) in this step: ([a-z].+)\)", reference, re.IGNORECASE
    )

    assert len(totals) == 5
    previous = 0
    for total, new, why in totals:
        assert int(total) - previous == int(new), totals
        assert why.strip()
        previous = int(total)
    assert (
        "token requests so far: 4 (2 in this step: the one answered 503, then its retry)"
        in reference
    )


def test_every_run_shows_the_same_steps_and_counts(reference):
    """Ten runs in a row print the same headings, the same lines under each, the same counts."""
    outputs = [demo_output() for _ in range(RUNS)]

    differing = [i for i, text in enumerate(outputs) if steps(text) != steps(reference)]
    assert differing == [], _first_difference(reference, outputs[differing[0]])
    assert all(counts(text) == counts(reference) for text in outputs)


def test_a_slow_background_refresh_changes_nothing(reference):
    """When the refresh thread takes long to take in its token, step 4 waits for it.

    A slow log handler on the SDK's logger holds the background refresh between
    "the fake issued the token" and "the client stored it", the window in which
    moving the clock on would expire the token still on its way (a 401 in step 5)
    and print step 4's log line under step 5.
    """
    caller = threading.get_ident()

    class SlowOffThisThread(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.thread != caller:
                time.sleep(0.1)

    slow = SlowOffThisThread()
    logger = logging.getLogger("clarify_auth")
    logger.addHandler(slow)
    try:
        output = demo_output()
    finally:
        logger.removeHandler(slow)

    assert steps(output) == steps(reference), _first_difference(reference, output)
    assert counts(output) == counts(reference)


def test_the_command_line_shows_the_same_steps(reference):
    """'clarify-auth demo' in this process, and python -m clarify_auth demo in two others."""
    out = io.StringIO()
    status = main(["demo"], stdout=out)
    package_root = str(Path(clarify_auth.__file__).parents[1])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")]),
    }
    runs = [
        subprocess.run(
            [sys.executable, "-m", "clarify_auth", "demo"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=env,
        )
        for _ in range(2)
    ]

    assert status == 0
    assert steps(out.getvalue()) == steps(reference)
    for run in runs:
        assert (run.returncode, run.stderr) == (0, "")
        assert steps(run.stdout) == steps(reference), _first_difference(reference, run.stdout)
        assert counts(run.stdout) == counts(reference)


def _first_difference(expected: str, actual: str) -> str:
    for want, got in zip(steps(expected), steps(actual), strict=False):
        if want != got:
            return "\n".join(["expected:", *want, "got:", *got])
    return "\n".join(["expected:", normalised(expected), "got:", normalised(actual)])
