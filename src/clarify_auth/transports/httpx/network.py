"""The network settings of an httpx client, as clarify-auth needs to see them.

Two things the token's transport must agree with: a plain-http API must not
travel through a proxy off the machine, and token requests (which go through
``requests``) should go the way the client's own requests go.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import requests

from clarify_auth._errors import InsecureTransportError
from clarify_auth._urls import is_loopback_host

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["refuse_remote_proxy", "token_request_settings"]


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


def token_request_settings(options: Mapping[str, Any]) -> requests.Session:
    """The client's ``trust_env``, ``proxy``, ``verify`` and ``cert``, in ``requests``' terms.

    Token requests go through ``requests``; this carries over what maps one to
    one. An ``ssl.SSLContext`` as ``verify`` does not: the token requests then
    verify against ``requests``' CA bundle (pass your own authenticator with
    ``session=`` for full control).
    """
    settings = requests.Session()
    settings.trust_env = bool(options.get("trust_env", True))
    proxy = options.get("proxy")
    if proxy is not None:
        if isinstance(proxy, httpx.Proxy):
            url = proxy.url
            if proxy.auth is not None:
                url = url.copy_with(username=proxy.auth[0], password=proxy.auth[1])
            proxy = url
        settings.proxies = {"http": str(proxy), "https": str(proxy)}
    verify = options.get("verify", True)
    if isinstance(verify, bool | str):
        settings.verify = verify
    cert = options.get("cert")
    if isinstance(cert, str) or (isinstance(cert, tuple) and len(cert) == 2):  # noqa: PLR2004
        settings.cert = cert
    return settings
