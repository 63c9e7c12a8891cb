"""clarify-auth against its peers, side by side, on one loopback FakeClarify.

    pip install -e '.[bench]'
    python benchmarks/run.py                 # every scenario, about 3 minutes
    python benchmarks/run.py hot import      # some of them
    python benchmarks/run.py --instructions  # also count hot-path instructions with callgrind

Every figure is printed with the same run's figures for the others, as a
ratio; results go to benchmarks/results.json and the rotation plot to
benchmarks/rotation.png. Nothing leaves 127.0.0.1, and every loop is bounded.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import threading
import time
import timeit
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).parent))

from _contenders import CONTENDERS, HEADERS, RPC_BODY, ClarifyAuth, Contender, StaticHeader
from _fake_process import FakeProcess

HERE = Path(__file__).parent
ROOT = HERE.parent
RESULTS: dict[str, Any] = {}


def stats(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def show(title: str, text: str) -> None:
    print(f"\n## {title}\n\n{text}\n", flush=True)


# -- hot path ------------------------------------------------------------------------------

HOT_CALLS = 20_000
HOT_ROUNDS = 31


def hot_path() -> None:
    """Cost of signing one prepared request with a cached token."""
    with FakeProcess(token_lifetime=86_400) as fake:
        contenders = [cls(fake.credentials) for cls in CONTENDERS]
        for contender in contenders:
            contender.warm()
        request = requests.Request("POST", contenders[0].rpc_url, json=RPC_BODY).prepare()
        header = "Bearer static-token"
        static = StaticHeader(header)
        scope: dict[str, Any] = {"r": request, "H": header, "static": static}
        statements = {
            "floor: set one header": "r.headers['Authorization'] = H",
            "floor: static AuthBase": "static(r)",
        }
        for index, contender in enumerate(contenders):
            scope[f"c{index}"] = contender.attach
            statements[contender.name] = f"c{index}(r)"
        samples: dict[str, list[float]] = {name: [] for name in statements}
        for _ in range(HOT_ROUNDS):  # interleaved, so drift hits everyone alike
            for name, statement in statements.items():
                seconds = timeit.timeit(statement, globals=scope, number=HOT_CALLS)
                samples[name].append(seconds / HOT_CALLS * 1e9)
        for contender in contenders:
            contender.close()
    result = {name: stats(values) for name, values in samples.items()}
    floor = result["floor: set one header"]["median"]
    handler_floor = result["floor: static AuthBase"]["median"]
    ours = result["clarify-auth"]["median"]
    rows = [
        [
            name,
            f"{r['min']:.0f}",
            f"{r['median']:.0f}",
            f"{r['max']:.0f}",
            f"{r['median'] / floor:.2f}x",
            f"{r['median'] / handler_floor:.2f}x",
            f"{r['median'] / ours:.2f}x",
        ]
        for name, r in result.items()
    ]
    headers = [
        "signing one request",
        "min ns",
        "median ns",
        "max ns",
        "/ header floor",
        "/ handler floor",
        "/ clarify-auth",
    ]
    RESULTS["hot_path"] = result
    show(
        f"Hot path ({HOT_ROUNDS} rounds of {HOT_CALLS:,} calls, ns per call)", table(headers, rows)
    )


def instructions() -> None:
    """Instructions per signed request, counted by callgrind (repeatable on a busy machine)."""
    counts: dict[str, float] = {}
    names = ["floor: set one header", "floor: static AuthBase"] + [c.name for c in CONTENDERS]
    with FakeProcess(token_lifetime=86_400) as fake:
        credentials = json.dumps(fake.credentials)
        for name in names:
            totals = []
            for calls in (0, 2000):
                out = Path("/tmp") / f"callgrind.{abs(hash(name))}.{calls}"
                command = [
                    "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                    sys.executable, str(HERE / "_instructions.py"), name, str(calls), credentials,
                ]  # fmt: skip
                finished = subprocess.run(
                    command, capture_output=True, text=True, timeout=600, check=True
                )
                line = next(x for x in finished.stderr.splitlines() if "Collected" in x)
                totals.append(int(line.split(":")[1].strip()))
                out.unlink(missing_ok=True)
            counts[name] = (totals[1] - totals[0]) / 2000
    floor = counts["floor: set one header"]
    handler_floor = counts["floor: static AuthBase"]
    ours = counts["clarify-auth"]
    rows = [
        [name, f"{n:,.0f}", f"{n / floor:.2f}x", f"{n / handler_floor:.2f}x", f"{n / ours:.2f}x"]
        for name, n in counts.items()
    ]
    RESULTS["hot_path_instructions"] = counts
    headers = [
        "signing one request",
        "instructions",
        "/ header floor",
        "/ handler floor",
        "/ clarify-auth",
    ]
    show("Hot path, instructions per call (callgrind; 2,000 calls less 0)", table(headers, rows))


# -- end to end ----------------------------------------------------------------------------

E2E_ROUNDS = 5
E2E_CALLS = 1000


def end_to_end() -> None:
    """5,000 sequential API calls: ClarifySession against a plain session with a static header."""
    with FakeProcess(token_lifetime=86_400) as fake:
        ours = ClarifyAuth(fake.credentials)
        ours.warm()
        plain = requests.Session()
        plain.headers.update(HEADERS)
        plain.headers["Authorization"] = ours.session.authenticator.authorization()
        url = ours.rpc_url

        def run_ours() -> None:
            for _ in range(E2E_CALLS):
                ours.session.post("rpc", json=RPC_BODY).raise_for_status()

        def run_plain() -> None:
            for _ in range(E2E_CALLS):
                plain.post(url, json=RPC_BODY).raise_for_status()

        samples: dict[str, list[float]] = {"plain requests.Session": [], "ClarifySession": []}
        for _ in range(E2E_ROUNDS):
            for name, run in (("plain requests.Session", run_plain), ("ClarifySession", run_ours)):
                start = time.perf_counter()
                run()
                samples[name].append(time.perf_counter() - start)
        ours.close()
        plain.close()
    result = {name: stats(values) for name, values in samples.items()}
    base = result["plain requests.Session"]["median"]
    rows = [
        [
            name,
            f"{r['min']:.3f}",
            f"{r['median']:.3f}",
            f"{r['max']:.3f}",
            f"{r['median'] / base:.3f}x",
        ]
        for name, r in result.items()
    ]
    RESULTS["end_to_end"] = result
    title = f"End to end ({E2E_ROUNDS} interleaved rounds of {E2E_CALLS:,} sequential JSON-RPC POSTs, seconds per round)"
    show(title, table(["session", "min s", "median s", "max s", "/ plain"], rows))


# -- cold start storm --------------------------------------------------------------------------

STORM_THREADS = 32
TOKEN_LATENCY_S = 0.3


def run_threads(count: int, target: Any) -> list[Any]:
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def work(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = target()
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def cold_start() -> None:
    """32 threads released together on an empty cache, token latency 300 ms."""
    rows = []
    RESULTS["cold_start"] = {}
    for cls in CONTENDERS:
        with FakeProcess(token_lifetime=3600) as fake:
            fake.do("set", "token_latency", TOKEN_LATENCY_S)
            contender = cls(fake.credentials)
            start = time.perf_counter()
            results = run_threads(STORM_THREADS, contender.call)
            elapsed = time.perf_counter() - start
            counts = fake.stats()
            contender.close()
        failures = sum(1 for r in results if r != 200)
        RESULTS["cold_start"][cls.name] = {**counts, "failures": failures, "seconds": elapsed}
        rows.append([cls.name, str(counts["token_requests"]), str(failures), f"{elapsed:.2f}"])
    title = f"Cold start storm ({STORM_THREADS} threads at once, empty cache, token latency {TOKEN_LATENCY_S * 1000:.0f} ms)"
    show(title, table(["library", "token requests", "failed calls", "wall s"], rows))


# -- rotation under load ---------------------------------------------------------------------------

ROTATION_THREADS = 8
ROTATION_S = 10.0
ROTATION_LIFETIME_S = 2.0


def load(
    contender: Contender, threads: int, seconds: float, stop_early: threading.Event | None = None
) -> list[tuple[float, float, bool]]:
    """Call the API from `threads` threads for `seconds`; return (start, latency, ok) per call."""
    calls: list[tuple[float, float, bool]] = []
    lock = threading.Lock()
    origin = time.perf_counter()
    deadline = origin + seconds

    def work() -> None:
        mine = []
        while time.perf_counter() < deadline and not (stop_early and stop_early.is_set()):
            begin = time.perf_counter()
            try:
                ok = contender.call() == 200
            except Exception:
                ok = False
            mine.append((begin - origin, time.perf_counter() - begin, ok))
        with lock:
            calls.extend(mine)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=seconds + 120)
    return sorted(calls)


def rotation() -> None:
    """8 threads for 10 s with 2 s tokens and 300 ms token latency."""
    rows = []
    timelines: dict[str, list[tuple[float, float, bool]]] = {}
    RESULTS["rotation"] = {}
    with FakeProcess(token_lifetime=86_400) as fake:  # the plain-request reference
        reference = ClarifyAuth(fake.credentials)
        reference.warm()
        base = load(reference, ROTATION_THREADS, 3.0)
        reference.close()
    base_latency = [latency * 1000 for _, latency, _ in base]
    RESULTS["rotation"]["plain (token never expires)"] = {
        "p50_ms": percentile(base_latency, 0.5), "p99_ms": percentile(base_latency, 0.99), "max_ms": max(base_latency),
    }  # fmt: skip
    rows.append(["reference: same load, token never expires", "-", "-", "-", f"{percentile(base_latency, 0.5):.1f}",
                 f"{percentile(base_latency, 0.99):.1f}", f"{max(base_latency):.0f}", f"{len(base)}"])  # fmt: skip
    for cls in [c for c in CONTENDERS if c.renews]:
        with FakeProcess(token_lifetime=ROTATION_LIFETIME_S) as fake:
            fake.do("set", "token_latency", TOKEN_LATENCY_S)
            contender = cls(fake.credentials)
            contender.warm()
            calls = load(contender, ROTATION_THREADS, ROTATION_S)
            counts = fake.stats()
            contender.close()
        latency = [seconds * 1000 for _, seconds, _ in calls]
        errors = sum(1 for *_, ok in calls if not ok)
        entry = {
            "token_requests": counts["token_requests"], "rejected_401": counts["rejected"], "errors": errors,
            "calls": len(calls), "p50_ms": percentile(latency, 0.5), "p99_ms": percentile(latency, 0.99),
            "max_ms": max(latency),
        }  # fmt: skip
        RESULTS["rotation"][cls.name] = entry
        timelines[cls.name] = calls
        rows.append([cls.name, str(entry["token_requests"]), str(entry["rejected_401"]), str(errors),
                     f"{entry['p50_ms']:.1f}", f"{entry['p99_ms']:.1f}", f"{entry['max_ms']:.0f}", str(len(calls))])  # fmt: skip
    headers = [
        "library",
        "token requests",
        "401 (expired)",
        "errors",
        "p50 ms",
        "p99 ms",
        "max ms",
        "calls",
    ]
    title = f"Rotation under load ({ROTATION_THREADS} threads, {ROTATION_S:.0f} s, token lifetime {ROTATION_LIFETIME_S:.0f} s, token latency {TOKEN_LATENCY_S * 1000:.0f} ms)"
    show(title, table(headers, rows))
    plot(timelines)


def plot(timelines: dict[str, list[tuple[float, float, bool]]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(
        len(timelines), 1, figsize=(10, 2.2 * len(timelines)), sharex=True, sharey=True
    )
    for ax, (name, calls) in zip(axes, timelines.items(), strict=True):
        ok = [(t, seconds * 1000) for t, seconds, good in calls if good]
        bad = [(t, seconds * 1000) for t, seconds, good in calls if not good]
        if ok:
            ax.scatter(*zip(*ok, strict=True), s=2, color="tab:blue", label="call")
        if bad:
            ax.scatter(*zip(*bad, strict=True), s=6, color="tab:red", label="failed call")
        ax.set_yscale("log")
        ax.set_ylabel("ms")
        ax.set_title(name, loc="left", fontsize=10)
        ax.legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("seconds into the run")
    figure.suptitle(
        f"API call latency during token rotation: {ROTATION_THREADS} threads, {ROTATION_LIFETIME_S:.0f} s tokens, "
        f"{TOKEN_LATENCY_S * 1000:.0f} ms token endpoint"
    )
    figure.tight_layout()
    figure.savefig(HERE / "rotation.png", dpi=110)
    plt.close(figure)
    print(f"plot: {HERE / 'rotation.png'}")


# -- token endpoint outage -----------------------------------------------------------------------

OUTAGE_THREADS = 4
OUTAGE_RUN_S = 12.0
OUTAGE_LIFETIME_S = 10.0
OUTAGE_FROM_S, OUTAGE_TO_S = 5.0, 8.0


def outage() -> None:
    """The token endpoint answers 503 from 5 s to 8 s of a 12 s run; tokens live 10 s."""
    rows = []
    RESULTS["outage"] = {}
    for cls in [c for c in CONTENDERS if c.renews]:
        with FakeProcess(token_lifetime=OUTAGE_LIFETIME_S) as fake:
            contender = cls(fake.credentials)
            contender.warm()
            calls: list[tuple[float, float, bool]] = []
            runner = threading.Thread(
                target=lambda c=contender, out=calls: out.extend(
                    load(c, OUTAGE_THREADS, OUTAGE_RUN_S)
                )
            )
            origin = time.perf_counter()
            runner.start()
            time.sleep(max(0.0, origin + OUTAGE_FROM_S - time.perf_counter()))
            before = fake.stats()["token_requests"]
            fake.do("fail_token_requests", 1_000_000, status=503)
            time.sleep(max(0.0, origin + OUTAGE_TO_S - time.perf_counter()))
            during = fake.stats()["token_requests"] - before
            fake.do("clear_faults")
            runner.join(timeout=OUTAGE_RUN_S + 120)
            total = fake.stats()["token_requests"]
            contender.close()
        errors_during = sum(1 for t, _, ok in calls if not ok and OUTAGE_FROM_S <= t < OUTAGE_TO_S)
        errors = sum(1 for *_, ok in calls if not ok)
        worst = max(seconds for _, seconds, _ in calls) * 1000
        RESULTS["outage"][cls.name] = {
            "token_requests_during_outage": during, "token_requests": total, "errors": errors,
            "errors_during_outage": errors_during, "calls": len(calls), "max_ms": worst,
        }  # fmt: skip
        rows.append(
            [
                cls.name,
                str(during),
                str(errors_during),
                str(errors),
                f"{worst:.0f}",
                str(len(calls)),
            ]
        )
    headers = [
        "library",
        "token requests in outage",
        "API errors in outage",
        "API errors in all",
        "max ms",
        "calls",
    ]
    title = (
        f"Token endpoint outage (503 from {OUTAGE_FROM_S:.0f} s to {OUTAGE_TO_S:.0f} s of {OUTAGE_RUN_S:.0f} s, "
        f"{OUTAGE_THREADS} threads, tokens live {OUTAGE_LIFETIME_S:.0f} s)"
    )
    show(title, table(headers, rows))


# -- import cost ------------------------------------------------------------------------------------

IMPORT_ROUNDS = 15
IMPORTS = {
    "baseline: import requests, pydantic": "import requests, pydantic",
    "import clarify_auth": "import clarify_auth",
    "from clarify_auth import ClarifySession (all of it)": "from clarify_auth import ClarifySession",
    "import pyclarify": "import warnings; warnings.simplefilter('ignore'); import pyclarify",
    "import requests_oauth2client": "import requests_oauth2client",
    "import authlib.integrations.requests_client": "import authlib.integrations.requests_client",
}


def import_cost() -> None:
    """Whole-process `python -c "import ..."` wall time, interleaved rounds."""
    # What pip install does for a wheel; an editable checkout may have no .pyc yet.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "src")], check=True)
    samples: dict[str, list[float]] = {name: [] for name in IMPORTS}
    for _ in range(IMPORT_ROUNDS):
        for name, code in IMPORTS.items():
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
            samples[name].append((time.perf_counter() - start) * 1000)
    result = {name: stats(values) for name, values in samples.items()}
    base = result["baseline: import requests, pydantic"]["median"]
    rows = [
        [
            name,
            f"{r['min']:.0f}",
            f"{r['median']:.0f}",
            f"{r['max']:.0f}",
            f"{r['median'] / base:.2f}x",
        ]
        for name, r in result.items()
    ]
    RESULTS["import"] = result
    show(
        f"Import cost ({IMPORT_ROUNDS} interleaved rounds, whole process, ms)",
        table(["command", "min ms", "median ms", "max ms", "/ baseline"], rows),
    )


def sharing() -> None:
    """Token requests across sessions, command-line runs and processes (target: 1 each)."""
    from _sharing import measure

    names = [c.name for c in CONTENDERS if c.renews]
    with FakeProcess(token_lifetime=3600) as fake:
        fake.do("set", "token_latency", 0.3)  # processes that start together overlap
        result = measure(fake, names)
    RESULTS["sharing"] = result
    rows = [
        [workflow] + [str(counts[name]) for name in names] for workflow, counts in result.items()
    ]
    show(
        "Token requests per workflow (fewer is better; the physical limit is 1)",
        table(["workflow", *names], rows),
    )


SCENARIOS = {
    "hot": hot_path,
    "e2e": end_to_end,
    "storm": cold_start,
    "rotation": rotation,
    "outage": outage,
    "import": import_cost,
    "sharing": sharing,
}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scenarios", nargs="*", choices=[*SCENARIOS, []], help="default: all")
    parser.add_argument(
        "--instructions", action="store_true", help="count hot-path instructions with callgrind"
    )
    args = parser.parse_args()
    print(f"# clarify-auth benchmarks\n\nmachine: {platform.platform()}, Python {platform.python_version()}, "
          f"{__import__('os').cpu_count()} CPUs; requests {requests.__version__}")  # fmt: skip
    for name in args.scenarios or list(SCENARIOS):
        SCENARIOS[name]()
    if args.instructions:
        instructions()
    out = HERE / "results.json"
    existing = json.loads(out.read_text()) if out.exists() else {}
    existing.update(RESULTS)
    out.write_text(json.dumps(existing, indent=2) + "\n")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
