"""clarify_auth.pyclarify.Client next to pyclarify's own Client, against FakeClarify on loopback.

    pip install -e '.[bench]'
    python benchmarks/pyclarify_client.py            # about 10 seconds
    python benchmarks/pyclarify_client.py --quick    # a smoke run

Both clients make the same pyclarify call, ``select_items(limit=1)``. Counts come
from a FakeClarify in this process, new for each contender and scenario, that
counts token requests and the connections it accepts: token requests for 10
clients, for 32 threads starting cold (on one shared client, and on a client
each), and connections opened for 100 calls on one client. Time per call is
measured against a FakeClarify in a process of its own (so the server never
competes for the clients' GIL), in short interleaved rounds of each contender
in turn, so load on a shared machine hits both alike; min / median / max of the
rounds' per-call times.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from _fake_process import FakeProcess

import clarify_auth
from clarify_auth.testing import FakeClarify, forget_shared_tokens

if TYPE_CHECKING:
    from collections.abc import Callable

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # pyclarify's models use APIs pydantic deprecates
    import pyclarify

    import clarify_auth.pyclarify

CONTENDERS = ("pyclarify", "pyclarify + clarify-auth")
FOLDER = Path(tempfile.mkdtemp(prefix="clarify-bench-pyclarify-"))


def new_client(name: str, credentials: dict[str, Any]) -> Any:
    path = FOLDER / f"{urlsplit(credentials['apiUrl']).port}.json"  # one file per fake
    if not path.exists():
        path.write_text(json.dumps(credentials))
    if name == "pyclarify":
        return pyclarify.Client(str(path))
    return clarify_auth.pyclarify.Client(path)


def call(client: Any) -> None:
    response = client.select_items(limit=1)
    if response.error is not None:
        raise RuntimeError(response.error)


def counting_fake(**options: Any) -> tuple[FakeClarify, list[object]]:
    """A started FakeClarify that also records each connection it accepts."""
    fake = FakeClarify(**options)
    accepted: list[object] = []
    server = fake._server
    accept = server.get_request

    def get_request() -> Any:
        connection = accept()
        accepted.append(connection[1])
        return connection

    server.get_request = get_request  # type: ignore[method-assign]
    return fake.start(), accepted


def ten_clients(name: str) -> int:
    fake, _ = counting_fake()
    with fake:
        for _ in range(10):
            call(new_client(name, fake.credentials_dict()))
        return fake.token_requests


def cold_threads(name: str, *, shared: bool) -> int:
    fake, _ = counting_fake()
    fake.token_latency = 0.3  # a real token endpoint takes this long or longer
    with fake:
        credentials = fake.credentials_dict()
        one = new_client(name, credentials)
        barrier = threading.Barrier(32)

        def start(_: int) -> None:
            client = one if shared else new_client(name, credentials)
            barrier.wait()
            call(client)

        with ThreadPoolExecutor(32) as pool:
            list(pool.map(start, range(32)))
        return fake.token_requests


def connections(name: str, calls: int) -> int:
    fake, accepted = counting_fake()
    with fake:
        client = new_client(name, fake.credentials_dict())
        for _ in range(calls):
            call(client)
        return len(accepted)


def per_call_times(rounds: int, calls: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    with FakeProcess(token_lifetime=86_400) as server:
        clients = {name: new_client(name, server.credentials) for name in CONTENDERS}
        for client in clients.values():
            call(client)  # a token first, and a connection for those that keep one
        for _ in range(rounds):
            for name, client in clients.items():
                start = time.perf_counter()
                for _ in range(calls):
                    call(client)
                times[name].append((time.perf_counter() - start) / calls)
    return times


def row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: few rounds")
    args = parser.parse_args()
    rounds, calls = (3, 20) if args.quick else (9, 200)

    counts: list[tuple[str, Callable[[str], int]]] = [
        ("token requests, 10 clients, one call each", ten_clients),
        (
            "token requests, 32 threads starting cold on one client",
            lambda name: cold_threads(name, shared=True),
        ),
        (
            "token requests, 32 threads starting cold, a client each",
            lambda name: cold_threads(name, shared=False),
        ),
        ("connections opened for 100 calls on one client", lambda name: connections(name, 100)),
    ]
    print(
        f"pyclarify {pyclarify.__version__}, clarify-auth {clarify_auth.__version__}, "
        f"requests {requests.__version__}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}"
    )
    print()
    print(row(["", *CONTENDERS]))
    print(row(["---"] * (len(CONTENDERS) + 1)))
    for title, measure in counts:
        cells = []
        for name in CONTENDERS:
            forget_shared_tokens()
            cells.append(str(measure(name)))
        print(row([title, *cells]))

    times = per_call_times(rounds, calls)
    print()
    print(
        f"time per call, {rounds} interleaved rounds of {calls} calls (server in its own process)"
    )
    print()
    print(row(["", "min us", "median us", "max us", "/ pyclarify"]))
    print(row(["---"] * 5))
    base = statistics.median(times["pyclarify"])
    for name in CONTENDERS:
        values = times[name]
        median = statistics.median(values)
        print(
            row(
                [
                    name,
                    f"{min(values) * 1e6:.0f}",
                    f"{median * 1e6:.0f}",
                    f"{max(values) * 1e6:.0f}",
                    f"{median / base:.2f}x",
                ]
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
