"""A scriptable HTTP server on 127.0.0.1 for tests of what crosses a socket."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Seen:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    """What a route answers: status, JSON or raw body, headers, delay, or a dropped connection."""

    status: int = 200
    json: Any = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False


Handler = Callable[[Seen], Reply]


class LoopbackServer:
    """ThreadingHTTPServer on an ephemeral port; routes map 'METHOD /path' to handlers."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else delayed ACKs add ~40 ms per answer

            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    body = self._read_chunks()
                path = self.path.split("?", 1)[0]
                seen = Seen(self.command, self.path, dict(self.headers.items()), body)
                with outer._lock:
                    outer.seen.append(seen)
                handler = outer.routes.get(f"{self.command} {path}")
                reply = handler(seen) if handler else Reply(404, {"error": "not_found"})
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                data = reply.body if reply.body is not None else json.dumps(reply.json).encode()
                self.send_response(reply.status)
                content_type = "application/json" if reply.body is None else "text/html"
                self.send_header("Content-Type", reply.headers.pop("Content-Type", content_type))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _read_chunks(self) -> bytes:
                parts = []
                for _ in range(10_000):  # bounded: test bodies are a few chunks
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()
                return b"".join(parts)

            do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815

        class _Server(ThreadingHTTPServer):
            request_queue_size = 256  # the default of 5 resets connections in thread storms
            daemon_threads = True

        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return sum(1 for s in self.seen if s.method == method and s.path == path)

    def requests_to(self, method: str, path: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.method == method and s.path == path]
