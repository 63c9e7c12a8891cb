"""FakeClarify in a process of its own, so the server never competes for the clients' GIL."""

from __future__ import annotations

import multiprocessing
from typing import Any


def _serve(conn: Any, options: dict[str, Any]) -> None:
    from clarify_auth.testing import FakeClarify

    fake = FakeClarify(**options).start()
    conn.send({"api_url": fake.api_url, "credentials": fake.credentials_dict()})
    while True:
        message = conn.recv()
        if message is None:
            break
        method, args, kwargs = message
        try:
            if method == "stats":
                rejected = sum(1 for r in fake.requests if r.path == "/v1/rpc" and r.status == 401)
                value: Any = {
                    "token_requests": fake.token_requests,
                    "tokens_issued": fake.tokens_issued,
                    "rpc_calls": fake.rpc_calls,
                    "rejected": rejected,
                }
            elif method == "set":
                setattr(fake, args[0], args[1])
                value = None
            else:
                value = getattr(fake, method)(*args, **kwargs)
            conn.send((True, value))
        except Exception as exc:
            conn.send((False, repr(exc)))
    fake.stop()


class FakeProcess:
    """Start a FakeClarify in a child process; drive it with do(method, ...)."""

    def __init__(self, **options: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, options), daemon=True)
        self._process.start()
        info = self._conn.recv()
        self.api_url: str = info["api_url"]
        self.credentials: dict[str, Any] = info["credentials"]

    def do(self, method: str, *args: Any, **kwargs: Any) -> Any:
        self._conn.send((method, args, kwargs))
        ok, value = self._conn.recv()
        if not ok:
            raise RuntimeError(value)
        return value

    def stats(self) -> dict[str, int]:
        result: dict[str, int] = self.do("stats")
        return result

    def stop(self) -> None:
        self._conn.send(None)
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()

    def __enter__(self) -> FakeProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
