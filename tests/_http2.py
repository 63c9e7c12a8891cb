"""A small HTTP/2-only server over TLS on 127.0.0.1 (h2's state machine), for the httpx tests.

It offers only ``h2`` in ALPN, so a client that cannot speak HTTP/2 fails the
handshake. Token requests get a token; anything else a JSON-RPC result. Each
request is recorded with the protocol ALPN agreed on.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

import h2.config
import h2.connection
import h2.events
import h2.exceptions

if TYPE_CHECKING:
    from typing_extensions import Self

TOKEN = {"access_token": "h2-token-1", "token_type": "Bearer", "expires_in": 3600}
RPC_OK = {"jsonrpc": "2.0", "id": 1, "result": {"ok": True}}


@dataclass
class Seen:
    """One request as the server read it."""

    protocol: str | None
    method: str
    path: str
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


@dataclass
class Http2Server:
    """Serves HTTP/2 over TLS with ``cert``/``key`` until closed; one thread per connection."""

    cert: str
    key: str
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(self.cert, self.key)
        self._context.set_alpn_protocols(["h2"])
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)

    @property
    def api_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/v1/"

    def __enter__(self) -> Self:
        self._accepting.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._accepting.join(5)
        for thread in self._threads:
            thread.join(5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self._serve, args=(raw,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, raw: socket.socket) -> None:
        raw.settimeout(5)
        try:
            with self._context.wrap_socket(raw, server_side=True) as tls:
                self._converse(tls)
        except (OSError, ssl.SSLError, h2.exceptions.ProtocolError):
            return  # a client that gave up, or spoke something else

    def _converse(self, tls: ssl.SSLSocket) -> None:
        protocol = tls.selected_alpn_protocol()
        if protocol != "h2":
            return  # OpenSSL lets a client without h2 through; this server does not
        connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        connection.initiate_connection()
        tls.sendall(connection.data_to_send())
        heads: dict[int, dict[str, str]] = {}
        bodies: dict[int, bytes] = {}
        while not self._stop.is_set():
            try:
                data = tls.recv(65536)
            except TimeoutError:
                return
            if not data:
                return
            for event in connection.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    heads[event.stream_id] = {
                        (k.decode() if isinstance(k, bytes) else k): (
                            v.decode() if isinstance(v, bytes) else v
                        )
                        for k, v in event.headers
                    }
                    bodies[event.stream_id] = b""
                elif isinstance(event, h2.events.DataReceived):
                    bodies[event.stream_id] += event.data
                    connection.acknowledge_received_data(
                        event.flow_controlled_length, event.stream_id
                    )
                elif isinstance(event, h2.events.StreamEnded):
                    self._answer(connection, event.stream_id, protocol, heads, bodies)
                elif isinstance(event, h2.events.ConnectionTerminated):
                    tls.sendall(connection.data_to_send())
                    return
            tls.sendall(connection.data_to_send())

    def _answer(self, connection, stream_id, protocol, heads, bodies) -> None:
        head = heads.pop(stream_id)
        seen = Seen(protocol, head[":method"], head[":path"], bodies.pop(stream_id))
        self.seen.append(seen)
        payload = TOKEN if seen.path.endswith("/oauth/token") else RPC_OK
        data = json.dumps(payload).encode()
        connection.send_headers(
            stream_id,
            [
                (":status", "200"),
                ("content-type", "application/json"),
                ("content-length", str(len(data))),
            ],
        )
        connection.send_data(stream_id, data, end_stream=True)
