"""A fleet on one Redis: token requests and call times, N machines, side by side with peers.

    pip install -e '.[test]'                 # redis, cryptography, pyclarify
    python benchmarks/fleet.py               # about 3 minutes on 2 cores
    python benchmarks/fleet.py --quick       # N = 1 and 4 only, short runs

Each machine is a spawned process with its own HOME (no file cache shared),
against one redis-server started here on a free loopback port (no
persistence) and one FakeClarify whose token answers take 200 ms. Counts are
the fake's; times are each machine's own ``time.perf_counter()``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import clarify_auth
from clarify_auth.testing import FakeClarify

CONTEXT = multiprocessing.get_context("spawn")
LATENCY_S = 0.2


# -- a redis-server of our own ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Redis:
    """redis-server on 127.0.0.1, no persistence; freeze, kill and start again."""

    def __init__(self, folder: Path) -> None:
        """Start it on a free port."""
        self.port = free_port()
        self.folder = folder
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        """Start (again, on the same port) and wait for PING."""
        server = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        import redis

        for _ in range(500):
            with contextlib.suppress(redis.RedisError):
                redis.Redis.from_url(self.url, socket_timeout=1).ping()
                return
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def flush(self) -> None:
        """Forget every key."""
        import redis

        redis.Redis.from_url(self.url, socket_timeout=2).flushall()

    def signal(self, number: int) -> None:
        """SIGSTOP to freeze, SIGCONT to thaw."""
        if self.process is not None:
            os.kill(self.process.pid, number)

    def kill(self) -> None:
        """SIGKILL: the port closes."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        """Thaw and terminate."""
        if self.process is not None and self.process.poll() is None:
            self.signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(10)


# -- one machine --------------------------------------------------------------------------


def machine(kind: str, credentials: dict[str, Any], url: str, home: str, barrier: Any,
            out: Any, options: dict[str, Any]) -> None:  # fmt: skip
    """A cold process: authorize (or call through pyclarify), report what it took."""
    os.environ["HOME"] = home
    os.environ["XDG_CACHE_HOME"] = f"{home}/.cache"
    os.environ.pop("CLARIFY_TOKEN_CACHE", None)
    creds = clarify_auth.Credentials.from_dict(credentials)
    if kind == "pyclarify":
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pyclarify
        path = Path(home) / "clarify-credentials.json"
        path.write_text(json.dumps(credentials))
        client = pyclarify.Client(str(path))
        barrier.wait(60)
        started = time.perf_counter()
        client.select_items(limit=1)
        out.put(("ok", time.perf_counter() - started, 1))
        return
    store: Any
    if kind == "redis":
        store = clarify_auth.RedisTokenCache(url, **options.get("store", {}))
    elif kind == "file":
        store = clarify_auth.FileTokenCache()
    else:
        store = False
    auth = clarify_auth.OAuthClientCredentials.from_credentials(creds, token_cache=store)
    if options.get("hold_lock"):
        key = auth._lifecycle.store_key
        lock = store.lock(key, hold=60)
        lock.__enter__()
        out.put(("locked", 0.0, 0))
        time.sleep(120)  # killed long before
    barrier.wait(60)
    longest, calls, errors = 0.0, 0, 0
    until = time.perf_counter() + options.get("run_s", 0.0)
    while True:
        started = time.perf_counter()
        try:
            auth.authorization()
        except clarify_auth.ClarifyAuthError:
            errors += 1
        longest = max(longest, time.perf_counter() - started)
        calls += 1
        if time.perf_counter() >= until:
            break
        time.sleep(0.05)
    out.put(("errors" if errors else "ok", longest, calls))


def fleet(
    kind: str, fake: FakeClarify, url: str, n: int, **options: Any
) -> list[tuple[str, float, int]]:
    barrier = CONTEXT.Barrier(n)
    out = CONTEXT.Queue()
    homes = [tempfile.mkdtemp(prefix="fleet-home-") for _ in range(n)]
    machines = [
        CONTEXT.Process(target=machine, args=(kind, fake.credentials_dict(), url, home, barrier,
                                              out, options))
        for home in homes
    ]  # fmt: skip
    for process in machines:
        process.start()
    results = [out.get(timeout=180) for _ in machines]
    for process in machines:
        process.join(30)
    for home in homes:
        shutil.rmtree(home, ignore_errors=True)
    return results


def counted(fake: FakeClarify, run: Any) -> tuple[int, Any]:
    before = fake.token_requests
    result = run()
    return fake.token_requests - before, result


def new_fake(lifetime: float = 3600.0) -> FakeClarify:
    fake = FakeClarify(token_lifetime=lifetime)
    fake.token_latency = LATENCY_S
    return fake.start()


# -- the scenarios ------------------------------------------------------------------------------


def waves(redis_server: Redis, n: int) -> tuple[str, str, str]:
    """Token requests: N cold machines, N more; the same with files only and with pyclarify."""
    redis_server.flush()
    with new_fake() as fake:
        cold, _ = counted(fake, lambda: fleet("redis", fake, redis_server.url, n))
        second, _ = counted(fake, lambda: fleet("redis", fake, redis_server.url, n))
        file_only, _ = counted(fake, lambda: fleet("file", fake, redis_server.url, n))
        peer, _ = counted(fake, lambda: fleet("pyclarify", fake, redis_server.url, n))
    return (f"**{cold}**, then **{second}**", f"{file_only} (file cache only)",
            f"{peer} (pyclarify)")  # fmt: skip


def scenarios(redis_server: Redis, sizes: list[int], steady_s: float) -> list[str]:
    rows: list[str] = []

    def row(*cells: object) -> None:
        rows.append("| " + " | ".join(str(cell) for cell in cells) + " |")

    for n in sizes:
        row(n, "cold start, then a second wave", *waves(redis_server, n))

    n = max(sizes)
    redis_server.flush()
    with new_fake(lifetime=5.0) as fake:
        steady, results = counted(
            fake, lambda: fleet("redis", fake, redis_server.url, n, run_s=steady_s)
        )
        lifetimes = steady_s / 5.0
        worst = max(longest for _, longest, _ in results)
    row(n, f"{steady_s:.0f} s of calls, 5 s tokens ({lifetimes:.0f} lifetimes)",
        f"**{steady}** ({steady / lifetimes:.2f} per lifetime; the refresh point is at 3.75 s)",
        f"longest call {worst * 1000:.0f} ms", "")  # fmt: skip

    redis_server.kill()
    try:
        with new_fake() as fake:
            refused, results = counted(fake, lambda: fleet("redis", fake, redis_server.url, n))
        errors = sum(status != "ok" for status, _, _ in results)
        worst = max(longest for _, longest, _ in results)
        row(n, "Redis refusing connections (killed)", f"**{refused}** (each fetches), "
            f"{errors} errors", f"longest first call {worst * 1000:.0f} ms", "")  # fmt: skip
    finally:
        redis_server.start()

    redis_server.flush()
    with new_fake() as fake:
        redis_server.signal(signal.SIGSTOP)
        try:
            frozen, results = counted(fake, lambda: fleet("redis", fake, redis_server.url, n))
        finally:
            redis_server.signal(signal.SIGCONT)
        errors = sum(status != "ok" for status, _, _ in results)
        worst = max(longest for _, longest, _ in results)
        row(n, "Redis frozen (SIGSTOP)", f"**{frozen}**, {errors} errors",
            f"longest call **{worst * 1000:.0f} ms** (0.2 s Redis timeout + 200 ms token)",
            "")  # fmt: skip

    redis_server.flush()
    with new_fake() as fake:
        fake.token_latency = 30.0
        holder_out = CONTEXT.Queue()
        home = tempfile.mkdtemp(prefix="fleet-home-")
        holder = CONTEXT.Process(
            target=machine,
            args=("redis", fake.credentials_dict(), redis_server.url, home, None, holder_out,
                  {"hold_lock": True, "store": {"lock_ttl": 2.0}}),
        )  # fmt: skip
        holder.start()
        holder_out.get(timeout=60)
        holder.kill()
        holder.join(10)
        fake.token_latency = LATENCY_S
        crashed, results = counted(
            fake, lambda: fleet("redis", fake, redis_server.url, n, store={"lock_ttl": 2.0})
        )
        worst = max(longest for _, longest, _ in results)
        shutil.rmtree(home, ignore_errors=True)
    row(n, "a lock holder killed holding the lock (lock_ttl 2 s)",
        f"**{crashed}**", f"longest wait {worst:.1f} s (bounded by lock_ttl)", "")  # fmt: skip
    return rows


def hot_path(redis_server: Redis, rounds: int, count: int) -> tuple[float, float, float]:
    """Seconds per authorization() on a process hit, without a store and with Redis; the ratio."""
    with new_fake() as fake:
        fake.token_latency = 0.0
        plain = clarify_auth.OAuthClientCredentials.from_credentials(
            fake.credentials(), token_cache=False, shared=False
        )
        stored = clarify_auth.OAuthClientCredentials.from_credentials(
            fake.credentials(), token_cache=clarify_auth.RedisTokenCache(redis_server.url),
            shared=False,
        )  # fmt: skip
        plain.authorization()
        stored.authorization()
        times: dict[str, list[float]] = {"none": [], "redis": []}
        ratios = []
        for number in range(rounds):
            order = [("none", plain), ("redis", stored)]
            if number % 2:
                order.reverse()
            seconds = {}
            for name, auth in order:
                started = time.perf_counter()
                for _ in range(count):
                    auth.authorization()
                seconds[name] = (time.perf_counter() - started) / count
                times[name].append(seconds[name])
            ratios.append(seconds["redis"] / seconds["none"])
    return (
        statistics.median(times["none"]),
        statistics.median(times["redis"]),
        statistics.median(ratios),
    )


_FIRST = """
import json, sys, time
import redis
from clarify_auth import Credentials, OAuthClientCredentials, RedisTokenCache
creds = Credentials.from_dict(json.loads(sys.argv[1]))
bare = redis.Redis.from_url(sys.argv[2], socket_timeout=1)
bare.get("warm")
started = time.perf_counter(); bare.get("clarify-auth:nothing"); rtt = time.perf_counter() - started
auth = OAuthClientCredentials.from_credentials(creds, token_cache=RedisTokenCache(sys.argv[2]))
auth.token_cache._redis().ping()  # the connection is opened before timing
started = time.perf_counter(); auth.authorization(); first = time.perf_counter() - started
assert auth.counters.store_hits == 1 and auth.counters.fetches == 0, auth.counters
again = OAuthClientCredentials.from_credentials(creds, token_cache=auth.token_cache, shared=False)
started = time.perf_counter(); again.authorization(); warm = time.perf_counter() - started
print(json.dumps([rtt, first, warm]))
"""


def first_request(redis_server: Redis, runs: int) -> tuple[float, float, float]:
    """Median seconds: a bare GET round trip, and a fresh process's first authorization on a hit."""
    with new_fake() as fake:
        clarify_auth.OAuthClientCredentials.from_credentials(
            fake.credentials(), token_cache=clarify_auth.RedisTokenCache(redis_server.url)
        ).authorization()
        pairs = []
        for _ in range(runs):
            output = subprocess.run(
                [sys.executable, "-c", _FIRST, json.dumps(fake.credentials_dict()), redis_server.url],
                capture_output=True, text=True, timeout=60, check=True,
            ).stdout  # fmt: skip
            pairs.append(json.loads(output))
    return tuple(statistics.median(p[i] for p in pairs) for i in range(3))  # type: ignore[return-value]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 1 and 4, short runs")
    args = parser.parse_args(argv)
    sizes = [1, 4] if args.quick else [1, 4, 8, 16, 32]
    steady_s = 10.0 if args.quick else 30.0
    folder = Path(tempfile.mkdtemp(prefix="fleet-redis-"))
    redis_server = Redis(folder)
    try:
        started = time.perf_counter()
        rows = scenarios(redis_server, sizes, steady_s)
        none_s, redis_s, ratio = hot_path(redis_server, 9 if not args.quick else 3, 20_000)
        rtt, first, warm = first_request(redis_server, 7 if not args.quick else 3)
        print(f"{len(sizes)} fleet sizes, {time.perf_counter() - started:.0f} s; "
              f"Python {sys.version.split()[0]}, clarify-auth {clarify_auth.__version__}")  # fmt: skip
        print()
        print("| machines | scenario | token requests | | side by side |")
        print("| ---: | --- | --- | --- | --- |")
        print("\n".join(rows))
        print()
        print("| per request, in the process | no store | Redis store | ratio |")
        print("| --- | ---: | ---: | ---: |")
        print(f"| `authorization()` on a process hit | {none_s * 1e9:.0f} ns | {redis_s * 1e9:.0f} ns "
              f"| {ratio:.3f}x |")  # fmt: skip
        print()
        print("| a fresh process's first request, its token in Redis | median |")
        print("| --- | ---: |")
        print(f"| a bare redis-py GET round trip | {rtt * 1e6:.0f} µs |")
        print(
            f"| `authorization()`, the process's first: one script round trip, the first HKDF "
            f"and AES-GCM (OpenSSL's set-up), redis-py's first reply | {first * 1e6:.0f} µs |"
        )
        print(f"| `authorization()` of a second cold client in that process: one round trip "
              f"| {warm * 1e6:.0f} µs |")  # fmt: skip
    finally:
        redis_server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
