"""The official SDK, pyclarify, authenticates and calls rpc against FakeClarify.

This shows that FakeClarify speaks Clarify's protocol to a client we did not write.
"""

from __future__ import annotations

import warnings

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_pyclarify_authenticates_and_selects_items(fake_clarify, clarify_credentials_file):
    """pyclarify fetches a token from FakeClarify and its select_items call succeeds."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyclarify uses APIs that pydantic deprecates
        from pyclarify import Client

    client = Client(str(clarify_credentials_file))
    response = client.select_items(limit=1)

    assert response.error is None
    assert response.result.data == []
    token_request = fake_clarify.requests[0]
    assert token_request.form["grant_type"] == "client_credentials"
    assert token_request.form["audience"] == fake_clarify.api_url
    rpc = fake_clarify.requests[-1]
    assert rpc.path == "/v1/rpc"
    assert rpc.status == 200
    assert rpc.headers["Authorization"].startswith("Bearer fake-token-1-")
    assert rpc.headers["X-API-Version"] == "1.1"
    assert rpc.json["method"] == "clarify.selectItems"


def test_pyclarify_reports_rejected_credentials(fake_clarify, clarify_credentials_file):
    """FakeClarify's 401 access_denied reaches pyclarify as its own AuthError."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pyclarify import Client
        from pyclarify.__utils__.exceptions import AuthError

    fake_clarify.fail_token_requests(
        1, status=401, body={"error": "access_denied", "error_description": "Unauthorized"}
    )
    client = Client(str(clarify_credentials_file))

    with pytest.raises(AuthError):
        client.select_items(limit=1)
