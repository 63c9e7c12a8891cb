"""URL checks shared by the credentials, the authenticators and the session."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from requests import PreparedRequest
from requests.exceptions import RequestException
from requests.utils import select_proxy

from clarify_auth._errors import InsecureTransportError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "check_proxy",
    "check_transport",
    "is_loopback_host",
    "normalise_base_url",
    "origin_of",
    "origin_prefix",
]

#: (scheme, host, port) of a URL, as browsers and RFC 6454 compare origins.
Origin = tuple[str, str, int]
_DEFAULT_PORTS = {"http": 80, "https": 443}


def is_loopback_host(host: str | None) -> bool:
    """Tell whether ``host`` is ``localhost``, in ``127.0.0.0/8`` or ``::1``."""
    if not host:
        return False
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalise_base_url(url: str) -> str:
    """Return ``url`` ending in exactly one ``/``, or raise ``ValueError``.

    The URL must be absolute, ``http`` or ``https``, with a host and no query
    or fragment, not even an empty one. The message names the problem, not
    the value.
    """
    url = url.strip()
    # urlsplit drops tabs and line breaks silently, so the URL checked here
    # would not be the URL sent; no space or control character is ever right.
    if any(char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F for char in url):  # noqa: PLR2004
        msg = "must not contain spaces or control characters"
        raise ValueError(msg)
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        msg = "must be an absolute http(s) URL"
        raise ValueError(msg) from None
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        msg = "must be an absolute http(s) URL such as https://api.clarify.io/v1/"
        raise ValueError(msg)
    # urlsplit drops an empty query or fragment ("...v1/?"), so look at the text:
    # a base URL with either is ambiguous once paths are joined to it.
    if "?" in url or "#" in url:
        msg = "must not have a query or a fragment ('?' or '#')"
        raise ValueError(msg)
    if parts.username is not None or parts.password is not None:
        msg = "must not carry a user name or password"
        raise ValueError(msg)
    return url.rstrip("/") + "/"


@lru_cache(maxsize=256)
def _origin_is_allowed(scheme: str, netloc: str) -> bool:
    if scheme == "https":
        return True
    host = urlsplit(f"//{netloc}").hostname
    return scheme == "http" and is_loopback_host(host)


def origin_prefix(url: str) -> str:
    """``scheme://netloc/`` of ``url``: every URL that starts with it has that origin."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"


def origin_of(url: str) -> Origin | None:
    """``(scheme, host, port)`` of ``url``, lower-cased, default ports filled in.

    ``None`` for anything that has no http(s) origin (no host, a bad port).
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if not host.isascii():
        host = _idna(host)
    return (scheme, host, port if port is not None else _DEFAULT_PORTS[scheme])


@lru_cache(maxsize=64)
def _idna(host: str) -> str:
    """The host as ``requests`` sends it: its own IDNA encoding, asked of it."""
    prepared = PreparedRequest()
    try:
        prepared.prepare_url(f"http://{host}/", None)
    except RequestException:
        return host
    return urlsplit(str(prepared.url)).hostname or host


def check_proxy(url: str, proxies: Mapping[str, str] | None, *, what: str) -> None:
    """Refuse plain ``http`` that a proxy off this machine would carry in clear.

    ``proxies`` are the ones ``requests`` would use for ``url`` (after the
    environment and ``no_proxy``); https is tunnelled end to end, so only plain
    http is checked.

    Raises:
        InsecureTransportError: ``url`` is plain http and its proxy is not loopback.
    """
    if url[:7].lower() != "http://" or not proxies:
        return
    proxy = select_proxy(url, dict(proxies))
    if not proxy:
        return
    proxy_host = urlsplit(proxy if "://" in proxy else f"http://{proxy}").hostname
    if not is_loopback_host(proxy_host):
        msg = (
            f"refusing to send {what} over plain http through the proxy at {proxy_host}, "
            "which is not on this machine; use https, or set no_proxy for this host"
        )
        raise InsecureTransportError(msg)


def check_transport(url: str, *, what: str) -> None:
    """Refuse to send credentials to ``url`` unless it is https or loopback http.

    Raises:
        InsecureTransportError: ``url`` is plain ``http`` to another host, or
            not http(s) at all. The message names the host, never a secret.
    """
    if url.startswith("https://"):
        return
    parts = urlsplit(url)
    if not _origin_is_allowed(parts.scheme.lower(), parts.netloc):
        msg = (
            f"refusing to send {what} to {parts.scheme}://{parts.hostname}: "
            "plain http is only allowed to a loopback host (127.0.0.0/8, ::1, localhost); "
            "use https"
        )
        raise InsecureTransportError(msg)
