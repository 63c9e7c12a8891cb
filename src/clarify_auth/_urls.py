"""URL checks shared by the credentials, the authenticators and the session."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from urllib.parse import urlsplit

from clarify_auth._errors import InsecureTransportError

__all__ = ["check_transport", "is_loopback_host", "normalise_base_url", "origin_prefix"]


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
