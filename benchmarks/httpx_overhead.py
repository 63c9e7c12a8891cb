"""Per-request overhead of clarify_auth.httpx next to httpx-auth and authlib, with a cached token.

    pip install -e '.[httpx]' httpx-auth authlib
    python benchmarks/httpx_overhead.py            # about 30 seconds
    python benchmarks/httpx_overhead.py --quick    # a smoke run

Every contender signs requests on an httpx client whose transport is an
``httpx.MockTransport``: no socket, so what differs between rows is the
authentication alone. Floors: the same client with the header fixed in
``headers=``, and with a minimal ``httpx.Auth`` that sets one header. Each
contender holds a token before timing starts (clarify-auth's comes from a
loopback FakeClarify, the others' from the mock transport). Rounds are
short and interleaved, and each ratio is taken within a round and then the
median of the rounds, so load on a shared machine hits every row alike.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import platform
import statistics
import sys
import time
import timeit
import warnings
from typing import TYPE_CHECKING, Any

import httpx

import clarify_auth
import clarify_auth.httpx
from clarify_auth.testing import FakeClarify

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

RPC_BODY = {"jsonrpc": "2.0", "id": 1, "method": "clarify.selectItems", "params": {}}
HEADERS = {"X-API-Version": "1.1"}
STATIC = "Bearer static-token"
TOKEN = {"access_token": "mock-token", "token_type": "Bearer", "expires_in": 86_400}
HEADER_FLOOR = "floor: fixed header"
AUTH_FLOOR = "floor: minimal httpx.Auth"
RPC_RESULT = {"jsonrpc": "2.0", "id": 1, "result": {"data": []}}


def answer(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/oauth/token"):
        return httpx.Response(200, json=TOKEN)
    return httpx.Response(200, json=RPC_RESULT)


async def answer_async(request: httpx.Request) -> httpx.Response:
    return answer(request)


class StaticAuth(httpx.Auth):
    """The least an httpx.Auth can do: set one header."""

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        """Set the header and send."""
        request.headers["Authorization"] = STATIC
        yield request


# -- contenders: name -> a client that signs with it ------------------------------------------


def sync_clients(fake: FakeClarify) -> dict[str, httpx.Client]:
    creds = fake.credentials()
    mock = httpx.MockTransport(answer)
    clients = {
        HEADER_FLOOR: httpx.Client(transport=mock, headers={**HEADERS, "Authorization": STATIC}),
        AUTH_FLOOR: httpx.Client(transport=mock, headers=HEADERS, auth=StaticAuth()),
        "clarify-auth ClarifyAuth": httpx.Client(
            transport=mock,
            headers=HEADERS,
            auth=clarify_auth.httpx.ClarifyAuth(clarify_auth.Authenticator.from_credentials(creds)),
        ),
        "clarify-auth Client": clarify_auth.httpx.Client(creds, transport=mock),
    }
    with contextlib.suppress(ImportError):
        import httpx_auth

        clients["httpx-auth OAuth2ClientCredentials"] = httpx.Client(
            transport=mock,
            headers=HEADERS,
            auth=httpx_auth.OAuth2ClientCredentials(
                fake.token_url,
                fake.client_id,
                fake.client_secret,
                client=httpx.Client(transport=mock),
                audience=fake.api_url,
            ),
        )
    with contextlib.suppress(ImportError):
        from authlib.integrations.httpx_client import OAuth2Client

        authlib = OAuth2Client(
            fake.client_id,
            fake.client_secret,
            token_endpoint=fake.token_url,
            grant_type="client_credentials",
            transport=mock,
            headers=HEADERS,
        )
        authlib.fetch_token()
        clients["authlib OAuth2Client"] = authlib
    return clients


def async_clients(fake: FakeClarify) -> dict[str, httpx.AsyncClient]:
    creds = fake.credentials()
    mock = httpx.MockTransport(answer_async)
    clients = {
        HEADER_FLOOR: httpx.AsyncClient(
            transport=mock, headers={**HEADERS, "Authorization": STATIC}
        ),
        AUTH_FLOOR: httpx.AsyncClient(transport=mock, headers=HEADERS, auth=StaticAuth()),
        "clarify-auth ClarifyAuth": httpx.AsyncClient(
            transport=mock,
            headers=HEADERS,
            auth=clarify_auth.httpx.ClarifyAuth(clarify_auth.Authenticator.from_credentials(creds)),
        ),
        "clarify-auth AsyncClient": clarify_auth.httpx.AsyncClient(creds, transport=mock),
    }
    with contextlib.suppress(ImportError):
        import httpx_auth

        clients["httpx-auth OAuth2ClientCredentials"] = httpx.AsyncClient(
            transport=mock,
            headers=HEADERS,
            auth=httpx_auth.OAuth2ClientCredentials(
                fake.token_url,
                fake.client_id,
                fake.client_secret,
                client=httpx.Client(transport=httpx.MockTransport(answer)),
                audience=fake.api_url,
            ),
        )
    with contextlib.suppress(ImportError):
        from authlib.integrations.httpx_client import AsyncOAuth2Client

        clients["authlib AsyncOAuth2Client"] = AsyncOAuth2Client(
            fake.client_id,
            fake.client_secret,
            token_endpoint=fake.token_url,
            grant_type="client_credentials",
            transport=mock,
            headers=HEADERS,
        )
    return clients


def signers(clients: dict[str, httpx.Client]) -> dict[str, Callable[[httpx.Request], None]]:
    """What each contender does to sign one request, without the rest of httpx's send."""

    def flow_of(auth: httpx.Auth) -> Callable[[httpx.Request], None]:
        def sign(request: httpx.Request) -> None:
            flow = auth.sync_auth_flow(request)
            next(flow)
            flow.close()

        return sign

    def header_floor(request: httpx.Request) -> None:
        request.headers["Authorization"] = STATIC

    result: dict[str, Callable[[httpx.Request], None]] = {HEADER_FLOOR: header_floor}
    for name, client in clients.items():
        if name.startswith("authlib"):
            authlib: Any = client

            def sign_authlib(request: httpx.Request, authlib: Any = authlib) -> None:
                # What OAuth2Client.request adds before httpx's auth flow runs.
                authlib.ensure_active_token(authlib.token)
                flow_of(authlib.token_auth)(request)

            result[name] = sign_authlib
        elif name not in {HEADER_FLOOR, "clarify-auth Client"}:
            result[name] = flow_of(client.auth)
    return result


