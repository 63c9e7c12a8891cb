"""Which sockets a token request's worker thread uses, so that abandoning it can shut them.

A read blocked in another thread ends only when its socket is shut. urllib3
gives no handle on the socket of a request in progress, so two small wrappers
(installed once, inert on every thread but a token request's worker) hand
each socket the worker opens or takes from the pool to the exchange running
on that thread (``opening.exchange``).
"""

from __future__ import annotations

import contextlib
import functools
import socket
import threading
from typing import Any

__all__ = ["opening", "shut_socket", "watch_new_sockets"]

#: ``opening.exchange``: the exchange whose worker runs on this thread, if any;
#: it has a ``track(sock)`` method.
opening = threading.local()
_watching_lock = threading.Lock()
_MARK = "_clarify_auth_watch"


def _tell(sock: object) -> None:
    exchange = getattr(opening, "exchange", None)
    if exchange is not None and isinstance(sock, socket.socket):
        exchange.track(sock)


def watch_new_sockets() -> None:
    """Let each exchange see the sockets urllib3 uses on its worker thread (installed once).

    A new connection's socket comes from ``urllib3.util.connection.create_connection``;
    a pooled one's from ``HTTPConnectionPool._get_conn`` (its ``sock``).
    """
    # Imported here: requests has imported them already; this module stays cheap.
    import urllib3.connectionpool  # noqa: PLC0415
    import urllib3.util.connection  # noqa: PLC0415

    with _watching_lock:
        create = urllib3.util.connection.create_connection
        if getattr(create, _MARK, False):
            return

        @functools.wraps(create)
        def create_connection(*args: Any, **kwargs: Any) -> socket.socket:
            sock = create(*args, **kwargs)
            _tell(sock)
            return sock

        pool_class = urllib3.connectionpool.HTTPConnectionPool
        get_conn = pool_class._get_conn  # noqa: SLF001 - urllib3's, wrapped transparently

        @functools.wraps(get_conn)
        def _get_conn(self: Any, *args: Any, **kwargs: Any) -> Any:
            conn = get_conn(self, *args, **kwargs)
            _tell(getattr(conn, "sock", None))  # None for a connection not yet open
            return conn

        setattr(create_connection, _MARK, True)
        urllib3.util.connection.create_connection = create_connection
        pool_class._get_conn = _get_conn  # type: ignore[method-assign]  # noqa: SLF001


def shut_socket(sock: socket.socket) -> None:
    """Shut ``sock`` both ways: a read blocked on it in another thread ends at once."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
