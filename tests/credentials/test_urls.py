"""The loopback rule for plain http, and URL normalisation."""

from __future__ import annotations

import pytest

from clarify_auth import InsecureTransportError
from clarify_auth._urls import check_transport, is_loopback_host


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("localhost", True),
        ("LocalHost.", True),
        ("127.0.0.1", True),
        ("127.255.0.9", True),
        ("[::1]", True),
        ("::1", True),
        ("", False),
        (None, False),
        ("128.0.0.1", False),
        ("localhost.example", False),
        ("::2", False),
        ("example.com", False),
        ("0.0.0.0", False),  # noqa: S104 - a host name under test, nothing binds
    ],
)
def test_loopback_hosts(host, expected):
    """Only localhost, 127.0.0.0/8 and ::1 are loopback."""
    assert is_loopback_host(host) is expected


@pytest.mark.parametrize(
    "url",
    [
        "https://api.clarify.io/v1/rpc",
        "HTTPS://API.CLARIFY.IO/v1/rpc",
        "http://127.0.0.1:1/x",
        "http://localhost/x",
        "http://[::1]:80/x",
    ],
)
def test_allowed_transports(url):
    """HTTPS to any host (in any case) and plain http to loopback pass."""
    check_transport(url, what="credentials")


@pytest.mark.parametrize(
    "url",
    [
        "http://api.clarify.io/v1/rpc",
        "ftp://127.0.0.1/x",
        "ws://localhost/x",
        "http://user@10.1.1.1/",
        "file:///etc/passwd",
        "api.clarify.io/v1",
    ],
)
def test_refused_transports(url):
    """Plain http to other hosts, and other schemes, are refused with the host named."""
    with pytest.raises(InsecureTransportError, match="refusing to send credentials"):
        check_transport(url, what="credentials")