# -- timing -------------------------------------------------------------------------------------


def time_sync(client: httpx.Client, url: str, calls: int) -> float:
    post = client.post
    started = time.perf_counter()
    for _ in range(calls):
        post(url, json=RPC_BODY)
    return (time.perf_counter() - started) / calls * 1e6


async def time_async(client: httpx.AsyncClient, url: str, calls: int) -> float:
    post = client.post
    started = time.perf_counter()
    for _ in range(calls):
        await post(url, json=RPC_BODY)
    return (time.perf_counter() - started) / calls * 1e6


def measure(names: list[str], timed: Callable[[str], float], rounds: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:  # interleaved: each round times every contender once
            samples[name].append(timed(name))
    return samples


def table(title: str, samples: dict[str, list[float]], unit: str, floor_name: str) -> str:
    """Medians, and ratios taken within each round (their median), which cancels drift."""
    ours = "clarify-auth ClarifyAuth"

    def per_round(name: str, other: str, combine: Callable[[float, float], float]) -> float:
        return statistics.median(map(combine, samples[name], samples[other]))

    lines = [
        f"### {title}",
        "",
        f"| contender | min {unit} | median {unit} | minus floor | / floor | / clarify-auth |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    digits = 0 if unit == "ns" else 1
    for name, values in samples.items():
        minus = per_round(name, floor_name, lambda a, b: a - b)
        over_floor = per_round(name, floor_name, lambda a, b: a / b)
        over_ours = per_round(name, ours, lambda a, b: a / b)
        lines.append(
            f"| {name} | {min(values):.{digits}f} | {statistics.median(values):.{digits}f} "
            f"| {minus:+.{digits}f} | {over_floor:.2f}x | {over_ours:.2f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few rounds, for a smoke test")
    args = parser.parse_args(argv)
    rounds, calls = (3, 200) if args.quick else (31, 500)
    warnings.simplefilter("ignore")  # peers' own deprecation notices

    with FakeClarify() as fake:
        url = fake.rpc_url
        sync = sync_clients(fake)
        for client in sync.values():  # warm: tokens fetched, code paths loaded
            client.post(url, json=RPC_BODY).raise_for_status()
        sync_samples = measure(list(sync), lambda name: time_sync(sync[name], url, calls), rounds)
        sign = signers(sync)
        request = httpx.Request("POST", url, json=RPC_BODY, headers=HEADERS)
        flow_calls = calls * 10
        flow_samples = measure(
            list(sign),
            lambda name: (
                timeit.timeit(lambda: sign[name](request), number=flow_calls) / flow_calls * 1e9
            ),
            rounds,
        )
        for client in sync.values():
            client.close()

        async def run_async() -> dict[str, list[float]]:
            clients = async_clients(fake)
            authlib = clients.get("authlib AsyncOAuth2Client")
            if authlib is not None:
                await authlib.fetch_token()  # type: ignore[attr-defined]
            for client in clients.values():
                (await client.post(url, json=RPC_BODY)).raise_for_status()
            samples: dict[str, list[float]] = {name: [] for name in clients}
            for _ in range(rounds):
                for name, client in clients.items():
                    samples[name].append(await time_async(client, url, calls))
            for client in clients.values():
                await client.aclose()
            return samples

        async_samples = asyncio.run(run_async())
        token_requests = fake.token_requests

    print(
        f"Python {platform.python_version()}, httpx {httpx.__version__}, "
        f"{platform.machine()}; {rounds} interleaved rounds of {calls:,} requests "
        f"on httpx.MockTransport; clarify-auth token requests: {token_requests}\n"
    )
    signing = "Signing one request: the auth flow up to its first yield (floor: set one header)"
    print(table(signing, flow_samples, "ns", HEADER_FLOOR))
    print()
    # A client with no auth skips part of httpx's auth machinery: the fair floor for a
    # whole request is the minimal httpx.Auth, which takes the same path as the others.
    sync_title = "One request through httpx.Client (floor: minimal httpx.Auth)"
    print(table(sync_title, sync_samples, "µs", AUTH_FLOOR))
    print()
    async_title = "One request through httpx.AsyncClient on asyncio (floor: minimal httpx.Auth)"
    print(table(async_title, async_samples, "µs", AUTH_FLOOR))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
