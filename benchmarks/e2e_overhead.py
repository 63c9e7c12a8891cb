"""End-to-end cost of a ClarifySession POST next to a plain requests.Session, by environment size.

    python benchmarks/e2e_overhead.py            # about 40 seconds
    python benchmarks/e2e_overhead.py --quick    # a smoke run

Both sessions POST the same JSON-RPC body to the same loopback FakeClarify
over plain http (the case that runs the proxy check), the plain one with the
same Authorization and X-API-Version headers fixed in ``headers``; the
ClarifySession holds its token before timing starts. ``requests`` reads the
environment at each request (proxies, no_proxy), so each row is measured with
the process environment cut to 3 variables and grown to 200. Rounds are short
and interleaved (the order alternates), each ratio is taken within its round,
and the table shows the median of the rounds.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import requests

import clarify_auth
from clarify_auth.testing import FakeClarify

BODY = {"jsonrpc": "2.0", "id": 1, "method": "clarify.selectItems", "params": {}}


def environment(size: int) -> dict[str, str]:
    """PATH, HOME and LANG, then filler variables up to ``size``."""
    base = {name: os.environ.get(name, "") for name in ("PATH", "HOME", "LANG")}
    filler = {f"BENCH_FILLER_{n:03d}": "x" * 40 for n in range(size - len(base))}
    return {**base, **filler}


def timed(call: object, count: int) -> float:
    """Seconds per call of ``count`` calls."""
    started = time.perf_counter()
    for _ in range(count):
        call()  # type: ignore[operator]
    return (time.perf_counter() - started) / count


def measure(fake: FakeClarify, size: int, rounds: int, count: int) -> tuple[float, float, float]:
    """Median seconds per POST (plain, ClarifySession) and the median ratio of the rounds."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(environment(size))
    try:
        session = clarify_auth.ClarifySession(fake.credentials())
        header = session.authenticator.authorization()
        plain = requests.Session()
        plain.headers.update({"Authorization": header, "X-API-Version": "1.1"})

        def plain_post() -> None:
            plain.post(fake.rpc_url, json=BODY, timeout=30).raise_for_status()

        def clarify_post() -> None:
            session.post("rpc", json=BODY).raise_for_status()

        for call in (plain_post, clarify_post):  # warm connections and caches
            timed(call, count // 4 + 1)
        plains, clarifies, ratios = [], [], []
        for round_number in range(rounds):
            order = (plain_post, clarify_post) if round_number % 2 else (clarify_post, plain_post)
            seconds = {call: timed(call, count) for call in order}
            plains.append(seconds[plain_post])
            clarifies.append(seconds[clarify_post])
            ratios.append(seconds[clarify_post] / seconds[plain_post])
        session.close()
        plain.close()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return statistics.median(plains), statistics.median(clarifies), statistics.median(ratios)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    args = parser.parse_args(argv)
    rounds, count = (3, 30) if args.quick else (15, 200)
    print(
        f"Python {platform.python_version()}, requests {requests.__version__}, "
        f"clarify-auth {clarify_auth.__version__}; {rounds} interleaved rounds of {count} POSTs"
    )
    print()
    print("| environment | plain requests.Session | ClarifySession | ratio (median of rounds) |")
    print("| --- | ---: | ---: | ---: |")
    with FakeClarify() as fake:
        for size in (3, 200):
            plain, clarify, ratio = measure(fake, size, rounds, count)
            print(
                f"| {size} variables | {plain * 1e6:.0f} µs | {clarify * 1e6:.0f} µs | "
                f"{ratio:.3f}x |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
