"""The network settings of an httpx client, as clarify-auth needs to see them.

A plain-http API must not travel through a proxy off the machine. (Token
requests go through the client's own transport: see ``token_requests``.)
"""

from __future__ import annotations

import httpx

from clarify_auth._errors import InsecureTransportError
from clarify_auth._urls import is_loopback_host

__all__ = ["refuse_remote_proxy"]


def refuse_remote_proxy(client: httpx.Client | httpx.AsyncClient, api_url: str) -> None:
    """Refuse a plain-http API that a proxy off this machine would carry in clear.

    httpx settles its proxies (``proxy=``, ``mounts=``, the environment) when
    the client is built, so this looks once, at the transport httpx would use.
    """
    if not api_url.startswith("http://"):
        return
    transport = client._transport_for_url(httpx.URL(api_url))  # noqa: SLF001 - httpx's own choice
    proxy_url = getattr(getattr(transport, "_pool", None), "_proxy_url", None)
    host = getattr(proxy_url, "host", None)
    if host is None:
        return
    proxy_host = host.decode("ascii") if isinstance(host, bytes) else str(host)
    if not is_loopback_host(proxy_host):
        raise InsecureTransportError(
            f"refusing to send Clarify credentials over plain http through the proxy at "
            f"{proxy_host}, which is not on this machine; use https, or set no_proxy for this host"
        )
